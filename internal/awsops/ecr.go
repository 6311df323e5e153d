package awsops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Manifest media types: the OCI and Docker spellings of an image manifest
// and of a multi-architecture index, from go-containerregistry's one table.
const (
	MediaOCIIndex     = string(types.OCIImageIndex)
	MediaDockerList   = string(types.DockerManifestList)
	MediaOCIManifest  = string(types.OCIManifestSchema1)
	MediaDockerImage  = string(types.DockerManifestSchema2)
	repoNotFoundCode  = "RepositoryNotFoundException"
	alreadyExistsCode = "ImageAlreadyExistsException"
)

// The parts of the ECR API these helpers call; *ecr.Client has them all,
// and tests wrap it where moto deviates.
type (
	ImageGetter interface {
		BatchGetImage(ctx context.Context, in *ecr.BatchGetImageInput, opts ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error)
	}
	ImagePutter interface {
		PutImage(ctx context.Context, in *ecr.PutImageInput, opts ...func(*ecr.Options)) (*ecr.PutImageOutput, error)
	}
	ImageDescriber interface {
		DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, opts ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	}
	RepositoryDescriber interface {
		DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, opts ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
	}
)

// acceptedMediaTypes are asked for explicitly: without them ECR converts
// what it returns to the Docker image manifest it would serve an old
// client, and an index would come back as something else than the bytes
// its digest names.
var acceptedMediaTypes = []string{MediaOCIIndex, MediaDockerList, MediaOCIManifest, MediaDockerImage}

// IsIndex tells whether a media type is a multi-architecture index.
func IsIndex(mediaType string) bool { return types.MediaType(mediaType).IsIndex() }

// IsImage tells whether a media type is a single-platform image manifest
// (Docker schema 2 or OCI; not the long-retired schema 1).
func IsImage(mediaType string) bool {
	return mediaType == MediaOCIManifest || mediaType == MediaDockerImage
}

// Manifest is one manifest as ECR stores it: the exact bytes, which a
// retag must put back unchanged so that the digest stays the same.
type Manifest struct {
	Digest    string
	MediaType string
	Bytes     []byte
}

// SHA256 is the digest a registry gives these bytes.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// RepositoryURI is the repository's URI, <registry>/<name>.
func RepositoryURI(ctx context.Context, c RepositoryDescriber, repo string) (string, error) {
	d, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	if err != nil {
		if IsCode(err, repoNotFoundCode) {
			return "", fmt.Errorf("repository %s does not exist: deploy the stack (make deploy), or check evergreen:repositoryPrefix in cdk.json", repo)
		}
		return "", fmt.Errorf("describing repository %s: %s", repo, Short(err))
	}
	if len(d.Repositories) == 0 {
		return "", fmt.Errorf("repository %s does not exist", repo)
	}
	return aws.ToString(d.Repositories[0].RepositoryUri), nil
}

// Registry is the registry part of a repository URI
// (<account>.dkr.ecr.<region>.amazonaws.com).
func Registry(repositoryURI string) string {
	r, _, _ := strings.Cut(repositoryURI, "/")
	return r
}

// GetManifest reads one manifest by tag or digest. found is false when the
// repository has no such image.
func GetManifest(ctx context.Context, c ImageGetter, repo string, id ecrtypes.ImageIdentifier) (m Manifest, found bool, err error) {
	out, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{
		RepositoryName:     aws.String(repo),
		ImageIds:           []ecrtypes.ImageIdentifier{id},
		AcceptedMediaTypes: acceptedMediaTypes,
	})
	if err != nil {
		return m, false, fmt.Errorf("reading %s from %s: %s", describeID(id), repo, Short(err))
	}
	if len(out.Images) == 0 {
		for _, f := range out.Failures {
			if f.FailureCode != ecrtypes.ImageFailureCodeImageNotFound && f.FailureCode != ecrtypes.ImageFailureCodeImageTagDoesNotMatchDigest {
				return m, false, fmt.Errorf("reading %s from %s: %s: %s", describeID(id), repo, f.FailureCode, aws.ToString(f.FailureReason))
			}
		}
		return m, false, nil
	}
	img := out.Images[0]
	m = Manifest{Bytes: []byte(aws.ToString(img.ImageManifest)), MediaType: aws.ToString(img.ImageManifestMediaType)}
	if img.ImageId != nil {
		m.Digest = aws.ToString(img.ImageId.ImageDigest)
	}
	if m.MediaType == "" {
		// Older pushes may leave the media type to the manifest itself.
		var head struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(m.Bytes, &head)
		m.MediaType = head.MediaType
	}
	return m, true, nil
}

func describeID(id ecrtypes.ImageIdentifier) string {
	if id.ImageTag != nil {
		return "tag " + aws.ToString(id.ImageTag)
	}
	return "image " + aws.ToString(id.ImageDigest)
}

// PutManifest points a tag at a manifest that is already in the
// repository: a retag, no layer moves. ECR answers
// ImageAlreadyExistsException when the tag already points at exactly this
// manifest; that is the outcome asked for, so it is reported as already
// true, not as an error (a re-run must succeed).
func PutManifest(ctx context.Context, c ImagePutter, repo, tag string, m Manifest) (already bool, err error) {
	_, err = c.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName:         aws.String(repo),
		ImageTag:               aws.String(tag),
		ImageManifest:          aws.String(string(m.Bytes)),
		ImageManifestMediaType: aws.String(m.MediaType),
		// With the digest, ECR refuses bytes that do not hash to it.
		ImageDigest: aws.String(m.Digest),
	})
	if IsCode(err, alreadyExistsCode) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("pointing %s:%s at %s: %s", repo, tag, m.Digest, Short(err))
	}
	return false, nil
}

// Child is one entry of an index.
type Child struct {
	Digest    string
	MediaType string
	OS        string
	Arch      string
	Variant   string
}

// IndexChildren lists the per-platform manifests an index names. Entries
// of platform unknown/unknown are BuildKit's attestation manifests, not
// images, and are left out.
func IndexChildren(m Manifest) ([]Child, error) {
	var idx struct {
		Manifests []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Platform  *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
				Variant      string `json:"variant"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(m.Bytes, &idx); err != nil {
		return nil, fmt.Errorf("the index %s is not valid JSON: %v", m.Digest, err)
	}
	var out []Child
	for _, e := range idx.Manifests {
		if e.Platform == nil || e.Platform.OS == "unknown" {
			continue
		}
		out = append(out, Child{Digest: e.Digest, MediaType: e.MediaType, OS: e.Platform.OS, Arch: e.Platform.Architecture, Variant: e.Platform.Variant})
	}
	return out, nil
}

// ImageOfTag describes the image a tag points at: its digest, every tag it
// has and when it was pushed. found is false when no image has the tag.
func ImageOfTag(ctx context.Context, c ImageDescriber, repo, tag string) (d ecrtypes.ImageDetail, found bool, err error) {
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}}})
	if err != nil {
		if IsCode(err, "ImageNotFoundException") {
			return d, false, nil
		}
		return d, false, fmt.Errorf("describing %s:%s: %s", repo, tag, Short(err))
	}
	if len(out.ImageDetails) == 0 {
		return d, false, nil
	}
	return out.ImageDetails[0], true, nil
}

// Tags lists every tag in a repository, page by page.
func Tags(ctx context.Context, c ecr.ListImagesAPIClient, repo string) ([]string, error) {
	var tags []string
	p := ecr.NewListImagesPaginator(c, &ecr.ListImagesInput{RepositoryName: aws.String(repo), Filter: &ecrtypes.ListImagesFilter{TagStatus: ecrtypes.TagStatusTagged}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the tags of %s: %s", repo, Short(err))
		}
		for _, id := range page.ImageIds {
			if t := aws.ToString(id.ImageTag); t != "" {
				tags = append(tags, t)
			}
		}
	}
	return tags, nil
}

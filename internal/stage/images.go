package stage

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/evergreen-images/evergreen/internal/awsops"
)

// images is one repository's manifests, through the ECR API only: a
// retag is a PutImage of the exact bytes, no layer moves and no Docker
// daemon is needed.
type images struct {
	ecr  ECR
	repo string
	out  io.Writer
}

// byTag and byDigest are ECR image ids.
func byTag(tag string) ecrtypes.ImageIdentifier {
	return ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)}
}
func byDigest(d string) ecrtypes.ImageIdentifier {
	return ecrtypes.ImageIdentifier{ImageDigest: aws.String(d)}
}

// get reads the manifest id names; found is false when there is none. The
// registry must hold exactly the bytes its digest names: anything else is
// an error, never a manifest to publish.
func (im images) get(ctx context.Context, id ecrtypes.ImageIdentifier) (awsops.Manifest, bool, error) {
	m, found, err := awsops.GetManifest(ctx, im.ecr, im.repo, id)
	if err != nil || !found {
		return m, found, err
	}
	if got := awsops.SHA256(m.Bytes); got != m.Digest {
		return m, false, fmt.Errorf("the manifest of %s in %s hashes to %s, not to its digest %s", describeID(id), im.repo, got, m.Digest)
	}
	if id.ImageDigest != nil && m.Digest != aws.ToString(id.ImageDigest) {
		return m, false, fmt.Errorf("ECR answered %s for %s in %s", m.Digest, describeID(id), im.repo)
	}
	return m, true, nil
}

func describeID(id ecrtypes.ImageIdentifier) string {
	if id.ImageTag != nil {
		return "tag " + aws.ToString(id.ImageTag)
	}
	return "image " + aws.ToString(id.ImageDigest)
}

// putTag points tag at m, which is already in the repository. A tag that
// already names m is left alone: that is a retry, not an error. When ECR
// refuses the put (ImageAlreadyExistsException: the tag names it already;
// ImageTagAlreadyExistsException: an immutable tag, written by a
// concurrent run), the tag is read back: the put succeeds only if the tag
// now names m. wrote tells whether this call changed the repository.
func (im images) putTag(ctx context.Context, tag string, m awsops.Manifest) (wrote bool, err error) {
	if have, found, err := im.get(ctx, byTag(tag)); err != nil {
		return false, err
	} else if found && have.Digest == m.Digest {
		fmt.Fprintf(im.out, "%s:%s already points at %s\n", im.repo, tag, m.Digest)
		return false, nil
	}
	_, err = im.ecr.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName:         aws.String(im.repo),
		ImageTag:               aws.String(tag),
		ImageManifest:          aws.String(string(m.Bytes)),
		ImageManifestMediaType: aws.String(m.MediaType),
		// With the digest, ECR refuses bytes that do not hash to it.
		ImageDigest: aws.String(m.Digest),
	})
	if err == nil {
		fmt.Fprintf(im.out, "tagged %s:%s %s\n", im.repo, tag, m.Digest)
		return true, nil
	}
	if !awsops.IsCode(err, "ImageAlreadyExistsException", "ImageTagAlreadyExistsException") {
		return false, fmt.Errorf("pointing %s:%s at %s: %s", im.repo, tag, m.Digest, awsops.Short(err))
	}
	have, found, gerr := im.get(ctx, byTag(tag))
	if gerr != nil {
		return false, gerr
	}
	if found && have.Digest == m.Digest {
		fmt.Fprintf(im.out, "%s:%s already points at %s\n", im.repo, tag, m.Digest)
		return false, nil
	}
	return false, fmt.Errorf("%s:%s names another manifest (%s) and cannot be moved to %s: %s", im.repo, tag, have.Digest, m.Digest, awsops.Short(err))
}

// tags lists every tag of the repository, page by page.
func (im images) tags(ctx context.Context) ([]string, error) {
	return awsops.Tags(ctx, im.ecr, im.repo)
}

// describe is ECR's description of the image digest names: its tags and
// when it was pushed.
func (im images) describe(ctx context.Context, digest string) (ecrtypes.ImageDetail, error) {
	out, err := im.ecr.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(im.repo), ImageIds: []ecrtypes.ImageIdentifier{byDigest(digest)}})
	if err != nil {
		return ecrtypes.ImageDetail{}, fmt.Errorf("describing %s@%s: %s", im.repo, digest, awsops.Short(err))
	}
	if len(out.ImageDetails) == 0 {
		return ecrtypes.ImageDetail{}, fmt.Errorf("%s@%s is not in the repository", im.repo, digest)
	}
	return out.ImageDetails[0], nil
}

// pushedAt is when ECR first received the image digest names. ECR keeps it
// through a retag (a tag moved onto an image does not make it newer), which
// is what lets Publish tell an older execution's images from a newer one's.
func (im images) pushedAt(ctx context.Context, digest string) (time.Time, error) {
	d, err := im.describe(ctx, digest)
	if err != nil {
		return time.Time{}, err
	}
	if d.ImagePushedAt == nil {
		return time.Time{}, fmt.Errorf("ECR does not say when %s@%s was pushed", im.repo, digest)
	}
	return d.ImagePushedAt.UTC(), nil
}

// deleteTags removes tags. A tag that does not exist is not a failure
// (ECR lists it as ImageNotFound): a retry after the drafts went must
// succeed. keep, when it holds a failed tag's code, is asked whether that
// failure may stand (the tag stays); every other failure is an error.
func (im images) deleteTags(ctx context.Context, tags []string, keep func(tag string, code ecrtypes.ImageFailureCode) bool) (deleted []string, err error) {
	if len(tags) == 0 {
		return nil, nil
	}
	ids := make([]ecrtypes.ImageIdentifier, len(tags))
	for i, t := range tags {
		ids[i] = byTag(t)
	}
	out, err := im.ecr.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(im.repo), ImageIds: ids})
	if err != nil {
		return nil, fmt.Errorf("removing %v from %s: %s", tags, im.repo, awsops.Short(err))
	}
	for _, id := range out.ImageIds {
		if t := aws.ToString(id.ImageTag); t != "" {
			deleted = append(deleted, t)
		}
	}
	for _, f := range out.Failures {
		if f.FailureCode == ecrtypes.ImageFailureCodeImageNotFound {
			continue
		}
		tag := ""
		if f.ImageId != nil {
			tag = aws.ToString(f.ImageId.ImageTag)
		}
		if keep != nil && keep(tag, f.FailureCode) {
			continue
		}
		return deleted, fmt.Errorf("removing %s:%s: %s: %s", im.repo, tag, f.FailureCode, aws.ToString(f.FailureReason))
	}
	return deleted, nil
}

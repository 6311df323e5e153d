package stage

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
)

// Build pushes one plain image manifest for the entry's runtime, version
// and architecture under its draft tag, and records its digest for Verify.
// --provenance and --sbom are off because attestations turn the push into
// an index, which Publish cannot put under a per-architecture tag and
// Lambda refuses.
//
// A retried Build (a stage retry runs every entry again) finds the draft it
// pushed earlier in this execution and does not rebuild it: a push is
// complete once its tag exists, and Verify checks the image anyway. Any
// doubt (the tag is missing, the lookup fails, the push is not a plain
// image manifest) means building again, which is never wrong, only slower.
func Build(ctx context.Context, e Env, c Clients, out io.Writer) error {
	if err := e.require("build", map[string]string{
		"PIPELINE_EXECUTION_ID": e.ExecutionID, "REGISTRY": e.Registry, "RECORDS_BUCKET": e.RecordsBucket,
		"RUNTIME": e.Runtime, "REPOSITORY": e.Repository, "VERSION": e.Version, "ARCH": e.Arch, "BASE_IMAGE": e.BaseImage,
	}); err != nil {
		return err
	}
	entry := e.entry()
	started := c.now()
	if err := ecrLogin(ctx, e, c, out); err != nil {
		return fmt.Errorf("build %s: %w", entry, err)
	}
	if strings.HasPrefix(e.BaseRegistry, "public.ecr.aws/") {
		if err := ecrPublicLogin(ctx, c, out); err != nil {
			return fmt.Errorf("build %s: %w", entry, err)
		}
	}
	tag := e.DraftTag(e.Arch)
	image := e.Registry + "/" + e.Repository + ":" + tag

	d, found, err := describeTag(ctx, c.ECR, e.Repository, tag)
	switch {
	case err == nil && found && types.MediaType(aws.ToString(d.ImageManifestMediaType)).IsImage():
		fmt.Fprintf(out, "%s was already pushed in execution %s: not rebuilt\n", image, e.ExecutionID)
	default:
		if err != nil {
			fmt.Fprintf(out, "could not tell whether %s was pushed already (%v): building it\n", image, err)
		}
		stdout, err := c.Docker.Run(ctx, nil, "buildx", "build", "--platform", "linux/"+e.Arch, "--pull",
			"--provenance=false", "--sbom=false",
			"--build-arg", "VERSION="+e.Version, "--build-arg", "BASE_IMAGE="+e.BaseImage, "--build-arg", "BASE_REGISTRY="+e.BaseRegistry,
			"--label", "org.opencontainers.image.revision="+e.SourceRevision,
			"--tag", image, "--push", filepath.Join(e.SourceDir, "runtimes", e.Runtime))
		out.Write(stdout)
		if err != nil {
			return fmt.Errorf("build %s: building and pushing %s failed: %w; retry the Build stage once the cause is fixed", entry, image, err)
		}
	}

	d, found, err = describeTag(ctx, c.ECR, e.Repository, tag)
	if err != nil {
		return fmt.Errorf("build %s: reading back %s: %w; retry the Build stage", entry, image, err)
	}
	if !found {
		return fmt.Errorf("build %s: %s is not in %s after the push: retry the Build stage", entry, image, e.Repository)
	}
	mediaType := aws.ToString(d.ImageManifestMediaType)
	if !types.MediaType(mediaType).IsImage() {
		return fmt.Errorf("build %s: %s was pushed as %s, not as a single-platform image manifest: the build must run with --provenance=false --sbom=false and one --platform", entry, image, mediaType)
	}
	fmt.Fprintf(out, "pushed %s (%s)\n", image, mediaType)

	rec := records.Build{
		SchemaVersion:    records.SchemaVersion,
		Stage:            "build",
		ExecutionID:      e.ExecutionID,
		SourceRevision:   e.SourceRevision,
		Runtime:          e.Runtime,
		Version:          e.Version,
		Arch:             e.Arch,
		Repository:       e.Repository,
		Digest:           aws.ToString(d.ImageDigest),
		MediaType:        mediaType,
		BuildID:          e.BuildID,
		StartedAt:        records.Time(started),
		Builder:          e.Builder,
		SourceRepository: e.SourceRepository,
	}
	if d.ImagePushedAt != nil {
		rec.PushedAt = records.Time(*d.ImagePushedAt)
	}
	// The record is made in full before it is written: an empty or partial
	// record must never be what Verify reads.
	if rec.Digest == "" || rec.PushedAt == "" {
		return fmt.Errorf("build %s: ECR described %s without a digest or push time: retry the Build stage", entry, image)
	}
	key := records.BuildKey(e.ExecutionID, e.Runtime, e.Version, e.Arch)
	// A retry that did not rebuild keeps the first build's start: the
	// provenance says when the image was built, not when it was found.
	var earlier records.Build
	if found, err := c.Records.GetJSON(ctx, key, &earlier); err == nil && found && earlier.Digest == rec.Digest && earlier.StartedAt != "" {
		rec.StartedAt, rec.Builder = earlier.StartedAt, earlier.Builder
	}
	if err := c.Records.PutJSON(ctx, key, rec); err != nil {
		return fmt.Errorf("build %s: %w; retry the Build stage (the image is pushed, it will not be rebuilt)", entry, err)
	}
	return nil
}

// entry names the build-graph entry in messages.
func (e Env) entry() string { return e.Runtime + " " + e.Version + " " + e.Arch }

// now is the stage's clock.
func (c Clients) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// describeTag describes the image a tag names; found is false when the
// repository has no image with that tag.
func describeTag(ctx context.Context, c ECR, repo, tag string) (ecrtypes.ImageDetail, bool, error) {
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}}})
	if err != nil {
		if awsops.IsCode(err, "ImageNotFoundException") {
			return ecrtypes.ImageDetail{}, false, nil
		}
		return ecrtypes.ImageDetail{}, false, fmt.Errorf("describing %s:%s: %s", repo, tag, awsops.Short(err))
	}
	if len(out.ImageDetails) == 0 {
		return ecrtypes.ImageDetail{}, false, nil
	}
	return out.ImageDetails[0], true, nil
}

// ecrLogin logs docker in to the entry's registry with an ECR token, as
// `aws ecr get-login-password | docker login` does: the token is
// base64("AWS:<password>"), and the password goes on stdin, never in the
// arguments.
func ecrLogin(ctx context.Context, e Env, c Clients, out io.Writer) error {
	tok, err := c.ECR.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return fmt.Errorf("getting an ECR login token for %s: %s", e.Registry, awsops.Short(err))
	}
	if len(tok.AuthorizationData) == 0 {
		return fmt.Errorf("ECR returned no login token for %s", e.Registry)
	}
	return dockerLogin(ctx, c.Docker, out, e.Registry, aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
}

// ecrPublicLogin authenticates the base image pulls from ECR Public: its
// API answers in us-east-1 only (Clients.ECRPublic is made for it), and the
// token is good for pulls from anywhere.
func ecrPublicLogin(ctx context.Context, c Clients, out io.Writer) error {
	if c.ECRPublic == nil {
		return fmt.Errorf("no ECR Public client to log in to public.ecr.aws for the base image pulls")
	}
	tok, err := c.ECRPublic.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
	if err != nil {
		return fmt.Errorf("getting an ECR Public login token (us-east-1): %s; the build role needs ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken", awsops.Short(err))
	}
	if tok.AuthorizationData == nil {
		return fmt.Errorf("ECR Public returned no login token")
	}
	return dockerLogin(ctx, c.Docker, out, "public.ecr.aws", aws.ToString(tok.AuthorizationData.AuthorizationToken))
}

func dockerLogin(ctx context.Context, d Docker, out io.Writer, registry, token string) error {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return fmt.Errorf("the login token for %s is not base64: %v", registry, err)
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || password == "" {
		return fmt.Errorf("the login token for %s is not <user>:<password>", registry)
	}
	stdout, err := d.Run(ctx, []byte(password), "login", "--username", user, "--password-stdin", registry)
	out.Write(stdout)
	if err != nil {
		return fmt.Errorf("docker login to %s: %w", registry, err)
	}
	return nil
}

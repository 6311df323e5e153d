package referrers

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Evidence tags keep a published image's evidence as long as the image.
//
// ECR deletes an image's referrers within 24 hours of the image (Amazon ECR
// User Guide, "Sign images": lifecycle policies "clean up those artifacts
// within 24 hours of the deletion of the subject image"), but it does not
// document whether a tagStatus untagged rule also selects a referrer on
// its own: referrers are untagged manifests, and lifecycle rules count
// signatures and indexes as images (aws/containers-roadmap#2613). If it
// does, the untagged rule (days since push) would expire the evidence of an
// image that stays published longer than the rule's window, under its
// moving tag. So Publish also gives the current evidence a tag named after
// the subject's moving tag, which a keep rule protects; the tag moves to
// the next publish's evidence, and the old evidence is then untagged,
// younger than its subject, and goes with it (or, at the latest, by the
// untagged rule a few days after). Safe whichever way ECR behaves.
const (
	// EvidenceTagMarker separates the subject's tag from the kind of
	// evidence; no version, architecture or dated tag contains it.
	EvidenceTagMarker = ".evidence-"
	// EvidenceTagPattern matches every evidence tag and no other tag (ECR
	// wildcard).
	EvidenceTagPattern = "*" + EvidenceTagMarker + "*"
)

// EvidenceTag is the tag of the current evidence of one kind for a subject
// tag: 22-amd64.evidence-sbom, 22.evidence-verdict.
func EvidenceTag(subjectTag, artifactType string) string {
	kind := kinds[artifactType]
	if kind == "" {
		kind = strings.NewReplacer("/", "-", "+", "-", ".", "-").Replace(artifactType)
	}
	return subjectTag + EvidenceTagMarker + kind
}

// TagEvidence points tag at an attached referrer (the manifest is already in
// the repository: no blob moves). Putting the same tag on the same manifest
// again is a no-op for the registry, so a retried Publish can call it.
func TagEvidence(ctx context.Context, repo name.Repository, referrer v1.Descriptor, tag string, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	rd, err := remote.Get(repo.Digest(referrer.Digest.String()), opts...)
	if err != nil {
		return fmt.Errorf("tagging the evidence %s as %s:%s: %w", referrer.Digest, repo, tag, err)
	}
	if err := remote.Tag(repo.Tag(tag), rd, opts...); err != nil {
		return fmt.Errorf("tagging the evidence %s as %s:%s: %w", referrer.Digest, repo, tag, err)
	}
	return nil
}

// RetagEvidence points subjectTag's evidence tags at the evidence attached
// to subject (a rollback moves the moving tags to an earlier image, and its
// evidence becomes the current one). It returns the tags it wrote; none
// when subject has no evidence (published before evidence existed).
func RetagEvidence(ctx context.Context, repo name.Repository, subjectTag string, subject v1.Hash, opts ...remote.Option) ([]string, error) {
	descs, err := List(ctx, repo.Digest(subject.String()), opts...)
	if err != nil {
		return nil, err
	}
	var tags []string
	for _, d := range descs {
		switch d.ArtifactType {
		case ArtifactSBOM, ArtifactProvenance, ArtifactVerdict:
		default:
			continue // another tool's referrer (a signature): not ours to keep
		}
		tag := EvidenceTag(subjectTag, d.ArtifactType)
		if err := TagEvidence(ctx, repo, d, tag, opts...); err != nil {
			return tags, err
		}
		tags = append(tags, tag)
	}
	return tags, nil
}

// Package evidence makes the documents that travel with a published image
// as OCI referrers, and reads them back for `evergreen verify`:
//
//   - an SBOM per per-architecture image (CycloneDX 1.6 JSON), from the
//     inventory Verify took inside the image;
//   - SLSA provenance v1 per image (an in-toto Statement v1);
//   - the publish verdict per runtime-version, attached to the index.
//
// Every document is byte-for-byte reproducible from its inputs: no clock,
// no random serial number, no map-order output. The samples under
// testdata/evidence/ are drift-tested by internal/generate.
package evidence

import (
	"fmt"
	"regexp"
	"time"

	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/internal/referrers"
)

// Artifact types: the OCI artifactType of each referrer manifest, and the
// media type of its one layer.
// The table is internal/referrers', which attaches and checks them.
const (
	ArtifactSBOM       = referrers.ArtifactSBOM
	ArtifactProvenance = referrers.ArtifactProvenance
	ArtifactVerdict    = referrers.ArtifactVerdict
)

// Build types: the SLSA buildType of each builder that runs Build. Each URI
// names a section of docs/evidence.md that says what the external and
// internal parameters mean, as SLSA asks of a build type.
const (
	BuildTypeCodeBuild     = "https://github.com/evergreen-images/evergreen/blob/main/docs/evidence.md#build-type-codebuild-v1"
	BuildTypeGitHubActions = "https://github.com/evergreen-images/evergreen/blob/main/docs/evidence.md#build-type-github-actions-v1"
)

// Image is one published per-architecture image.
type Image struct {
	// Repository is <registry host>/<repository>, as consumers pull it.
	Repository string `json:"repository"`
	// Digest is the image manifest's digest: the subject of its SBOM and
	// provenance.
	Digest  string `json:"digest"`
	Runtime string `json:"runtime"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// Inventory is Verify's: its OS packages (with each one's architecture,
	// OSArch, and the package manager they were read from), runtimes, npm
	// and pip packages, base image, recipe and the OS release (Distro; nil:
	// unknown, and the OS packages' Package URLs then carry no distro).
	Inventory *records.Inventory `json:"inventory"`
}

// Build is how an image was built: the provenance's builder, parameters
// and run.
type Build struct {
	// BuilderID is the CodeBuild project's ARN, or the GitHub workflow's URL.
	BuilderID string `json:"builderId"`
	// BuildType is BuildTypeCodeBuild or BuildTypeGitHubActions.
	BuildType string `json:"buildType"`
	// SourceRepository is where the recipe came from (a git URL, or the S3
	// object of the pipeline's source); SourceRevision is its commit (or
	// the S3 object's version).
	SourceRepository string `json:"sourceRepository"`
	SourceRevision   string `json:"sourceRevision"`
	// Dockerfile is the recipe's path in the source: runtimes/<runtime>/Dockerfile.
	Dockerfile string `json:"dockerfile"`
	// ExecutionID is the pipeline execution (or workflow run); BuildID the
	// one build that pushed the image.
	ExecutionID string    `json:"executionId"`
	BuildID     string    `json:"buildId"`
	StartedOn   time.Time `json:"startedOn"`
	FinishedOn  time.Time `json:"finishedOn"`
}

// Summary is what a document says that `evergreen verify` cross-checks
// (internal/referrers owns the type: the check compares it there).
type Summary = referrers.Summary

// Summary kinds.
const (
	KindSBOM       = referrers.KindSBOM
	KindProvenance = referrers.KindProvenance
	KindVerdict    = referrers.KindVerdict
)

// Read parses a document of one of the artifact types, checks its shape and
// returns what must be cross-checked.
func Read(artifactType string, doc []byte) (Summary, error) {
	switch artifactType {
	case ArtifactSBOM:
		return readSBOM(doc)
	case ArtifactProvenance:
		return readProvenance(doc)
	case ArtifactVerdict:
		return readVerdict(doc)
	}
	return Summary{}, fmt.Errorf("artifact type %q is not evidence this code reads (%s, %s, %s)", artifactType, ArtifactSBOM, ArtifactProvenance, ArtifactVerdict)
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func checkDigest(what, d string) error {
	if !digestPattern.MatchString(d) {
		return fmt.Errorf("%s %q is not a sha256:<64 hex> digest", what, d)
	}
	return nil
}

func (img Image) check() error {
	if err := checkDigest("image "+img.Repository+" "+img.Arch+": digest", img.Digest); err != nil {
		return err
	}
	if img.Repository == "" || img.Runtime == "" || img.Version == "" || img.Arch == "" {
		return fmt.Errorf("image %s: repository %q, runtime %q, version %q and arch %q must all be set", img.Digest, img.Repository, img.Runtime, img.Version, img.Arch)
	}
	if img.Inventory == nil {
		return fmt.Errorf("image %s@%s: no inventory; the SBOM and provenance are made from Verify's inventory of the image", img.Repository, img.Digest)
	}
	if b := img.Inventory.Base; b.Digest != "" {
		if err := checkDigest("image "+img.Digest+": base image "+b.Name+" digest", b.Digest); err != nil {
			return err
		}
	}
	return nil
}

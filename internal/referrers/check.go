package referrers

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The evidence Publish attaches, by artifact type: an SBOM and a provenance
// statement on every per-architecture image, the publish verdict on the
// index. Matched exactly: a referrer of another type (a signature, someone
// else's SBOM format) is not evidence of ours.
const (
	ArtifactSBOM       = "application/vnd.cyclonedx+json"
	ArtifactProvenance = "application/vnd.in-toto+json"
	ArtifactVerdict    = "application/vnd.evergreen.publish-verdict.v1+json"
)

// The kinds of evidence, as Summary.Kind and the evidence tags name them.
const (
	KindSBOM       = "sbom"
	KindProvenance = "provenance"
	KindVerdict    = "verdict"
)

// kinds are the artifact types' kinds.
var kinds = map[string]string{ArtifactSBOM: KindSBOM, ArtifactProvenance: KindProvenance, ArtifactVerdict: KindVerdict}

// Summary is what a document says that the check compares (internal/
// evidence reads the documents into it).
type Summary struct {
	Kind           string // KindSBOM, KindProvenance, KindVerdict
	Subject        string // the digest the document is about (sha256:...)
	SourceRevision string
	// BaseName and BaseDigest: the base image; empty for the verdict.
	BaseName, BaseDigest string
	// Packages is how many components the SBOM lists (the base image among
	// them).
	Packages int
	// Result is the verdict's outcome (records.ResultPublished, ...); Gate
	// the gate's setting and its result ("never-worse: passed").
	Result string
	Gate   string
	// Fixed and Introduced are the verdict's CVE ids, over every
	// architecture, sorted, each once.
	Fixed, Introduced []string
	// Images is the verdict's per-architecture images: arch -> digest.
	Images map[string]string
	// Builder is the provenance's builder id.
	Builder string
}

// ReadFunc parses one document of an artifact type into its Summary (the
// evidence package's Read).
type ReadFunc func(artifactType string, doc []byte) (Summary, error)

// Image is the evidence of one per-architecture image.
type Image struct {
	Digest string
	// Arch is the index's platform architecture for the image (empty when
	// the image was checked on its own).
	Arch             string
	SBOM, Provenance *Summary
}

// Result is what Check found. Problems lists, one line each, the evidence
// that is missing or does not match; none means the check passed.
type Result struct {
	Reference string
	// Index is the index's digest when the reference names one; Verdict
	// its publish verdict.
	Index    string
	Verdict  *Summary
	Images   []Image
	Problems []string
}

// Check resolves ref and checks its evidence: for an index, its verdict and
// every per-architecture child; for each image, an SBOM and a provenance
// statement whose subject is that image, the provenance's source commit and
// base image the SBOM's, and the verdict's image for that architecture and
// its commit the same. An error means the check could not run (the
// registry, the reference); evidence problems are in the Result.
func Check(ctx context.Context, ref name.Reference, read ReadFunc, opts ...remote.Option) (Result, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	res := Result{Reference: ref.String()}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return res, fmt.Errorf("resolving %s: %w", ref, err)
	}
	repo := ref.Context()
	if !desc.MediaType.IsIndex() {
		img := checkImage(ctx, repo, desc.Digest, "", read, opts, &res)
		res.Images = append(res.Images, img)
		return res, nil
	}
	res.Index = desc.Digest.String()
	idx, err := desc.ImageIndex()
	if err != nil {
		return res, fmt.Errorf("reading the index %s: %w", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return res, fmt.Errorf("reading the index %s: %w", ref, err)
	}
	verdicts := documents(ctx, repo, desc.Digest, ArtifactVerdict, "the index "+short(desc.Digest.String()), read, opts, &res)
	if len(verdicts) > 0 {
		res.Verdict = &verdicts[0]
	}
	for _, child := range im.Manifests {
		if !child.MediaType.IsImage() || isAttestation(child) {
			continue
		}
		arch := ""
		if child.Platform != nil {
			arch = child.Platform.Architecture
		}
		img := checkImage(ctx, repo, child.Digest, arch, read, opts, &res)
		res.Images = append(res.Images, img)
		for _, v := range verdicts {
			if got := v.Images[arch]; got != child.Digest.String() {
				res.problem("the verdict names %s for %s, the index has %s", orNone(got), arch, child.Digest)
			}
			if img.SBOM != nil && v.SourceRevision != img.SBOM.SourceRevision {
				res.problem("the verdict's commit %s differs from the %s SBOM's %s", orNone(v.SourceRevision), arch, orNone(img.SBOM.SourceRevision))
			}
		}
	}
	for _, v := range verdicts {
		for _, arch := range slices.Sorted(maps.Keys(v.Images)) {
			if !slices.ContainsFunc(res.Images, func(i Image) bool { return i.Arch == arch }) {
				res.problem("the verdict names a %s image %s that the index does not have", arch, v.Images[arch])
			}
		}
	}
	return res, nil
}

// isAttestation: BuildKit's attestation manifests sit in the index as
// images of platform unknown/unknown; they are not images to check.
func isAttestation(d v1.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

func checkImage(ctx context.Context, repo name.Repository, digest v1.Hash, arch string, read ReadFunc, opts []remote.Option, res *Result) Image {
	img := Image{Digest: digest.String(), Arch: arch}
	what := "the image " + short(digest.String())
	if arch != "" {
		what = "the " + arch + " image " + short(digest.String())
	}
	sboms := documents(ctx, repo, digest, ArtifactSBOM, what, read, opts, res)
	provs := documents(ctx, repo, digest, ArtifactProvenance, what, read, opts, res)
	if len(sboms) > 0 {
		img.SBOM = &sboms[0]
	}
	if len(provs) > 0 {
		img.Provenance = &provs[0]
	}
	for _, s := range sboms {
		for _, p := range provs {
			if p.SourceRevision != s.SourceRevision {
				res.problem("%s: the provenance's commit %s differs from the SBOM's %s", what, orNone(p.SourceRevision), orNone(s.SourceRevision))
			}
			if p.BaseDigest != s.BaseDigest {
				res.problem("%s: the provenance's base image %s differs from the SBOM's %s", what, orNone(p.BaseDigest), orNone(s.BaseDigest))
			}
		}
	}
	return img
}

// documents fetches and reads every referrer of subject with the artifact
// type, and checks that each names subject as its own. Those that pass are
// returned; the rest, and none at all, are problems.
func documents(ctx context.Context, repo name.Repository, subject v1.Hash, artifactType, what string, read ReadFunc, opts []remote.Option, res *Result) []Summary {
	kind := kindName(artifactType)
	list, err := List(ctx, repo.Digest(subject.String()), opts...)
	if err != nil {
		res.problem("%s: %v", what, err)
		return nil
	}
	var out []Summary
	for _, d := range list {
		if d.ArtifactType == "" {
			// Only once per subject, not once per artifact type.
			if artifactType == ArtifactSBOM || artifactType == ArtifactVerdict {
				res.problem("%s: the referrer %s is listed but cannot be read (deleted?)", what, d.Digest)
			}
			continue
		}
		if d.ArtifactType != artifactType {
			continue
		}
		r, err := Fetch(ctx, repo, d, opts...)
		if err != nil {
			res.problem("%s: its %s %s: %v", what, kind, d.Digest, err)
			continue
		}
		if r.Manifest.Subject == nil || r.Manifest.Subject.Digest != subject {
			res.problem("%s: its %s %s has another subject in its manifest", what, kind, d.Digest)
			continue
		}
		s, err := read(artifactType, r.Doc)
		if err != nil {
			res.problem("%s: its %s %s cannot be read: %v", what, kind, d.Digest, err)
			continue
		}
		if got := digestOf(s.Subject); got != subject.String() {
			res.problem("%s: its %s %s describes %s, not this image", what, kind, d.Digest, orNone(s.Subject))
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		// Also when one is listed but gone: a registry that keeps the
		// referrers tag schema's index lists a deleted referrer still.
		res.problem("%s: no %s (%s) attached", what, kind, artifactType)
	}
	return out
}

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// digestOf takes the digest of a subject written as a digest or as
// name@digest.
func digestOf(subject string) string {
	if i := strings.LastIndex(subject, "@"); i >= 0 {
		return subject[i+1:]
	}
	return subject
}

func kindName(artifactType string) string {
	switch artifactType {
	case ArtifactSBOM:
		return "SBOM"
	case ArtifactProvenance:
		return "provenance"
	case ArtifactVerdict:
		return "publish verdict"
	}
	return artifactType
}

func short(digest string) string {
	if _, hex, ok := strings.Cut(digest, ":"); ok && len(hex) > 12 {
		return digest[:len(digest)-len(hex)] + hex[:12]
	}
	return digest
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Print writes the summary: a line per image (packages, base, commit,
// builder) and one for the index (the gate's result, the CVEs fixed), then
// the problems.
func (r Result) Print(w io.Writer) {
	for _, img := range r.Images {
		label := img.Arch
		if label == "" {
			label = "image"
		}
		fmt.Fprintf(w, "%s %s\n", label, img.Digest)
		if s := img.SBOM; s != nil {
			fmt.Fprintf(w, "  sbom        %d packages, base %s@%s, commit %s\n", s.Packages, orNone(s.BaseName), orNone(s.BaseDigest), orNone(s.SourceRevision))
		}
		if p := img.Provenance; p != nil {
			fmt.Fprintf(w, "  provenance  builder %s, commit %s\n", orNone(p.Builder), orNone(p.SourceRevision))
		}
	}
	if r.Index != "" {
		fmt.Fprintf(w, "index %s\n", r.Index)
		if v := r.Verdict; v != nil {
			fixed := "none"
			if len(v.Fixed) > 0 {
				fixed = strings.Join(v.Fixed, ", ")
			}
			fmt.Fprintf(w, "  verdict     gate %s: %s; fixed %s\n", orNone(v.Gate), orNone(v.Result), fixed)
			if len(v.Introduced) > 0 {
				fmt.Fprintf(w, "  introduced  %s\n", strings.Join(v.Introduced, ", "))
			}
		}
	} else {
		fmt.Fprintln(w, "(an image on its own: the publish verdict is attached to the multi-architecture index; verify the index's tag or digest to check it)")
	}
}

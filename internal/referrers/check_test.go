package referrers_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/internal/referrers"
)

// The documents here are Summaries as JSON, read back by readSummary: the
// check compares what the evidence package reads out of the real formats.
func readSummary(_ string, doc []byte) (referrers.Summary, error) {
	var s referrers.Summary
	err := json.Unmarshal(doc, &s)
	return s, err
}

func docOf(t *testing.T, s referrers.Summary) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// published is a multi-architecture release as Publish leaves it: an index
// of one image per architecture, each with its SBOM and provenance, and the
// verdict on the index.
type published struct {
	repo     name.Repository
	index    v1.Descriptor
	images   map[string]v1.Descriptor // by architecture
	attached map[string]v1.Descriptor // "<arch> <artifact type>" and "index verdict"
}

const (
	commit = "0123456789abcdef0123456789abcdef01234567"
	base   = "sha256:" + "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
)

func publish(t *testing.T, host string, archs []string) published {
	t.Helper()
	ctx := context.Background()
	repo, err := name.NewRepository(host + "/evergreen-node")
	if err != nil {
		t.Fatal(err)
	}
	p := published{repo: repo, images: map[string]v1.Descriptor{}, attached: map[string]v1.Descriptor{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range archs {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		d, _ := img.Digest()
		raw, _ := img.RawManifest()
		p.images[arch] = v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: int64(len(raw))}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	if err := remote.WriteIndex(repo.Tag("22"), idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	raw, _ := idx.RawManifest()
	p.index = v1.Descriptor{MediaType: types.OCIImageIndex, Digest: d, Size: int64(len(raw))}
	images := map[string]string{}
	for _, arch := range archs {
		sub := p.images[arch]
		images[arch] = sub.Digest.String()
		p.attach(t, ctx, arch+" sbom", sub, referrers.ArtifactSBOM, referrers.Summary{Kind: "sbom", Subject: sub.Digest.String(), SourceRevision: commit,
			BaseName: "public.ecr.aws/docker/library/node:22-trixie-slim", BaseDigest: base, Packages: 412})
		p.attach(t, ctx, arch+" provenance", sub, referrers.ArtifactProvenance, referrers.Summary{Kind: "provenance", Subject: sub.Digest.String(), SourceRevision: commit,
			BaseDigest: base, Builder: "arn:aws:codebuild:eu-west-1:111122223333:project/images-build"})
	}
	p.attach(t, ctx, "index verdict", p.index, referrers.ArtifactVerdict, referrers.Summary{Kind: "verdict", Subject: p.index.Digest.String(), SourceRevision: commit,
		Result: "published", Gate: "never-worse", Fixed: []string{"CVE-2026-0001"}, Images: images})
	return p
}

func (p published) attach(t *testing.T, ctx context.Context, key string, subject v1.Descriptor, artifactType string, s referrers.Summary) {
	t.Helper()
	d, err := referrers.Attach(ctx, p.repo, subject, artifactType, docOf(t, s), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.attached[key] = d
}

func check(t *testing.T, ref string) referrers.Result {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	res, err := referrers.Check(context.Background(), r, readSummary)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var architectures = []string{"amd64", "arm64"}

func TestAPublishedReleasePassesByTagAndByDigest(t *testing.T) {
	for _, c := range []struct {
		registry string
		host     func(*testing.T) string
	}{{"Referrers API", withAPI}, {"referrers tag fallback", fallbackOnly}} {
		t.Run(c.registry, func(t *testing.T) {
			p := publish(t, c.host(t), architectures)
			for _, ref := range []string{p.repo.Tag("22").String(), p.repo.Digest(p.index.Digest.String()).String()} {
				res := check(t, ref)
				if len(res.Problems) > 0 {
					t.Errorf("%s: problems %q", ref, res.Problems)
				}
				if res.Index != p.index.Digest.String() || res.Verdict == nil || len(res.Images) != len(architectures) {
					t.Errorf("%s: index %s, verdict %v, %d images", ref, res.Index, res.Verdict, len(res.Images))
				}
				for _, img := range res.Images {
					if img.SBOM == nil || img.Provenance == nil || img.Digest != p.images[img.Arch].Digest.String() {
						t.Errorf("%s: %s image %s lacks its evidence", ref, img.Arch, img.Digest)
					}
				}
			}
		})
	}
}

func TestARemovedSBOMIsAProblemNamingTheImage(t *testing.T) {
	for _, c := range []struct {
		registry string
		host     func(*testing.T) string
	}{{"Referrers API", withAPI}, {"referrers tag fallback", fallbackOnly}} {
		t.Run(c.registry, func(t *testing.T) {
			p := publish(t, c.host(t), architectures)
			sbom := p.attached["arm64 sbom"]
			if err := remote.Delete(p.repo.Digest(sbom.Digest.String())); err != nil {
				t.Fatal(err)
			}
			res := check(t, p.repo.Tag("22").String())
			want := "the arm64 image " + short(p.images["arm64"].Digest.String()) + ": no SBOM (" + referrers.ArtifactSBOM + ") attached"
			if !slices.Contains(res.Problems, want) {
				t.Errorf("problems %q, want %q", res.Problems, want)
			}
			for _, pr := range res.Problems {
				if strings.Contains(pr, "amd64") {
					t.Errorf("the amd64 image's evidence is intact, yet: %s", pr)
				}
			}
		})
	}
}

func TestADocumentAboutAnotherImageIsAProblem(t *testing.T) {
	p := publish(t, withAPI(t), architectures)
	amd, arm := p.images["amd64"], p.images["arm64"]
	// A provenance statement attached to the amd64 image that describes the
	// arm64 one (a copy-paste in a pipeline, or a swap).
	p.attach(t, context.Background(), "amd64 wrong provenance", amd, referrers.ArtifactProvenance, referrers.Summary{
		Kind: "provenance", Subject: arm.Digest.String(), SourceRevision: commit, BaseDigest: base})
	res := check(t, p.repo.Tag("22").String())
	want := "the amd64 image " + short(amd.Digest.String()) + ": its provenance " + p.attached["amd64 wrong provenance"].Digest.String() + " describes " + arm.Digest.String() + ", not this image"
	if !slices.Contains(res.Problems, want) {
		t.Errorf("problems %q, want %q", res.Problems, want)
	}
}

func TestAProvenanceFromAnotherCommitOrBaseIsAProblem(t *testing.T) {
	p := publish(t, withAPI(t), []string{"amd64"})
	amd := p.images["amd64"]
	p.attach(t, context.Background(), "amd64 other provenance", amd, referrers.ArtifactProvenance, referrers.Summary{
		Kind: "provenance", Subject: amd.Digest.String(), SourceRevision: strings.Repeat("f", 40), BaseDigest: "sha256:" + strings.Repeat("c", 64)})
	res := check(t, p.repo.Tag("22").String())
	var commits, bases int
	for _, pr := range res.Problems {
		commits += strings.Count(pr, "the provenance's commit")
		bases += strings.Count(pr, "the provenance's base image")
	}
	if commits != 1 || bases != 1 {
		t.Errorf("problems %q, want one commit and one base mismatch", res.Problems)
	}
}

func TestAVerdictThatNamesOtherImagesIsAProblem(t *testing.T) {
	p := publish(t, withAPI(t), architectures)
	if err := remote.Delete(p.repo.Digest(p.attached["index verdict"].Digest.String())); err != nil {
		t.Fatal(err)
	}
	p.attach(t, context.Background(), "index stale verdict", p.index, referrers.ArtifactVerdict, referrers.Summary{
		Kind: "verdict", Subject: p.index.Digest.String(), SourceRevision: commit,
		Images: map[string]string{"amd64": p.images["amd64"].Digest.String(), "arm64": "sha256:" + strings.Repeat("d", 64), "s390x": "sha256:" + strings.Repeat("e", 64)}})
	res := check(t, p.repo.Tag("22").String())
	for _, want := range []string{
		"the verdict names sha256:" + strings.Repeat("d", 64) + " for arm64, the index has " + p.images["arm64"].Digest.String(),
		"the verdict names a s390x image sha256:" + strings.Repeat("e", 64) + " that the index does not have",
	} {
		if !slices.Contains(res.Problems, want) {
			t.Errorf("problems %q, want %q", res.Problems, want)
		}
	}
}

func TestAnImageOnItsOwnIsCheckedWithoutAVerdict(t *testing.T) {
	p := publish(t, withAPI(t), architectures)
	res := check(t, p.repo.Digest(p.images["amd64"].Digest.String()).String())
	if len(res.Problems) > 0 || res.Index != "" || len(res.Images) != 1 || res.Images[0].SBOM == nil {
		t.Errorf("result %+v, want the image's SBOM and provenance and no problem", res)
	}
}

func short(d string) string { return d[:len("sha256:")+12] }

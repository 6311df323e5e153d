package main

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/internal/referrers"
)

// The documents of these tests are Summaries as JSON: what is under test
// is the command (resolving, listing, the exit status and its lines);
// internal/referrers and internal/evidence test the formats.
func summariesAsJSON(t *testing.T) {
	t.Helper()
	old := readEvidence
	readEvidence = func(_ string, doc []byte) (referrers.Summary, error) {
		var s referrers.Summary
		return s, json.Unmarshal(doc, &s)
	}
	t.Cleanup(func() { readEvidence = old })
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no one's docker login
}

type release struct {
	repo   name.Repository
	images map[string]v1.Hash
	sboms  map[string]v1.Hash
}

// publishRelease pushes an index of two images to an in-memory registry
// with the Referrers API, and attaches what Publish attaches.
func publishRelease(t *testing.T, subjectOf func(arch string, image v1.Hash) string) release {
	t.Helper()
	ctx := context.Background()
	s := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(s.URL, "http://") + "/evergreen-node")
	if err != nil {
		t.Fatal(err)
	}
	r := release{repo: repo, images: map[string]v1.Hash{}, sboms: map[string]v1.Hash{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	descs := map[string]v1.Descriptor{}
	archs := []string{"amd64", "arm64"}
	for _, arch := range archs {
		img, _ := random.Image(256, 1)
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		d, _ := img.Digest()
		raw, _ := img.RawManifest()
		r.images[arch] = d
		descs[arch] = v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: int64(len(raw))}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	if err := remote.WriteIndex(repo.Tag("22"), idx); err != nil {
		t.Fatal(err)
	}
	attach := func(subject v1.Descriptor, artifactType string, s referrers.Summary) v1.Hash {
		doc, _ := json.Marshal(s)
		d, err := referrers.Attach(ctx, repo, subject, artifactType, doc, nil)
		if err != nil {
			t.Fatal(err)
		}
		return d.Digest
	}
	const commit, base = "0123456789abcdef0123456789abcdef01234567", "sha256:b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
	images := map[string]string{}
	for _, arch := range archs {
		images[arch] = r.images[arch].String()
		r.sboms[arch] = attach(descs[arch], referrers.ArtifactSBOM, referrers.Summary{Subject: subjectOf(arch, r.images[arch]), SourceRevision: commit, BaseName: "node:22-trixie-slim", BaseDigest: base, Packages: 412})
		attach(descs[arch], referrers.ArtifactProvenance, referrers.Summary{Subject: r.images[arch].String(), SourceRevision: commit, BaseDigest: base, Builder: "images-build"})
	}
	d, _ := idx.Digest()
	raw, _ := idx.RawManifest()
	attach(v1.Descriptor{MediaType: types.OCIImageIndex, Digest: d, Size: int64(len(raw))}, referrers.ArtifactVerdict,
		referrers.Summary{Subject: d.String(), SourceRevision: commit, Result: "published", Gate: "never-worse: passed", Fixed: []string{"CVE-2026-0001"}, Images: images})
	return r
}

func ownDigest(_ string, image v1.Hash) string { return image.String() }

func TestVerifyPassesOnAPublishedRelease(t *testing.T) {
	noAWS(t)
	summariesAsJSON(t)
	r := publishRelease(t, ownDigest)
	code, stdout, stderr := evergreen(t, "verify", r.repo.Tag("22").String())
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"amd64 " + r.images["amd64"].String(), "412 packages", "builder images-build", "gate never-worse: passed: published; fixed CVE-2026-0001", "matches"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestVerifyFailsNamingARemovedSBOM(t *testing.T) {
	noAWS(t)
	summariesAsJSON(t)
	r := publishRelease(t, ownDigest)
	if err := remote.Delete(r.repo.Digest(r.sboms["arm64"].String())); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := evergreen(t, "verify", r.repo.Tag("22").String())
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "evergreen verify: the arm64 image " + r.images["arm64"].String()[:len("sha256:")+12] + ": no SBOM (" + referrers.ArtifactSBOM + ") attached\n"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q, want the line %q", stderr, want)
	}
}

func TestVerifyFailsOnADocumentAboutAnotherImage(t *testing.T) {
	noAWS(t)
	summariesAsJSON(t)
	var other v1.Hash
	r := publishRelease(t, func(arch string, image v1.Hash) string {
		if arch == "amd64" {
			other = image
			return image.String()
		}
		return other.String() // the arm64 SBOM describes the amd64 image
	})
	code, _, stderr := evergreen(t, "verify", r.repo.Digest(r.images["arm64"].String()).String())
	if code != 1 || !strings.Contains(stderr, "describes "+r.images["amd64"].String()+", not this image") {
		t.Errorf("exit %d, stderr %q: want 1 and the SBOM named as describing the amd64 image", code, stderr)
	}
}

func TestVerifyWithoutAnImageOrWithTwoIsAWrongCommandLine(t *testing.T) {
	noAWS(t)
	for _, args := range [][]string{{"verify"}, {"verify", "a:1", "b:2"}, {"verify", "Not An Image"}} {
		code, stdout, stderr := evergreen(t, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "usage: evergreen verify") {
			t.Errorf("evergreen %s: exit %d, stdout %q, stderr %q; want 2 and the usage", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

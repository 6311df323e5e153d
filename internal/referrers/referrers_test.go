package referrers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/internal/referrers"
)

// withAPI is go-containerregistry's in-memory registry with the OCI 1.1
// Referrers API, as ECR serves it.
func withAPI(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// fallbackOnly is a registry without the Referrers API, as distribution 2.8
// (the rehearsal's registry) is: GET /v2/<name>/referrers/<digest> is 404.
func fallbackOnly(t *testing.T) string {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") {
			http.Error(w, `{"errors":[{"code":"NOT_FOUND"}]}`, http.StatusNotFound)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// pushImage pushes a random image and returns its repository and descriptor.
func pushImage(t *testing.T, host string) (name.Repository, v1.Descriptor) {
	t.Helper()
	repo, err := name.NewRepository(host + "/evergreen-node")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if err := remote.Write(repo.Digest(d.String()), img); err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	return repo, v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}
}

func TestAttachingTheSameDocumentTwiceAddsOneReferrer(t *testing.T) {
	for _, c := range []struct {
		registry string
		host     func(*testing.T) string
	}{{"Referrers API", withAPI}, {"referrers tag fallback", fallbackOnly}} {
		t.Run(c.registry, func(t *testing.T) {
			ctx := context.Background()
			repo, subject := pushImage(t, c.host(t))
			doc := []byte(`{"bomFormat":"CycloneDX"}`)
			ann := map[string]string{"org.opencontainers.image.created": "2026-11-26T04:00:00Z"}
			first, err := referrers.Attach(ctx, repo, subject, referrers.ArtifactSBOM, doc, ann)
			if err != nil {
				t.Fatal(err)
			}
			again, err := referrers.Attach(ctx, repo, subject, referrers.ArtifactSBOM, doc, ann)
			if err != nil {
				t.Fatal(err)
			}
			if first.Digest != again.Digest {
				t.Errorf("the same document attached twice has digests %s and %s", first.Digest, again.Digest)
			}
			list, err := referrers.List(ctx, repo.Digest(subject.Digest.String()))
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Digest != first.Digest || list[0].ArtifactType != referrers.ArtifactSBOM {
				t.Fatalf("referrers %+v, want the one SBOM %s", list, first.Digest)
			}
			r, err := referrers.Fetch(ctx, repo, list[0])
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Doc) != string(doc) || r.Manifest.Subject.Digest != subject.Digest {
				t.Errorf("fetched %q with subject %v, want %q on %s", r.Doc, r.Manifest.Subject, doc, subject.Digest)
			}
		})
	}
}

func TestWithoutTheReferrersAPIThePushMaintainsTheFallbackTag(t *testing.T) {
	ctx := context.Background()
	repo, subject := pushImage(t, fallbackOnly(t))
	var attached []v1.Hash
	for _, at := range []string{referrers.ArtifactSBOM, referrers.ArtifactProvenance} {
		d, err := referrers.Attach(ctx, repo, subject, at, []byte(`{"type":"`+at+`"}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		attached = append(attached, d.Digest)
	}
	// The referrers tag schema: an index tagged <alg>-<hex> of the subject.
	tag := repo.Tag(strings.Replace(subject.Digest.String(), ":", "-", 1))
	idx, err := remote.Index(tag)
	if err != nil {
		t.Fatalf("no fallback index under %s: %v", tag, err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != len(attached) {
		t.Fatalf("the fallback index lists %d referrers, want %d", len(im.Manifests), len(attached))
	}
	for _, d := range im.Manifests {
		if d.ArtifactType != referrers.ArtifactSBOM && d.ArtifactType != referrers.ArtifactProvenance {
			t.Errorf("the fallback index gives %s the artifact type %q", d.Digest, d.ArtifactType)
		}
	}
}

func TestTheReferrerManifestIsAnOCIArtifactWithTheEmptyConfig(t *testing.T) {
	subject := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}, Size: 1234,
		Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}
	doc := []byte(`{"verdict":"published"}`)
	raw, err := referrers.Manifest(subject, referrers.ArtifactVerdict, doc, map[string]string{"b": "2", "a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.ArtifactType != referrers.ArtifactVerdict {
		t.Errorf("media type %s, artifact type %s", m.MediaType, m.ArtifactType)
	}
	if m.Config.MediaType != types.OCIEmptyJSON || m.Config.Size != 2 {
		t.Errorf("config %+v, want the empty descriptor of {}", m.Config)
	}
	if len(m.Layers) != 1 || string(m.Layers[0].MediaType) != referrers.ArtifactVerdict || m.Layers[0].Size != int64(len(doc)) {
		t.Errorf("layers %+v, want the document as the one layer", m.Layers)
	}
	if m.Subject == nil || m.Subject.Digest != subject.Digest || m.Subject.Platform != nil {
		t.Errorf("subject %+v, want the subject's digest, media type and size only", m.Subject)
	}
	again, _ := referrers.Manifest(subject, referrers.ArtifactVerdict, doc, map[string]string{"a": "1", "b": "2"})
	if string(again) != string(raw) {
		t.Errorf("the same inputs give other bytes:\n%s\n%s", raw, again)
	}
	t.Logf("referrer manifest: %d bytes (with two annotations)", len(raw))
	plain, _ := referrers.Manifest(subject, referrers.ArtifactSBOM, doc, map[string]string{"org.opencontainers.image.created": "2026-11-26T04:00:00Z"})
	t.Logf("referrer manifest: %d bytes (with org.opencontainers.image.created)", len(plain))
}

func TestAttachCostsAFewMillisecondsAgainstALocalRegistry(t *testing.T) {
	ctx := context.Background()
	repo, subject := pushImage(t, withAPI(t))
	doc := []byte(strings.Repeat("x", 200_000)) // an SBOM's order of size
	const n = 20
	start := time.Now()
	for i := range n {
		if _, err := referrers.Attach(ctx, repo, subject, referrers.ArtifactSBOM, append(doc, byte(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Attach against pkg/registry: %.1f ms each (%d attaches of a 200 KB document)", float64(time.Since(start).Microseconds())/1000/n, n)
}

type fakeTokens struct {
	token string
	err   error
}

func (f fakeTokens) GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []ecrtypes.AuthorizationData{{AuthorizationToken: aws.String(f.token)}}}, nil
}

func TestTheECRLoginIsTheTokensUserAndPassword(t *testing.T) {
	password := "eyJwYXlsb2FkIjoi" + strings.Repeat("p", 40)
	a, err := referrers.ECRAuthenticator(context.Background(), fakeTokens{token: base64.StdEncoding.EncodeToString([]byte("AWS:" + password))})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Username != "AWS" || cfg.Password != password {
		t.Errorf("login %s:%s, want AWS and the token's password", cfg.Username, cfg.Password)
	}
	for _, bad := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte("no-colon"))} {
		if _, err := referrers.ECRAuthenticator(context.Background(), fakeTokens{token: bad}); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}

func TestECRHostsAreRecognisedInEveryPartition(t *testing.T) {
	for host, want := range map[string]string{
		"111122223333.dkr.ecr.eu-west-1.amazonaws.com":          "eu-west-1",
		"111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn":      "cn-north-1",
		"111122223333.dkr.ecr-fips.us-gov-west-1.amazonaws.com": "us-gov-west-1",
	} {
		if got, ok := referrers.ECRRegion(host); !ok || got != want {
			t.Errorf("%s: region %q %v, want %s", host, got, ok, want)
		}
	}
	for _, host := range []string{"public.ecr.aws", "ghcr.io", "localhost:5000", "111122223333.dkr.ecr.eu-west-1.amazonaws.com.evil.example"} {
		if _, ok := referrers.ECRRegion(host); ok {
			t.Errorf("%s taken for a private ECR registry", host)
		}
	}
}

func TestEvidenceTagsMatchTheirPatternAndNoImageTag(t *testing.T) {
	for _, c := range []struct{ subject, artifactType, want string }{
		{"22-amd64", referrers.ArtifactSBOM, "22-amd64.evidence-sbom"},
		{"3.13-arm64", referrers.ArtifactProvenance, "3.13-arm64.evidence-provenance"},
		{"22", referrers.ArtifactVerdict, "22.evidence-verdict"},
	} {
		got := referrers.EvidenceTag(c.subject, c.artifactType)
		if got != c.want {
			t.Errorf("EvidenceTag(%s, %s) = %s, want %s", c.subject, c.artifactType, got, c.want)
		}
		if ok, _ := path.Match(referrers.EvidenceTagPattern, got); !ok {
			t.Errorf("%s does not match %s", got, referrers.EvidenceTagPattern)
		}
		if ok, _ := path.Match(referrers.EvidenceTagPattern, c.subject); ok {
			t.Errorf("the image tag %s matches the evidence pattern", c.subject)
		}
	}
	for _, image := range []string{"3.13", "3.13-r20261126-0a1b2c3d", "draft-3.13-amd64-11111111-0000-4000-8000-000000000000"} {
		if ok, _ := path.Match(referrers.EvidenceTagPattern, image); ok {
			t.Errorf("the image tag %s matches the evidence pattern", image)
		}
	}
}

func TestTaggingEvidenceMovesTheTagToTheNewReferrer(t *testing.T) {
	ctx := context.Background()
	repo, subject := pushImage(t, withAPI(t))
	tag := referrers.EvidenceTag("22-amd64", referrers.ArtifactSBOM)
	var last v1.Descriptor
	for _, doc := range []string{`{"serial":1}`, `{"serial":2}`} {
		d, err := referrers.Attach(ctx, repo, subject, referrers.ArtifactSBOM, []byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := referrers.TagEvidence(ctx, repo, d, tag); err != nil {
			t.Fatal(err)
		}
		last = d
	}
	got, err := remote.Head(repo.Tag(tag))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != last.Digest {
		t.Errorf("%s points at %s, want the newest evidence %s", tag, got.Digest, last.Digest)
	}
	if err := referrers.TagEvidence(ctx, repo, last, tag); err != nil {
		t.Errorf("tagging again: %v", err)
	}
}

// Two Publish runs attaching to one subject at once race on the referrers
// tag schema's index; the registry refuses the loser's write. Attach puts
// again, and the index lists the referrer.
func TestAttachRetriesWhenTheReferrersIndexWriteIsRefused(t *testing.T) {
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var refused atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/referrers/"):
			http.Error(w, `{"errors":[{"code":"NOT_FOUND"}]}`, http.StatusNotFound)
			return
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-") && refused.Add(1) == 1:
			// What distribution 2.8 answered the loser in the rehearsal.
			http.Error(w, `{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}`, http.StatusBadRequest)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	repo, subject := pushImage(t, host)
	ctx := context.Background()
	d, err := referrers.Attach(ctx, repo, subject, referrers.ArtifactSBOM, []byte(`{"bomFormat":"CycloneDX"}`), nil)
	if err != nil {
		t.Fatalf("Attach after one refused index write: %v", err)
	}
	if refused.Load() < 2 {
		t.Fatalf("the index write was tried %d times, want a retry", refused.Load())
	}
	list, err := referrers.List(ctx, repo.Digest(subject.Digest.String()))
	if err != nil || len(list) != 1 || list[0].Digest != d.Digest {
		t.Errorf("referrers %v (%v), want the one attached %s", list, err, d.Digest)
	}
}

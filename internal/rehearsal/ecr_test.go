package rehearsal

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// distributionDelete makes go-containerregistry's in-process registry delete
// a manifest by digest the way distribution 2.8 (the rehearsal's registry)
// does: with every tag that points at it.
func distributionDelete(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodDelete && strings.Contains(req.URL.Path, "/manifests/sha256:") {
			path := req.URL.Path
			repo := strings.TrimPrefix(path[:strings.Index(path, "/manifests/")], "/v2/")
			digest := path[strings.LastIndex(path, "/")+1:]
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/tags/list", nil))
			var tl struct{ Tags []string }
			json.Unmarshal(rr.Body.Bytes(), &tl)
			for _, t := range tl.Tags {
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, httptest.NewRequest(http.MethodHead, "/v2/"+repo+"/manifests/"+t, nil))
				if rr.Header().Get("Docker-Content-Digest") == digest {
					h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, "/v2/"+repo+"/manifests/"+t, nil))
				}
			}
		}
		h.ServeHTTP(w, req)
	})
}

type fixture struct {
	t   *testing.T
	ecr *ECR
	reg string
}

func newFixture(t *testing.T) *fixture {
	srv := httptest.NewServer(distributionDelete(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(srv.Close)
	state := t.TempDir()
	cfg := &StandInConfig{
		Registry: strings.TrimPrefix(srv.URL, "http://"), Account: "111122223333", Region: "eu-west-1", StateDir: state,
		Repositories: []Repository{{Name: "node", Mutability: "MUTABLE_WITH_EXCLUSION", Exclusions: []string{"*-r20*"}}},
	}
	return &fixture{t, &ECR{Cfg: cfg, Now: func() time.Time { return time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC) }}, cfg.Registry}
}

// aws runs the stand-in and returns stdout and the exit status.
func (f *fixture) aws(args ...string) (string, int, string) {
	var out bytes.Buffer
	err := f.ecr.RunAWS(args, &out)
	var ce *CLIError
	switch {
	case err == nil:
		return out.String(), 0, ""
	case errors.As(err, &ce):
		return out.String(), ce.Status, ce.Message
	}
	f.t.Fatalf("aws %v: %v", args, err)
	return "", 0, ""
}

func (f *fixture) push(repo, tag string) string {
	img, err := random.Image(64, 2)
	if err != nil {
		f.t.Fatal(err)
	}
	ref, _ := name.NewTag(f.reg+"/"+repo+":"+tag, name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		f.t.Fatal(err)
	}
	d, _ := img.Digest()
	f.ecr.Cfg.RecordPush(repo, d.String(), time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC))
	return d.String()
}

func (f *fixture) digestOf(tag string) string {
	out, st, msg := f.aws("ecr", "describe-images", "--repository-name", "node", "--image-ids", "imageTag="+tag, "--query", "imageDetails[0].imageDigest", "--output", "text")
	if st != 0 {
		return "missing: " + msg
	}
	return strings.TrimSpace(out)
}

func TestECRStandIn(t *testing.T) {
	f := newFixture(t)
	amd := f.push("node", "draft-22-amd64-x")
	arm := f.push("node", "draft-22-arm64-x")

	// describe-images: media type and push time, as the commands query them.
	out, st, _ := f.aws("ecr", "describe-images", "--repository-name", "node", "--image-ids", "imageTag=draft-22-amd64-x",
		"--query", "imageDetails[0].imageManifestMediaType", "--output", "text")
	if st != 0 || strings.TrimSpace(out) != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Fatalf("media type: %d %q", st, out)
	}
	out, _, _ = f.aws("ecr", "describe-images", "--repository-name", "node", "--image-ids", "imageTag=draft-22-amd64-x",
		"--query", "imageDetails[0].imagePushedAt", "--output", "text")
	if !strings.HasPrefix(out, "2026-11-25T22:00:00") {
		t.Fatalf("pushed at: %q", out)
	}
	if _, st, msg := f.aws("ecr", "describe-images", "--repository-name", "node", "--image-ids", "imageTag=nope"); st != 254 || !strings.Contains(msg, "ImageNotFoundException") {
		t.Fatalf("describe a missing tag: %d %s", st, msg)
	}
	if _, st, msg := f.aws("ecr", "describe-images", "--repository-name", "nope", "--image-ids", "imageTag=x"); st != 254 || !strings.Contains(msg, "RepositoryNotFoundException") {
		t.Fatalf("unknown repository: %d %s", st, msg)
	}
	if _, st, _ := f.aws("ecr", "describe-images", "--repository-name", "node", "--image-idz", "imageTag=x"); st != 252 {
		t.Fatalf("unknown option: %d", st)
	}

	// batch-get-image, then put-image under a new tag: a retag.
	out, st, _ = f.aws("ecr", "batch-get-image", "--repository-name", "node", "--image-ids", "imageTag=draft-22-amd64-x",
		"--accepted-media-types", "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json", "--output", "json")
	var got struct {
		Images []struct {
			ImageManifest          string
			ImageManifestMediaType string
			ImageID                struct{ ImageDigest string } `json:"imageId"`
		}
	}
	if st != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Images) != 1 || got.Images[0].ImageID.ImageDigest != amd {
		t.Fatalf("batch-get-image: %d %s", st, out)
	}
	dir := t.TempDir()
	mf := filepath.Join(dir, "m")
	os.WriteFile(mf, []byte(got.Images[0].ImageManifest), 0o644)
	put := func(tag, mt, file string) (int, string) {
		_, st, msg := f.aws("ecr", "put-image", "--repository-name", "node", "--image-tag", tag, "--image-manifest-media-type", mt, "--image-manifest", "file://"+file)
		return st, msg
	}
	if st, msg := put("22-amd64", got.Images[0].ImageManifestMediaType, mf); st != 0 {
		t.Fatalf("put-image: %d %s", st, msg)
	}
	if st, msg := put("22-amd64", got.Images[0].ImageManifestMediaType, mf); st != 254 || !strings.Contains(msg, "ImageAlreadyExistsException") {
		t.Fatalf("put-image again: want ImageAlreadyExistsException (254), got %d %s", st, msg)
	}
	if st, msg := put("22-amd64", "application/vnd.oci.image.manifest.v1+json", mf); st != 254 || !strings.Contains(msg, "InvalidParameterException") {
		t.Fatalf("put-image with a media type the manifest contradicts: %d %s", st, msg)
	}

	// An index of both, under a dated (immutable) tag.
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"` + amd + `","size":1,"platform":{"architecture":"amd64","os":"linux"}},` +
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"` + arm + `","size":1,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}`
	ixf := filepath.Join(dir, "ix")
	os.WriteFile(ixf, []byte(index), 0o644)
	if st, msg := put("22-r20261125-abcdef12", "application/vnd.oci.image.index.v1+json", ixf); st != 0 {
		t.Fatalf("put the index: %d %s", st, msg)
	}
	if st, msg := put("22-r20261125-abcdef12", "application/vnd.docker.distribution.manifest.v2+json", mf); st != 254 || !strings.Contains(msg, "ImageTagAlreadyExistsException") {
		t.Fatalf("moving an immutable dated tag: %d %s", st, msg)
	}
	if st, msg := put("22", "application/vnd.docker.distribution.manifest.v2+json", mf); st != 0 {
		t.Fatalf("a mutable tag: %d %s", st, msg)
	}
	if st, msg := put("22", "application/vnd.oci.image.index.v1+json", ixf); st != 0 {
		t.Fatalf("moving a mutable tag: %d %s", st, msg)
	}

	// list-images with the query Publish uses to find its dated tag.
	out, _, _ = f.aws("ecr", "list-images", "--repository-name", "node", "--filter", "tagStatus=TAGGED",
		"--query", "imageIds[?starts_with(imageTag, '22-r20') && ends_with(imageTag, '-abcdef12')].imageTag | [0]", "--output", "text")
	if strings.TrimSpace(out) != "22-r20261125-abcdef12" {
		t.Fatalf("list-images query: %q", out)
	}
	out, _, _ = f.aws("ecr", "list-images", "--repository-name", "node", "--filter", "tagStatus=TAGGED",
		"--query", "imageIds[?starts_with(imageTag, '22-r20') && ends_with(imageTag, '-00000000')].imageTag | [0]", "--output", "text")
	if strings.TrimSpace(out) != "None" {
		t.Fatalf("list-images query without a match: %q", out)
	}

	// batch-delete-image: the draft tag of an image with another tag goes
	// alone; a missing tag is a failure entry, not an error.
	out, st, _ = f.aws("ecr", "batch-delete-image", "--repository-name", "node", "--image-ids", "imageTag=draft-22-amd64-x", "imageTag=draft-22-nope-x",
		"--query", "failures[?failureCode!='ImageNotFound']", "--output", "json")
	if st != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("batch-delete-image: %d %s", st, out)
	}
	if d := f.digestOf("draft-22-amd64-x"); !strings.HasPrefix(d, "missing") {
		t.Fatalf("the draft tag is still there: %s", d)
	}
	if d := f.digestOf("22-amd64"); d != amd {
		t.Fatalf("22-amd64 lost its image: %s", d)
	}
	out, st, _ = f.aws("ecr", "batch-delete-image", "--repository-name", "node", "--image-ids", "imageTag=draft-22-amd64-x")
	if st != 0 || !strings.Contains(out, `"ImageNotFound"`) {
		t.Fatalf("deleting a missing tag: %d %s", st, out)
	}
	// The arm64 draft is the image's last tag and the index references it.
	out, st, _ = f.aws("ecr", "batch-delete-image", "--repository-name", "node", "--image-ids", "imageTag=draft-22-arm64-x")
	if st != 0 || !strings.Contains(out, "ImageReferencedByManifestList") {
		t.Fatalf("deleting the last tag of a referenced image: %d %s", st, out)
	}
	if d := f.digestOf("draft-22-arm64-x"); d != arm {
		t.Fatalf("the refused delete removed the tag: %s", d)
	}

	// An injected fault fires once, on the Nth call.
	f.ecr.Cfg.SetFault(&Fault{Op: "list-images", N: 2})
	if _, st, _ := f.aws("ecr", "list-images", "--repository-name", "node", "--filter", "tagStatus=TAGGED"); st != 0 {
		t.Fatal("the fault fired early")
	}
	if _, st, msg := f.aws("ecr", "list-images", "--repository-name", "node", "--filter", "tagStatus=TAGGED"); st != 254 || !strings.Contains(msg, "ThrottlingException") {
		t.Fatalf("the fault did not fire: %d %s", st, msg)
	}
	if _, st, _ := f.aws("ecr", "list-images", "--repository-name", "node", "--filter", "tagStatus=TAGGED"); st != 0 || f.ecr.Cfg.FaultPending() {
		t.Fatal("the fault fired twice")
	}
}

func TestWildcardAndMutability(t *testing.T) {
	r := Repository{Mutability: "MUTABLE_WITH_EXCLUSION", Exclusions: []string{"*-r20*"}}
	for tag, want := range map[string]bool{"22-r20261126-abcdef12": true, "22": false, "draft-22-amd64-x": false, "3.13-amd64": false} {
		if got := r.Immutable(tag); got != want {
			t.Errorf("Immutable(%q) = %v, want %v", tag, got, want)
		}
	}
	if !WildcardMatch("draft-*", "draft-x") || WildcardMatch("draft-*", "x-draft-") || !WildcardMatch("a*b*c", "a-b-c") || WildcardMatch("a*b*c", "a-c-b") {
		t.Error("WildcardMatch")
	}
}

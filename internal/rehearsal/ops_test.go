package rehearsal

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

// The ops scenarios pass on a registry and a bucket as two publishes of
// node 22 leave them, and fail when the records disagree with the tags.
func TestOpsScenarios(t *testing.T) {
	root, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(root, ".venv", "bin", "moto_server")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("moto is not installed: make setup installs it")
		}
		t.Skip("moto is not installed (make setup)")
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	repo := "evergreen/node"
	publish := func(dated string, current bool) string {
		idx := v1.ImageIndex(empty.Index)
		for _, arch := range []string{"arm64", "amd64"} {
			img, _ := random.Image(32, 1)
			var ref name.Reference
			if current {
				ref, _ = name.NewTag(reg+"/"+repo+":22-"+arch, name.Insecure)
			} else {
				d, _ := img.Digest()
				ref, _ = name.NewDigest(reg+"/"+repo+"@"+d.String(), name.Insecure)
			}
			if err := remote.Write(ref, img); err != nil {
				t.Fatal(err)
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		}
		for _, tag := range []string{dated, "22"} {
			if tag == "22" && !current {
				continue
			}
			ref, _ := name.NewTag(reg+"/"+repo+":"+tag, name.Insecure)
			if err := remote.WriteIndex(ref, idx); err != nil {
				t.Fatal(err)
			}
		}
		d, _ := idx.Digest()
		return d.String()
	}
	publish("22-r20261127-1a1a1a1a", false)
	index := publish("22-r20261128-2b2b2b2b", true)

	bucket := t.TempDir()
	os.MkdirAll(filepath.Join(bucket, "releases", "node"), 0o755)
	rec, _ := json.Marshal(map[string]any{"runtime": "node", "version": "22", "result": "published", "index": index, "datedTag": "22-r20261128-2b2b2b2b", "changedAt": "2026-11-28T04:00:00Z", "checkedAt": "2026-11-28T04:00:00Z"})
	os.WriteFile(filepath.Join(bucket, "releases", "node", "22.json"), rec, 0o644)

	cfg := config.Default()
	list := &runtimes.List{Path: "test", Runtimes: []runtimes.Runtime{{Name: "node", Versions: []string{"22"}, Architectures: runtimes.DefaultArchitectures}}}
	var logb bytes.Buffer
	st := OpsState{Registry: reg, Repository: repo, Bucket: "records-test", BucketDir: bucket, Config: cfg, List: list, Runtime: "node", Version: "22", RollbackTo: "22-r20261127-1a1a1a1a"}
	sf, rf := RunOpsScenarios(context.Background(), root, st, &logb)
	if len(sf) > 0 || len(rf) > 0 {
		t.Errorf("status: %v\nrollback: %v\n%s", sf, rf, logb.String())
	}

	// A records bucket that disagrees with the tags fails status; a
	// rollback target that is not there fails rollback.
	rec, _ = json.Marshal(map[string]any{"runtime": "node", "version": "22", "result": "published", "index": "sha256:" + strings.Repeat("0", 64), "datedTag": "22-r20261126-0c0c0c0c"})
	os.WriteFile(filepath.Join(bucket, "releases", "node", "22.json"), rec, 0o644)
	st.RollbackTo = "22-r20261101-0d0d0d0d"
	sf, rf = RunOpsScenarios(context.Background(), root, st, io.Discard)
	if len(sf) == 0 || len(rf) == 0 {
		t.Errorf("status %v, rollback %v: want both to fail", sf, rf)
	}
}

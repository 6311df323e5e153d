package rehearsal

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// The ops scenarios pass on the ECR stand-in and moto as two publishes of
// node 22 leave them, and fail when the records disagree with the tags.
func TestOpsScenarios(t *testing.T) {
	root, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(root, ".venv", "bin", "moto_server")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("moto is not installed: make setup installs it")
		}
		t.Skip("moto is not installed (make setup)")
	}
	f := newFixture(t)
	reg := f.reg
	repo := "evergreen/node"
	f.ecr.Cfg.Repositories = []Repository{{Name: repo, Mutability: "MUTABLE_WITH_EXCLUSION", Exclusions: []string{"*-r20*"}}}
	ecrSrv := httptest.NewServer(f.ecr)
	defer ecrSrv.Close()
	m, err := StartMoto(root, t.TempDir(), "111122223333", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if err := m.Create(context.Background(), []string{"records-test"}, nil); err != nil {
		t.Fatal(err)
	}
	pushed := func(d string) { f.ecr.Cfg.RecordPush(repo, d, f.ecr.Now()) }
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
			d, _ := img.Digest()
			pushed(d.String())
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
		pushed(d.String())
		return d.String()
	}
	publish("22-r20261127-1a1a1a1a", false)
	index := publish("22-r20261128-2b2b2b2b", true)

	aws := m.OpsConfig(ecrSrv.URL)
	s3c := awsops.NewS3(aws)
	putRelease := func(rec map[string]any) {
		if err := (records.Store{S3: s3c, Bucket: "records-test"}).PutJSON(context.Background(), records.ReleaseKey("node", "22"), rec); err != nil {
			t.Fatal(err)
		}
	}
	putRelease(map[string]any{"runtime": "node", "version": "22", "result": "published", "index": index, "datedTag": "22-r20261128-2b2b2b2b", "changedAt": "2026-11-28T04:00:00Z", "checkedAt": "2026-11-28T04:00:00Z"})

	cfg := config.Default()
	// The consumers' parameters, as Publish leaves them: what the tags name.
	tags, _ := f.ecr.tags(mustRepo(t, reg+"/"+repo))
	pc := ssm.NewFromConfig(aws)
	prefix := cfg.ParameterPrefix() + "/node/22"
	for n, tag := range map[string]string{prefix: "22", prefix + "/amd64": "22-amd64", prefix + "/arm64": "22-arm64"} {
		if _, err := pc.PutParameter(context.Background(), &ssm.PutParameterInput{Name: &n, Value: sdkaws.String(reg + "/" + repo + "@" + tags[tag]), Type: "String", Overwrite: sdkaws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	list := &runtimes.List{Path: "test", Runtimes: []runtimes.Runtime{{Name: "node", Versions: []string{"22"}, Architectures: runtimes.DefaultArchitectures}}}
	var logb bytes.Buffer
	st := OpsState{AWS: aws, Repository: repo, Bucket: "records-test", Config: cfg, List: list, Runtime: "node", Version: "22", RollbackTo: "22-r20261127-1a1a1a1a"}
	sf, rf := RunOpsScenarios(context.Background(), st, &logb)
	if len(sf) > 0 || len(rf) > 0 {
		t.Errorf("status: %v\nrollback: %v\n%s", sf, rf, logb.String())
	}

	// A records bucket that disagrees with the tags fails status; a
	// rollback target that is not there fails rollback.
	putRelease(map[string]any{"runtime": "node", "version": "22", "result": "published", "index": "sha256:" + strings.Repeat("0", 64), "datedTag": "22-r20261126-0c0c0c0c"})
	st.RollbackTo = "22-r20261101-0d0d0d0d"
	sf, rf = RunOpsScenarios(context.Background(), st, io.Discard)
	if len(sf) == 0 || len(rf) == 0 {
		t.Errorf("status %v, rollback %v: want both to fail", sf, rf)
	}
}

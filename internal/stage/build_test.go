package stage

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	ecrpublictypes "github.com/aws/aws-sdk-go-v2/service/ecrpublic/types"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/mototest"
	"github.com/evergreen-images/evergreen/internal/records"
)

// bvDocker is the Docker of the Build and Verify tests: it records every
// call and answers with what the test set (an image's architecture and
// base label, the inventory's output, the base registries' manifests).
// buildx build runs push, which stands for the push to ECR.
type bvDocker struct {
	mu    sync.Mutex
	calls [][]string
	stdin map[string][]byte // by the registry logged in to

	push        func(image string) error
	arch        string
	baseName    string // "" answers "<no value>", as docker does for a missing label
	inventory   string
	bases       map[string][]byte // imagetools inspect --raw answers, by name
	selfTestErr error
}

func (d *bvDocker) Run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	d.mu.Lock()
	d.calls = append(d.calls, append([]string(nil), args...))
	d.mu.Unlock()
	if len(args) == 0 {
		return nil, errors.New("no arguments")
	}
	switch {
	case args[0] == "login":
		d.mu.Lock()
		if d.stdin == nil {
			d.stdin = map[string][]byte{}
		}
		d.stdin[args[len(args)-1]] = stdin
		d.mu.Unlock()
		return []byte("Login Succeeded\n"), nil
	case len(args) > 1 && args[0] == "buildx" && args[1] == "build":
		if d.push == nil {
			return nil, nil
		}
		return nil, d.push(flagValue(args, "--tag"))
	case len(args) > 2 && args[0] == "buildx" && args[1] == "imagetools":
		raw, ok := d.bases[args[len(args)-1]]
		if !ok {
			return nil, fmt.Errorf("docker buildx imagetools inspect --raw %s: not found", args[len(args)-1])
		}
		return raw, nil
	case args[0] == "pull":
		return []byte("pulled\n"), nil
	case len(args) > 1 && args[0] == "image" && args[1] == "inspect":
		switch f := flagValue(args, "--format"); {
		case f == "{{.Architecture}}":
			return []byte(d.arch + "\n"), nil
		case strings.Contains(f, baseNameLabel):
			if d.baseName == "" {
				return []byte("<no value>\n"), nil
			}
			return []byte(d.baseName + "\n"), nil
		}
	case args[0] == "run":
		switch flagValue(args, "--entrypoint") {
		case "self-test":
			return []byte("self-test passed\n"), d.selfTestErr
		case "sh":
			return []byte(d.inventory), nil
		}
	}
	return nil, fmt.Errorf("bvDocker: unexpected docker %q", args)
}

// called is the calls whose first arguments are prefix.
func (d *bvDocker) called(prefix ...string) [][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out [][]string
	for _, c := range d.calls {
		if len(c) >= len(prefix) && slices.Equal(c[:len(prefix)], prefix) {
			out = append(out, c)
		}
	}
	return out
}

func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// bvECRPublic stands in for ECR Public, which moto does not implement.
type bvECRPublic struct{ calls int }

func (p *bvECRPublic) GetAuthorizationToken(ctx context.Context, in *ecrpublic.GetAuthorizationTokenInput, opts ...func(*ecrpublic.Options)) (*ecrpublic.GetAuthorizationTokenOutput, error) {
	p.calls++
	return &ecrpublic.GetAuthorizationTokenOutput{AuthorizationData: &ecrpublictypes.AuthorizationData{
		AuthorizationToken: aws.String(base64.StdEncoding.EncodeToString([]byte("AWS:public-password")))}}, nil
}

// bvSource is a source directory: the runtime's folder and the real
// inventory script.
func bvSource(t *testing.T, rt string) string {
	t.Helper()
	dir := t.TempDir()
	script, err := os.ReadFile(filepath.Join("..", "..", InventoryScript))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		InventoryScript: string(script),
		filepath.Join("runtimes", rt, "Dockerfile"):  "FROM scratch\n",
		filepath.Join("runtimes", rt, "self-test"):   "#!/bin/sh\necho ok\n",
		filepath.Join("runtimes", rt, "lib", "x.sh"): "true\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bvBuild is a fixture for Build of one entry: the Docker's push puts
// image under the tag it was given.
func bvBuild(t *testing.T, arch string) (*fixture, Env, Clients, *bvDocker) {
	f := newFixture(t)
	e := f.envArch(executionID("b0b0b0b0", 1), arch)
	e.BaseImage = "node"
	e.BaseRegistry = "public.ecr.aws/docker/library"
	e.BuildID = "build-project:1"
	e.SourceDir = bvSource(t, e.Runtime)
	d := &bvDocker{}
	c := f.Clients
	c.Docker = d
	c.ECRPublic = &bvECRPublic{}
	return f, e, c, d
}

func (f *fixture) pushOnBuild(d *bvDocker, m awsops.Manifest) {
	d.push = func(image string) error {
		_, tag, ok := strings.Cut(image, ":")
		if !ok {
			return fmt.Errorf("no tag in %s", image)
		}
		mototest.Put(f.t, f.w.ECR, f.Repo, tag, m)
		return nil
	}
}

// Build logs in, builds one platform without attestations from the
// runtime's folder, pushes under the draft tag, and records the digest ECR
// holds, with the entry's facts.
func TestBuildPushesOneImageAndRecordsItsDigest(t *testing.T) {
	f, e, c, d := bvBuild(t, "arm64")
	m := imageOf(e.ExecutionID, "v1", e.Arch)
	f.pushOnBuild(d, m)
	var log bytes.Buffer
	if err := Build(context.Background(), e, c, &log); err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	image := e.Registry + "/" + e.Repository + ":" + e.DraftTag(e.Arch)
	want := []string{"buildx", "build", "--platform", "linux/" + e.Arch, "--pull", "--provenance=false", "--sbom=false",
		"--build-arg", "VERSION=" + e.Version, "--build-arg", "BASE_IMAGE=" + e.BaseImage, "--build-arg", "BASE_REGISTRY=" + e.BaseRegistry,
		"--label", "org.opencontainers.image.revision=" + e.SourceRevision, "--tag", image, "--push", filepath.Join(e.SourceDir, "runtimes", e.Runtime)}
	if b := d.called("buildx", "build"); len(b) != 1 || !slices.Equal(b[0], want) {
		t.Errorf("buildx build calls %q, want one %q", b, want)
	}
	if got := string(d.stdin[e.Registry]); got != mototest.Account+"-auth-token" {
		t.Errorf("docker login to %s got password %q on stdin, want the ECR token's password", e.Registry, got)
	}
	if got := string(d.stdin["public.ecr.aws"]); got != "public-password" {
		t.Errorf("docker login to public.ecr.aws got %q, want the ECR Public token's password", got)
	}
	for _, l := range d.called("login") {
		if slices.Contains(l, "public-password") || slices.Contains(l, mototest.Account+"-auth-token") {
			t.Errorf("a password is in docker's arguments: %q", l)
		}
	}
	var rec records.Build
	if !f.getJSON(records.BuildKey(e.ExecutionID, e.Runtime, e.Version, e.Arch), &rec) {
		t.Fatal("no Build record")
	}
	if rec.Digest != m.Digest || rec.MediaType != m.MediaType || rec.SchemaVersion != records.SchemaVersion || rec.Stage != "build" ||
		rec.ExecutionID != e.ExecutionID || rec.SourceRevision != e.SourceRevision || rec.Runtime != e.Runtime || rec.Version != e.Version ||
		rec.Arch != e.Arch || rec.Repository != e.Repository || rec.BuildID != e.BuildID || rec.PushedAt == "" {
		t.Errorf("Build record %+v, want digest %s, media type %s and the entry's facts", rec, m.Digest, m.MediaType)
	}
	if !strings.Contains(log.String(), "pushed "+image) {
		t.Errorf("the log does not say what was pushed:\n%s", log.String())
	}
}

// ECR Public is logged in to only for a base registry there.
func TestBuildLogsInToECRPublicOnlyForItsBases(t *testing.T) {
	f, e, c, d := bvBuild(t, "amd64")
	e.BaseRegistry = "registry.example.com/library"
	f.pushOnBuild(d, imageOf(e.ExecutionID, "v1", e.Arch))
	if err := Build(context.Background(), e, c, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if n := c.ECRPublic.(*bvECRPublic).calls; n != 0 {
		t.Errorf("ECR Public was asked for %d tokens for base registry %s", n, e.BaseRegistry)
	}
	if l := d.called("login"); len(l) != 1 || l[0][len(l[0])-1] != e.Registry {
		t.Errorf("docker logins %q, want only %s", l, e.Registry)
	}
}

func TestRetriedBuildFindsItsDraftAndDoesNotRebuild(t *testing.T) {
	f, e, c, d := bvBuild(t, "amd64")
	m := imageOf(e.ExecutionID, "v1", e.Arch)
	mototest.Put(t, f.w.ECR, f.Repo, e.DraftTag(e.Arch), m)
	d.push = func(string) error { t.Error("the draft was rebuilt"); return nil }
	var log bytes.Buffer
	if err := Build(context.Background(), e, c, &log); err != nil {
		t.Fatalf("Build: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "was already pushed in execution "+e.ExecutionID+": not rebuilt") {
		t.Errorf("the log does not say the draft was not rebuilt:\n%s", log.String())
	}
	var rec records.Build
	if !f.getJSON(records.BuildKey(e.ExecutionID, e.Runtime, e.Version, e.Arch), &rec) || rec.Digest != m.Digest {
		t.Errorf("Build record %+v, want the draft's digest %s", rec, m.Digest)
	}
}

// The provenance says when and by which build the image was built: a
// retried Build that finds its draft keeps the first build's start and
// builder rather than claiming the image for itself.
func TestRetriedBuildKeepsTheFirstBuildsStartAndBuilder(t *testing.T) {
	f, e, c, d := bvBuild(t, "amd64")
	f.pushOnBuild(d, imageOf(e.ExecutionID, "v1", e.Arch))
	first := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return first }
	e.Builder = "arn:aws:codebuild:" + e.Region + ":" + mototest.Account + ":build/evergreen-build:first"
	if err := Build(context.Background(), e, c, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	c.Now = func() time.Time { return first.Add(2 * time.Hour) }
	want := e.Builder
	e.Builder = strings.Replace(e.Builder, "first", "retry", 1)
	if err := Build(context.Background(), e, c, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var rec records.Build
	if !f.getJSON(records.BuildKey(e.ExecutionID, e.Runtime, e.Version, e.Arch), &rec) {
		t.Fatal("no Build record")
	}
	if rec.StartedAt != records.Time(first) || rec.Builder != want {
		t.Errorf("after the retry the record says started %s by %s, want %s by %s", rec.StartedAt, rec.Builder, records.Time(first), want)
	}
}

// An index under the draft tag (attestations on) is not taken for a
// finished push: Build builds again, and when the push is still an index
// it refuses to record it.
func TestBuildRefusesAnIndexUnderADraftTag(t *testing.T) {
	f, e, c, d := bvBuild(t, "amd64")
	img := imageOf(e.ExecutionID, "v1", e.Arch)
	mototest.Put(t, f.w.ECR, f.Repo, "", img)
	idx := mototest.IndexOf(map[string]awsops.Manifest{e.Arch: img}, []string{e.Arch})
	mototest.Put(t, f.w.ECR, f.Repo, e.DraftTag(e.Arch), idx)
	var log bytes.Buffer
	err := Build(context.Background(), e, c, &log)
	if err == nil || !strings.Contains(err.Error(), "not as a single-platform image manifest") || !strings.Contains(err.Error(), e.entry()) {
		t.Fatalf("Build of an index: %v, want a refusal naming the entry", err)
	}
	if len(d.called("buildx", "build")) != 1 {
		t.Errorf("an index under the draft tag was not rebuilt: %q", d.calls)
	}
	var rec records.Build
	if f.getJSON(records.BuildKey(e.ExecutionID, e.Runtime, e.Version, e.Arch), &rec) {
		t.Errorf("a Build record was written for an index: %+v", rec)
	}
}

func TestFailedBuildWritesNoRecord(t *testing.T) {
	f, e, c, d := bvBuild(t, "amd64")
	d.push = func(string) error { return errors.New("exit status 1") }
	err := Build(context.Background(), e, c, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "retry the Build stage") {
		t.Fatalf("Build with a failed docker build: %v", err)
	}
	var rec records.Build
	if f.getJSON(records.BuildKey(e.ExecutionID, e.Runtime, e.Version, e.Arch), &rec) {
		t.Errorf("a Build record was written for a failed build: %+v", rec)
	}
}

// ExecDocker hands back docker's stdout and sends its stderr to the log.
func TestExecDockerReturnsStdoutAndLogsStderr(t *testing.T) {
	prog := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho \"out $*\"\ncat\necho err >&2\n[ \"$1\" != fail ]\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	d := ExecDocker{Program: prog, Stderr: &stderr}
	out, err := d.Run(context.Background(), []byte("in\n"), "login", "x")
	if err != nil || string(out) != "out login x\nin\n" || stderr.String() != "err\n" {
		t.Errorf("Run = %q, %v; stderr %q", out, err, stderr.String())
	}
	if _, err := d.Run(context.Background(), nil, "fail", "a\nlong script"); err == nil || !strings.Contains(err.Error(), "status 1") || strings.Contains(err.Error(), "long script") {
		t.Errorf("a failed docker: %v", err)
	}
}

// Package mototest runs moto (PyPI moto[server], pinned in
// .ci/install-moto.sh), a third-party emulator of the AWS APIs, for the
// tests of the commands that call AWS, and seeds it with images the way the
// pipeline leaves them. Tests only.
package mototest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/evergreen-images/evergreen/internal/awsops"
)

// Account is moto's default account.
const Account = "123456789012"

// Start starts moto_server on a free port of 127.0.0.1, points the AWS SDK
// at it through the environment (AWS_ENDPOINT_URL, fake credentials, the
// region) and stops it when the test ends. Without moto in .venv the test
// is skipped, except on CI (CI=true), where it fails.
func Start(t *testing.T, region string) string {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		missing(t, err)
	}
	t.Cleanup(s.Stop)
	s.Point(t, region)
	return s.URL
}

// Server is one moto_server process, which a test package may share
// between its tests (starting one costs about 2 s): each test then keeps
// to resources of its own names.
type Server struct {
	URL string
	cmd *exec.Cmd
}

// errNotInstalled: moto is not in .venv.
var errNotInstalled = fmt.Errorf("moto is not installed in .venv (run make setup, which runs .ci/install-moto.sh)")

// NewServer starts moto_server on a free port of 127.0.0.1 and waits until
// it answers.
func NewServer() (*Server, error) {
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "..", ".venv", "bin", "moto_server")
	if _, err := os.Stat(bin); err != nil {
		return nil, errNotInstalled
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(s.URL + "/moto-api/"); err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("moto_server did not answer within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop ends the server.
func (s *Server) Stop() { s.cmd.Process.Kill(); s.cmd.Wait() }

// Point points the AWS SDK at the server for the rest of the test, with
// fake credentials, no shared config files and the region.
func (s *Server) Point(t *testing.T, region string) {
	t.Setenv("AWS_ENDPOINT_URL", s.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_REGION", region)
}

// missing skips the test for a moto that is not installed, except on CI
// (CI=true), where every test must run; other errors fail it.
func missing(t *testing.T, err error) {
	t.Helper()
	if err == errNotInstalled && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	t.Fatal(err)
}

// Shared is a server started on first use and kept for the rest of the
// test binary: TestMain stops it (defer mototest.StopShared()).
func Shared(t *testing.T, region string) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = NewServer() })
	if sharedErr != nil {
		missing(t, sharedErr)
	}
	shared.Point(t, region)
	return shared
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// StopShared stops the shared server, if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
}

// Release is what one Publish left in a repository.
type Release struct {
	Index  awsops.Manifest
	Images map[string]awsops.Manifest // by architecture
}

// ImageManifest is an OCI image manifest whose config and layer digests
// derive from seed, so that each seed gives other bytes.
func ImageManifest(seed, arch string) awsops.Manifest {
	blob := func(what string) string { return awsops.SHA256([]byte(seed + "/" + arch + "/" + what)) }
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     awsops.MediaOCIManifest,
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob("config"), "size": 1234},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob("layer"), "size": 5678}},
	}
	b, _ := json.Marshal(m)
	return awsops.Manifest{Digest: awsops.SHA256(b), MediaType: awsops.MediaOCIManifest, Bytes: b}
}

// IndexOf is an OCI index of the images, in the order of archs, with a
// BuildKit attestation entry (platform unknown/unknown) as buildx adds one.
func IndexOf(images map[string]awsops.Manifest, archs []string) awsops.Manifest {
	var entries []any
	for _, a := range archs {
		m := images[a]
		entries = append(entries, map[string]any{"mediaType": m.MediaType, "digest": m.Digest, "size": len(m.Bytes), "platform": map[string]string{"os": "linux", "architecture": a}})
	}
	att := awsops.SHA256([]byte(fmt.Sprint(archs, images[archs[0]].Digest, "attestation")))
	entries = append(entries, map[string]any{"mediaType": awsops.MediaOCIManifest, "digest": att, "size": 100,
		"platform":    map[string]string{"os": "unknown", "architecture": "unknown"},
		"annotations": map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": images[archs[0]].Digest}})
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": awsops.MediaOCIIndex, "manifests": entries})
	return awsops.Manifest{Digest: awsops.SHA256(b), MediaType: awsops.MediaOCIIndex, Bytes: b}
}

// Put puts a manifest under a tag, or untagged when tag is "".
func Put(t *testing.T, c *ecr.Client, repo, tag string, m awsops.Manifest) {
	t.Helper()
	in := &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(string(m.Bytes)), ImageManifestMediaType: aws.String(m.MediaType),
		// moto deviation: its digests are not the sha256 of the manifest
		// (a hash of the layer digests for an image, a random one for an
		// index) unless the digest is given; ECR's are.
		ImageDigest: aws.String(m.Digest)}
	if tag != "" {
		in.ImageTag = aws.String(tag)
	}
	if _, err := c.PutImage(context.Background(), in); err != nil {
		t.Fatalf("seeding %s:%s: %v", repo, tag, err)
	}
}

// SeedRelease puts what Publish leaves for one dated tag: the
// per-architecture images and the index under the dated tag; when current,
// also <v>-<arch> and <v>. An earlier release's images are put untagged,
// as they are in ECR once the tags moved on (moto deviation: moving a tag
// off an image deletes the image there, so they cannot be left untagged
// by moving the tags, as Publish does).
func SeedRelease(t *testing.T, c *ecr.Client, repo, version, dated string, archs []string, seed string, current bool) Release {
	t.Helper()
	r := Release{Images: map[string]awsops.Manifest{}}
	for _, a := range archs {
		m := ImageManifest(seed, a)
		r.Images[a] = m
		tag := ""
		if current {
			tag = version + "-" + a
		}
		Put(t, c, repo, tag, m)
	}
	r.Index = IndexOf(r.Images, archs)
	Put(t, c, repo, dated, r.Index)
	if current {
		Put(t, c, repo, version, r.Index)
	}
	return r
}

// Stack creates a stack with the outputs the commands read: a records
// bucket and a changes topic it creates, and a pipeline name given as a
// plain value (moto's CloudFormation does not support CodePipeline). It
// returns the outputs.
func Stack(t *testing.T, cfg aws.Config, name, bucket, pipeline string) map[string]string {
	t.Helper()
	ctx := context.Background()
	tpl := fmt.Sprintf(`{"Resources": {
  "Records": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": %q}},
  "Changes": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "changes"}}},
 "Outputs": {
  "RecordsBucket": {"Value": {"Ref": "Records"}},
  "ChangesTopicArn": {"Value": {"Ref": "Changes"}},
  "PipelineName": {"Value": %q}}}`, bucket, pipeline)
	if _, err := cloudformation.NewFromConfig(cfg).CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(tpl)}); err != nil {
		t.Fatal(err)
	}
	out, err := awsops.StackOutputs(ctx, cfg, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

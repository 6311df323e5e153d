package stage

// Shared fixtures of the stage tests: moto (internal/mototest) behind the
// SDK's own clients, a records bucket and a repository, and images seeded
// the way Build and Verify leave them.
//
//	w := startMoto(t)                  // one moto_server for the test
//	f := w.fixture(t, "node", "22")    // its own repository, bucket, parameters
//	vs := f.buildAndVerify(exec, "v1") // drafts + Build and Verify records, every arch
//	err := Publish(ctx, f.env(exec), f.Clients, &log)
//	f.tags(), f.param(name), f.getJSON(key, &v) read the end state.
//
// Each fixture of one moto is independent (repository, bucket, parameter
// prefix and stack name derive from its name), so a test can make many.
//
// moto deviations worked around here (aws-facts.md):
//   - D1: moto's image digests are not the sha256 of the manifest: every
//     seeded image is put with ImageDigest = its sha256, as ECR computes it.
//   - CloudWatch: aws-sdk-go-v2's cloudwatch client speaks the Smithy RPCv2
//     CBOR protocol, which moto 5.2.5 does not answer (PutMetricData fails
//     to decode its reply): Clients.CloudWatch is a recorder (f.Metrics).
//   - moto has no registry API (ECR's /v2/ endpoints), where Publish
//     attaches its evidence: Clients.Evidence logs in with moto's token and
//     pushes to go-containerregistry's in-memory registry (f.Evidence, the
//     package's one), which serves the Referrers API.

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/mototest"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// testRegion is the region of every fixture.
const testRegion = "eu-west-1"

// motoWorld is one moto_server and the SDK's clients pointed at it.
type motoWorld struct {
	cfg        aws.Config
	ECR        *ecr.Client
	S3         *s3.Client
	SSM        *ssm.Client
	SNS        *sns.Client
	CloudWatch *cloudwatch.Client
}

// startMoto points the test at the package's moto (started on first use,
// stopped by TestMain: one moto_server for every test of the package;
// skipped without moto in .venv, failed on CI) and makes the SDK's clients
// for it. Each fixture's resources have names of their own, so tests
// share nothing but the server.
func startMoto(t *testing.T) *motoWorld {
	t.Helper()
	mototest.Shared(t, testRegion)
	cfg, err := awsops.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &motoWorld{cfg: cfg, ECR: ecr.NewFromConfig(cfg), S3: awsops.NewS3(cfg), SSM: ssm.NewFromConfig(cfg),
		SNS: sns.NewFromConfig(cfg), CloudWatch: cloudwatch.NewFromConfig(cfg)}
}

// fixture is one runtime-version's world: its repository, the records
// bucket, the parameter prefix, and the Env and Clients a stage gets.
type fixture struct {
	t   *testing.T
	ctx context.Context
	w   *motoWorld
	// Env has everything but ExecutionID and Arch (see env, envArch).
	Env     Env
	Clients Clients
	Repo    string
	Bucket  string
	// Metrics records every PutMetricData (see the CloudWatch gap above).
	Metrics *metricsRecorder
	// Evidence is the registry host the evidence goes to (see above).
	Evidence string
}

// evidenceRegistry is the package's in-memory registry for evidence.
var evidenceRegistry = sync.OnceValue(func() string {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	return strings.TrimPrefix(srv.URL, "http://")
})

// metricsRecorder stands in for CloudWatch's PutMetricData.
type metricsRecorder struct {
	mu   sync.Mutex
	Puts []*cloudwatch.PutMetricDataInput
}

func (m *metricsRecorder) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Puts = append(m.Puts, in)
	return &cloudwatch.PutMetricDataOutput{}, nil
}

// fresh counts the Fresh metrics put for one stack, runtime and version.
func (m *metricsRecorder) fresh(stack, rt, v string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, in := range m.Puts {
		for _, d := range in.MetricData {
			dims := map[string]string{}
			for _, x := range d.Dimensions {
				dims[aws.ToString(x.Name)] = aws.ToString(x.Value)
			}
			if aws.ToString(d.MetricName) == "Fresh" && aws.ToFloat64(d.Value) == 1 && dims["Stack"] == stack && dims["Runtime"] == rt && dims["Version"] == v {
				n++
			}
		}
	}
	return n
}

// fixture creates a repository evergreen/<name>-<n>, a bucket
// <name>-<n>-records and the parameter prefix /<n>/<name>, for version of runtime name on amd64 and
// arm64 (in that order, as ARCHITECTURES lists them).
func (w *motoWorld) fixture(t *testing.T, name, version string) *fixture {
	t.Helper()
	ctx := context.Background()
	// One moto serves every test: a serial number keeps each fixture's
	// repository, bucket, parameters and stack apart.
	n := fixtureSerial.Add(1)
	f := &fixture{t: t, ctx: ctx, w: w, Repo: fmt.Sprintf("evergreen/%s-%d", name, n), Bucket: fmt.Sprintf("%s-%d-records", name, n)}
	if _, err := w.ECR.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(f.Repo)}); err != nil {
		t.Fatalf("creating repository %s: %v", f.Repo, err)
	}
	if _, err := w.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(f.Bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(testRegion)}}); err != nil {
		t.Fatalf("creating bucket %s: %v", f.Bucket, err)
	}
	f.Env = Env{
		Registry:        mototest.Account + ".dkr.ecr." + testRegion + ".amazonaws.com",
		Region:          testRegion,
		RecordsBucket:   f.Bucket,
		Runtime:         name,
		Repository:      f.Repo,
		Version:         version,
		Architectures:   []string{"amd64", "arm64"},
		MetricNamespace: "EvergreenImages",
		StackName:       fmt.Sprintf("Stack-%s-%d", name, n),
		ParameterPrefix: fmt.Sprintf("/%d/%s", n, name),
		Gate:            "never-worse",
		SourceRevision:  "0123456789abcdef0123456789abcdef01234567",
		SourceDir:       ".",
		ScanPoll:        time.Millisecond,
	}
	f.Metrics = &metricsRecorder{}
	f.Evidence = evidenceRegistry()
	f.Clients = Clients{ECR: w.ECR, Records: records.Store{S3: w.S3, Bucket: f.Bucket}, SSM: w.SSM, SNS: w.SNS,
		CloudWatch: f.Metrics, Evidence: RegistryEvidence(w.ECR, f.Evidence), Now: time.Now}
	return f
}

var fixtureSerial atomic.Int64

func TestMain(m *testing.M) {
	code := m.Run()
	mototest.StopShared()
	os.Exit(code)
}

// newFixture is startMoto and one fixture, node 22.
func newFixture(t *testing.T) *fixture { return startMoto(t).fixture(t, "node", "22") }

// env is the fixture's Env for one pipeline execution (Publish, Report).
func (f *fixture) env(executionID string) Env {
	e := f.Env
	e.ExecutionID = executionID
	e.Architectures = append([]string(nil), f.Env.Architectures...)
	return e
}

// envArch is the fixture's Env for one execution's entry of one
// architecture (Build, Verify).
func (f *fixture) envArch(executionID, arch string) Env {
	e := f.env(executionID)
	e.Arch = arch
	return e
}

// imageOf is the image manifest an execution builds for content on arch:
// its bytes differ per execution (builds are not reproducible), its
// inventory (inventoryOf) only per content.
func imageOf(executionID, content, arch string) awsops.Manifest {
	return mototest.ImageManifest(executionID+"/"+content, arch)
}

// inventoryOf is what an image built for content holds on arch: the base
// digest, the recipe and one package of each kind derive from content.
func inventoryOf(content, arch string) *records.Inventory {
	return &records.Inventory{
		Base:    records.Base{Name: "public.ecr.aws/docker/library/node:22", Digest: awsops.SHA256([]byte("base/" + content + "/" + arch))},
		Recipe:  awsops.SHA256([]byte("recipe/" + content)),
		OS:      map[string]string{"libc6": "2.36-" + content, "openssl": "3.0-" + content},
		Runtime: map[string]string{"node": "22.0." + content},
		Npm:     map[string]string{"npm": "10.0." + content},
		Pip:     map[string]string{},
		Seconds: 1,
	}
}

// cleanScan is a complete scan without findings.
func cleanScan(digest string) *records.Scan {
	return &records.Scan{Status: "COMPLETE", Digest: digest, CompletedAt: records.Time(time.Now()), Counts: map[string]int{}, Findings: []records.Finding{}}
}

// pushDraft puts m under the draft tag of the execution's arch entry and
// writes the Build record the way Build does (digest, media type and
// pushedAt as ECR describes the pushed image).
func (f *fixture) pushDraft(executionID, arch string, m awsops.Manifest) records.Build {
	f.t.Helper()
	tag := runtimes.DraftTag(f.Env.Version, runtimes.Arch(arch), executionID)
	mototest.Put(f.t, f.w.ECR, f.Repo, tag, m)
	d, found, err := awsops.ImageOfTag(f.ctx, f.w.ECR, f.Repo, tag)
	if err != nil || !found {
		f.t.Fatalf("describing %s:%s: %v (found %v)", f.Repo, tag, err, found)
	}
	b := records.Build{SchemaVersion: records.SchemaVersion, Stage: "build", ExecutionID: executionID, SourceRevision: f.Env.SourceRevision,
		Runtime: f.Env.Runtime, Version: f.Env.Version, Arch: arch, Repository: f.Repo, Digest: aws.ToString(d.ImageDigest),
		MediaType: aws.ToString(d.ImageManifestMediaType), PushedAt: records.Time(aws.ToTime(d.ImagePushedAt)), BuildID: "build:" + arch,
		StartedAt: records.Time(aws.ToTime(d.ImagePushedAt).Add(-3 * time.Minute)), Builder: "arn:aws:codebuild:" + testRegion + ":" + mototest.Account + ":project/build",
		SourceRepository: "arn:aws:s3:::source/source.zip"}
	if b.Digest != m.Digest {
		f.t.Fatalf("moto D1: %s:%s has digest %s, not the manifest's sha256 %s", f.Repo, tag, b.Digest, m.Digest)
	}
	f.putJSON(records.BuildKey(executionID, f.Env.Runtime, f.Env.Version, arch), b)
	return b
}

// writeVerify writes the Verify record of a Build record: passed, with the
// inventory and the scans given (publishedScan nil: nothing was published).
func (f *fixture) writeVerify(b records.Build, inv *records.Inventory, scan, publishedScan *records.Scan) records.Verify {
	f.t.Helper()
	v := records.Verify{Build: b, Result: records.ResultPassed, SelfTest: records.ResultPassed, VerifiedAt: records.Time(time.Now()),
		VerifyBuildID: "verify:" + b.Arch, Inventory: inv, Scan: scan, PublishedScan: publishedScan}
	v.Stage = "verify"
	f.putJSON(records.VerifyKey(b.ExecutionID, b.Runtime, b.Version, b.Arch), v)
	return v
}

// buildAndVerify is Build and Verify of one execution for every
// architecture: drafts of imageOf(executionID, content, arch) and passed
// records with inventoryOf(content, arch) and clean scans, the published
// image's scan (clean) when <version>-<arch> exists. By architecture.
func (f *fixture) buildAndVerify(executionID, content string) map[string]records.Verify {
	f.t.Helper()
	out := map[string]records.Verify{}
	for _, a := range f.Env.Architectures {
		b := f.pushDraft(executionID, a, imageOf(executionID, content, a))
		var published *records.Scan
		if d, found, err := awsops.ImageOfTag(f.ctx, f.w.ECR, f.Repo, runtimes.ArchTag(f.Env.Version, runtimes.Arch(a))); err != nil {
			f.t.Fatal(err)
		} else if found {
			published = cleanScan(aws.ToString(d.ImageDigest))
		}
		out[a] = f.writeVerify(b, inventoryOf(content, a), cleanScan(b.Digest), published)
	}
	return out
}

// putJSON writes a record.
func (f *fixture) putJSON(key string, v any) {
	f.t.Helper()
	if err := f.Clients.Records.PutJSON(f.ctx, key, v); err != nil {
		f.t.Fatal(err)
	}
}

// getJSON reads a record; found is false when there is none.
func (f *fixture) getJSON(key string, v any) bool {
	f.t.Helper()
	found, err := f.Clients.Records.GetJSON(f.ctx, key, v)
	if err != nil {
		f.t.Fatal(err)
	}
	return found
}

// tags is every tag of the repository and the digest it names.
func (f *fixture) tags() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	p := ecr.NewListImagesPaginator(f.w.ECR, &ecr.ListImagesInput{RepositoryName: aws.String(f.Repo), Filter: &ecrtypes.ListImagesFilter{TagStatus: ecrtypes.TagStatusTagged}})
	for p.HasMorePages() {
		page, err := p.NextPage(f.ctx)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, id := range page.ImageIds {
			out[aws.ToString(id.ImageTag)] = aws.ToString(id.ImageDigest)
		}
	}
	return out
}

// param is an SSM parameter's value, "" when it does not exist.
func (f *fixture) param(name string) string {
	f.t.Helper()
	out, err := f.w.SSM.GetParameter(f.ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		if awsops.IsCode(err, "ParameterNotFound") {
			return ""
		}
		f.t.Fatal(err)
	}
	return aws.ToString(out.Parameter.Value)
}

// paramName is the consumers' parameter of the fixture's version, of one
// architecture when arch is not "".
func (f *fixture) paramName(arch string) string {
	n := f.Env.ParameterPrefix + "/" + f.Env.Runtime + "/" + f.Env.Version
	if arch != "" {
		n += "/" + arch
	}
	return n
}

// ref is registry/repository@digest, as the parameters hold it.
func (f *fixture) ref(digest string) string { return f.Env.Registry + "/" + f.Repo + "@" + digest }

// executionID makes a UUID-shaped execution id from a number, sharing the
// first 8 characters with every other id of the same prefix.
func executionID(prefix string, n int) string {
	p := (prefix + "00000000")[:8]
	return fmt.Sprintf("%s-%04x-4%03x-8000-%012x", strings.ToLower(p), n, n, n)
}

// The fixture leaves what Build and Verify leave: each draft tag names the
// digest its records name, and that digest is the sha256 of the bytes.
func TestFixtureSeedsWhatBuildAndVerifyLeave(t *testing.T) {
	f := newFixture(t)
	exec := executionID("0a1b2c3d", 1)
	vs := f.buildAndVerify(exec, "v1")
	tags := f.tags()
	for _, a := range f.Env.Architectures {
		v := vs[a]
		if got := tags[f.envArch(exec, a).DraftTag(a)]; got != v.Digest || v.Digest != imageOf(exec, "v1", a).Digest {
			t.Errorf("%s: the draft names %s, the record %s", a, got, v.Digest)
		}
		var back records.Verify
		if !f.getJSON(records.VerifyKey(exec, f.Env.Runtime, f.Env.Version, a), &back) || back.Result != records.ResultPassed || back.PushedAt == "" {
			t.Errorf("%s: the Verify record reads back as %+v", a, back)
		}
	}
}

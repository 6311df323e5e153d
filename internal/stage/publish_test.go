package stage

// Publish against moto. moto deviations these tests meet (aws-facts.md):
//   - D1: digests are not the sha256 of the manifest: the fixture seeds
//     every image with its real digest, and Publish puts every tag with
//     ImageDigest; TestEveryRecordDigestCheckedOnEveryPath uses the
//     deviation itself to make an image whose bytes do not hash to it.
//   - D2: moving a tag off an image deletes the image (ECR leaves it
//     untagged): an earlier set's per-architecture images are gone once
//     the tags move on; the tests read the earlier set from the records.
//   - D3: no ImageTagAlreadyExistsException (it answers
//     ImageAlreadyExistsException); putTag reads the tag back after either.
//   - D5: ListImages never pages; the tag listing pages anyway.
//   - moto does not check an index's children (ECR refuses to delete an
//     image an index references): the committed-and-held paths that keep
//     such drafts are not exercised here.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// faults counts the mutating calls of a Publish run and fails every call
// past budget (budget < 0: none fails), as a build stopped there would
// leave things. failTag fails the PutImage of that one tag.
type faults struct {
	budget  int
	failTag string
	calls   []string // the calls that went through
	failed  bool
}

func (f *faults) allow(call string) error {
	if f == nil {
		return nil
	}
	if (f.budget >= 0 && len(f.calls) >= f.budget) || (f.failTag != "" && call == "PutImage "+f.failTag) {
		f.failed = true
		return fmt.Errorf("injected: the build stopped before %s", call)
	}
	f.calls = append(f.calls, call)
	return nil
}

func (f *faults) count(prefix string) int {
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

type faultyECR struct {
	ECR
	f *faults
}

func (e faultyECR) PutImage(ctx context.Context, in *ecr.PutImageInput, o ...func(*ecr.Options)) (*ecr.PutImageOutput, error) {
	if err := e.f.allow("PutImage " + aws.ToString(in.ImageTag)); err != nil {
		return nil, err
	}
	return e.ECR.PutImage(ctx, in, o...)
}

func (e faultyECR) BatchDeleteImage(ctx context.Context, in *ecr.BatchDeleteImageInput, o ...func(*ecr.Options)) (*ecr.BatchDeleteImageOutput, error) {
	if err := e.f.allow("BatchDeleteImage"); err != nil {
		return nil, err
	}
	return e.ECR.BatchDeleteImage(ctx, in, o...)
}

type faultyS3 struct {
	records.S3
	f *faults
	// denied answers AccessDenied for GetObject of this key, as S3 does
	// without s3:ListBucket for a key that does not exist.
	denied string
}

func (s faultyS3) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if err := s.f.allow("PutObject " + aws.ToString(in.Key)); err != nil {
		return nil, err
	}
	return s.S3.PutObject(ctx, in, o...)
}

func (s faultyS3) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if s.denied != "" && aws.ToString(in.Key) == s.denied {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}
	}
	return s.S3.GetObject(ctx, in, o...)
}

type faultyEvidence struct {
	Evidence
	f *faults
}

func (e faultyEvidence) Attach(ctx context.Context, repository string, subject awsops.Manifest, artifactType string, doc []byte) (string, error) {
	if err := e.f.allow("Attach " + artifactType + " " + subject.Digest); err != nil {
		return "", err
	}
	return e.Evidence.Attach(ctx, repository, subject, artifactType, doc)
}

func (e faultyEvidence) Tag(ctx context.Context, repository, digest, tag string) error {
	if err := e.f.allow("Tag " + repository + ":" + tag); err != nil {
		return err
	}
	return e.Evidence.Tag(ctx, repository, digest, tag)
}

type faultySSM struct {
	SSM
	f *faults
}

func (s faultySSM) PutParameter(ctx context.Context, in *ssm.PutParameterInput, o ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	if err := s.f.allow("PutParameter " + aws.ToString(in.Name)); err != nil {
		return nil, err
	}
	return s.SSM.PutParameter(ctx, in, o...)
}

type faultyCloudWatch struct {
	CloudWatch
	f *faults
}

func (c faultyCloudWatch) PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, o ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	if err := c.f.allow("PutMetricData"); err != nil {
		return nil, err
	}
	return c.CloudWatch.PutMetricData(ctx, in, o...)
}

// clients are the fixture's clients behind the fault counter.
func (f *fixture) clients(fl *faults, deniedKey string) Clients {
	c := f.Clients
	c.ECR = faultyECR{c.ECR, fl}
	c.Records.S3 = faultyS3{c.Records.S3, fl, deniedKey}
	c.SSM = faultySSM{c.SSM, fl}
	c.CloudWatch = faultyCloudWatch{c.CloudWatch, fl}
	c.Evidence = faultyEvidence{c.Evidence, fl}
	return c
}

// publish runs Publish for the execution, counting its writes.
func (f *fixture) publish(exec string, fl *faults) (string, error) {
	f.t.Helper()
	if fl == nil {
		fl = &faults{budget: -1}
	}
	var log bytes.Buffer
	err := Publish(f.ctx, f.env(exec), f.clients(fl, ""), &log)
	return log.String(), err
}

// mustPublish runs Publish and fails the test on an error.
func (f *fixture) mustPublish(exec string) (*records.Publish, *faults) {
	f.t.Helper()
	fl := &faults{budget: -1}
	start := time.Now()
	log, err := f.publish(exec, fl)
	took := time.Since(start)
	if err != nil {
		f.t.Fatalf("Publish %s: %v\n%s", exec, err, log)
	}
	var rec records.Publish
	if !f.getJSON(records.PublishKey(exec, f.Env.Runtime, f.Env.Version), &rec) {
		f.t.Fatalf("Publish %s wrote no record\n%s", exec, log)
	}
	// What a Publish entry costs against moto, by path (go test -v -run
	// 'TestPublishPublishesOnlyVerifiedDigests|TestUnchangedContentKeepsPublishedDigests').
	f.t.Logf("Publish %s: %s in %s, %d writes, one process", f.Env.Runtime+" "+f.Env.Version, rec.Result, took.Round(time.Millisecond), len(fl.calls))
	return &rec, fl
}

// published is what the moving tags name, by tag.
func (f *fixture) published() map[string]string {
	tags := f.tags()
	out := map[string]string{f.Env.Version: tags[f.Env.Version]}
	for _, a := range f.Env.Architectures {
		t := runtimes.ArchTag(f.Env.Version, runtimes.Arch(a))
		out[t] = tags[t]
	}
	return out
}

// params is every consumer parameter of the fixture's version.
func (f *fixture) params() map[string]string {
	out := map[string]string{"": f.param(f.paramName(""))}
	for _, a := range f.Env.Architectures {
		out[a] = f.param(f.paramName(a))
	}
	return out
}

// objects is every object of the records bucket and its ETag.
func (f *fixture) objects() map[string]string {
	f.t.Helper()
	out := map[string]string{}
	p := s3.NewListObjectsV2Paginator(f.w.S3, &s3.ListObjectsV2Input{Bucket: aws.String(f.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(f.ctx)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)] = aws.ToString(o.ETag)
		}
	}
	return out
}

// snapshot is everything Publish may change.
type snapshot struct {
	Tags, Params, Objects map[string]string
}

func (f *fixture) snapshot() snapshot {
	return snapshot{f.tags(), f.params(), f.objects()}
}

// expectSet checks that the moving tags, the parameters and the release
// record all name the verified images vs and their index, under dated.
func (f *fixture) expectSet(exec string, vs map[string]records.Verify) records.Release {
	f.t.Helper()
	tags := f.tags()
	idx := tags[f.Env.Version]
	m, found, err := awsops.GetManifest(f.ctx, f.w.ECR, f.Repo, byTag(f.Env.Version))
	if err != nil || !found {
		f.t.Fatalf("%s:%s: %v", f.Repo, f.Env.Version, err)
	}
	children, err := awsops.IndexChildren(m)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(children) != len(f.Env.Architectures) {
		f.t.Errorf("the index names %d images, want %d", len(children), len(f.Env.Architectures))
	}
	for _, c := range children {
		if vs[c.Arch].Digest != c.Digest {
			f.t.Errorf("the index names %s for %s, the Verify record %s", c.Digest, c.Arch, vs[c.Arch].Digest)
		}
	}
	day := strings.ReplaceAll(vs[f.Env.Architectures[0]].PushedAt[:10], "-", "")
	dated := runtimes.DatedTag(f.Env.Version, day, exec)
	if tags[dated] != idx {
		f.t.Errorf("%s names %q, %s names %q", dated, tags[dated], f.Env.Version, idx)
	}
	if got := f.param(f.paramName("")); got != f.ref(idx) {
		f.t.Errorf("parameter %s = %q, want %q", f.paramName(""), got, f.ref(idx))
	}
	for _, a := range f.Env.Architectures {
		if got := tags[runtimes.ArchTag(f.Env.Version, runtimes.Arch(a))]; got != vs[a].Digest {
			f.t.Errorf("%s-%s names %s, the Verify record %s", f.Env.Version, a, got, vs[a].Digest)
		}
		if got := f.param(f.paramName(a)); got != f.ref(vs[a].Digest) {
			f.t.Errorf("parameter %s = %q, want %q", f.paramName(a), got, f.ref(vs[a].Digest))
		}
		if d, ok := tags[f.envArch(exec, a).DraftTag(a)]; ok {
			f.t.Errorf("the draft of %s is still there (%s)", a, d)
		}
	}
	var rel records.Release
	if !f.getJSON(records.ReleaseKey(f.Env.Runtime, f.Env.Version), &rel) || rel.Index != idx || rel.DatedTag != dated || rel.ExecutionID != exec {
		f.t.Errorf("release record %+v, want index %s, dated %s, execution %s", rel, idx, dated, exec)
	}
	return rel
}

// Publish publishes the digests Verify recorded, not what a draft tag
// names by the time it runs, and says what the first publish holds.
func TestPublishPublishesOnlyVerifiedDigests(t *testing.T) {
	f := newFixture(t)
	exec := executionID("6f1c2a9e", 1)
	vs := f.buildAndVerify(exec, "v1")
	// After Verify, the arm64 draft tag moves to another image (a stray
	// rebuild); the verified image stays in the repository under another tag.
	putImage(f, "kept", imageOf(exec, "v1", "arm64"))
	putImage(f, f.envArch(exec, "arm64").DraftTag("arm64"), imageOf(exec, "stray", "arm64"))
	rec, fl := f.mustPublish(exec)
	if rec.Result != records.ResultPublished || rec.Previous != nil {
		t.Errorf("record: result %s, previous %+v", rec.Result, rec.Previous)
	}
	f.expectSet(exec, vs)
	for _, a := range f.Env.Architectures {
		c := rec.Changes[a]
		if c == nil || c.PreviousKnown || c.Packages != vs[a].Inventory.Count() {
			t.Errorf("%s changes %+v: want a first publish of %d packages", a, c, vs[a].Inventory.Count())
		}
		var inv records.Inventory
		if !f.getJSON(records.InventoryKey(f.Env.Runtime, f.Env.Version, a, vs[a].Digest), &inv) || !sameContent(&inv, vs[a].Inventory) {
			t.Errorf("the %s inventory is not kept under its digest", a)
		}
	}
	if fl.count("PutMetricData") != 1 || fl.calls[len(fl.calls)-1] != "PutMetricData" {
		t.Errorf("the freshness metric is not the last write: %v", fl.calls)
	}
	// A second run changes nothing of it and writes no tag.
	rec2, fl2 := f.mustPublish(exec)
	if rec2.Result != records.ResultPublished || fl2.count("PutImage") != 0 || fl2.count("PutParameter") != 0 {
		t.Errorf("a re-run: result %s, writes %v", rec2.Result, fl2.calls)
	}
}

func putImage(f *fixture, tag string, m awsops.Manifest) {
	f.t.Helper()
	if _, err := f.w.ECR.PutImage(f.ctx, &ecr.PutImageInput{RepositoryName: aws.String(f.Repo), ImageTag: aws.String(tag),
		ImageManifest: aws.String(string(m.Bytes)), ImageManifestMediaType: aws.String(m.MediaType),
		ImageDigest: aws.String(m.Digest)}); err != nil { // moto D1
		f.t.Fatal(err)
	}
}

// Rebuilt images that hold what the published ones hold change nothing
// consumers pin: the tags and parameters keep their digests, the drafts
// go, and the runtime-version is fresh. New content then publishes, with
// what changed.
func TestUnchangedContentKeepsPublishedDigests(t *testing.T) {
	f := newFixture(t)
	e1, e2, e3 := executionID("11111111", 1), executionID("22222222", 2), executionID("33333333", 3)
	v1 := f.buildAndVerify(e1, "v1")
	f.mustPublish(e1)
	before := f.snapshot()

	f.buildAndVerify(e2, "v1")
	rec, fl := f.mustPublish(e2)
	if rec.Result != records.ResultUnchanged {
		t.Fatalf("result %s, want unchanged", rec.Result)
	}
	after := f.snapshot()
	if !maps.Equal(f.published(), mapsSub(before.Tags, f.published())) || !maps.Equal(before.Params, after.Params) {
		t.Errorf("unchanged moved something: tags %v -> %v, params %v -> %v", before.Tags, after.Tags, before.Params, after.Params)
	}
	for _, a := range f.Env.Architectures {
		if _, ok := after.Tags[f.envArch(e2, a).DraftTag(a)]; ok {
			t.Errorf("the %s draft of the unchanged execution stays", a)
		}
		if rec.Images[a] != v1[a].Digest {
			t.Errorf("the record names %s for %s, the published image is %s", rec.Images[a], a, v1[a].Digest)
		}
	}
	if fl.count("PutImage") != 0 || fl.count("PutParameter") != 0 || fl.count("PutMetricData") != 1 {
		t.Errorf("writes of an unchanged run: %v", fl.calls)
	}
	var rel records.Release
	f.getJSON(records.ReleaseKey(f.Env.Runtime, f.Env.Version), &rel)
	if rel.Result != records.ResultUnchanged || rel.Index != before.Tags[f.Env.Version] {
		t.Errorf("release %+v", rel)
	}

	v3 := f.buildAndVerify(e3, "v3")
	rec3, _ := f.mustPublish(e3)
	if rec3.Result != records.ResultPublished || rec3.Previous == nil || rec3.Previous.Index != before.Tags[f.Env.Version] {
		t.Fatalf("new content: result %s, previous %+v", rec3.Result, rec3.Previous)
	}
	f.expectSet(e3, v3)
	c := rec3.Changes["amd64"]
	if c == nil || !c.PreviousKnown || c.Base == nil || !c.RecipeChanged || len(c.Upgraded) != v3["amd64"].Inventory.Count() {
		t.Errorf("amd64 changes %+v", c)
	}
}

func mapsSub(m, keys map[string]string) map[string]string {
	out := map[string]string{}
	for k := range keys {
		out[k] = m[k]
	}
	return out
}

// stopAt makes a Publish stop where failTag's PutImage is: the dated tag
// and every tag before it are written, not that one nor what follows.
func (f *fixture) stopAt(exec, failTag string) {
	f.t.Helper()
	fl := &faults{budget: -1, failTag: failTag}
	log, err := f.publish(exec, fl)
	if err == nil || !fl.failed {
		f.t.Fatalf("Publish did not stop at %s: %v\n%s", failTag, err, log)
	}
	if !strings.Contains(err.Error(), "retry the Publish stage to complete it") || strings.Contains(err.Error(), "changed nothing") {
		f.t.Errorf("after writes, the error says: %v", err)
	}
}

// A Publish stopped between <v>-<arch> and <v> leaves them on different
// content. That split is not one published set: a retry completes it, and
// another execution with the same content publishes rather than calling it
// unchanged.
func TestSplitTagsAreCompletedNotUnchanged(t *testing.T) {
	w := startMoto(t)
	for _, retry := range []bool{true, false} {
		name := map[bool]string{true: "retried", false: "other"}[retry]
		t.Run(name, func(t *testing.T) {
			f := w.fixture(t, name, "22")
			e1, e2, e3 := executionID("11111111", 1), executionID("22222222", 2), executionID("33333333", 3)
			f.buildAndVerify(e1, "v1")
			f.mustPublish(e1)
			v2 := f.buildAndVerify(e2, "v2")
			f.stopAt(e2, f.Env.Version)
			tags := f.tags()
			if tags["22-amd64"] != v2["amd64"].Digest || tags["22"] == "" || tags["22"] == tags[f.datedOf(e2, v2)] {
				t.Fatalf("not split: %v", tags)
			}
			if retry {
				rec, _ := f.mustPublish(e2)
				if rec.Result != records.ResultPublished {
					t.Errorf("the retry records %s", rec.Result)
				}
				f.expectSet(e2, v2)
				return
			}
			v3 := f.buildAndVerify(e3, "v2") // the content e2 half published
			rec, _ := f.mustPublish(e3)
			if rec.Result != records.ResultPublished {
				t.Errorf("a split published set recorded %s, want published", rec.Result)
			}
			f.expectSet(e3, v3)
		})
	}
}

func (f *fixture) datedOf(exec string, vs map[string]records.Verify) string {
	day := strings.ReplaceAll(vs[f.Env.Architectures[0]].PushedAt[:10], "-", "")
	return runtimes.DatedTag(f.Env.Version, day, exec)
}

// A rollback's hold holds whatever the path: new content, unchanged
// content, and completing a Publish that already committed. A hold that
// cannot be read fails the entry (S3 answers AccessDenied for a missing key
// without s3:ListBucket): it is never taken for "no hold".
func TestHoldHoldsOnEveryPath(t *testing.T) {
	w := startMoto(t)
	for _, path := range []string{"new content", "unchanged", "committed", "unreadable"} {
		t.Run(path, func(t *testing.T) {
			f := w.fixture(t, strings.ReplaceAll(path, " ", "-"), "22")
			e1, e2 := executionID("11111111", 1), executionID("22222222", 2)
			f.buildAndVerify(e1, "v1")
			f.mustPublish(e1)
			content := map[bool]string{true: "v1", false: "v2"}[path == "unchanged"]
			f.buildAndVerify(e2, content)
			if path == "committed" {
				f.stopAt(e2, "22-amd64")
			}
			hold := records.Hold{SchemaVersion: 1, To: f.tags()[f.Env.Version], At: "2026-11-28T09:30:00Z", By: "arn:aws:sts::123456789012:user/op"}
			var rel records.Release
			f.getJSON(records.ReleaseKey(f.Env.Runtime, f.Env.Version), &rel)
			hold.To, hold.Index = rel.DatedTag, rel.Index
			if path != "unreadable" {
				f.putJSON(records.HoldKey(f.Env.Runtime, f.Env.Version), hold)
			}
			before := f.snapshot()
			if path == "unreadable" {
				fl := &faults{budget: -1}
				var log bytes.Buffer
				err := Publish(f.ctx, f.env(e2), f.clients(fl, records.HoldKey(f.Env.Runtime, f.Env.Version)), &log)
				if err == nil || !strings.Contains(err.Error(), "changed nothing") || !strings.Contains(err.Error(), "rollback holds") || len(fl.calls) != 0 {
					t.Fatalf("an unreadable hold: %v, writes %v", err, fl.calls)
				}
				if !reflect.DeepEqual(before, f.snapshot()) {
					t.Error("an unreadable hold changed something")
				}
				return
			}
			rec, fl := f.mustPublish(e2)
			if rec.Result != records.ResultHeld || rec.Index != rel.Index {
				t.Errorf("result %s index %s, want held at %s", rec.Result, rec.Index, rel.Index)
			}
			if got := f.published(); !maps.Equal(got, mapsSub(before.Tags, got)) || fl.count("PutImage") != 0 {
				t.Errorf("held tags moved: %v -> %v (%v)", mapsSub(before.Tags, got), got, fl.calls)
			}
			if !maps.Equal(before.Params, f.params()) {
				t.Errorf("held parameters moved")
			}
		})
	}
}

// A retried Publish of an older execution, after a newer one published,
// never moves a tag back to older content, whether it had committed (and
// moved a tag) or not; it records superseded and keeps the parameters on
// the newer digests. And the gate compares with what is published now.
func TestStaleExecutionNeverMovesTagsBack(t *testing.T) {
	w := startMoto(t)
	for _, committed := range []bool{false, true} {
		t.Run(fmt.Sprint("committed=", committed), func(t *testing.T) {
			f := w.fixture(t, fmt.Sprint("stale-", committed), "22")
			e0, older, newer := executionID("00000000", 0), executionID("aaaaaaaa", 1), executionID("bbbbbbbb", 2)
			f.buildAndVerify(e0, "v0")
			f.mustPublish(e0)
			f.buildAndVerify(older, "v1")
			if committed {
				f.stopAt(older, "22-arm64")
			}
			time.Sleep(1100 * time.Millisecond) // push times are compared to the second
			vn := f.buildAndVerify(newer, "v2")
			f.mustPublish(newer)
			f.expectSet(newer, vn)
			published, params := f.published(), f.params()

			rec, fl := f.mustPublish(older)
			if rec.Result != records.ResultSuperseded {
				t.Errorf("the older execution recorded %s, want %s", rec.Result, records.ResultSuperseded)
			}
			if got := f.published(); !maps.Equal(got, published) || !maps.Equal(f.params(), params) {
				t.Errorf("tags %v -> %v, params %v -> %v", published, got, params, f.params())
			}
			if n := fl.count("PutImage"); n != 0 {
				t.Errorf("the older execution wrote %d tags", n)
			}
			tags := f.tags()
			for _, a := range f.Env.Architectures {
				if _, ok := tags[f.envArch(older, a).DraftTag(a)]; ok {
					t.Errorf("the older execution's %s draft stays", a)
				}
			}
			var rel records.Release
			f.getJSON(records.ReleaseKey(f.Env.Runtime, f.Env.Version), &rel)
			if rel.ExecutionID != newer {
				t.Errorf("the release record is %s's, want the newer execution's", rel.ExecutionID)
			}
		})
	}
}

// Verify compared with the image published then; when another Publish
// moved <v>-<arch> since, the gate would judge against the wrong image:
// Publish refuses, changing nothing, and says to retry Verify.
func TestGateComparesWithWhatIsPublishedNow(t *testing.T) {
	f := newFixture(t)
	e0, b, a := executionID("00000000", 0), executionID("bbbbbbbb", 1), executionID("aaaaaaaa", 2)
	f.buildAndVerify(e0, "v0")
	f.mustPublish(e0)
	f.buildAndVerify(b, "v1")
	time.Sleep(1100 * time.Millisecond)
	f.buildAndVerify(a, "v2") // verified against e0's images
	f.mustPublish(b)          // older, but published first
	before := f.snapshot()
	_, err := f.publish(a, nil)
	if err == nil || !strings.Contains(err.Error(), "changed nothing") || !strings.Contains(err.Error(), "retry the Verify stage") {
		t.Fatalf("Publish after the published image moved since Verify: %v", err)
	}
	if !reflect.DeepEqual(before, f.snapshot()) {
		t.Error("the refusal changed something")
	}
}

// The vulnerability gate blocks a worse image: the published image, its
// parameters and the drafts stay, the record says why, no freshness metric.
func TestBlockedKeepsPublishedImageAndDrafts(t *testing.T) {
	f := newFixture(t)
	e1, e2 := executionID("11111111", 1), executionID("22222222", 2)
	f.buildAndVerify(e1, "v1")
	f.mustPublish(e1)
	v2 := f.buildAndVerify(e2, "v2")
	bad := v2["amd64"]
	bad.Scan.Findings = []records.Finding{{ID: "CVE-2026-9999", Severity: "CRITICAL", Package: "openssl", Version: bad.Inventory.OS["openssl"]}}
	bad.Scan.Counts = map[string]int{"CRITICAL": 1}
	f.putJSON(records.VerifyKey(e2, f.Env.Runtime, f.Env.Version, "amd64"), bad)
	before := f.snapshot()
	rec, fl := f.mustPublish(e2)
	if rec.Result != records.ResultBlocked || len(rec.BlockedBy) != 1 || !strings.HasPrefix(rec.BlockedBy[0], "amd64: CRITICAL 0 -> 1; new: CVE-2026-9999") {
		t.Fatalf("result %s, blocked by %q", rec.Result, rec.BlockedBy)
	}
	if rec.BlockedImages["amd64"] != bad.Digest || rec.Index != before.Tags[f.Env.Version] {
		t.Errorf("record %+v", rec)
	}
	after := f.snapshot()
	if !maps.Equal(before.Tags, after.Tags) || !maps.Equal(before.Params, after.Params) {
		t.Errorf("blocked moved something: %v -> %v", before.Tags, after.Tags)
	}
	if fl.count("PutMetricData") != 0 || fl.count("BatchDeleteImage") != 0 || len(fl.calls) != 1 {
		t.Errorf("a blocked run wrote %v, want only its record", fl.calls)
	}
}

// A CVE disclosed overnight in a package both images carry at the same
// version cannot block a build that changed something else.
func TestOvernightCVEInAPackageBothCarryDoesNotBlock(t *testing.T) {
	f := newFixture(t)
	e1, e2 := executionID("11111111", 1), executionID("22222222", 2)
	f.buildAndVerify(e1, "v1")
	f.mustPublish(e1)
	for _, a := range f.Env.Architectures {
		b := f.pushDraft(e2, a, imageOf(e2, "v1-npm", a))
		inv := inventoryOf("v1", a)
		inv.Npm["npm"] = "10.1"
		scan := cleanScan(b.Digest)
		scan.Findings = []records.Finding{{ID: "CVE-2026-0001", Severity: "CRITICAL", Package: "openssl", Version: inv.OS["openssl"]}}
		scan.Counts = map[string]int{"CRITICAL": 1}
		pub := f.tags()[runtimes.ArchTag("22", runtimes.Arch(a))]
		f.writeVerify(b, inv, scan, cleanScan(pub))
	}
	rec, _ := f.mustPublish(e2)
	if rec.Result != records.ResultPublished {
		t.Errorf("result %s (%q), want published", rec.Result, rec.BlockedBy)
	}
}

// Two executions whose ids share the first 8 characters publish their own
// sets: the second does not take the first's dated tag for its commit point.
func TestExecutionsSharingAnIDPrefixPublishTheirOwnSets(t *testing.T) {
	f := newFixture(t)
	a, b := executionID("0a1b2c3d", 1), executionID("0a1b2c3d", 2)
	if a[:8] != b[:8] {
		t.Fatal("the ids do not share a prefix")
	}
	f.buildAndVerify(a, "v1")
	f.mustPublish(a)
	vb := f.buildAndVerify(b, "v2")
	rec, _ := f.mustPublish(b)
	if rec.Result != records.ResultPublished {
		t.Fatalf("result %s", rec.Result)
	}
	f.expectSet(b, vb)
}

// Every Verify record's digest is read from ECR, with bytes that hash to
// it, before any outcome: a record naming a missing image, or an image
// whose bytes are not what its digest names, is refused on the published,
// unchanged, held and blocked paths alike, and nothing changes.
func TestEveryRecordDigestCheckedOnEveryPath(t *testing.T) {
	w := startMoto(t)
	for _, path := range []string{"published", "unchanged", "held", "blocked"} {
		for _, bad := range []string{"missing", "wrong-bytes"} {
			t.Run(path+"/"+bad, func(t *testing.T) {
				f := w.fixture(t, path+"-"+bad, "22")
				e1, e2 := executionID("11111111", 1), executionID("22222222", 2)
				f.buildAndVerify(e1, "v1")
				f.mustPublish(e1)
				content := map[bool]string{true: "v1", false: "v2"}[path == "unchanged"]
				vs := f.buildAndVerify(e2, content)
				if path == "held" {
					f.putJSON(records.HoldKey(f.Env.Runtime, f.Env.Version), records.Hold{SchemaVersion: 1, To: "22-r20261120-0a1b2c3d"})
				}
				r := vs["arm64"]
				if path == "blocked" {
					r.Scan.Counts = map[string]int{"CRITICAL": 3}
				}
				switch bad {
				case "missing":
					r.Digest = awsops.SHA256([]byte("never pushed"))
				case "wrong-bytes":
					// moto D1: without ImageDigest, moto gives the image a
					// digest its bytes do not hash to.
					m := imageOf(e2, "other", "arm64")
					out, err := f.w.ECR.PutImage(f.ctx, &ecr.PutImageInput{RepositoryName: aws.String(f.Repo), ImageTag: aws.String("odd"),
						ImageManifest: aws.String(string(m.Bytes)), ImageManifestMediaType: aws.String(m.MediaType)})
					if err != nil {
						t.Fatal(err)
					}
					r.Digest = aws.ToString(out.Image.ImageId.ImageDigest)
					if r.Digest == m.Digest {
						t.Skip("moto computes real digests now (D1 fixed): no image with wrong bytes to make")
					}
				}
				f.putJSON(records.VerifyKey(e2, f.Env.Runtime, f.Env.Version, "arm64"), r)
				before := f.snapshot()
				fl := &faults{budget: -1}
				log, err := f.publish(e2, fl)
				if err == nil || !strings.Contains(err.Error(), "changed nothing") || !strings.Contains(err.Error(), "arm64") {
					t.Fatalf("Publish with a bad arm64 record: %v\n%s", err, log)
				}
				if len(fl.calls) != 0 || !reflect.DeepEqual(before, f.snapshot()) {
					t.Errorf("the refusal wrote %v", fl.calls)
				}
			})
		}
	}
}

// A message that says "changed nothing" is true: every refusal before the
// first write leaves the repository, the parameters and the records as
// they were.
func TestRefusalThatSaysChangedNothingChangedNothing(t *testing.T) {
	w := startMoto(t)
	cases := map[string]func(f *fixture, exec string){
		"no verify record": func(f *fixture, exec string) {
			f.pushDraft(exec, "amd64", imageOf(exec, "v2", "amd64"))
		},
		"record of another execution": func(f *fixture, exec string) {
			vs := f.buildAndVerify(exec, "v2")
			r := vs["amd64"]
			r.ExecutionID = "ffffffff-0000-4000-8000-000000000000"
			f.putJSON(records.VerifyKey(exec, f.Env.Runtime, f.Env.Version, "amd64"), r)
		},
		"record not passed": func(f *fixture, exec string) {
			vs := f.buildAndVerify(exec, "v2")
			r := vs["arm64"]
			r.Result = "failed"
			f.putJSON(records.VerifyKey(exec, f.Env.Runtime, f.Env.Version, "arm64"), r)
		},
		"no inventory": func(f *fixture, exec string) {
			vs := f.buildAndVerify(exec, "v2")
			r := vs["arm64"]
			r.Inventory = nil
			f.putJSON(records.VerifyKey(exec, f.Env.Runtime, f.Env.Version, "arm64"), r)
		},
		"split tags held": func(f *fixture, exec string) {
			f.buildAndVerify(exec, "v2")
			putImage(f, "22-amd64", imageOf("someone", "else", "amd64"))
			f.putJSON(records.HoldKey(f.Env.Runtime, f.Env.Version), records.Hold{SchemaVersion: 1, To: "22-r20261120-0a1b2c3d"})
		},
	}
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		t.Run(name, func(t *testing.T) {
			f := w.fixture(t, strings.ReplaceAll(name, " ", "-"), "22")
			e1, e2 := executionID("11111111", 1), executionID("22222222", 2)
			f.buildAndVerify(e1, "v1")
			f.mustPublish(e1)
			cases[name](f, e2)
			before := f.snapshot()
			fl := &faults{budget: -1}
			log, err := f.publish(e2, fl)
			if err == nil || !strings.Contains(err.Error(), "Publish refused "+f.Env.Runtime+" 22 and changed nothing") {
				t.Fatalf("want a refusal: %v\n%s", err, log)
			}
			if len(fl.calls) != 0 || !reflect.DeepEqual(before, f.snapshot()) {
				t.Errorf("%v: it wrote %v", err, fl.calls)
			}
		})
	}
}

// endState is what a Publish leaves, comparable across fixtures: the
// tags by name (digests), the parameters with the repository left out,
// and the release and Publish records without their clock times.
type endState struct {
	Tags    map[string]string
	Params  map[string]string
	Release records.Release
	Publish records.Publish
	// Evidence is the artifact types attached to what each moving tag
	// names, a duplicate listed twice.
	Evidence map[string][]string
}

func (f *fixture) endState(exec string) endState {
	f.t.Helper()
	s := endState{Tags: f.tags(), Params: map[string]string{}, Evidence: f.evidenceKinds()}
	for k, v := range f.params() {
		s.Params[k] = strings.ReplaceAll(v, f.Repo, "REPO")
	}
	f.getJSON(records.ReleaseKey(f.Env.Runtime, f.Env.Version), &s.Release)
	f.getJSON(records.PublishKey(exec, f.Env.Runtime, f.Env.Version), &s.Publish)
	// Each fixture is its own runtime (and repository): those names differ.
	s.Release.CheckedAt, s.Release.ChangedAt, s.Release.Repository, s.Release.Runtime = "", "", "", ""
	p := &s.Publish
	p.CheckedAt, p.ChangedAt, p.PublishedAt, p.Repository, p.Runtime = "", "", "", "", ""
	if p.Previous != nil {
		prev := *p.Previous
		prev.PushedAt = ""
		p.Previous = &prev
	}
	return s
}

// Every runbook retry ends where an uninterrupted run ends: a Publish
// stopped after each of its writes (tags, drafts, records, parameters,
// the metric), then run again, leaves the same tags, parameters, release
// record and Publish record. Each stopped run's error tells the truth:
// "changed nothing" only when it wrote nothing.
func TestRetryAfterEachWriteEndsInTheSameState(t *testing.T) {
	w := startMoto(t)
	type scenario struct {
		content string // of the second execution, after a first publish of v1
		hold    bool
	}
	for name, sc := range map[string]scenario{"published": {"v2", false}, "unchanged": {"v1", false}, "held": {"v2", true}} {
		t.Run(name, func(t *testing.T) {
			e1, e2 := executionID("11111111", 1), executionID("22222222", 2)
			setup := func(n int) *fixture {
				f := w.fixture(t, fmt.Sprintf("retry-%s-%d", name, n+1), "22")
				f.buildAndVerify(e1, "v1")
				f.mustPublish(e1)
				f.buildAndVerify(e2, sc.content)
				if sc.hold {
					f.putJSON(records.HoldKey(f.Env.Runtime, f.Env.Version), records.Hold{SchemaVersion: 1, To: "22-r20261120-0a1b2c3d"})
				}
				return f
			}
			ref := setup(-1)
			_, fl := ref.mustPublish(e2)
			want := ref.endState(e2)
			if want.Publish.Result == "" {
				t.Fatal("no reference record")
			}
			t.Logf("%s: %d writes: %v", name, len(fl.calls), fl.calls)
			for n := 0; ; n++ {
				f := setup(n)
				stop := &faults{budget: n}
				_, err := f.publish(e2, stop)
				if !stop.failed {
					if err != nil {
						t.Fatalf("budget %d: %v", n, err)
					}
					break
				}
				if err == nil {
					t.Fatalf("budget %d: the stopped run reported success", n)
				}
				switch {
				case strings.Contains(err.Error(), "changed nothing") && n > 0:
					t.Errorf("budget %d: %d writes, and the error says %q", n, n, err)
				case !strings.Contains(err.Error(), "changed nothing") && !strings.Contains(err.Error(), "retry the Publish stage"):
					t.Errorf("budget %d: the error does not say to retry the Publish stage: %v", n, err)
				}
				if log, err := f.publish(e2, nil); err != nil {
					t.Fatalf("budget %d: the retry failed: %v\n%s", n, err, log)
				}
				if f.Metrics.fresh(f.Env.StackName, f.Env.Runtime, f.Env.Version) < 2 {
					t.Errorf("budget %d: no freshness metric after the retry", n)
				}
				if got := f.endState(e2); !reflect.DeepEqual(got, want) {
					gj, _ := json.MarshalIndent(got, "", " ")
					wj, _ := json.MarshalIndent(want, "", " ")
					t.Errorf("budget %d (stopped before %s): the retry ends in\n%s\nwant\n%s", n, nextCall(fl.calls, n), gj, wj)
				}
			}
		})
	}
}

func nextCall(calls []string, n int) string {
	if n < len(calls) {
		return calls[n]
	}
	return "the end"
}

package rollback

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/mototest"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/internal/referrers"
	"github.com/evergreen-images/evergreen/runtimes"
)

const region = "eu-west-1"

// world is what the tests seed into moto.
type world struct {
	cfg      aws.Config
	conf     config.Config
	list     *runtimes.List
	rt       *runtimes.Runtime
	v        string
	repo     string
	uri      string
	bucket   string
	topic    string
	queueURL string
	ecr      *ecr.Client
	s3       *s3.Client
	ssm      *ssm.Client
	sqs      *sqs.Client
	old, cur mototest.Release
	oldTag   string
	curTag   string
	archs    []string
	// registry stands in for the repository's registry API (moto has
	// none), where the evidence and its tags are.
	registry string
}

func setUp(t *testing.T) *world {
	t.Helper()
	mototest.Start(t, region)
	ctx := context.Background()
	cfg, err := awsops.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := runtimes.Load(filepath.Join("..", "..", "testdata", "runtimes", "fixed", "runtimes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{cfg: cfg, conf: config.Default(), list: list, rt: &list.Runtimes[0], bucket: "records-test",
		ecr: ecr.NewFromConfig(cfg), s3: awsops.NewS3(cfg), ssm: ssm.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg)}
	w.v = w.rt.Versions[0]
	w.repo = w.conf.RepositoryName(w.rt.Name)
	for _, a := range w.rt.Architectures {
		w.archs = append(w.archs, string(a))
	}
	if _, err := w.ecr.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(w.repo)}); err != nil {
		t.Fatal(err)
	}
	if w.uri, err = awsops.RepositoryURI(ctx, w.ecr, w.repo); err != nil {
		t.Fatal(err)
	}
	w.oldTag = runtimes.DatedTag(w.v, "20261120", "0a1b2c3d")
	w.curTag = runtimes.DatedTag(w.v, "20261127", "1b2c3d4e")
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	w.registry = strings.TrimPrefix(srv.URL, "http://")
	w.old = mototest.SeedRelease(t, w.ecr, w.repo, w.v, w.oldTag, w.archs, "old", false)
	w.cur = mototest.SeedRelease(t, w.ecr, w.repo, w.v, w.curTag, w.archs, "current", true)
	prefix := w.conf.ParameterPrefix() + "/" + w.rt.Name + "/" + w.v
	w.putParam(t, prefix, w.uri+"@"+w.cur.Index.Digest)
	for _, a := range w.archs {
		w.putParam(t, prefix+"/"+a, w.uri+"@"+w.cur.Images[a].Digest)
	}
	if _, err := w.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(w.bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}}); err != nil {
		t.Fatal(err)
	}
	// The SNS message is read back through an SQS queue subscribed to the
	// topic, as a subscriber would receive it.
	snsc := sns.NewFromConfig(cfg)
	top, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("changes")})
	if err != nil {
		t.Fatal(err)
	}
	w.topic = aws.ToString(top.TopicArn)
	q, err := w.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("changes")})
	if err != nil {
		t.Fatal(err)
	}
	w.queueURL = aws.ToString(q.QueueUrl)
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: top.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(fmt.Sprintf("arn:aws:sqs:%s:%s:changes", region, mototest.Account))}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) putParam(t *testing.T, name, value string) {
	t.Helper()
	if _, err := w.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) options(to string) Options {
	return Options{Config: w.conf, List: w.list, Runtime: w.rt.Name, Version: w.v, To: to, Bucket: w.bucket, TopicArn: w.topic,
		Now: time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC), Registry: w.registry}
}

// attach gives a release's images and index an SBOM (the index a
// verdict) in the world's registry, and the evidence tags when current.
func (w *world) attach(t *testing.T, rel mototest.Release, current bool) map[string]v1.Hash {
	t.Helper()
	repo, err := name.NewRepository(w.registry + "/" + w.repo)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1.Hash{}
	add := func(tag string, m awsops.Manifest, artifactType string) {
		h, _ := v1.NewHash(m.Digest)
		d, err := referrers.Attach(context.Background(), repo, v1.Descriptor{MediaType: types.MediaType(m.MediaType), Digest: h, Size: int64(len(m.Bytes))},
			artifactType, []byte(`{"about":"`+m.Digest+`"}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		et := referrers.EvidenceTag(tag, artifactType)
		out[et] = d.Digest
		if current {
			if err := referrers.TagEvidence(context.Background(), repo, d, et); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, a := range w.archs {
		add(w.v+"-"+a, rel.Images[a], referrers.ArtifactSBOM)
	}
	add(w.v, rel.Index, referrers.ArtifactVerdict)
	return out
}

func (w *world) run(o Options) (string, error) {
	var out bytes.Buffer
	err := Run(context.Background(), w.cfg, o, &out)
	return out.String(), err
}

// snapshot is everything a rollback may change: every tag and the digest
// it names, every parameter under the prefix, every object in the bucket.
func (w *world) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	imgs, err := w.ecr.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String(w.repo)})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range imgs.ImageIds {
		lines = append(lines, "tag "+aws.ToString(id.ImageTag)+" "+aws.ToString(id.ImageDigest))
	}
	ps, err := w.ssm.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String(w.conf.ParameterPrefix()), Recursive: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Parameters {
		lines = append(lines, fmt.Sprintf("param %s %s v%d", aws.ToString(p.Name), aws.ToString(p.Value), p.Version))
	}
	objs, err := w.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(w.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs.Contents {
		lines = append(lines, "object "+aws.ToString(o.Key)+" "+aws.ToString(o.ETag))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (w *world) digestOf(t *testing.T, tag string) string {
	t.Helper()
	m, found, err := awsops.GetManifest(context.Background(), w.ecr, w.repo, ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)})
	if err != nil || !found {
		t.Fatalf("tag %s: found %v, %v", tag, found, err)
	}
	return m.Digest
}

func (w *world) param(t *testing.T, name string) string {
	t.Helper()
	p, err := w.ssm.GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatalf("parameter %s: %v", name, err)
	}
	return aws.ToString(p.Parameter.Value)
}

func (w *world) object(t *testing.T, key string) []byte {
	t.Helper()
	o, err := w.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("s3://%s/%s: %v", w.bucket, key, err)
	}
	defer o.Body.Close()
	b, _ := io.ReadAll(o.Body)
	return b
}

func TestRefusalsChangeNothing(t *testing.T) {
	w := setUp(t)

	// An index naming an amd64 image that is not in the repository.
	gone := runtimes.DatedTag(w.v, "20261101", "2c3d4e5f")
	images := map[string]awsops.Manifest{}
	for _, a := range w.archs {
		images[a] = mototest.ImageManifest("gone", a)
		if a != w.archs[0] {
			mototest.Put(t, w.ecr, w.repo, "", images[a])
		}
	}
	mototest.Put(t, w.ecr, w.repo, gone, mototest.IndexOf(images, w.archs))

	// An index that names only one of the runtime's architectures.
	one := runtimes.DatedTag(w.v, "20261102", "3d4e5f60")
	single := map[string]awsops.Manifest{w.archs[0]: mototest.ImageManifest("single", w.archs[0])}
	mototest.Put(t, w.ecr, w.repo, "", single[w.archs[0]])
	mototest.Put(t, w.ecr, w.repo, one, mototest.IndexOf(single, w.archs[:1]))

	// An index stored under a digest its bytes do not hash to. ECR itself
	// refuses such a put; moto takes any digest it is given (its digest
	// deviation), which is what lets this test seed it.
	bad := runtimes.DatedTag(w.v, "20261103", "4e5f6071")
	badImages := map[string]awsops.Manifest{}
	for _, a := range w.archs {
		badImages[a] = mototest.ImageManifest("bad", a)
		mototest.Put(t, w.ecr, w.repo, "", badImages[a])
	}
	wrong := mototest.IndexOf(badImages, w.archs)
	wrong.Bytes = append(wrong.Bytes, ' ') // the digest stays that of the bytes without it
	mototest.Put(t, w.ecr, w.repo, bad, wrong)

	other := w.rt.Versions[len(w.rt.Versions)-1]
	if other == w.v {
		other = w.v + ".1"
	}
	before := w.snapshot(t)
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"moving tag", w.options(w.v), "is not a dated tag of"},
		{"draft-like", w.options(w.v + "-r2026-11-20"), "is not a dated tag of"},
		{"bad date", w.options(runtimes.DatedTag(w.v, "20261340", "0a1b2c3d")), "is not a dated tag of"},
		{"dated tag of another version", w.options(runtimes.DatedTag(other, "20261120", "0a1b2c3d")), "is not a dated tag of"},
		{"unknown version", func() Options { o := w.options(w.oldTag); o.Version = "0"; return o }(), "is not in"},
		{"unknown runtime", func() Options { o := w.options(w.oldTag); o.Runtime = "cobol"; return o }(), "runtime \"cobol\" is not in"},
		{"unknown tag", w.options(runtimes.DatedTag(w.v, "20250101", "deadbeef")), "datedTagRetentionDays"},
		{"missing child", w.options(gone), "is no longer in " + w.repo},
		{"architecture missing", w.options(one), "names no image for " + w.archs[1]},
		{"bytes not hashing to the digest", w.options(bad), "hashes to"},
	} {
		out, err := w.run(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
			continue
		}
		if out != "" {
			t.Errorf("%s: printed %q before refusing", c.name, out)
		}
		t.Logf("%s: refused: %v", c.name, err)
		if after := w.snapshot(t); after != before {
			t.Errorf("%s changed something:\nbefore:\n%s\nafter:\n%s", c.name, before, after)
		}
	}
}

func TestRollback(t *testing.T) {
	w := setUp(t)
	ctx := context.Background()
	out, err := w.run(w.options(w.oldTag))
	t.Log("\n" + out)
	if err != nil {
		t.Fatal(err)
	}

	// The tags.
	if d := w.digestOf(t, w.v); d != w.old.Index.Digest {
		t.Errorf("tag %s: %s, want the old index %s", w.v, d, w.old.Index.Digest)
	}
	for _, a := range w.archs {
		if d := w.digestOf(t, w.v+"-"+a); d != w.old.Images[a].Digest {
			t.Errorf("tag %s-%s: %s, want %s", w.v, a, d, w.old.Images[a].Digest)
		}
	}
	if d := w.digestOf(t, w.curTag); d != w.cur.Index.Digest {
		t.Errorf("the current dated tag moved: %s", d)
	}
	// The parameters.
	prefix := w.conf.ParameterPrefix() + "/" + w.rt.Name + "/" + w.v
	if p := w.param(t, prefix); p != w.uri+"@"+w.old.Index.Digest {
		t.Errorf("%s = %s", prefix, p)
	}
	if !strings.HasPrefix(w.uri, mototest.Account+".dkr.ecr."+region+".amazonaws.com/") {
		t.Errorf("repository URI %s is not <account>.dkr.ecr.<region>.amazonaws.com/<repo>", w.uri)
	}
	for _, a := range w.archs {
		if p := w.param(t, prefix+"/"+a); p != w.uri+"@"+w.old.Images[a].Digest {
			t.Errorf("%s/%s = %s", prefix, a, p)
		}
	}
	// The hold and the release record.
	var h records.Hold
	if err := json.Unmarshal(w.object(t, records.HoldKey(w.rt.Name, w.v)), &h); err != nil {
		t.Fatal(err)
	}
	if h.To != w.oldTag || h.Index != w.old.Index.Digest || h.At != "2026-11-28T09:30:00Z" || !strings.HasPrefix(h.By, "arn:aws:") {
		t.Errorf("hold: %+v", h)
	}
	var rel map[string]any
	if err := json.Unmarshal(w.object(t, records.ReleaseKey(w.rt.Name, w.v)), &rel); err != nil {
		t.Fatal(err)
	}
	wantImages := map[string]any{}
	for _, a := range w.archs {
		wantImages[a] = w.old.Images[a].Digest
	}
	for k, want := range map[string]any{"runtime": w.rt.Name, "version": w.v, "repository": w.repo, "result": "rolled-back", "executionId": "",
		"checkedAt": "2026-11-28T09:30:00Z", "changedAt": "2026-11-28T09:30:00Z", "index": w.old.Index.Digest, "datedTag": w.oldTag} {
		if rel[k] != want {
			t.Errorf("release %s = %v, want %v", k, rel[k], want)
		}
	}
	if fmt.Sprint(rel["images"]) != fmt.Sprint(wantImages) {
		t.Errorf("release images = %v, want %v", rel["images"], wantImages)
	}
	// The changelog entry.
	text := string(w.object(t, "rollbacks/"+w.rt.Name+"/"+w.v+"/20261128T093000Z.txt"))
	for _, want := range []string{
		w.repo + ":" + w.v + " " + w.cur.Index.Digest + " -> " + w.old.Index.Digest,
		w.repo + ":" + w.v + "-" + w.archs[0] + " " + w.cur.Images[w.archs[0]].Digest + " -> " + w.old.Images[w.archs[0]].Digest,
		"by " + h.By,
		"make resume RUNTIME=" + w.rt.Name + " VERSION=" + w.v,
		"TO=" + w.curTag,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("changelog lacks %q:\n%s", want, text)
		}
	}
	// The SNS message, as the subscribed queue received it.
	msgs, err := w.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.queueURL), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs.Messages) != 1 {
		t.Fatalf("%d SNS messages in the queue, want 1", len(msgs.Messages))
	}
	var env struct{ Subject, Message string }
	if err := json.Unmarshal([]byte(aws.ToString(msgs.Messages[0].Body)), &env); err != nil {
		t.Fatal(err)
	}
	if env.Subject != Subject(w.rt.Name, w.v, w.oldTag) || env.Message != text {
		t.Errorf("SNS message: subject %q, message:\n%s", env.Subject, env.Message)
	}

	// Again: nothing left to move or write but the records.
	out, err = w.run(w.options(w.oldTag))
	t.Log("\n" + out)
	if err != nil {
		t.Fatal(err)
	}
	params, unchanged := 0, 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "parameter ") {
			params++
			if strings.Contains(l, " already ") {
				unchanged++
			}
		}
	}
	if strings.Count(out, "already points at") != len(w.archs)+1 || params != len(w.archs)+1 || unchanged != params {
		t.Errorf("a second identical rollback moved or wrote something:\n%s", out)
	}
}

// The evidence tags keep the evidence of what the moving tags name: after
// a rollback they name the evidence of the images it restored.
func TestRollbackMovesTheEvidenceTagsToTheRestoredImagesEvidence(t *testing.T) {
	w := setUp(t)
	w.attach(t, w.cur, true)
	want := w.attach(t, w.old, false)
	out, err := w.run(w.options(w.oldTag))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	repo, _ := name.NewRepository(w.registry + "/" + w.repo)
	for tag, d := range want {
		got, err := remote.Head(repo.Tag(tag))
		if err != nil || got.Digest != d {
			t.Errorf("%s: %v %v, want the restored image's evidence %s\n%s", tag, got, err, d, out)
		}
	}
}

func TestSubject(t *testing.T) {
	s := Subject(strings.Repeat("a", 60), "22", "22-r20261120-0a1b2c3d")
	if len(s) > 100 {
		t.Errorf("subject of %d characters: SNS refuses more than 100", len(s))
	}
}

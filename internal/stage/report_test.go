package stage

// The Report against moto: S3 for the records, SNS for the two topics. What
// SNS sent is read from an SQS queue subscribed to each topic, so every
// message goes through moto's own checks of SNS Publish (subject and
// message size) as the SDK sends it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// reportFixture is a fixture with the changes and alert topics, each
// with a queue that receives what it is sent.
type reportFixture struct {
	*fixture
	sqs            *sqs.Client
	changes, alert string // queue URLs
	raw            bool
}

// snsMessage is one message a topic delivered.
type snsMessage struct {
	Subject, Message string
}

// newReportFixture makes a fixture named name with its topics. raw: the
// queues get the message alone (SNS's RawMessageDelivery): the envelope of
// a message near SNS's size limit is over SQS's, and loses the subject.
func newReportFixture(t *testing.T, w *motoWorld, name string, raw bool) *reportFixture {
	t.Helper()
	f := &reportFixture{fixture: w.fixture(t, name, "0"), sqs: sqs.NewFromConfig(w.cfg), raw: raw}
	f.Env.ChangesTopic, f.changes = f.topic(name+"-changes", raw)
	f.Env.AlertTopic, f.alert = f.topic(name+"-alerts", raw)
	return f
}

// topic creates a topic and a queue subscribed to it.
func (f *reportFixture) topic(name string, raw bool) (topicARN, queueURL string) {
	f.t.Helper()
	tp, err := f.w.SNS.CreateTopic(f.ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		f.t.Fatal(err)
	}
	q, err := f.sqs.CreateQueue(f.ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := f.sqs.GetQueueAttributes(f.ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		f.t.Fatal(err)
	}
	in := &sns.SubscribeInput{TopicArn: tp.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(a.Attributes["QueueArn"])}
	if raw {
		in.Attributes = map[string]string{"RawMessageDelivery": "true"}
	}
	if _, err := f.w.SNS.Subscribe(f.ctx, in); err != nil {
		f.t.Fatal(err)
	}
	return aws.ToString(tp.TopicArn), aws.ToString(q.QueueUrl)
}

// received is what the queue got since it was last read (moto delivers
// during Publish).
func (f *reportFixture) received(queueURL string) []snsMessage {
	f.t.Helper()
	var out []snsMessage
	for {
		r, err := f.sqs.ReceiveMessage(f.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			f.t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			body := aws.ToString(m.Body)
			if f.raw {
				out = append(out, snsMessage{Message: body})
			} else {
				var n snsMessage
				if err := json.Unmarshal([]byte(body), &n); err != nil {
					f.t.Fatalf("SNS's envelope %q: %v", body, err)
				}
				out = append(out, n)
			}
			if _, err := f.sqs.DeleteMessage(f.ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

// one is the one message the queue got, failing unless there is exactly one.
func (f *reportFixture) one(queueURL, what string) snsMessage {
	f.t.Helper()
	got := f.received(queueURL)
	if len(got) != 1 {
		f.t.Fatalf("the %s topic got %d messages, want 1: %+v", what, len(got), got)
	}
	return got[0]
}

// writeDay writes the Publish records of day d and returns the Env of
// the execution with RELEASES naming rels.
func (f *reportFixture) writeDay(execID string, rels []runtimes.Release, d day) Env {
	f.t.Helper()
	for _, p := range dayRecords(execID, f.Env.Registry, rels, d) {
		if p != nil {
			f.putJSON(records.PublishKey(execID, p.Runtime, p.Version), p)
		}
	}
	e := f.env(execID)
	e.Releases = releaseNames(rels)
	return e
}

// report runs the Report and returns what it printed.
func (f *reportFixture) report(e Env) (string, error) {
	var out bytes.Buffer
	err := Report(f.ctx, e, f.Clients, &out)
	return out.String(), err
}

// stored is the changelog the Report stored for the execution.
func (f *reportFixture) stored(execID string) string {
	f.t.Helper()
	b, found, err := f.Clients.Records.Get(f.ctx, records.ChangelogKey(execID))
	if err != nil || !found {
		f.t.Fatalf("the changelog of %s: found %v, %v", execID, found, err)
	}
	return string(b)
}

// The Report, against S3 and SNS, on the default list's four kinds of day
// and the two that report a problem: the stored changelog is the one sent
// and printed, it lists every runtime-version with its outcome, the subject
// is one line under SNS's limit, and a blocked runtime-version fails the
// stage with an alert, once. The sizes it logs are the changelog's on
// each kind of day (go test -v -run TestReportOnFourKindsOfDay).
func TestReportOnFourKindsOfDay(t *testing.T) {
	w := startMoto(t)
	rels := defaultReleases(t)
	for i, d := range append(append([]day(nil), fourKindsOfDay...), problemDays...) {
		t.Run(d.name, func(t *testing.T) {
			f := newReportFixture(t, w, fmt.Sprintf("day%d", i), false)
			exec := executionID("0a1b2c3d", i)
			e := f.writeDay(exec, rels, d)
			out, err := f.report(e)
			if (err != nil) != d.blocked {
				t.Fatalf("the Report: %v (blocked: %v)\n%s", err, d.blocked, out)
			}
			changelog := f.stored(exec)
			sent := f.one(f.changes, "changes")
			if sent.Message != changelog {
				t.Errorf("the message differs from the stored changelog:\n%s\n---\n%s", sent.Message, changelog)
			}
			if !strings.Contains(out, changelog) {
				t.Errorf("the build log lacks the changelog:\n%s", out)
			}
			if s := sent.Subject; len(s) > snsSubjectMax || strings.ContainsAny(s, "\n\r") || !strings.HasPrefix(s, "Evergreen images: ") {
				t.Errorf("subject %q: SNS takes one line under 100 characters", s)
			}
			alerts := f.received(f.alert)
			if d.blocked != (len(alerts) == 1) || len(alerts) > 1 {
				t.Errorf("blocked %v, alerts %+v", d.blocked, alerts)
			}
			if d.blocked && len(alerts) == 1 && !strings.Contains(alerts[0].Message, dayBlockedCVE) {
				t.Errorf("the alert does not name the new CVE:\n%s", alerts[0].Message)
			}
			checkDay(t, rels, d, changelog)
			if d.blocked {
				// The stage retries itself after the failure: it fails
				// again, and sends neither message again.
				if out, err := f.report(e); err == nil {
					t.Errorf("the retried Report passed with a blocked runtime-version:\n%s", out)
				}
				if n := len(f.received(f.changes)) + len(f.received(f.alert)); n != 0 {
					t.Errorf("the retried Report sent %d messages again", n)
				}
			}
			t.Logf("%s: %d bytes, %d lines, %d runtime-versions", d.name, len(changelog), strings.Count(changelog, "\n"), len(rels))
		})
	}
}

// A runtime-version of RELEASES without a Publish record (its entry did
// not run, or the stage was skipped) has its line in the changelog and
// counts as without an outcome; the Report passes.
func TestMissingPublishRecordIsReportedNotDropped(t *testing.T) {
	f := newReportFixture(t, startMoto(t), "missing", false)
	rels := defaultReleases(t)
	exec := executionID("0a1b2c3d", 1)
	e := f.writeDay(exec, rels, day{upgraded: 1, missing: 1})
	if out, err := f.report(e); err != nil {
		t.Fatalf("the Report failed on a runtime-version without a record: %v\n%s", err, out)
	}
	last := rels[len(rels)-1]
	sent := f.one(f.changes, "changes").Message
	for _, s := range []string{
		fmt.Sprintf("\n\n%s %s: no Publish record in this execution\n", last.Runtime.Name, last.Version),
		fmt.Sprintf("\n%d published, 0 unchanged, 0 held, 0 blocked, 1 without an outcome\n", len(rels)-1),
	} {
		if !strings.Contains(sent, s) {
			t.Errorf("the changelog lacks %q:\n%s", s, sent)
		}
	}
}

// deniedS3 answers one key with AccessDenied, as S3 answers a missing key
// to a role without s3:ListBucket (or a key it may not read). moto does not
// enforce IAM policies, so the 403 is made here, at the API the Store calls.
type deniedS3 struct {
	records.S3
	key string
}

func (d deniedS3) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if aws.ToString(in.Key) == d.key {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}
	}
	return d.S3.GetObject(ctx, in, opts...)
}

// A Publish record that cannot be read is not a missing one: the Report
// fails, naming the runtime-version, and sends and stores nothing (a
// changelog saying "no Publish record" for a published image would be
// false).
func TestUnreadablePublishRecordFailsTheReport(t *testing.T) {
	w := startMoto(t)
	rels := defaultReleases(t)
	r := rels[0]
	for name, spoil := range map[string]func(f *reportFixture, key string){
		"access-denied": func(f *reportFixture, key string) {
			f.Clients.Records.S3 = deniedS3{S3: f.Clients.Records.S3, key: key}
		},
		"not-json": func(f *reportFixture, key string) {
			if err := f.Clients.Records.Put(f.ctx, key, "application/json", []byte("{\"result\": ")); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newReportFixture(t, w, name, false)
			exec := executionID("0a1b2c3d", 1)
			e := f.writeDay(exec, rels, day{upgraded: 1})
			spoil(f, records.PublishKey(exec, r.Runtime.Name, r.Version))
			_, err := f.report(e)
			if err == nil || !strings.Contains(err.Error(), r.Runtime.Name+" "+r.Version) {
				t.Fatalf("the Report with an unreadable record of %s %s: %v", r.Runtime.Name, r.Version, err)
			}
			if n := len(f.received(f.changes)) + len(f.received(f.alert)); n != 0 {
				t.Errorf("the Report sent %d messages", n)
			}
			if _, found, _ := f.Clients.Records.Get(f.ctx, records.ChangelogKey(exec)); found {
				t.Error("the Report stored a changelog")
			}
		})
	}
}

// The changelog is sent once per execution: a Retry of the stage (or the
// stage's own retry) stores it again and says it was sent, and does not
// send it again.
func TestRetriedReportDoesNotSendTwice(t *testing.T) {
	f := newReportFixture(t, startMoto(t), "retried", false)
	rels := defaultReleases(t)
	exec := executionID("0a1b2c3d", 1)
	e := f.writeDay(exec, rels, day{upgraded: 1})
	if out, err := f.report(e); err != nil {
		t.Fatalf("the Report: %v\n%s", err, out)
	}
	first := f.one(f.changes, "changes")
	out, err := f.report(e)
	if err != nil {
		t.Fatalf("the retried Report: %v\n%s", err, out)
	}
	if got := f.received(f.changes); len(got) != 0 {
		t.Errorf("the retried Report sent the changelog again: %+v", got)
	}
	if want := fmt.Sprintf("the changelog of execution %s was sent already\n", exec); !strings.Contains(out, want) {
		t.Errorf("the retried Report's log lacks %q:\n%s", want, out)
	}
	if !strings.Contains(out, f.stored(exec)) {
		t.Errorf("the retried Report does not print the changelog it stored:\n%s", out)
	}
	// Another execution is another changelog.
	exec2 := executionID("0a1b2c3d", 2)
	if out, err := f.report(f.writeDay(exec2, rels, day{upgraded: -1})); err != nil {
		t.Fatalf("the next execution's Report: %v\n%s", err, out)
	}
	if next := f.one(f.changes, "changes"); next.Message == first.Message {
		t.Error("the next execution sent the first one's changelog")
	}
}

// A blocked runtime-version is in the changelog, is sent to the alert
// topic with its CVEs (once), and fails the stage with an error naming it.
func TestBlockedAlertsAndFailsTheStage(t *testing.T) {
	f := newReportFixture(t, startMoto(t), "blocked", false)
	rels := defaultReleases(t)
	exec := executionID("0a1b2c3d", 1)
	e := f.writeDay(exec, rels, day{upgraded: 1, blocked: true})
	b := rels[0]
	_, err := f.report(e)
	if err == nil || !strings.Contains(err.Error(), b.Runtime.Name+" "+b.Version+": ") || !strings.Contains(err.Error(), dayBlockedCVE) {
		t.Fatalf("the Report with %s %s blocked: %v, want an error naming it and its CVE", b.Runtime.Name, b.Version, err)
	}
	url := f.Clients.Records.URL(records.ChangelogKey(exec))
	alert := f.one(f.alert, "alert")
	for _, s := range []string{exec, f.Env.StackName, b.Runtime.Name + " " + b.Version + ": ", dayBlockedCVE, "The changelog: " + url + "\n"} {
		if !strings.Contains(alert.Message, s) {
			t.Errorf("the alert lacks %q:\n%s", s, alert.Message)
		}
	}
	if want := fmt.Sprintf("Evergreen images: 1 blocked by the vulnerability gate (%s)", f.Env.StackName); alert.Subject != want {
		t.Errorf("the alert's subject is %q, want %q", alert.Subject, want)
	}
	// The changelog goes to its own topic, with the block in it.
	if c := f.one(f.changes, "changes").Message; !strings.Contains(c, b.Runtime.Name+" "+b.Version+": BLOCKED by the vulnerability gate") {
		t.Errorf("the changelog does not say %s %s was blocked:\n%s", b.Runtime.Name, b.Version, c)
	}
	if _, err := f.report(e); err == nil {
		t.Error("the retried Report passed with a blocked runtime-version")
	}
	if n := len(f.received(f.alert)) + len(f.received(f.changes)); n != 0 {
		t.Errorf("the retried Report sent %d messages again", n)
	}
}

// reportSubjectThroughSNS: the subjects of a stack with a long name go
// through SNS Publish (moto refuses over 100 characters; AWS documents
// under 100, which is what is checked here).
func reportSubjectThroughSNS(t *testing.T, stack string) {
	f := newReportFixture(t, startMoto(t), "subject", false)
	rels := defaultReleases(t)
	exec := executionID("0a1b2c3d", 1)
	e := f.writeDay(exec, rels, day{upgraded: 1, blocked: true})
	e.StackName = stack
	if _, err := f.report(e); err == nil || strings.Contains(err.Error(), "sending") {
		t.Fatalf("the Report: %v, want the blocked error alone", err)
	}
	for _, m := range []snsMessage{f.one(f.changes, "changes"), f.one(f.alert, "alert")} {
		if len(m.Subject) > snsSubjectMax || !strings.HasPrefix(m.Subject, "Evergreen images: ") {
			t.Errorf("subject %q (%d bytes) with a stack name of %d", m.Subject, len(m.Subject), len(stack))
		}
	}
}

// reportLongChangelogThroughSNS: a changelog over the limit is stored
// whole and sent cut, with the note naming the stored one.
func reportLongChangelogThroughSNS(t *testing.T) {
	f := newReportFixture(t, startMoto(t), "long", true)
	exec := executionID("0a1b2c3d", 1)
	// Runtime-versions whose every image upgraded enough packages to make
	// the changelog longer than SNS takes.
	rt := &runtimes.Runtime{Name: "big", Architectures: []runtimes.Arch{runtimes.AMD64, runtimes.ARM64}}
	var rels []runtimes.Release
	for v := 1; v <= 4; v++ {
		rels = append(rels, runtimes.Release{Runtime: rt, Version: fmt.Sprint(v)})
	}
	e := f.writeDay(exec, rels, day{upgraded: 1200})
	out, err := f.report(e)
	if err != nil {
		t.Fatalf("the Report: %v", err)
	}
	whole := f.stored(exec)
	if len(whole) <= cutAbove {
		t.Fatalf("the test's changelog is %d bytes: make it longer than %d", len(whole), cutAbove)
	}
	if !strings.Contains(out, whole) {
		t.Error("the build log lacks the whole changelog")
	}
	sent := f.one(f.changes, "changes").Message
	note := fmt.Sprintf("\n[cut at %d bytes: the whole changelog is %s]\n", cutAt, f.Clients.Records.URL(records.ChangelogKey(exec)))
	if !strings.HasSuffix(sent, note) || !strings.HasPrefix(whole, strings.TrimSuffix(sent, note)) || len(sent)-len(note) != cutAt {
		t.Errorf("the message (%d bytes) is not the changelog's first %d bytes and %q", len(sent), cutAt, note)
	}
	t.Logf("a changelog of %d bytes is sent as %d", len(whole), len(sent))
}

package stage

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/evergreen-images/evergreen/internal/records"
)

// Report writes the execution's changelog, one plain-text summary of every
// runtime-version's outcome from the Publish records, next to the records
// (records.ChangelogKey), sends it to the changes topic and prints it:
// subscribers to changes are not subscribers to failures. A runtime-version
// the vulnerability gate blocked is sent to the alert topic, and fails the
// stage, so the execution counts as failed.
//
// Each message is sent once per execution: the stage retries itself after
// it fails on a blocked runtime-version, and that retry (or Retry in the
// console) must not send the changelog and the alert again.
func Report(ctx context.Context, e Env, c Clients, out io.Writer) error {
	if err := e.require("report", map[string]string{
		"PIPELINE_EXECUTION_ID": e.ExecutionID,
		"RECORDS_BUCKET":        c.Records.Bucket,
		"STACK_NAME":            e.StackName,
		"CHANGES_TOPIC_ARN":     e.ChangesTopic,
		"ALERT_TOPIC_ARN":       e.AlertTopic,
		"RELEASES":              strings.Join(e.Releases, " "),
	}); err != nil {
		return err
	}
	outcomes, err := readOutcomes(ctx, e, c.Records)
	if err != nil {
		return err
	}
	changelog := renderChangelog(changelogHead{Stack: e.StackName, ExecutionID: e.ExecutionID, SourceRevision: e.SourceRevision, At: reportNow(c)}, outcomes)
	key := records.ChangelogKey(e.ExecutionID)
	// Written on every run, the retries' included: the stored changelog is
	// the latest rendering of the same records.
	if err := c.Records.Put(ctx, key, "text/plain; charset=utf-8", []byte(changelog)); err != nil {
		return fmt.Errorf("storing the changelog: %w; retry the Report stage", err)
	}
	url := c.Records.URL(key)
	if err := sendOnce(ctx, e, c, out, "changelog", e.ChangesTopic, changesSubject(e.StackName, outcomes), changelogMessage(changelog, url)); err != nil {
		return err
	}
	io.WriteString(out, changelog)

	blocked := blockedLines(outcomes)
	if len(blocked) == 0 {
		return nil
	}
	if err := sendOnce(ctx, e, c, out, "alert", e.AlertTopic, alertSubject(e.StackName, blocked), alertMessage(e.StackName, e.ExecutionID, url, blocked)); err != nil {
		return err
	}
	return fmt.Errorf("the vulnerability gate blocked %d runtime-version(s), whose published images stay: %s; the changelog is %s. "+
		"Wait for a fixed build (a later execution), or change evergreen:vulnerabilityGate, deploy, and Release change",
		len(blocked), strings.Join(blocked, "; "), url)
}

// readOutcomes reads the Publish record of every runtime-version of
// e.Releases, in list order. A missing record is reported as such (result
// none), not dropped; a record that cannot be read fails the stage, since
// "cannot read" is not "absent" (without s3:ListBucket a missing key reads
// as 403).
func readOutcomes(ctx context.Context, e Env, store records.Store) ([]records.Publish, error) {
	outcomes := make([]records.Publish, 0, len(e.Releases))
	for _, rel := range e.Releases {
		rt, v, ok := strings.Cut(rel, "/")
		if !ok || rt == "" || v == "" {
			return nil, fmt.Errorf("RELEASES entry %q is not <runtime>/<version>: regenerate the buildspecs (make generate) and deploy", rel)
		}
		key := records.PublishKey(e.ExecutionID, rt, v)
		var p records.Publish
		found, err := store.GetJSON(ctx, key, &p)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w; retry the Report stage once the record can be read", rt, v, err)
		}
		if !found {
			outcomes = append(outcomes, outcomeNone(rt, v))
			continue
		}
		if err := records.CheckSchema(store.URL(key), p.SchemaVersion); err != nil {
			return nil, fmt.Errorf("%s %s: %w", rt, v, err)
		}
		if p.Runtime != rt || p.Version != v {
			return nil, fmt.Errorf("%s names %s %s, not %s %s: the record is not Publish's; retry the Publish stage", store.URL(key), p.Runtime, p.Version, rt, v)
		}
		outcomes = append(outcomes, p)
	}
	return outcomes, nil
}

// sendOnce publishes one message unless the execution's marker for it
// (records.ReportSentKey) says it was sent. The marker is written after
// the send: a Report stopped between the two sends again on retry, which
// is the lesser fault (a message twice, not none).
func sendOnce(ctx context.Context, e Env, c Clients, out io.Writer, what, topic, subject, message string) error {
	key := records.ReportSentKey(e.ExecutionID, what)
	_, sent, err := c.Records.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("checking whether the %s was sent: %w; retry the Report stage", what, err)
	}
	if sent {
		fmt.Fprintf(out, "the %s of execution %s was sent already\n", what, e.ExecutionID)
		return nil
	}
	if _, err := c.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Subject: aws.String(subject), Message: aws.String(message)}); err != nil {
		return fmt.Errorf("sending the %s to %s: %w; retry the Report stage", what, topic, err)
	}
	if err := c.Records.Put(ctx, key, "text/plain", []byte(records.Time(reportNow(c))+"\n")); err != nil {
		return fmt.Errorf("the %s was sent, but marking it sent failed: %w; a retried Report sends it again", what, err)
	}
	return nil
}

func reportNow(c Clients) time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

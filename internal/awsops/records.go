package awsops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Keys of the records bucket that the commands read and write (the layout
// of /work/contract13.md, shared with the pipeline's Publish).
func ReleaseKey(rt, v string) string { return "releases/" + rt + "/" + v + ".json" }
func HoldKey(rt, v string) string    { return "holds/" + rt + "/" + v + ".json" }

// RollbackKey is the changelog entry of one rollback; the UTC second keeps
// every rollback's entry.
func RollbackKey(rt, v string, at time.Time) string {
	return "rollbacks/" + rt + "/" + v + "/" + at.UTC().Format("20060102T150405Z") + ".txt"
}

// Release results.
const (
	ResultPublished  = "published"
	ResultUnchanged  = "unchanged"
	ResultHeld       = "held"
	ResultRolledBack = "rolled-back"
)

// Release is releases/<rt>/<v>.json: the latest outcome of a
// runtime-version, written by Publish and by rollback.
type Release struct {
	Runtime     string            `json:"runtime"`
	Version     string            `json:"version"`
	Repository  string            `json:"repository"`
	Result      string            `json:"result"`
	ExecutionID string            `json:"executionId"`
	CheckedAt   string            `json:"checkedAt"`
	ChangedAt   string            `json:"changedAt"`
	Index       string            `json:"index"`
	DatedTag    string            `json:"datedTag"`
	Images      map[string]string `json:"images"`
}

// Hold is holds/<rt>/<v>.json: while it exists, Publish leaves the
// runtime-version's tags where a rollback put them.
type Hold struct {
	To    string `json:"to"`
	Index string `json:"index"`
	At    string `json:"at"`
	By    string `json:"by"`
}

// TimeFormat is how the records write instants: ISO 8601, UTC, seconds.
const TimeFormat = "2006-01-02T15:04:05Z"

// NewS3 makes an S3 client; with a custom endpoint (AWS_ENDPOINT_URL, a
// local emulator) it addresses buckets by path, as bucket.host names do not
// resolve there.
func NewS3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.BaseEndpoint != nil
		// Objects written without a checksum (by the AWS CLI of the
		// pipeline's builds, say) are read without one; the SDK would log
		// a line for each to stderr.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// GetJSON reads one JSON record. found is false when the object does not
// exist.
func GetJSON(ctx context.Context, c *s3.Client, bucket, key string, v any) (found bool, err error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if IsCode(err, "NoSuchKey") {
			return false, nil
		}
		return false, fmt.Errorf("reading s3://%s/%s: %s", bucket, key, Short(err))
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return false, fmt.Errorf("reading s3://%s/%s: %v", bucket, key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("s3://%s/%s is not the JSON record expected: %v", bucket, key, err)
	}
	return true, nil
}

// Put writes one object.
func Put(ctx context.Context, c *s3.Client, bucket, key, contentType string, body []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), ContentType: aws.String(contentType)})
	if err != nil {
		return fmt.Errorf("writing s3://%s/%s: %s", bucket, key, Short(err))
	}
	return nil
}

// PutJSON writes one JSON record, indented, with a final newline.
func PutJSON(ctx context.Context, c *s3.Client, bucket, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return Put(ctx, c, bucket, key, "application/json", append(b, '\n'))
}

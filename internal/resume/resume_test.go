package resume

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/mototest"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Resume finds the bucket through the stack's outputs, as make resume
// does, removes a hold, and says so when there is none.
func TestResume(t *testing.T) {
	mototest.Start(t, "eu-west-1")
	ctx := context.Background()
	cfg, err := awsops.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := runtimes.Load(filepath.Join("..", "..", "testdata", "runtimes", "fixed", "runtimes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := config.Default()
	rt := list.Runtimes[0]
	v := rt.Versions[0]
	o := Options{Config: conf, List: list, Runtime: rt.Name, Version: v}

	// No stack yet: an error that says to deploy.
	if err := Run(ctx, cfg, o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "make deploy") {
		t.Errorf("without the stack: %v", err)
	}

	bucket := mototest.Stack(t, cfg, conf.StackName, "records-resume", "pipeline")[awsops.OutputRecordsBucket]
	s3c := awsops.NewS3(cfg)
	hold := records.Hold{SchemaVersion: records.SchemaVersion, To: runtimes.DatedTag(v, "20261120", "0a1b2c3d"), Index: "sha256:" + strings.Repeat("a", 64), At: "2026-11-28T09:30:00Z", By: "arn:aws:sts::123456789012:user/moto"}
	if err := (records.Store{S3: s3c, Bucket: bucket}).PutJSON(ctx, records.HoldKey(rt.Name, v), hold); err != nil {
		t.Fatal(err)
	}
	other := records.HoldKey(list.Runtimes[1].Name, list.Runtimes[1].Versions[0])
	if err := (records.Store{S3: s3c, Bucket: bucket}).PutJSON(ctx, other, hold); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := Run(ctx, cfg, o, &out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if !strings.Contains(out.String(), "removed   s3://"+bucket+"/"+records.HoldKey(rt.Name, v)+" (held at "+hold.To) {
		t.Errorf("output:\n%s", out.String())
	}
	var h records.Hold
	if found, err := (records.Store{S3: s3c, Bucket: bucket}).GetJSON(ctx, records.HoldKey(rt.Name, v), &h); found || err != nil {
		t.Errorf("the hold is still there (%v, %v)", found, err)
	}
	if _, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(other)}); err != nil {
		t.Errorf("another runtime-version's hold went too: %v", err)
	}

	out.Reset()
	if err := Run(ctx, cfg, o, &out); err != nil {
		t.Fatalf("a missing hold is not an error: %v", err)
	}
	t.Log("\n" + out.String())
	if !strings.HasPrefix(out.String(), "no hold ") {
		t.Errorf("output without a hold:\n%s", out.String())
	}

	o.Version = "0"
	if err := Run(ctx, cfg, o, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "is not in") {
		t.Errorf("unknown version: %v", err)
	}
}

// Package resume lifts the hold a rollback put on a runtime-version (make
// resume), so that the next pipeline execution publishes it again if its
// content differs from what is published.
package resume

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Options of one resume.
type Options struct {
	Config           config.Config
	List             *runtimes.List
	Runtime, Version string
	// Bucket is the records bucket; empty: the stack's RecordsBucket output.
	Bucket string
}

// Run deletes holds/<rt>/<v>.json and says what it deleted. No hold is not
// an error: the outcome asked for is already there.
func Run(ctx context.Context, cfg aws.Config, o Options, w io.Writer) error {
	rt, err := awsops.FindRelease(o.List, o.Runtime, o.Version)
	if err != nil {
		return err
	}
	bucket := o.Bucket
	if bucket == "" {
		n, err := awsops.StackNames(ctx, cfg, o.Config.StackName)
		if err != nil {
			return err
		}
		bucket = n.Bucket
	}
	s3c := awsops.NewS3(cfg)
	key := records.HoldKey(rt.Name, o.Version)
	var h records.Hold
	// S3 deletes a missing key without complaint, so read first to tell
	// the user whether a hold was there.
	found, err := (records.Store{S3: s3c, Bucket: bucket}).GetJSON(ctx, key, &h)
	if err != nil && !found {
		return err
	}
	if !found {
		fmt.Fprintf(w, "no hold   s3://%s/%s does not exist: Publish already publishes %s %s; nothing to do\n", bucket, key, rt.Name, o.Version)
		return nil
	}
	if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return fmt.Errorf("deleting s3://%s/%s: %s", bucket, key, awsops.Short(err))
	}
	if h.To != "" {
		fmt.Fprintf(w, "removed   s3://%s/%s (held at %s since %s by %s)\n", bucket, key, h.To, h.At, h.By)
	} else {
		// A hold that is not the JSON expected is removed all the same.
		fmt.Fprintf(w, "removed   s3://%s/%s\n", bucket, key)
	}
	fmt.Fprintf(w, "next      the next pipeline execution publishes %s %s again if its content differs from what is published\n", rt.Name, o.Version)
	return nil
}

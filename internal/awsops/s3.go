package awsops

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// NewS3 makes an S3 client for the records bucket (internal/records reads
// and writes through it); with a custom endpoint (AWS_ENDPOINT_URL, a local
// emulator) it addresses buckets by path, as bucket.host names do not
// resolve there.
func NewS3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.BaseEndpoint != nil
		// Objects written without a checksum (by an older pipeline's AWS
		// CLI, say) are read without one; the SDK would log a line for
		// each to stderr.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

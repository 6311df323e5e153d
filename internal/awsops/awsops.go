// Package awsops holds what the commands that call AWS from Go share (the
// preflight, status, rollback and resume): how they find credentials, the
// region and the endpoint, the stack's outputs, manifests in ECR and the
// records in the records bucket. It uses the caller's own credentials and region, exactly as the
// AWS CLI and the CDK CLI do, and honours AWS_ENDPOINT_URL (and the
// per-service AWS_ENDPOINT_URL_<SERVICE>), which is how the tests point it
// at a local emulator.
package awsops

import (
	"errors"
	"slices"
	"strings"

	"github.com/aws/smithy-go"
)

// Short is an error as one line: the AWS error code and message when AWS
// answered, else the first line of the error.
func Short(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// IsCode tells whether AWS answered err with one of the error codes.
func IsCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	return slices.Contains(codes, ae.ErrorCode())
}

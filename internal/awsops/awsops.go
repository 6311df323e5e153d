// Package awsops holds what the commands that call AWS from Go share (the
// preflight, status, rollback and resume): how they find credentials, the
// region and the endpoint, the stack's outputs, manifests in ECR and the
// records in the records bucket. It uses the caller's own credentials and region, exactly as the
// AWS CLI and the CDK CLI do, and honours AWS_ENDPOINT_URL (and the
// per-service AWS_ENDPOINT_URL_<SERVICE>), which is how the tests point it
// at a local emulator.
package awsops

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"
)

// Load reads the caller's AWS configuration: credentials and region from the
// environment, the shared config files and the profile (AWS_PROFILE).
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return cfg, err
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS region: set AWS_REGION, or a region in your profile (aws configure)")
	}
	return cfg, nil
}

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

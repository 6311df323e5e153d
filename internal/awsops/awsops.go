// Package awsops holds what the commands that call AWS from Go share (the
// preflight today): how they find credentials, the region and the
// endpoint. It uses the caller's own credentials and region, exactly as the
// AWS CLI and the CDK CLI do, and honours AWS_ENDPOINT_URL (and the
// per-service AWS_ENDPOINT_URL_<SERVICE>), which is how the tests point it
// at a local emulator.
package awsops

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
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

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/runtimes"
)

// The set-up the commands share: the operator commands read the project
// (cdk.json and the runtime list, as the CDK app reads them) before they
// call AWS, so a mistyped runtime fails before any credential is needed;
// every command then takes the caller's AWS configuration, bounded by its
// own timeout.

// project is the repository's configuration, read from the repository
// root (the make targets run there).
type project struct {
	// Context is cdk.json's context as written, for the keys that are not
	// the app's own (the CDK's bootstrap qualifier).
	Context map[string]any
	Config  config.Config
	List    *runtimes.List
}

func loadProject() (project, error) {
	ctx, err := config.ReadCDKJSON(config.DefaultCDKJSON)
	if err != nil {
		return project{}, err
	}
	cfg, err := config.FromContext(ctx)
	if err != nil {
		return project{}, fmt.Errorf("%s:\n%w", config.DefaultCDKJSON, err)
	}
	list, err := runtimes.Load(cfg.RuntimeList)
	if err != nil {
		return project{}, err
	}
	return project{Context: ctx, Config: cfg, List: list}, nil
}

// release checks that the list has the runtime-version (rollback, resume)
// before anything reads AWS.
func (p project) release(runtime, version string) error {
	_, err := awsops.FindRelease(p.List, runtime, version)
	return err
}

// The operator commands' bounds on their AWS calls: each is a handful of
// reads and writes, so minutes mean a hung connection, not work. The
// stages have none of their own: the CodeBuild project's timeout bounds
// them, and stops them with SIGTERM (main cancels the context then).
const (
	preflightTimeout = 2 * time.Minute
	statusTimeout    = 2 * time.Minute
	rollbackTimeout  = 2 * time.Minute
	resumeTimeout    = time.Minute
)

// loadAWS is the caller's AWS configuration (awsops.Load: the SDK's
// default chain, AWS_ENDPOINT_URL honoured). Tests replace it.
var loadAWS = awsops.Load

// withAWS runs f with the AWS configuration and a context bounded by
// timeout (0: only by ctx).
func withAWS(ctx context.Context, timeout time.Duration, f func(context.Context, aws.Config) error) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cfg, err := loadAWS(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	return f(ctx, cfg)
}

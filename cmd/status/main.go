// Command status prints where each runtime-version of the list stands
// (make status): published digests and tags, the last check, holds,
// drafts, the SSM parameters and the last pipeline execution. It only
// reads. Exit 1 when the credentials or the stack are missing.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/status"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "status:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, list, err := awsops.LoadProject()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	awsCfg, err := awsops.Load(ctx)
	if err != nil {
		return err
	}
	return status.Run(ctx, awsCfg, status.Options{Config: cfg, List: list}, os.Stdout)
}

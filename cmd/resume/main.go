// Command resume lifts the hold a rollback put on a runtime-version (make
// resume RUNTIME=node VERSION=22): the next pipeline execution publishes it
// again if its content differs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/resume"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "resume:", err)
		os.Exit(1)
	}
}

func run() error {
	var o resume.Options
	flag.StringVar(&o.Runtime, "runtime", "", "runtime, as in runtimes/runtimes.yaml (make: RUNTIME)")
	flag.StringVar(&o.Version, "version", "", "version of the runtime (make: VERSION)")
	flag.Parse()
	if o.Runtime == "" || o.Version == "" {
		return fmt.Errorf("give RUNTIME and VERSION: make resume RUNTIME=node VERSION=22")
	}
	cfg, list, err := awsops.LoadProject()
	if err != nil {
		return err
	}
	o.Config, o.List = cfg, list
	if _, err := awsops.FindRelease(list, o.Runtime, o.Version); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	awsCfg, err := awsops.Load(ctx)
	if err != nil {
		return err
	}
	return resume.Run(ctx, awsCfg, o, os.Stdout)
}

// Command rollback points a runtime-version's tags and SSM parameters back
// at one of its dated tags and holds them there (make rollback RUNTIME=node
// VERSION=22 TO=22-r20261120-0a1b2c3d). make resume lifts the hold.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/rollback"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rollback:", err)
		os.Exit(1)
	}
}

func run() error {
	var o rollback.Options
	flag.StringVar(&o.Runtime, "runtime", "", "runtime, as in runtimes/runtimes.yaml (make: RUNTIME)")
	flag.StringVar(&o.Version, "version", "", "version of the runtime (make: VERSION)")
	flag.StringVar(&o.To, "to", "", "dated tag to roll back to, <version>-r<yyyymmdd>-<id> (make: TO)")
	flag.Parse()
	if o.Runtime == "" || o.Version == "" || o.To == "" {
		return fmt.Errorf("give RUNTIME, VERSION and TO: make rollback RUNTIME=node VERSION=22 TO=22-r20261120-0a1b2c3d (make status shows what is published)")
	}
	cfg, list, err := awsops.LoadProject()
	if err != nil {
		return err
	}
	o.Config, o.List = cfg, list
	if _, err := awsops.FindRelease(list, o.Runtime, o.Version); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	awsCfg, err := awsops.Load(ctx)
	if err != nil {
		return err
	}
	return rollback.Run(ctx, awsCfg, o, os.Stdout)
}

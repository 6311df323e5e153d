// Command preflight checks the account and region of your AWS credentials
// before a deploy (make preflight). It reads cdk.json and the runtime list
// as the app does, prints one line per check with a fix, and exits 1 when a
// deploy would fail. It writes nothing to AWS.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/preflight"
	"github.com/evergreen-images/evergreen/runtimes"
)

func main() {
	failed, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "preflight:", err)
		os.Exit(2)
	}
	if failed {
		fmt.Println("preflight: a deploy would fail; fix the FAIL lines above")
		os.Exit(1)
	}
	fmt.Println("preflight: nothing found that would fail a deploy")
}

func run() (bool, error) {
	ctxMap, err := config.ReadCDKJSON(config.DefaultCDKJSON)
	if err != nil {
		return false, err
	}
	cfg, err := config.FromContext(ctxMap)
	if err != nil {
		return false, err
	}
	list, err := runtimes.Load(cfg.RuntimeList)
	if err != nil {
		return false, err
	}
	specs, err := buildspecs.Generate(list, buildspecs.OptionsFrom(cfg))
	if err != nil {
		return false, err
	}
	qualifier := preflight.DefaultQualifier
	if q, ok := ctxMap["@aws-cdk/core:bootstrapQualifier"].(string); ok && q != "" {
		qualifier = q
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	awsCfg, err := awsops.Load(ctx)
	if err != nil {
		return false, err
	}
	results := preflight.Run(ctx, preflight.NewClients(awsCfg), awsCfg.Region, preflight.Inputs{Config: cfg, List: list, Specs: specs, Qualifier: qualifier})
	for _, r := range results {
		fmt.Println(r)
	}
	return preflight.Failed(results), nil
}

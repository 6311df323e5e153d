// Command genworkflow renders .github/workflows/images.yml from the runtime
// list, the stage commands and the cdk.json context.
//
//	go run ./cmd/genworkflow                 # rewrite the workflow
//	go run ./cmd/genworkflow -check          # exit 1 if it is out of date
//	go run ./cmd/genworkflow -branch trunk   # another default branch
//
// Run it from the repository root.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evergreen-images/evergreen/runtimes"
	"github.com/evergreen-images/evergreen/workflow"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genworkflow:", err)
		os.Exit(1)
	}
}

func run() error {
	listPath := flag.String("list", runtimes.DefaultPath, "the runtime list")
	cdkJSON := flag.String("cdk-json", workflow.DefaultCDKJSON, "the CDK app's cdk.json: evergreen:schedule and evergreen:github's branch")
	branch := flag.String("branch", "", `the default branch (default: evergreen:github's branch in cdk.json, else "main")`)
	out := flag.String("out", workflow.Path, "the workflow file")
	check := flag.Bool("check", false, "write nothing; fail if the file differs from what would be written")
	flag.Parse()

	list, err := runtimes.Load(*listPath)
	if err != nil {
		return err
	}
	opts, err := workflow.OptionsFromCDKJSON(*cdkJSON)
	if err != nil {
		return err
	}
	if *branch != "" {
		opts.Branch = *branch
	}
	content, err := workflow.Generate(list, opts)
	if err != nil {
		return err
	}
	got, err := os.ReadFile(*out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if bytes.Equal(got, content) {
		return nil
	}
	if *check {
		return fmt.Errorf("%s is out of date; run: go run ./cmd/genworkflow", *out)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, content, 0o644)
}

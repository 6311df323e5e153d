// Command evergreen is the CDK app: it reads the runtime list and the cdk.json
// context, validates both, and synthesizes the EvergreenImages stack.
// `cdk synth` and `cdk deploy` run it (see cdk.json).
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/eol"
	"github.com/evergreen-images/evergreen/internal/source"
	"github.com/evergreen-images/evergreen/runtimes"
	"github.com/evergreen-images/evergreen/stacks"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	// The jsii runtime unpacks itself into the temp directory when the
	// CDK's packages initialise, before any validation: only Close removes
	// it, so it is deferred first, or every run that stops on bad input
	// leaves a 2 MB jsii-runtime.* folder behind.
	defer jsii.Close()
	// aws-cdk-lib writes validation-report.json into the output folder when
	// its validation fails, and the CDK CLI reads that file from there after
	// every synth: a report left by a failed run would fail the next, fixed
	// one with the old error. Each synth starts without it.
	if dir := os.Getenv("CDK_OUTDIR"); dir != "" {
		if err := os.Remove(filepath.Join(dir, "validation-report.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}

	// Everything is validated before the CDK starts (its Node.js process
	// costs seconds) and before the first construct exists, so a bad list or
	// context value fails fast and writes nothing.
	ctx, fromFile, err := config.AppContext()
	if err != nil {
		return err
	}
	cfg, err := config.FromContext(ctx)
	if err != nil {
		return err
	}
	list, err := runtimes.Load(cfg.RuntimeList)
	if err != nil {
		return err
	}
	// Versions past or near their upstream end of life are warnings, not
	// errors: a team may keep one knowingly.
	if err := eol.Warn(os.Stderr, list, eol.DefaultPath, time.Now()); err != nil {
		return err
	}

	// With no Git source, the pipeline's source is a file asset of this
	// app: the repository's committed files.
	var src *source.Archive
	if cfg.Source == nil {
		if err := checkCommitted(cfg.RuntimeList, list); err != nil {
			return err
		}
		if src, err = source.Make("."); err != nil {
			return err
		}
		defer src.Remove()
		if src.Dirty {
			fmt.Fprintf(os.Stderr, "warning: the work tree has uncommitted changes; the pipeline's source is commit %s without them (git archive HEAD)\n", src.Commit[:12])
		}
	}

	// A construct that rejects its props panics through jsii; report its
	// message, not a Go stack trace.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	// aws-cdk-lib validates the template against CloudFormation's schemas at
	// every synth, and for this stack that costs more than the rest of the
	// synth (compare: time CDK_VALIDATION=true make synth, and without). make test runs that
	// validation (the stacks and validate tests) and cfn-lint on every
	// template, so the app skips it unless asked: CDK_VALIDATION=true make synth.
	appProps := &awscdk.AppProps{
		BuiltinCloudFormationValidation: jsii.Bool(os.Getenv("CDK_VALIDATION") == "true"),
	}
	// Under the CLI the app reads the same context from CDK_CONTEXT_JSON
	// itself; run directly, it gets cdk.json's, feature flags included.
	if fromFile {
		appProps.Context = &ctx
	}
	app := awscdk.NewApp(appProps)
	specs, err := buildspecs.Generate(list, buildspecs.OptionsFrom(cfg))
	if err != nil {
		return err
	}

	stacks.NewEvergreenStack(app, cfg.StackName, &stacks.EvergreenStackProps{
		StackProps: awscdk.StackProps{
			Description: jsii.String("Evergreen base and CI/CD images: ECR repositories and the daily build, verify and publish pipeline"),
		},
		List:      list,
		Specs:     specs,
		Config:    cfg,
		SourceZip: sourceZip(src),
	})
	stacks.AddNagChecks(app)
	asm := app.Synth(nil)
	return stacks.CheckLimits(*asm.Directory(), cfg.StackName)
}

// checkCommitted refuses a deploy whose source would lack what the list
// needs: the default S3 source is git archive HEAD, so a runtime folder or
// a list edit not committed yet would reach the pipeline as missing, and
// Build would fail in AWS a day later.
func checkCommitted(listPath string, list *runtimes.List) error {
	paths := []string{listPath}
	for _, rt := range list.Runtimes {
		paths = append(paths, filepath.Join(filepath.Dir(listPath), rt.Name))
	}
	var missing, add []string
	for _, p := range paths {
		files, err := source.Uncommitted(".", p)
		if err != nil {
			return err
		}
		if len(files) > 0 {
			missing, add = append(missing, files...), append(add, filepath.ToSlash(p))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("the pipeline's source is the last commit (git archive HEAD, the default S3 source), and it would lack what the runtime list needs:\n  %s\n  fix: commit them (git add %s && git commit), then synthesize or deploy again",
		strings.Join(missing, "\n  "), strings.Join(add, " "))
}

func sourceZip(a *source.Archive) string {
	if a == nil {
		return ""
	}
	return a.Path
}

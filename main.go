// Command evergreen is the CDK app: it reads the runtime list and the cdk.json
// context, validates both, and synthesizes the EvergreenImages stack.
// `cdk synth` and `cdk deploy` run it (see cdk.json).
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/runtimes"
	"github.com/evergreen-images/evergreen/stacks"
)

// StackName is the CloudFormation stack `cdk deploy` creates.
const StackName = "EvergreenImages"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	// Everything is validated before the CDK starts (its Node.js process
	// costs seconds) and before the first construct exists, so a bad list or
	// context value fails fast and writes nothing.
	ctx, fromFile, err := cdkContext()
	if err != nil {
		return err
	}
	get := func(key string) any { return ctx[key] }
	listPath, err := stacks.ContextString(get, stacks.CtxRuntimeList)
	if err != nil {
		return err
	}
	if listPath == "" {
		listPath = runtimes.DefaultPath
	}
	list, err := runtimes.Load(listPath)
	if err != nil {
		return err
	}
	cfg, err := stacks.ConfigFromContext(get)
	if err != nil {
		return err
	}
	gh, err := stacks.GitHubConfigFromContext(get)
	if err != nil {
		return err
	}

	defer jsii.Close()
	// A construct that rejects its props panics through jsii; report its
	// message, not a Go stack trace.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	// aws-cdk-lib validates the template against CloudFormation's schemas at
	// every synth, and for this stack that costs more than the rest of the
	// synth (measured: 2.7 s with it, 1.0 s without). make test runs that
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
	specs, err := buildspecs.Generate(list, buildspecs.DefaultImages())
	if err != nil {
		return err
	}

	stacks.NewEvergreenStack(app, StackName, &stacks.EvergreenStackProps{
		StackProps: awscdk.StackProps{
			Description: jsii.String("Evergreen base and CI/CD images: ECR repositories and the daily build, verify and publish pipeline"),
		},
		List:   list,
		Specs:  specs,
		Config: cfg,
		GitHub: gh,
	})
	stacks.AddNagChecks(app)
	asm := app.Synth(nil)
	return stacks.CheckLimits(*asm.Directory(), StackName)
}

// cdkContext reads the context the CDK CLI hands to the app (cdk.json, -c
// flags): the same JSON that awscdk.NewApp reads, read here so that it can be
// validated before the CDK starts. Run without the CLI (go run .), it is
// cdk.json's context, and fromFile is true.
func cdkContext() (ctx map[string]any, fromFile bool, err error) {
	ctx = map[string]any{}
	s, underCLI := os.LookupEnv("CDK_CONTEXT_JSON")
	if !underCLI {
		data, err := os.ReadFile("cdk.json")
		if err != nil {
			return nil, false, fmt.Errorf("run from the repository root (next to cdk.json): %w", err)
		}
		var file struct {
			Context map[string]any `json:"context"`
		}
		if err := json.Unmarshal(data, &file); err != nil {
			return nil, false, fmt.Errorf("cdk.json: %w", err)
		}
		if file.Context != nil {
			ctx = file.Context
		}
		return ctx, true, nil
	}
	if s != "" {
		if err := json.Unmarshal([]byte(s), &ctx); err != nil {
			return nil, false, fmt.Errorf("reading CDK_CONTEXT_JSON: %w", err)
		}
	}
	// The CLI moves a large context to a file and names it here.
	if path := os.Getenv("CONTEXT_OVERFLOW_LOCATION_ENV"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, false, fmt.Errorf("reading the CDK context file: %w", err)
		}
		more := map[string]any{}
		if err := json.Unmarshal(data, &more); err != nil {
			return nil, false, fmt.Errorf("reading the CDK context file %s: %w", path, err)
		}
		for k, v := range more {
			ctx[k] = v
		}
	}
	return ctx, false, nil
}

// Command evergreen is the CDK app: it reads the runtime list and the cdk.json
// context, validates both, and synthesizes the EvergreenImages stack.
// `cdk synth` and `cdk deploy` run it (see cdk.json).
package main

import (
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

func run() error {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	get := func(key string) any { return app.Node().TryGetContext(jsii.String(key)) }

	// Everything is validated before the first construct exists, so a bad
	// list or context value writes nothing.
	listPath := runtimes.DefaultPath
	if v, ok := get(stacks.CtxRuntimeList).(string); ok && v != "" {
		listPath = v
	}
	list, err := runtimes.Load(listPath)
	if err != nil {
		return err
	}
	cfg, err := stacks.ConfigFromContext(get)
	if err != nil {
		return err
	}
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
	})
	asm := app.Synth(nil)
	return stacks.CheckLimits(*asm.Directory(), StackName)
}

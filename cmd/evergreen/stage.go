package main

import (
	"context"
	"flag"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/evergreen-images/evergreen/internal/stage"
)

// stageFunc is one stage's entry point in internal/stage.
type stageFunc func(ctx context.Context, e stage.Env, c stage.Clients, out io.Writer) error

// stages are the subcommands of evergreen stage, in pipeline order. Their
// names are the buildspecs' stage names (buildspecs.Stage): each
// buildspec's build phase runs `evergreen stage <its stage>`.
var stages = []struct {
	name, summary, help string
	run                 stageFunc
}{
	{"build", "Build and push the entry's draft image, and record its digest",
		"One build-graph entry of the Build stage: RUNTIME, REPOSITORY, VERSION, ARCH,\nBASE_IMAGE and BASE_REGISTRY name it.", stage.Build},
	{"verify", "Self-test, inventory and scan the recorded draft on its own architecture",
		"One build-graph entry of the Verify stage: RUNTIME, REPOSITORY, VERSION and\nARCH name it; VULNERABILITY_GATE, SCAN_WAIT_SECONDS, SIGNING and\nENHANCED_SCANNING say how scans are judged.", stage.Verify},
	{"publish", "Publish the verified drafts of a runtime-version as its tags, when their content changed",
		"One build-graph entry of the Publish stage: RUNTIME, REPOSITORY, VERSION and\nARCHITECTURES name it.", stage.Publish},
	{"report", "Write the execution's changelog and send it; alert and fail on blocked versions",
		"The Report stage (one plain build): RELEASES lists the runtime-versions,\nCHANGES_TOPIC_ARN and ALERT_TOPIC_ARN the topics.", stage.Report},
}

func stageCommand() *command {
	c := &command{
		name:    "stage",
		args:    "build|verify|publish|report",
		summary: "Run one of the pipeline's stages (CodeBuild and the GitHub workflow run it)",
		help: `A stage reads everything from the environment, as CodeBuild sets it:
PIPELINE_EXECUTION_ID (it ties the stages of one execution together),
SOURCE_REVISION, REGISTRY, RECORDS_BUCKET, AWS_REGION, the entry's variables
from the buildspec's build graph, and the project's (internal/stage/env.go
lists them all). It uses the build's own AWS credentials. Every stage is
safe to run again in the same execution.`,
	}
	for _, s := range stages {
		c.sub = append(c.sub, &command{
			name:    s.name,
			summary: s.summary,
			help:    s.help + "\n\nReads the environment; see evergreen stage --help.",
			run: func(ctx context.Context, std ioStreams, _ *flag.FlagSet) error {
				return runStage(ctx, s.run, std)
			},
		})
	}
	return c
}

func runStage(ctx context.Context, run stageFunc, std ioStreams) error {
	e, err := stage.EnvFromOS()
	if err != nil {
		return err
	}
	return withAWS(ctx, 0, func(ctx context.Context, cfg aws.Config) error {
		c := stage.NewClients(cfg, e.RecordsBucket, stage.ExecDocker{})
		c.Evidence = stage.RegistryEvidence(c.ECR, e.Registry)
		return run(ctx, e, c, std.out)
	})
}

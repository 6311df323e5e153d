package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/internal/preflight"
	"github.com/evergreen-images/evergreen/internal/resume"
	"github.com/evergreen-images/evergreen/internal/rollback"
	"github.com/evergreen-images/evergreen/internal/status"
)

// errPreflightFailed: the checks ran and at least one says a deploy would
// fail. Their lines are the explanation; the error only sets the status.
var errPreflightFailed = errors.New("a deploy would fail; fix the FAIL lines above")

func preflightCommand() *command {
	return &command{
		name:    "preflight",
		summary: "Check the account and region of your AWS credentials before a deploy",
		help: `Reads cdk.json and the runtime list as the app does, and prints one line
per check with a fix: the credentials, the CDK bootstrap, the stack's state,
the repositories, the registry's scanning rules, CodeBuild's concurrency
quotas, the region. Exit 1 when a deploy would fail. Writes nothing to AWS.

make preflight runs it.`,
		run: func(ctx context.Context, std ioStreams, _ *flag.FlagSet) error {
			p, err := loadProject()
			if err != nil {
				return err
			}
			specs, err := buildspecs.Generate(p.List, buildspecs.OptionsFrom(p.Config))
			if err != nil {
				return err
			}
			qualifier := preflight.DefaultQualifier
			if q, ok := p.Context["@aws-cdk/core:bootstrapQualifier"].(string); ok && q != "" {
				qualifier = q
			}
			return withAWS(ctx, preflightTimeout, func(ctx context.Context, cfg aws.Config) error {
				results := preflight.Run(ctx, preflight.NewClients(cfg), cfg.Region, preflight.Inputs{Config: p.Config, List: p.List, Specs: specs, Qualifier: qualifier})
				for _, r := range results {
					fmt.Fprintln(std.out, r)
				}
				if preflight.Failed(results) {
					return errPreflightFailed
				}
				fmt.Fprintln(std.out, "preflight: nothing found that would fail a deploy")
				return nil
			})
		},
	}
}

func statusCommand() *command {
	return &command{
		name:    "status",
		summary: "Show where each runtime-version of the list stands in the deployed stack",
		help: `The published digest and dated tag, the last check, holds, drafts,
whether the SSM parameters agree with the tags, the last pipeline
execution. Reads only; exit 1 when the credentials or the stack are missing.

make status runs it.`,
		run: func(ctx context.Context, std ioStreams, _ *flag.FlagSet) error {
			p, err := loadProject()
			if err != nil {
				return err
			}
			return withAWS(ctx, statusTimeout, func(ctx context.Context, cfg aws.Config) error {
				return status.Run(ctx, cfg, status.Options{Config: p.Config, List: p.List}, std.out)
			})
		},
	}
}

func rollbackCommand() *command {
	var o rollback.Options
	return &command{
		name:    "rollback",
		args:    "-runtime R -version V -to TAG",
		summary: "Point a runtime-version's tags and parameters back at one of its dated tags, and hold them there",
		help: `Every check comes before the first change: a refused rollback changes
nothing. The hold lasts until evergreen resume (make resume) lifts it.

make rollback RUNTIME=node VERSION=22 TO=22-r20261120-0a1b2c3d runs it;
make status shows the dated tags.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.Runtime, "runtime", "", "runtime, as in the runtime list (make: RUNTIME)")
			fs.StringVar(&o.Version, "version", "", "version of the runtime (make: VERSION)")
			fs.StringVar(&o.To, "to", "", "dated tag to roll back to, <version>-r<yyyymmdd>-<id> (make: TO)")
		},
		run: func(ctx context.Context, std ioStreams, _ *flag.FlagSet) error {
			if o.Runtime == "" || o.Version == "" || o.To == "" {
				return usageError{"give -runtime, -version and -to: make rollback RUNTIME=node VERSION=22 TO=22-r20261120-0a1b2c3d (make status shows what is published)"}
			}
			p, err := loadProject()
			if err != nil {
				return err
			}
			o.Config, o.List = p.Config, p.List
			if err := o.Validate(); err != nil {
				return err
			}
			return withAWS(ctx, rollbackTimeout, func(ctx context.Context, cfg aws.Config) error {
				return rollback.Run(ctx, cfg, o, std.out)
			})
		},
	}
}

func resumeCommand() *command {
	var o resume.Options
	return &command{
		name:    "resume",
		args:    "-runtime R -version V",
		summary: "Lift a rollback's hold: the next pipeline execution publishes again",
		help: `The next execution publishes the runtime-version again if its content
differs from what is published. No hold is not an error.

make resume RUNTIME=node VERSION=22 runs it.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.Runtime, "runtime", "", "runtime, as in the runtime list (make: RUNTIME)")
			fs.StringVar(&o.Version, "version", "", "version of the runtime (make: VERSION)")
		},
		run: func(ctx context.Context, std ioStreams, _ *flag.FlagSet) error {
			if o.Runtime == "" || o.Version == "" {
				return usageError{"give -runtime and -version: make resume RUNTIME=node VERSION=22"}
			}
			p, err := loadProject()
			if err != nil {
				return err
			}
			if err := p.release(o.Runtime, o.Version); err != nil {
				return err
			}
			o.Config, o.List = p.Config, p.List
			return withAWS(ctx, resumeTimeout, func(ctx context.Context, cfg aws.Config) error {
				return resume.Run(ctx, cfg, o, std.out)
			})
		},
	}
}

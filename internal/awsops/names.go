package awsops

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Names are the stack's resources the commands use, from its outputs.
type Names struct {
	Bucket   string // RecordsBucket
	Topic    string // ChangesTopicArn; empty when the deployed stack predates it
	Pipeline string // PipelineName
}

// StackNames reads Names from the outputs of the deployed stack.
func StackNames(ctx context.Context, cfg aws.Config, stack string) (Names, error) {
	out, err := StackOutputs(ctx, cfg, stack)
	if err != nil {
		return Names{}, err
	}
	n := Names{Bucket: out[OutputRecordsBucket], Topic: out[OutputChangesTopic], Pipeline: out[OutputPipelineName]}
	if n.Bucket == "" {
		return n, fmt.Errorf("stack %s has no %s output: deploy the current version of the app (make deploy)", stack, OutputRecordsBucket)
	}
	return n, nil
}

// FindRelease finds a runtime-version in the runtime list, or says which
// ones the list has.
func FindRelease(list *runtimes.List, runtime, version string) (*runtimes.Runtime, error) {
	var names []string
	for i := range list.Runtimes {
		rt := &list.Runtimes[i]
		names = append(names, rt.Name)
		if rt.Name != runtime {
			continue
		}
		if !slices.Contains(rt.Versions, version) {
			return nil, fmt.Errorf("version %q of %s is not in %s (its versions: %s): give one of them as VERSION", version, runtime, list.Path, strings.Join(rt.Versions, ", "))
		}
		return rt, nil
	}
	return nil, fmt.Errorf("runtime %q is not in %s (its runtimes: %s): give one of them as RUNTIME", runtime, list.Path, strings.Join(names, ", "))
}

// LoadProject reads cdk.json and the runtime list it names, as the app
// does, from the repository root.
func LoadProject() (config.Config, *runtimes.List, error) {
	cfg, err := config.LoadCDKJSON(config.DefaultCDKJSON)
	if err != nil {
		return cfg, nil, err
	}
	list, err := runtimes.Load(cfg.RuntimeList)
	return cfg, list, err
}

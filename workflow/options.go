package workflow

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/evergreen-images/evergreen/stacks"
)

// DefaultCDKJSON is the file whose context the CDK app reads.
const DefaultCDKJSON = "cdk.json"

// OptionsFromCDKJSON reads the options from the context in cdk.json, the one
// place the CDK app reads them from too: the schedule (evergreen:schedule, or
// the app's default) and the default branch (evergreen:github's branch, or
// "main" when the key is absent). The generator and the drift test both call
// it, so a change to either value makes the committed workflow stale.
func OptionsFromCDKJSON(path string) (Options, error) {
	ctx := map[string]any{}
	data, err := os.ReadFile(path)
	if err != nil {
		return Options{}, err
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return Options{}, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Context != nil {
		ctx = doc.Context
	}
	get := func(k string) any { return ctx[k] }
	cfg, err := stacks.ConfigFromContext(get)
	if err != nil {
		return Options{}, fmt.Errorf("%s: %w", path, err)
	}
	o := Options{Branch: "main", Schedule: cfg.Schedule}
	gh, err := stacks.GitHubConfigFromContext(get)
	if err != nil {
		return Options{}, fmt.Errorf("%s: %w", path, err)
	}
	if gh != nil {
		o.Branch = gh.Branch
	}
	return o, nil
}

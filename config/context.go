package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// DefaultCDKJSON is the file whose context the CDK app reads.
const DefaultCDKJSON = "cdk.json"

// ReadCDKJSON returns the context of a cdk.json file.
func ReadCDKJSON(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("run from the repository root (next to cdk.json): %w", err)
	}
	var file struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// The CDK reads context only from "context": a key of ours anywhere
	// else is silently ignored by it (an alarm email that subscribes no
	// one), so it is an error here.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		if strings.HasPrefix(k, "evergreen:") {
			return nil, fmt.Errorf("%s: %q is at the top level, outside \"context\", where the CDK ignores it\n  fix: move it into the \"context\" object of %s", path, k, path)
		}
	}
	if file.Context == nil {
		file.Context = map[string]any{}
	}
	return file.Context, nil
}

// LoadCDKJSON reads and validates cdk.json's evergreen:* keys: what the
// generators and the AWS commands use, so that they agree with the app.
func LoadCDKJSON(path string) (Config, error) {
	ctx, err := ReadCDKJSON(path)
	if err != nil {
		return Config{}, err
	}
	c, err := FromContext(ctx)
	if err != nil {
		return c, fmt.Errorf("%s:\n%w", path, err)
	}
	return c, nil
}

// AppContext is the context the CDK app runs with. Under the CDK CLI it is
// the JSON the CLI hands over (cdk.json merged with -c flags and
// cdk.context.json); run directly (go run .), it is cdk.json's, and fromFile
// is true.
func AppContext() (ctx map[string]any, fromFile bool, err error) {
	s, underCLI := os.LookupEnv("CDK_CONTEXT_JSON")
	if !underCLI {
		ctx, err := ReadCDKJSON(DefaultCDKJSON)
		return ctx, true, err
	}
	ctx = map[string]any{}
	// cdk.json is read under the CLI too, for its misplaced keys and to
	// tell a value from cdk.json apart from one given with -c.
	file, err := ReadCDKJSON(DefaultCDKJSON)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if strings.TrimSpace(s) != "" {
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
	for k, v := range ctx {
		if !strings.HasPrefix(k, "evergreen:") {
			continue
		}
		if fv, ok := file[k]; !ok || !sameJSON(fv, v) {
			cliOrigins[k] = struct{}{}
		}
	}
	return ctx, false, nil
}

// cliOrigins are the keys whose value the CLI handed over differs from
// cdk.json's: given with -c (or kept in cdk.context.json). Error names
// them so.
var cliOrigins = map[string]struct{}{}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// Markdown is the table of context keys (docs/configuration.md), generated from Keys.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| Key | Type | Default | What it does |\n| --- | --- | --- | --- |\n")
	for _, k := range Keys {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Name, k.Type, k.Default, k.Meaning)
	}
	return b.String()
}

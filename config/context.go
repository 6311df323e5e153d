package config

import (
	"encoding/json"
	"fmt"
	"os"
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
	return ctx, false, nil
}

// Markdown is the README's table of context keys, generated from Keys.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| Key | Type | Default | What it does |\n| --- | --- | --- | --- |\n")
	for _, k := range Keys {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Name, k.Type, k.Default, k.Meaning)
	}
	return b.String()
}

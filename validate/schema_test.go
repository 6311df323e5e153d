package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const schemaPath = "buildspecs/schema/batch-buildspec.schema.json"

var compileSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open(filepath.Join(repoRoot, schemaPath))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	url := filepath.Join(repoRoot, schemaPath) // errors name the file
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
})

func batchSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	s, err := compileSchema()
	if err != nil {
		t.Fatalf("compiling %s: %v", schemaPath, err)
	}
	return s
}

// yamlToJSONValue decodes a YAML document into the values encoding/json
// produces (what the validator expects): numbers stay numbers, strings stay
// strings, so `version: "0.2"` and `version: 0.2` differ as they do for
// CodeBuild.
func yamlToJSONValue(content []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(content, &v); err != nil {
		return nil, err
	}
	v, err := jsonCompatible(v)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
}

func jsonCompatible(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			y, err := jsonCompatible(x)
			if err != nil {
				return nil, err
			}
			t[k] = y
		}
		return t, nil
	case map[any]any:
		// A key YAML read as a number or boolean: JSON has string keys only.
		out := make(map[string]any, len(t))
		for k, x := range t {
			y, err := jsonCompatible(x)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = y
		}
		return out, nil
	case []any:
		for i, x := range t {
			y, err := jsonCompatible(x)
			if err != nil {
				return nil, err
			}
			t[i] = y
		}
		return t, nil
	case time.Time:
		// An unquoted date (2026-01-01) is a timestamp to YAML.
		return t.Format(time.RFC3339), nil
	}
	return v, nil
}

// validateBuildspec validates one buildspec: the schema, plus what JSON Schema
// cannot say: identifiers are unique, and depend-on names an entry of the
// same graph.
func validateBuildspec(content []byte) error {
	s, err := compileSchema()
	if err != nil {
		return err
	}
	v, err := yamlToJSONValue(content)
	if err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	if err := s.Validate(v); err != nil {
		return err
	}
	var doc struct {
		Batch struct {
			Graph []struct {
				Identifier string   `yaml:"identifier"`
				DependOn   []string `yaml:"depend-on"`
			} `yaml:"build-graph"`
			List []struct {
				Identifier string `yaml:"identifier"`
			} `yaml:"build-list"`
		} `yaml:"batch"`
	}
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	ids := make([]string, 0, len(doc.Batch.Graph)+len(doc.Batch.List))
	for _, e := range doc.Batch.Graph {
		ids = append(ids, e.Identifier)
	}
	for _, e := range doc.Batch.List {
		if e.Identifier != "" {
			ids = append(ids, e.Identifier)
		}
	}
	for _, id := range ids {
		if seen[id] {
			errs = append(errs, fmt.Errorf("identifier %s is used twice", id))
		}
		seen[id] = true
	}
	for _, e := range doc.Batch.Graph {
		for _, d := range e.DependOn {
			if !seen[d] {
				errs = append(errs, fmt.Errorf("%s: depend-on %s names no entry of the graph", e.Identifier, d))
			}
		}
	}
	return errors.Join(errs...)
}

// describe formats a validation error; the verbose form of a schema error
// names each failing location.
func describe(err error) string {
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return fmt.Sprintf("%#v", ve)
	}
	return err.Error()
}

// TestBuildspecsMatchSchema validates every buildspec the app inlines (the
// default list and the 60-version list, every part) and the committed files
// in buildspecs/.
func TestBuildspecsMatchSchema(t *testing.T) {
	batchSchema(t)
	s := synth(t)
	start := time.Now()
	n := 0
	for _, stack := range []string{defaultStack, sixtyStack, optionsStack} {
		for _, sp := range s.specs[stack] {
			n++
			if err := validateBuildspec(sp.Content); err != nil {
				t.Errorf("%s %s does not match %s:\n%s", stack, sp.FileName(), schemaPath, describe(err))
			}
		}
	}
	committed, err := filepath.Glob(filepath.Join(repoRoot, "buildspecs", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range committed {
		n++
		content, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateBuildspec(content); err != nil {
			rel, _ := filepath.Rel(repoRoot, f)
			t.Errorf("%s does not match %s:\n%s", rel, schemaPath, describe(err))
		}
	}
	report("JSON Schema (%s): %s (inlined in the three templates, one with depend-on chains, and committed) in %s", schemaPath, plural(n, "buildspec", "buildspecs"), since(start))
}

// TestSchemaRejectsRealMistakes: each case is a small batch buildspec with
// one mistake people really make; the schema must reject it, and the same
// buildspec without the mistake must pass (so each case fails for its own
// reason).
func TestSchemaRejectsRealMistakes(t *testing.T) {
	batchSchema(t)
	const good = `version: 0.2
batch:
  fast-fail: false
  build-graph:
    - identifier: node_22_arm64
      env:
        type: ARM_CONTAINER
        image: aws/codebuild/amazonlinux-aarch64-standard:4.0
        compute-type: BUILD_GENERAL1_SMALL
        privileged-mode: true
        variables:
          VERSION: "22"
    - identifier: node_22
      depend-on: [node_22_arm64]
phases:
  build:
    commands:
      - echo "$VERSION"
`
	if err := validateBuildspec([]byte(good)); err != nil {
		t.Fatalf("the valid buildspec is rejected: %v", err)
	}
	cases := []struct {
		name, from, to string
		want           string // a fragment of the validation error
	}{
		{"environment type as compute-type", "compute-type: BUILD_GENERAL1_SMALL", "compute-type: ARM_CONTAINER", "/batch/build-graph/0/env/compute-type"},
		{"identifier with a dash", "- identifier: node_22_arm64", "- identifier: node-22-arm64", "/batch/build-graph/0/identifier"},
		{"string version", "version: 0.2", `version: "0.2"`, "/version"},
		{"version 0.1", "version: 0.2", "version: 0.1", "/version"},
		{"unknown env key", "privileged-mode: true", "privileged: true", "additional properties 'privileged' not allowed"},
		{"compute-type and fleet", "privileged-mode: true", "fleet: my-fleet", "/batch/build-graph/0/env"},
		{"identifier of 128 characters", "- identifier: node_22\n", "- identifier: " + strings.Repeat("a", 128) + "\n", "/batch/build-graph/1/identifier"},
		{"unknown build-graph key", "      depend-on: [node_22_arm64]", "      depends-on: [node_22_arm64]", "additional properties 'depends-on' not allowed"},
		{"project setting in the buildspec", "  fast-fail: false", "  fast-fail: false\n  timeout-in-mins: 60", "additional properties 'timeout-in-mins' not allowed"},
		{"unknown top-level key", "phases:", "phase:", "additional properties 'phase' not allowed"},
		{"unknown phase", "  build:\n", "  test:\n", "additional properties 'test' not allowed"},
		{"unquoted command with ': '", `      - echo "$VERSION"`, `      - echo version: $VERSION`, "/phases/build/commands/0"},
		{"unquoted number variable", `VERSION: "22"`, `VERSION: 3.10`, "/batch/build-graph/0/env/variables/VERSION"},
		{"reserved variable name", `VERSION: "22"`, `CODEBUILD_X: "22"`, "invalid propertyName 'CODEBUILD_X'"},
		{"two batch types", "  fast-fail: false", "  fast-fail: false\n  build-fanout:\n    parallelism: 2", "/batch"},
		{"no batch type", "  build-graph:", "  buildgraph:", "/batch"},
		{"privileged-mode as a string", "privileged-mode: true", `privileged-mode: "true"`, "/batch/build-graph/0/env/privileged-mode"},
		{"depend-on an unknown entry", "depend-on: [node_22_arm64]", "depend-on: [node_24_arm64]", "names no entry of the graph"},
		{"duplicate identifier", "- identifier: node_22\n", "- identifier: node_22_arm64\n", "is used twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(good, c.from) {
				t.Fatalf("the test's valid buildspec has no %q to replace", c.from)
			}
			bad := strings.Replace(good, c.from, c.to, 1)
			err := validateBuildspec([]byte(bad))
			if err == nil {
				t.Fatalf("the schema accepts:\n%s", bad)
			}
			msg := describe(err)
			if !strings.Contains(msg, c.want) {
				t.Errorf("the error does not mention %q:\n%s", c.want, msg)
			}
		})
	}
}

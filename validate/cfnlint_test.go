package validate

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// cfnFinding is one entry of `cfn-lint --format json`.
type cfnFinding struct {
	Filename string
	Level    string // Error, Warning, Informational
	Message  string
	Location struct {
		Start struct{ LineNumber int }
		Path  []any
	}
	Rule struct {
		Id, ShortDescription string
	}
}

// resource is the logical id the finding is about, or "" for the template.
func (f cfnFinding) resource() string {
	if len(f.Location.Path) >= 2 && f.Location.Path[0] == "Resources" {
		return fmt.Sprint(f.Location.Path[1])
	}
	return ""
}

func (f cfnFinding) String() string {
	path := make([]string, len(f.Location.Path))
	for i, p := range f.Location.Path {
		path[i] = fmt.Sprint(p)
	}
	return fmt.Sprintf("%s:%d: %s %s (%s) at %s: %s",
		filepath.Base(f.Filename), f.Location.Start.LineNumber, f.Level, f.Rule.Id,
		f.Rule.ShortDescription, strings.Join(path, "/"), f.Message)
}

// cfnLint lints templates in one cfn-lint run (it starts in about a second,
// so one run for all of them) with the project's .cfnlintrc.yaml, and
// returns the findings by file.
func cfnLint(t *testing.T, templates ...string) map[string][]cfnFinding {
	t.Helper()
	bin := tool(t, "cfn-lint")
	args := []string{"--config-file", filepath.Join(repoRoot, ".cfnlintrc.yaml"), "--format", "json", "--"}
	args = append(args, templates...)
	code, stdout, stderr := run(t, 5*time.Minute, repoRoot, nil, bin, args...)
	var findings []cfnFinding
	if err := json.Unmarshal([]byte(stdout), &findings); err != nil {
		t.Fatalf("cfn-lint exited %d without JSON findings: %v\nstdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
	}
	// cfn-lint exits 2 for errors, 4 for warnings, 8 for informational (OR-ed);
	// anything else (1: a crash or a bad option) is not a lint result.
	if code&^(2|4|8) != 0 {
		t.Fatalf("cfn-lint failed (exit %d):\n%s", code, stderr)
	}
	if code == 0 && len(findings) > 0 {
		t.Fatalf("cfn-lint exited 0 but reported %d findings", len(findings))
	}
	byFile := map[string][]cfnFinding{}
	for _, f := range findings {
		byFile[f.Filename] = append(byFile[f.Filename], f)
	}
	return byFile
}

// TestCfnLint lints the default app's template, the 60-version one and one
// with every option on: zero
// errors and zero warnings. In the same cfn-lint run, a copy of the default
// template with known mistakes must be reported, so a cfn-lint that checks
// nothing (a bad config, a rule set that did not load) cannot pass silently.
func TestCfnLint(t *testing.T) {
	s := synth(t)
	broken := brokenTemplate(t, s.templates[defaultStack])
	templates := []string{s.templates[defaultStack], s.templates[sixtyStack], s.templates[optionsStack], broken}

	start := time.Now()
	byFile := cfnLint(t, templates...)
	report("cfn-lint: %s (default app, 60-version list, every option on, a deliberately broken copy) in %s; synthesis took %s",
		plural(len(templates), "template", "templates"), since(start), s.took.Round(10*time.Millisecond))

	for _, name := range []string{defaultStack, sixtyStack, optionsStack} {
		findings := byFile[s.templates[name]]
		if len(findings) == 0 {
			continue
		}
		var b strings.Builder
		for _, f := range findings {
			fmt.Fprintf(&b, "  resource %s: %s\n", f.resource(), f)
		}
		t.Errorf("cfn-lint reports %s in the %s template; fix the stack (stacks/*.go), or, only for a documented false positive, ignore the rule in .cfnlintrc.yaml with the reason:\n%s",
			plural(len(findings), "finding", "findings"), name, b.String())
	}

	// The broken copy: each mistake must be reported on its resource.
	got := byFile[broken]
	for _, want := range brokenTemplateMistakes {
		if !slices.ContainsFunc(got, func(f cfnFinding) bool {
			return f.Rule.Id == want.rule && f.resource() == want.resource
		}) {
			t.Errorf("cfn-lint did not report %s on %s (%s) in the broken template; it reported:\n%v", want.rule, want.resource, want.what, got)
		}
	}
}

type templateMistake struct{ resource, rule, what string }

// brokenTemplateMistakes are the mistakes brokenTemplate makes, and the rule
// each must trip.
var brokenTemplateMistakes = []templateMistake{
	{"BrokenProject", "E3034", "a build timeout over CodeBuild's 2160 minutes"},
	{"BrokenProject", "E3002", "an unknown property BuildSpecc"},
	{"BrokenProject", "E3012", "PrivilegedMode as a list"},
	{"BrokenRef", "E3005", "DependsOn a resource that does not exist"},
}

// brokenTemplate writes a copy of the template with one CodeBuild project
// copied and broken, and a resource depending on a missing one.
func brokenTemplate(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(data, &tmpl); err != nil {
		t.Fatal(err)
	}
	resources := tmpl["Resources"].(map[string]any)
	var project map[string]any
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		r := resources[id].(map[string]any)
		if r["Type"] == "AWS::CodeBuild::Project" {
			// A deep copy through JSON.
			b, _ := json.Marshal(r)
			if err := json.Unmarshal(b, &project); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if project == nil {
		t.Fatal("the template has no AWS::CodeBuild::Project to break")
	}
	props := project["Properties"].(map[string]any)
	env := props["Environment"].(map[string]any)
	props["TimeoutInMinutes"] = 5000
	env["PrivilegedMode"] = []any{true}
	props["Source"].(map[string]any)["BuildSpecc"] = "version: 0.2"
	resources["BrokenProject"] = project
	resources["BrokenRef"] = map[string]any{
		"Type":       "AWS::SNS::Topic",
		"DependsOn":  []any{"NoSuchResource"},
		"Properties": map[string]any{},
	}
	out, err := json.MarshalIndent(tmpl, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "Broken.template.json")
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

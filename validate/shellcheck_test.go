package validate

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Commands run in sh (CodeBuild's shell unless env.shell says otherwise), and
// the commands of one phase share a shell session in buildspec version 0.2:
// so each phase is linted as one script, its commands joined in order. A
// multi-line command is also linted on its own, as a script a reader would
// copy. The stages' buildspecs now hold one command each (start the
// evergreen binary) and the Tool stage's a few (build it): little sh, still
// linted, so that the sh that remains cannot go wrong unnoticed.

// script is one file handed to shellcheck, and where its lines came from.
type script struct {
	// origin is a buildspec phase, e.g. "buildspecs/build.yml phase
	// pre_build", or the path of a file linted as is (a self-test).
	origin string
	// commands of the phase, from first (1-based), and the script line each
	// starts on; nil for a file linted as is.
	commands []string
	first    int
	starts   []int
	alone    bool // one multi-line command linted on its own
	content  string
	// also lists the other places with exactly this script (parts of a
	// split stage repeat the same commands).
	also []string
}

// locate returns the command (1-based, in its phase) a script line belongs
// to, the line within that command (1-based) and the text of that line.
func (s *script) locate(line int) (cmd, lineInCmd int, text string) {
	for i := len(s.starts) - 1; i >= 0; i-- {
		if line >= s.starts[i] {
			lines := strings.Split(s.commands[i], "\n")
			n := line - s.starts[i]
			if n < len(lines) {
				text = lines[n]
			}
			return s.first + i, n + 1, text
		}
	}
	return 0, 0, ""
}

// codebuildInputs matches the variables CodeBuild sets for each secondary
// input (CODEBUILD_SRC_DIR_<artifact name>, e.g. the Tool stage's binaries).
// Their names are mixed case, which shellcheck reads as the script's own
// variables (SC2154, referenced but not assigned); the prelude assigns
// them, as CodeBuild does before the first command.
var codebuildInputs = regexp.MustCompile(`CODEBUILD_SRC_DIR_[A-Za-z0-9_]+`)

func newScript(origin string, first int, commands []string) *script {
	s := &script{origin: origin, first: first, commands: commands}
	line := 1
	var b strings.Builder
	var prelude []string
	for _, v := range codebuildInputs.FindAllString(strings.Join(commands, "\n"), -1) {
		if !slices.Contains(prelude, v) {
			prelude = append(prelude, v)
		}
	}
	for _, v := range prelude {
		fmt.Fprintf(&b, "%s=/codebuild/input\n", v)
		line++
	}
	for _, c := range commands {
		s.starts = append(s.starts, line)
		b.WriteString(c)
		b.WriteString("\n")
		line += strings.Count(c, "\n") + 1
	}
	s.content = b.String()
	return s
}

// buildspecScripts parses a rendered buildspec and returns its phase scripts
// and its multi-line commands.
func buildspecScripts(name string, content []byte) ([]*script, error) {
	var doc struct {
		Phases map[string]struct {
			Commands []string `yaml:"commands"`
			Finally  []string `yaml:"finally"`
		} `yaml:"phases"`
	}
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out []*script
	// Phase order as CodeBuild runs them; unknown phases are the schema's
	// business (validate/schema_test.go), but lint them too.
	order := []string{"install", "pre_build", "build", "post_build"}
	for _, p := range slices.Sorted(maps.Keys(doc.Phases)) {
		if !slices.Contains(order, p) {
			order = append(order, p)
		}
	}
	for _, p := range order {
		ph, ok := doc.Phases[p]
		if !ok {
			continue
		}
		if len(ph.Commands) > 0 {
			out = append(out, newScript(fmt.Sprintf("%s phase %s", name, p), 1, ph.Commands))
		}
		if len(ph.Finally) > 0 {
			out = append(out, newScript(fmt.Sprintf("%s phase %s finally", name, p), 1, ph.Finally))
		}
		for i, c := range ph.Commands {
			if strings.Contains(c, "\n") {
				alone := newScript(fmt.Sprintf("%s phase %s", name, p), i+1, []string{c})
				alone.alone = true
				out = append(out, alone)
			}
		}
	}
	return out, nil
}

// scFinding is one comment of `shellcheck -f json1`.
type scFinding struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Level   string `json:"level"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// shellcheck lints scripts with -s sh in one run and returns a readable
// description of each finding (empty: clean).
func shellcheck(t *testing.T, scripts []*script) []string {
	t.Helper()
	bin := tool(t, "shellcheck")
	dir := t.TempDir()
	byFile := map[string]*script{}
	args := []string{"--norc", "-s", "sh", "-S", "style", "-f", "json1"}
	for i, s := range scripts {
		path := s.origin // a self-test is linted in place
		if s.commands != nil {
			path = filepath.Join(dir, fmt.Sprintf("script-%03d.sh", i))
			if err := os.WriteFile(path, []byte(s.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		byFile[path] = s
		args = append(args, path)
	}
	code, stdout, stderr := run(t, 2*time.Minute, repoRoot, nil, bin, args...)
	var out struct{ Comments []scFinding }
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || (code != 0 && code != 1) {
		t.Fatalf("shellcheck failed (exit %d): %v\n%s%s", code, err, stdout, stderr)
	}
	if code == 1 && len(out.Comments) == 0 {
		t.Fatalf("shellcheck exited 1 without findings:\n%s", stderr)
	}
	var findings []string
	seen := map[string]bool{}
	for _, f := range out.Comments {
		s := byFile[f.File]
		if s == nil {
			t.Fatalf("shellcheck reported on an unknown file %s", f.File)
		}
		var where string
		if s.commands != nil {
			cmd, n, text := s.locate(f.Line)
			// A multi-line command is linted in its phase and alone: report
			// a finding once.
			key := fmt.Sprintf("%s|%d|%d|%d", s.origin, cmd, n, f.Code)
			if seen[key] {
				continue
			}
			seen[key] = true
			where = fmt.Sprintf("%s, command %d", s.origin, cmd)
			if len(s.commands[cmd-s.first]) > len(text) {
				where += fmt.Sprintf(", line %d of the command", n)
			}
			if s.alone {
				where += " (linted alone)"
			}
			where += ":\n      " + strings.TrimSpace(text)
		} else {
			where = fmt.Sprintf("%s:%d:%d", s.origin, f.Line, f.Column)
		}
		line := fmt.Sprintf("SC%d (%s) %s\n    at %s", f.Code, f.Level, f.Message, where)
		if len(s.also) > 0 {
			line += "\n    same script in: " + strings.Join(s.also, ", ")
		}
		findings = append(findings, line)
	}
	return findings
}

// dedupe keeps the first script of each content and notes where the others were.
func dedupe(scripts []*script) []*script {
	var out []*script
	seen := map[string]*script{}
	for _, s := range scripts {
		if first, ok := seen[s.content]; ok && s.commands != nil {
			first.also = append(first.also, s.origin)
			continue
		}
		seen[s.content] = s
		out = append(out, s)
	}
	return out
}

// runtimeFolders are the runtime folders the linters check: the default
// list's, and one runtime of each distribution family as the scaffold writes
// it (testdata/runtimes/families).
var runtimeFolders = []string{"runtimes", filepath.Join("testdata", "runtimes", "families")}

// runtimeFiles lists <folder>/*/<name> of every runtime folder, relative to
// the repository root; each folder must have at least one.
func runtimeFiles(t *testing.T, name string) []string {
	t.Helper()
	var matches []string
	for _, f := range runtimeFolders {
		m, err := filepath.Glob(filepath.Join(repoRoot, f, "*", name))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no %s/*/%s found", f, name)
		}
		matches = append(matches, m...)
	}
	for i, m := range matches {
		matches[i], _ = filepath.Rel(repoRoot, m)
	}
	return matches
}

// selfTests lists the runtimes' self-tests, relative to the repository root.
func selfTests(t *testing.T) []string {
	t.Helper()
	return runtimeFiles(t, "self-test")
}

// TestShellcheck lints every command of every buildspec the app inlines (the
// default list and the 60-version list, all parts) and every self-test.
func TestShellcheck(t *testing.T) {
	s := synth(t)
	var scripts []*script
	nSpecs := 0
	for _, stack := range []string{defaultStack, sixtyStack} {
		for _, sp := range s.specs[stack] {
			name := "buildspecs/" + sp.FileName()
			if stack == sixtyStack {
				name = sixtyList + " " + sp.FileName()
			}
			sc, err := buildspecScripts(name, sp.Content)
			if err != nil {
				t.Fatal(err)
			}
			if len(sc) == 0 {
				t.Errorf("%s: no phase with commands to lint", name)
			}
			scripts = append(scripts, sc...)
			nSpecs++
		}
	}
	phaseScripts := len(scripts)
	// The inventory script runs in the images (sh, whatever the base), so
	// it is linted as a file, like a self-test.
	tests := append(selfTests(t), "buildspecs/inventory.sh")
	for _, f := range tests {
		scripts = append(scripts, &script{origin: f})
	}
	unique := dedupe(scripts)

	start := time.Now()
	findings := shellcheck(t, unique)
	report("shellcheck -s sh: %s and multi-line commands of %s (%d unique) and %s in %s",
		plural(phaseScripts, "phase script", "phase scripts"), plural(nSpecs, "buildspec", "buildspecs"),
		len(unique)-len(tests), plural(len(tests), "script file (self-tests, inventory)", "script files (self-tests, inventory)"), since(start))
	if len(findings) > 0 {
		t.Errorf("shellcheck -s sh reports %s:\n  %s", plural(len(findings), "finding", "findings"), strings.Join(findings, "\n  "))
	}
}

// TestShellcheckCatchesBrokenScripts runs the same check on a buildspec and a
// self-test with known mistakes (testdata/validators/), so a shellcheck that
// checks nothing cannot pass silently.
func TestShellcheckCatchesBrokenScripts(t *testing.T) {
	spec, err := os.ReadFile(filepath.Join(repoRoot, "testdata/validators/broken-buildspec.yml"))
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := buildspecScripts("testdata/validators/broken-buildspec.yml", spec)
	if err != nil {
		t.Fatal(err)
	}
	scripts = append(scripts, &script{origin: "testdata/validators/broken-self-test"})
	findings := shellcheck(t, scripts)
	all := strings.Join(findings, "\n")
	for _, want := range []string{
		// buildspec: an unquoted variable, in the command that has it
		"SC2086 (info) Double quote to prevent globbing and word splitting.\n    at testdata/validators/broken-buildspec.yml phase build, command 2",
		// buildspec: [[ ]] is not sh
		"SC3010",
		// self-test: bash arrays are not sh, with file and line
		"testdata/validators/broken-self-test:5:",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("shellcheck findings do not contain %q; got:\n%s", want, all)
		}
	}
}

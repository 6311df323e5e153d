package validate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hadolintFinding is one entry of `hadolint -f json`.
type hadolintFinding struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Code    string `json:"code"`
	Level   string `json:"level"`
	Message string `json:"message"`
}

func (f hadolintFinding) String() string {
	return fmt.Sprintf("%s:%d: %s (%s) %s", f.File, f.Line, f.Code, f.Level, f.Message)
}

// hadolint lints Dockerfiles (paths relative to the repository root) and
// returns every finding, style level included. Its configuration is written
// here, so that no .hadolint.yaml on the machine changes the result; inline
// `# hadolint ignore=DLxxxx` pragmas, with their reason next to them, are the
// way to accept a finding in a Dockerfile.
func hadolint(t *testing.T, files ...string) []hadolintFinding {
	t.Helper()
	bin := tool(t, "hadolint")
	cfg := filepath.Join(t.TempDir(), "hadolint.yaml")
	if err := os.WriteFile(cfg, []byte("failure-threshold: style\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--config", cfg, "--failure-threshold", "style", "--no-color", "--format", "json"}, files...)
	code, stdout, stderr := run(t, time.Minute, repoRoot, nil, bin, args...)
	var findings []hadolintFinding
	if err := json.Unmarshal([]byte(stdout), &findings); err != nil || (code != 0 && code != 1) {
		t.Fatalf("hadolint failed (exit %d): %v\n%s%s", code, err, stdout, stderr)
	}
	if (code == 1) != (len(findings) > 0) {
		t.Fatalf("hadolint exited %d with %d findings:\n%s%s", code, len(findings), stdout, stderr)
	}
	return findings
}

// TestHadolint lints every runtime Dockerfile, the default list's and one
// of each distribution family as the scaffold writes it: zero findings at
// any level.
func TestHadolint(t *testing.T) {
	matches := runtimeFiles(t, "Dockerfile")
	start := time.Now()
	findings := hadolint(t, matches...)
	report("hadolint: %s (%s) in %s", plural(len(matches), "Dockerfile", "Dockerfiles"), strings.Join(matches, ", "), since(start))
	if len(findings) > 0 {
		var b strings.Builder
		for _, f := range findings {
			fmt.Fprintf(&b, "  %s\n", f)
		}
		t.Errorf("hadolint reports %s; fix the Dockerfile, or accept a finding with `# hadolint ignore=DLxxxx` and the reason on the line above the instruction:\n%s",
			plural(len(findings), "finding", "findings"), b.String())
	}
}

// TestHadolintCatchesBrokenDockerfile runs the same check on a Dockerfile
// with known mistakes, so a linter that checks nothing cannot pass silently.
func TestHadolintCatchesBrokenDockerfile(t *testing.T) {
	const broken = "testdata/validators/broken.Dockerfile"
	findings := hadolint(t, broken)
	for _, want := range []struct {
		line int
		code string
	}{
		{3, "DL3007"}, // FROM ...:latest
		{4, "DL3015"}, // apt-get install without --no-install-recommends
		{4, "DL3009"}, // apt lists left in the layer
		{6, "DL3003"}, // cd instead of WORKDIR
	} {
		found := false
		for _, f := range findings {
			found = found || (f.File == broken && f.Line == want.line && f.Code == want.code)
		}
		if !found {
			t.Errorf("hadolint did not report %s at %s:%d; it reported %v", want.code, broken, want.line, findings)
		}
	}
}

package workflow

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evergreen-images/evergreen/internal/checkreport"
)

// The external checks run the pinned tools that .ci/install-actionlint.sh and
// .ci/install-zizmor.sh put under .tools/ (make setup runs both). Without
// them the checks skip on a developer's machine and fail under CI=true, so CI
// can never pass without having run them.

// tool finds a pinned tool under .tools/, then on PATH.
func tool(t *testing.T, local, name string) string {
	t.Helper()
	if abs, err := filepath.Abs(local); err == nil {
		if _, err := os.Stat(abs); err == nil {
			return abs
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	missing(t, name+" is not installed (run: bash .ci/install-"+name+".sh, or make setup)")
	return ""
}

func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + "; skipped outside CI")
}

func TestActionlint(t *testing.T) {
	bin := tool(t, ".tools/bin/actionlint", "actionlint")
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		// actionlint would silently skip the run: blocks.
		missing(t, "shellcheck is not on PATH (run: bash .ci/install-runtime-test-tools.sh)")
	}
	version, _ := exec.Command(bin, "-version").Output()
	start := time.Now()
	cmd := exec.Command(bin, "-shellcheck", shellcheck, "-pyflakes", "", "-no-color", Path)
	out, err := cmd.CombinedOutput()
	checkreport.Printf("workflow: actionlint %s (shellcheck on every run: block, as sh) checked %s in %s", firstLine(version), Path, time.Since(start).Round(time.Millisecond))
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("actionlint reported on %s (%v):\n%s", Path, err, out)
	}
}

func TestZizmor(t *testing.T) {
	bin := tool(t, ".tools/zizmor/bin/zizmor", "zizmor")
	version, _ := exec.Command(bin, "--version").Output()
	start := time.Now()
	// --offline: no GitHub API calls (online audits are skipped); --no-config:
	// no configuration file can silence a finding.
	cmd := exec.Command(bin, "--offline", "--no-config", "--no-progress", "--persona", "regular", "--format", "json", Path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	elapsed := time.Since(start).Round(time.Millisecond)
	var findings []struct {
		Ident          string `json:"ident"`
		Desc           string `json:"desc"`
		Determinations struct {
			Severity   string `json:"severity"`
			Confidence string `json:"confidence"`
		} `json:"determinations"`
		Locations []struct {
			Symbolic struct {
				Annotation string `json:"annotation"`
			} `json:"symbolic"`
		} `json:"locations"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &findings); err != nil {
		t.Fatalf("zizmor (%v) printed no JSON findings: %v\n%s\n%s", runErr, err, stdout.String(), stderr.String())
	}
	high := 0
	for _, f := range findings {
		line := f.Ident + " (" + f.Determinations.Severity + ", confidence " + f.Determinations.Confidence + "): " + f.Desc
		if strings.EqualFold(f.Determinations.Severity, "high") {
			high++
			t.Errorf("zizmor: %s", line)
		} else {
			t.Logf("zizmor: %s", line)
		}
	}
	checkreport.Printf("workflow: %s (offline, regular persona) checked %s in %s: %d findings, %d high", strings.TrimSpace(string(version)), Path, elapsed, len(findings), high)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

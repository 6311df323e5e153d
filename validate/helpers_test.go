package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/evergreen-images/evergreen/internal/checkreport"
)

const installHint = "run `make setup` (it runs .ci/install-validators.sh)"

// repoRoot is the repository root: go test runs a package in its own folder.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

// inCI reports whether a missing tool must fail the check instead of skipping it.
func inCI() bool { return os.Getenv("CI") == "true" }

// tool finds an installed validator: first in VALIDATORS_BIN, then in the
// project's .venv/bin, then on PATH. Missing, it skips the test, or fails it
// in CI, where every check must run.
func tool(t *testing.T, name string) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("VALIDATORS_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join(repoRoot, ".venv", "bin"))
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found in .venv/bin or on PATH (%s)", name, installHint)
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// report prints the one line every external check prints, pass or fail:
// what it checked and how long it took.
func report(format string, args ...any) {
	checkreport.Printf("validate: "+format, args...)
}

// since formats the time a check took.
func since(start time.Time) string {
	return time.Since(start).Round(10 * time.Millisecond).String()
}

// run runs a command with a time limit and returns its exit code and output.
// An exit code of -1 means the command could not run at all.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out after %s", name, args, timeout)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("%s %v: %v", name, args, err)
	return -1, "", ""
}

// plural formats n things.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

package rehearsal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The CodeBuild emulation: one shell session, a failing command stops the
// build and is named, set -e in one command carries over to the next.
func TestScriptSemantics(t *testing.T) {
	dir := t.TempDir()
	run := func(phases []Phase) (RunResult, string) {
		s, err := Script(phases)
		if err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(dir, "log")
		res := RunScript(s, dir, []string{"PATH=/usr/bin:/bin"}, log, time.Minute)
		b, _ := os.ReadFile(log)
		return res, string(b)
	}
	res, out := run([]Phase{{"pre_build", []string{"X=1"}}, {"build", []string{`echo "x=$X"`, "cd /", "pwd"}}})
	if res.Err != nil || !strings.Contains(out, "x=1\n") || !strings.Contains(out, "\n/\n") {
		t.Fatalf("variables and cd must carry over: %v\n%s", res.Err, out)
	}
	res, out = run([]Phase{{"pre_build", []string{"false", "echo never"}}, {"build", []string{"echo never"}}})
	if res.Err == nil || res.FailedCommand != "false exit status 1" || strings.Contains(out, "never") {
		t.Fatalf("a failing command must stop the build: %v %q\n%s", res.Err, res.FailedCommand, out)
	}
	res, _ = run([]Phase{{"build", []string{"set -e\nf() { return 3; }\nf\necho no", "echo no"}}})
	if res.Err == nil || !strings.HasPrefix(res.FailedCommand, "set -e ... exit status 3") {
		t.Fatalf("set -e inside a command: %v %q", res.Err, res.FailedCommand)
	}
	res, _ = run([]Phase{{"build", []string{"exit 4"}}})
	if res.Err == nil || res.FailedCommand != "exit 4 exit status 4" {
		t.Fatalf("exit: %v %q", res.Err, res.FailedCommand)
	}
}

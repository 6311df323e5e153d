package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// ExecDocker is the Docker the stages use in CodeBuild: the docker CLI on
// PATH (the curated images ship Docker with buildx; the rehearsal puts its
// own `docker` first on PATH). Its stderr, where docker and buildx write
// their progress and errors, goes straight to the build log, so a failed
// build or pull shows why.
type ExecDocker struct {
	// Program is the command to run; "docker" when empty.
	Program string
	// Stderr receives docker's stderr; os.Stderr when nil.
	Stderr io.Writer
}

// Run runs docker with args and returns its stdout.
func (d ExecDocker) Run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	prog := d.Program
	if prog == "" {
		prog = "docker"
	}
	cmd := exec.CommandContext(ctx, prog, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = d.Stderr
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	err := cmd.Run()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.Bytes(), fmt.Errorf("%s %s exited with status %d (its error is in the log above)", prog, argsForMessage(args), ee.ExitCode())
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w", prog, argsForMessage(args), err)
	}
	return stdout.Bytes(), nil
}

// argsForMessage shortens docker's arguments for an error message: the
// inventory's script is passed as one long argument.
func argsForMessage(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if i := strings.IndexByte(a, '\n'); i >= 0 {
			a = a[:i] + " ..."
		}
		if len(a) > 120 {
			a = a[:117] + "..."
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

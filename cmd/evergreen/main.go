// Command evergreen is the project's one program: the pipeline's stages as
// CodeBuild runs them (evergreen stage build|verify|publish|report) and the
// operator's commands (preflight, status, rollback, resume; the make
// targets of the same names call them), and verify, which consumers run on
// an image they pull. It is a thin layer: each command
// parses its flags, does the shared set-up (setup.go) and calls one package
// (internal/stage, internal/preflight, internal/status, internal/rollback,
// internal/resume), which holds the logic and its tests.
//
// It must not import aws-cdk-go: the pipeline compiles it for two
// architectures on every execution (buildspecs/tool.yml), and jsii's
// embedded tarball would make the binary ~90 MB and the compile minutes
// longer. cmd/evergreen's tests check that.
//
// Exit status: 0 done, 1 the command failed (the reason is on stderr as
// "evergreen <command>: <message>"), 2 the command line is wrong (unknown
// command, bad flag, a required flag missing: usage on stderr).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	// CodeBuild stops a build (timeout, Stop build) with SIGTERM; an
	// operator presses Ctrl-C. Either cancels the context, so AWS calls end
	// and the command returns its error instead of dying mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand. Either run (a leaf) or sub (a group such as
// stage) is set.
type command struct {
	name, args, summary string
	// help is the rest of the usage text: what the command does, its
	// make target.
	help  string
	flags func(fs *flag.FlagSet) // declares the command's flags
	// nargs is how many arguments the command takes after its flags
	// (verify's image); run reads them from fs.Args().
	nargs int
	run   func(ctx context.Context, std ioStreams, fs *flag.FlagSet) error
	sub   []*command
}

type ioStreams struct{ out, err io.Writer }

// usageError is a wrong command line: exit 2 with the usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// commands is the command tree, in the order the usage lists it.
func commands() []*command {
	return []*command{stageCommand(), preflightCommand(), statusCommand(), rollbackCommand(), resumeCommand(), verifyCommand()}
}

func rootUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: evergreen <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-44s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "evergreen <command> --help describes a command.")
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "evergreen: no command given")
		rootUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		rootUsage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return runCommand(ctx, []string{c.name}, c, args[1:], ioStreams{stdout, stderr})
		}
	}
	fmt.Fprintf(stderr, "evergreen: unknown command %q\n", args[0])
	rootUsage(stderr)
	return 2
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

func runCommand(ctx context.Context, path []string, c *command, args []string, std ioStreams) int {
	name := "evergreen " + strings.Join(path, " ")
	if c.sub != nil {
		if len(args) == 0 {
			fmt.Fprintf(std.err, "%s: give one of %s\n", name, subNames(c))
			groupUsage(std.err, name, c)
			return 2
		}
		if isHelp(args[0]) {
			groupUsage(std.out, name, c)
			return 0
		}
		for _, s := range c.sub {
			if s.name == args[0] {
				return runCommand(ctx, append(path, s.name), s, args[1:], std)
			}
		}
		fmt.Fprintf(std.err, "%s: unknown command %q: give one of %s\n", name, args[0], subNames(c))
		groupUsage(std.err, name, c)
		return 2
	}

	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(std.err)
	fs.Usage = func() { leafUsage(fs.Output(), name, c, fs) }
	if c.flags != nil {
		c.flags(fs)
	}
	fs.SetOutput(io.Discard) // parse errors are printed below, once
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			leafUsage(std.out, name, c, fs)
			return 0
		}
		fmt.Fprintf(std.err, "%s: %v\n", name, err)
		leafUsage(std.err, name, c, fs)
		return 2
	}
	// "help" after the command, as in `evergreen status help`.
	if fs.NArg() == 1 && isHelp(fs.Arg(0)) {
		leafUsage(std.out, name, c, fs)
		return 0
	}
	if fs.NArg() > c.nargs {
		fmt.Fprintf(std.err, "%s: unexpected argument %q\n", name, fs.Arg(c.nargs))
		leafUsage(std.err, name, c, fs)
		return 2
	}
	err := safely(func() error { return c.run(ctx, std, fs) })
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(std.err, "%s: %s\n", name, ue.msg)
		leafUsage(std.err, name, c, fs)
		return 2
	default:
		fmt.Fprintf(std.err, "%s: %s\n", name, oneLine(err))
		return 1
	}
}

// safely turns a panic into an error, so that the exit status keeps its
// meaning (Go exits 2 on a panic, the status of a wrong command line) and
// the build log says which command failed, with the stack for the report.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error (a bug: report it with this message): %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

// oneLine keeps an error on the lines it has, without a trailing newline:
// the stages' errors are already written for the build log.
func oneLine(err error) string { return strings.TrimRight(err.Error(), "\n") }

func subNames(c *command) string {
	var names []string
	for _, s := range c.sub {
		names = append(names, s.name)
	}
	return strings.Join(names, ", ")
}

func groupUsage(w io.Writer, name string, c *command) {
	fmt.Fprintf(w, "usage: %s <command>\n\n", name)
	if c.help != "" {
		fmt.Fprintln(w, strings.TrimSpace(c.help))
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "commands:")
	for _, s := range c.sub {
		fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\n%s <command> --help describes a command.\n", name)
}

func leafUsage(w io.Writer, name string, c *command, fs *flag.FlagSet) {
	fmt.Fprintln(w, strings.TrimSpace("usage: "+name+" "+c.args))
	fmt.Fprintln(w)
	fmt.Fprintln(w, c.summary+".")
	if c.help != "" {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.TrimSpace(c.help))
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "flags:")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

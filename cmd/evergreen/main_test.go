package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

func TestMain(m *testing.M) {
	// The commands read cdk.json and the list from the repository root, as
	// the make targets run them.
	if err := os.Chdir("../.."); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// noAWS fails the test if a command reaches for AWS credentials.
func noAWS(t *testing.T) {
	t.Helper()
	old := loadAWS
	loadAWS = func(context.Context) (aws.Config, error) {
		t.Error("the command loaded the AWS configuration")
		return aws.Config{}, errors.New("no AWS in this test")
	}
	t.Cleanup(func() { loadAWS = old })
}

func evergreen(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// paths lists every command of the tree as its words: [stage], [stage
// build], ..., [preflight].
func paths(cs []*command, prefix []string) [][]string {
	var out [][]string
	for _, c := range cs {
		p := append(slices.Clone(prefix), c.name)
		out = append(out, p)
		out = append(out, paths(c.sub, p)...)
	}
	return out
}

func TestHelpOnEveryCommandPrintsUsageAndExitsZero(t *testing.T) {
	noAWS(t)
	all := append([][]string{{}}, paths(commands(), nil)...)
	for _, p := range all {
		for _, h := range []string{"--help", "-h"} {
			args := append(slices.Clone(p), h)
			code, stdout, stderr := evergreen(t, args...)
			if code != 0 || stderr != "" {
				t.Errorf("evergreen %s: exit %d, stderr %q; want 0 and nothing on stderr", strings.Join(args, " "), code, stderr)
			}
			if want := strings.TrimSpace("usage: evergreen " + strings.Join(p, " ")); !strings.HasPrefix(stdout, want) {
				t.Errorf("evergreen %s printed %q, want the usage (%q ...)", strings.Join(args, " "), firstLine(stdout), want)
			}
		}
	}
}

func TestUsageListsEveryCommand(t *testing.T) {
	_, stdout, _ := evergreen(t, "--help")
	for _, c := range commands() {
		if !strings.Contains(stdout, "  "+c.name) {
			t.Errorf("evergreen --help does not list %s:\n%s", c.name, stdout)
		}
	}
	_, stdout, _ = evergreen(t, "stage", "--help")
	for _, s := range stages {
		if !strings.Contains(stdout, "  "+s.name) {
			t.Errorf("evergreen stage --help does not list %s:\n%s", s.name, stdout)
		}
	}
}

// A wrong command line exits 2, names what was wrong after
// "evergreen <command>:" and prints the usage, on stderr only.
func TestWrongCommandLinesExitTwoWithUsage(t *testing.T) {
	noAWS(t)
	for _, c := range []struct {
		args   []string
		prefix string // the first line of stderr starts with it
		usage  string // and stderr holds this usage line
	}{
		{nil, "evergreen: no command given", "usage: evergreen <command>"},
		{[]string{"deploy"}, `evergreen: unknown command "deploy"`, "usage: evergreen <command>"},
		{[]string{"stage"}, "evergreen stage: give one of build, verify, publish, report", "usage: evergreen stage <command>"},
		{[]string{"stage", "test"}, `evergreen stage: unknown command "test"`, "usage: evergreen stage <command>"},
		{[]string{"stage", "build", "extra"}, `evergreen stage build: unexpected argument "extra"`, "usage: evergreen stage build"},
		{[]string{"status", "-verbose"}, "evergreen status: flag provided but not defined: -verbose", "usage: evergreen status"},
		{[]string{"rollback"}, "evergreen rollback: give -runtime, -version and -to", "usage: evergreen rollback -runtime R -version V -to TAG"},
		{[]string{"rollback", "-runtime", "node", "-version", "22"}, "evergreen rollback: give -runtime, -version and -to", "usage: evergreen rollback"},
		{[]string{"rollback", "-runtime"}, "evergreen rollback: flag needs an argument: -runtime", "usage: evergreen rollback"},
		{[]string{"resume", "-runtime", "node"}, "evergreen resume: give -runtime and -version", "usage: evergreen resume -runtime R -version V"},
	} {
		code, stdout, stderr := evergreen(t, c.args...)
		name := "evergreen " + strings.Join(c.args, " ")
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
		if stdout != "" {
			t.Errorf("%s wrote to stdout: %q", name, stdout)
		}
		if !strings.HasPrefix(stderr, c.prefix) {
			t.Errorf("%s: stderr starts %q, want %q", name, firstLine(stderr), c.prefix)
		}
		if !strings.Contains(stderr, c.usage) {
			t.Errorf("%s: stderr has no usage %q:\n%s", name, c.usage, stderr)
		}
	}
}

// A runtime-version that is not in the list fails before any credential is
// needed, with the list's runtimes in the message, exit 1.
func TestUnknownRuntimeVersionFailsBeforeAWS(t *testing.T) {
	noAWS(t)
	cfg, err := config.LoadCDKJSON(config.DefaultCDKJSON)
	if err != nil {
		t.Fatal(err)
	}
	list, err := runtimes.Load(cfg.RuntimeList)
	if err != nil {
		t.Fatal(err)
	}
	known := list.Runtimes[0]
	for _, args := range [][]string{
		{"rollback", "-runtime", "no-such-runtime", "-version", "1", "-to", "1-r20260101-00000000"},
		{"resume", "-runtime", "no-such-runtime", "-version", "1"},
		{"resume", "-runtime", known.Name, "-version", "no-such-version"},
	} {
		code, stdout, stderr := evergreen(t, args...)
		name := "evergreen " + strings.Join(args, " ")
		if code != 1 || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want 1 and nothing on stdout", name, code, stdout)
		}
		if !strings.HasPrefix(stderr, "evergreen "+args[0]+": ") || strings.Contains(stderr, "usage:") {
			t.Errorf("%s: stderr %q, want one error line after %q", name, stderr, "evergreen "+args[0]+": ")
		}
		if !strings.Contains(stderr, list.Path) {
			t.Errorf("%s: the error does not name the list %s: %q", name, list.Path, stderr)
		}
	}
}

// Without credentials or a region every AWS command fails with one line and
// exit 1, never a panic.
func TestMissingAWSConfigurationFailsWithOneLine(t *testing.T) {
	old := loadAWS
	loadAWS = func(context.Context) (aws.Config, error) {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION")
	}
	t.Cleanup(func() { loadAWS = old })
	t.Setenv("PIPELINE_EXECUTION_ID", "0123456789abcdef")
	for _, args := range [][]string{{"status"}, {"preflight"}, {"stage", "report"}} {
		code, stdout, stderr := evergreen(t, args...)
		name := "evergreen " + strings.Join(args, " ")
		want := name + ": AWS configuration: no AWS region: set AWS_REGION\n"
		if code != 1 || stderr != want || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and %q", name, code, stdout, stderr, want)
		}
	}
}

// A stage started outside the pipeline fails on the environment before it
// calls AWS: without the execution id the stages cannot agree on a tag.
func TestStageOutsideThePipelineFailsBeforeAWS(t *testing.T) {
	noAWS(t)
	t.Setenv("PIPELINE_EXECUTION_ID", "")
	for _, s := range stages {
		code, _, stderr := evergreen(t, "stage", s.name)
		if code != 1 || !strings.HasPrefix(stderr, "evergreen stage "+s.name+": PIPELINE_EXECUTION_ID is not set") {
			t.Errorf("stage %s: exit %d, stderr %q", s.name, code, stderr)
		}
	}
}

// A panic in a command is an error of that command (exit 1), not Go's
// exit 2, which means a wrong command line here.
func TestPanicIsAnErrorOfTheCommand(t *testing.T) {
	c := &command{name: "boom", summary: "Panic", run: func(context.Context, ioStreams, *flag.FlagSet) error { panic("nil map") }}
	var out, errb bytes.Buffer
	code := runCommand(context.Background(), []string{"boom"}, c, nil, ioStreams{&out, &errb})
	if code != 1 || !strings.HasPrefix(errb.String(), "evergreen boom: internal error") {
		t.Errorf("exit %d, stderr %q", code, firstLine(errb.String()))
	}
}

// Every stage a buildspec starts is a subcommand of evergreen stage, and
// every subcommand is started by a buildspec.
func TestEveryBuildspecStageIsAStageCommand(t *testing.T) {
	list, err := runtimes.Load(runtimes.DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := buildspecs.Generate(list, buildspecs.OptionsFrom(config.Default()))
	if err != nil {
		t.Fatal(err)
	}
	var started []string
	for _, s := range specs {
		if cmd, ok := buildspecs.StageCommand(s.Stage); ok && !slices.Contains(started, string(s.Stage)) {
			started = append(started, string(s.Stage))
			if !strings.HasSuffix(cmd, " stage "+string(s.Stage)) || !bytes.Contains(s.Content, []byte(cmd)) {
				t.Errorf("%s does not run %q", s.FileName(), cmd)
			}
		}
	}
	var names []string
	for _, s := range stages {
		names = append(names, s.name)
	}
	if !slices.Equal(started, names) {
		t.Errorf("the buildspecs start the stages %v; evergreen stage has %v", started, names)
	}
}

// The pipeline compiles this binary for two architectures in every
// execution; aws-cdk-go (jsii and its embedded tarball) would make that
// minutes longer and the binary ~90 MB.
func TestBinaryDoesNotImportTheCDK(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "./cmd/evergreen").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/evergreen: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "aws-cdk-go") || strings.Contains(p, "jsii-runtime-go") {
			t.Errorf("cmd/evergreen depends on %s", p)
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// A rollback's TO is checked before anything reads the AWS configuration:
// a wrong tag is named as such even where the region is wrong too.
func TestRollbackTargetCheckedBeforeAWS(t *testing.T) {
	noAWS(t)
	t.Setenv("AWS_REGION", "eu-west1")
	cfg, err := config.LoadCDKJSON(config.DefaultCDKJSON)
	if err != nil {
		t.Fatal(err)
	}
	list, err := runtimes.Load(cfg.RuntimeList)
	if err != nil {
		t.Fatal(err)
	}
	rt := list.Runtimes[0]
	v := rt.Versions[0]
	code, _, stderr := evergreen(t, "rollback", "-runtime", rt.Name, "-version", v, "-to", v)
	if code != 1 || !strings.Contains(stderr, `TO="`+v+`" is not a dated tag of `+rt.Name+" "+v) || strings.Contains(stderr, "region") {
		t.Errorf("exit %d, stderr %q: want the tag named, not the region", code, stderr)
	}
}

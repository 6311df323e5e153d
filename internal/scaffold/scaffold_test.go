package scaffold_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/internal/scaffold"
	"github.com/evergreen-images/evergreen/runtimes"
)

// repoRoot is the repository root: go test runs a package in its own folder.
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}()

// fixture copies the fixed test list (testdata/runtimes/fixed) and its
// folders into a temporary directory and returns the list's path there.
func fixture(t *testing.T) string {
	t.Helper()
	src := filepath.Join(repoRoot, "testdata", "runtimes", "fixed")
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dst, "runtimes.yaml")
}

// snapshot is every file under dir with its mode and content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			out[rel] = info.Mode().String()
			return nil
		}
		b, _ := os.ReadFile(path)
		out[rel] = info.Mode().String() + "\n" + string(b)
		return nil
	})
	return out
}

var golang = scaffold.Runtime{Name: "go", BaseImage: "golang", Versions: []string{"1.25", "1.26"}, VersionCmd: "go version"}

func TestAddAppendsTheEntryAndWritesTheFolder(t *testing.T) {
	list := fixture(t)
	before, _ := os.ReadFile(list)
	if _, err := scaffold.Add(list, golang); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(list)
	want := string(before) + "\n  - name: go\n    versions: [\"1.25\", \"1.26\"]\n    base-image: golang\n"
	if string(after) != want {
		t.Errorf("list:\n%s\nwant the old text, comments and all, plus the entry:\n%s", after, want)
	}
	l, err := runtimes.Load(list)
	if err != nil {
		t.Fatal(err)
	}
	got := l.Runtimes[len(l.Runtimes)-1]
	if got.Name != "go" || got.BaseImage != "golang" || !slices.Equal(got.Versions, golang.Versions) {
		t.Errorf("new runtime %+v", got)
	}
	for name, mode := range map[string]os.FileMode{"Dockerfile": 0o644, "self-test": 0o755} {
		st, err := os.Stat(filepath.Join(filepath.Dir(list), "go", name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %o, want %o", name, st.Mode().Perm(), mode)
		}
	}
	// Output is deterministic: the same input writes the same bytes.
	again := fixture(t)
	if _, err := scaffold.Add(again, golang); err != nil {
		t.Fatal(err)
	}
	a, b := snapshot(t, filepath.Dir(list)), snapshot(t, filepath.Dir(again))
	for k := range a {
		if a[k] != b[k] {
			t.Errorf("%s differs between two runs", k)
		}
	}
}

// A bad argument gets the problem and its fix, and leaves every file as it was.
func TestBadInputWritesNothing(t *testing.T) {
	with := func(f func(*scaffold.Runtime)) scaffold.Runtime {
		r := golang
		r.Versions = slices.Clone(golang.Versions)
		f(&r)
		return r
	}
	cases := []struct {
		name string
		r    scaffold.Runtime
		want []string
	}{
		{"empty name", with(func(r *scaffold.Runtime) { r.Name = "" }), []string{"NAME: is empty", "fix: name the runtime"}},
		{"empty base", with(func(r *scaffold.Runtime) { r.BaseImage = "" }), []string{"BASE: is empty", "fix: name its image in the base registry"}},
		{"no versions", with(func(r *scaffold.Runtime) { r.Versions = nil }), []string{"VERSIONS: is empty", `VERSIONS="1.25 1.26"`}},
		{"existing runtime", with(func(r *scaffold.Runtime) { r.Name = "python" }), []string{`runtime "python" is already in the list`, "folder", "exists already"}},
		{"uppercase name", with(func(r *scaffold.Runtime) { r.Name = "Go" }), []string{`runtimes.yaml:15: runtimes[3] "Go": ECR would reject the repository name "Go"`, "fix: use lowercase letters", "from line 15 of the list"}},
		{"name with a slash", with(func(r *scaffold.Runtime) { r.Name = "a/b" }), []string{"the name contains '/'"}},
		{"base with a tag", with(func(r *scaffold.Runtime) { r.BaseImage = "golang:1.25" }), []string{`base-image "golang:1.25" is not an image name`, "without a registry or tag"}},
		{"duplicate version", with(func(r *scaffold.Runtime) { r.Versions = []string{"1.25", "1.25"} }), []string{`version "1.25" is listed twice`, "fix: remove the duplicate"}},
		{"version not digits and dots", with(func(r *scaffold.Runtime) { r.Versions = []string{"1.25rc1"} }), []string{`VERSIONS: version "1.25rc1" is not digits and dots`}},
		{"version not a tag", with(func(r *scaffold.Runtime) { r.Versions = []string{"1.25", "a b"} }), []string{`version "a b" is not a valid Docker tag`, `VERSIONS: version "a b" is not digits and dots`}},
		{"version command on two lines", with(func(r *scaffold.Runtime) { r.VersionCmd = "go\nversion" }), []string{"VERSION_CMD", "not a single command line"}},
		{"identifier collision", with(func(r *scaffold.Runtime) { r.Name = "python-3"; r.Versions = []string{"12"} }), []string{"build-graph identifier python_3_12 is also the identifier of"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list := fixture(t)
			before := snapshot(t, filepath.Dir(list))
			_, err := scaffold.Add(list, c.r)
			var serr *scaffold.Error
			if !errors.As(err, &serr) {
				t.Fatalf("error %v, want a *scaffold.Error", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "; nothing was written:") {
				t.Errorf("message does not say that nothing was written:\n%s", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
			after := snapshot(t, filepath.Dir(list))
			for k, v := range after {
				if before[k] != v {
					t.Errorf("%s was written", k)
				}
			}
			if len(after) != len(before) {
				t.Errorf("files %d before, %d after", len(before), len(after))
			}
		})
	}
}

func TestAListThatIsInvalidAlreadyIsReported(t *testing.T) {
	list := fixture(t)
	os.WriteFile(list, []byte("runtimes:\n  - name: node\n    versions: [22]\n"), 0o644)
	_, err := scaffold.Add(list, golang)
	if err == nil || !strings.Contains(err.Error(), "the runtime list is invalid already") || !strings.Contains(err.Error(), "version 22 is a YAML number") {
		t.Errorf("error %v", err)
	}
}

// ---------------------------------------------------------------------------
// The generated self-test, run for real with a stand-in `go` on PATH.

// scaffolded writes the go runtime into a copy of the fixed list and returns
// its folder.
func scaffolded(t *testing.T, r scaffold.Runtime) string {
	t.Helper()
	list := fixture(t)
	p, err := scaffold.Add(list, r)
	if err != nil {
		t.Fatal(err)
	}
	return p.Dir
}

func hostArch(t *testing.T) (arch, other string) {
	t.Helper()
	switch runtime.GOARCH {
	case "amd64":
		return "amd64", "arm64"
	case "arm64":
		return "arm64", "amd64"
	}
	t.Skipf("self-tests know arm64 and amd64 only, this is %s", runtime.GOARCH)
	return "", ""
}

// toolsPath is a directory holding links to the host tools the self-test
// uses, and nothing else.
func toolsPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range []string{"sh", "uname", "sed", "grep", "tr", "cut"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeTool writes an executable `name` that prints out and exits with code.
func fakeTool(t *testing.T, name, out string, code int) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\n# a stand-in for the runtime's version command\nprintf '%s\\n' '" + out + "'\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

type result struct {
	exit int
	out  string
}

func run(t *testing.T, dir string, env ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "self-test"))
	cmd.Dir = t.TempDir()
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	r := result{out: string(out)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.exit = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return r
}

func hasLine(t *testing.T, out, pattern string) {
	t.Helper()
	if !regexp.MustCompile("(?m)^" + pattern + "$").MatchString(out) {
		t.Errorf("no line matches %q in:\n%s", pattern, out)
	}
}

func TestGeneratedSelfTest(t *testing.T) {
	arch, other := hostArch(t)
	dir := scaffolded(t, golang)
	tools := toolsPath(t)
	sep := string(os.PathListSeparator)
	goOut := "go version go1.25.3 linux/" + arch
	path := "PATH=" + fakeTool(t, "go", goOut, 0) + sep + tools

	for _, v := range []string{"1.25", "1.25.3", "1"} {
		t.Run("passes with "+v, func(t *testing.T) {
			r := run(t, dir, path, "EXPECTED_VERSION="+v, "EXPECTED_ARCH="+arch)
			if r.exit != 0 {
				t.Errorf("exit %d, want 0", r.exit)
			}
			hasLine(t, r.out, `ok - architecture is `+arch+` \(uname -m: .*\)`)
			hasLine(t, r.out, `ok - go version matches EXPECTED_VERSION=`+regexp.QuoteMeta(v)+` \(go version: `+regexp.QuoteMeta(goOut)+`\)`)
			hasLine(t, r.out, `self-test: passed: go `+regexp.QuoteMeta(v)+` on `+arch)
		})
	}
	// 1.2 is not 1.25, 1.250 is not 1.25, 25 and 5.3 are parts of other numbers.
	for _, v := range []string{"1.2", "1.250", "25", "5.3", "1.26", "11.25"} {
		t.Run("fails with version "+v, func(t *testing.T) {
			r := run(t, dir, path, "EXPECTED_VERSION="+v, "EXPECTED_ARCH="+arch)
			if r.exit != 1 {
				t.Errorf("exit %d, want 1", r.exit)
			}
			hasLine(t, r.out, `FAIL - go version matches EXPECTED_VERSION=`+regexp.QuoteMeta(v)+`: go version printed: `+regexp.QuoteMeta(goOut))
			hasLine(t, r.out, `self-test: FAILED \(see the FAIL lines above\)`)
		})
	}
	t.Run("fails with arch "+other, func(t *testing.T) {
		r := run(t, dir, path, "EXPECTED_VERSION=1.25", "EXPECTED_ARCH="+other)
		if r.exit != 1 {
			t.Errorf("exit %d, want 1", r.exit)
		}
		hasLine(t, r.out, `FAIL - architecture is `+other+`: uname -m says .* \(`+arch+`\)`)
		hasLine(t, r.out, `ok - go version matches .*`)
	})
	t.Run("fails without go", func(t *testing.T) {
		r := run(t, dir, "PATH="+tools, "EXPECTED_VERSION=1.25", "EXPECTED_ARCH="+arch)
		if r.exit != 1 {
			t.Errorf("exit %d, want 1", r.exit)
		}
		hasLine(t, r.out, `FAIL - go is on PATH: not found \(PATH=.*\)`)
	})
	t.Run("fails when the version command fails", func(t *testing.T) {
		broken := "PATH=" + fakeTool(t, "go", "go: unknown command", 2) + sep + tools
		r := run(t, dir, broken, "EXPECTED_VERSION=1.25", "EXPECTED_ARCH="+arch)
		if r.exit != 1 {
			t.Errorf("exit %d, want 1", r.exit)
		}
		hasLine(t, r.out, `FAIL - go version runs: exit status 2: go: unknown command`)
	})
	for _, c := range []struct {
		name string
		env  []string
		line string
	}{
		{"version unset", []string{"EXPECTED_ARCH=" + arch}, `FAIL - EXPECTED_VERSION is set: it is unset or empty; run with -e EXPECTED_VERSION=<the tag's version, e.g. 1.26>`},
		{"version not a number", []string{"EXPECTED_VERSION=latest", "EXPECTED_ARCH=" + arch}, `FAIL - EXPECTED_VERSION is a version number: got 'latest', want digits and dots, e.g. 1.26`},
		{"arch unset", []string{"EXPECTED_VERSION=1.25"}, `FAIL - EXPECTED_ARCH is set: it is unset or empty; run with -e EXPECTED_ARCH=arm64 or amd64`},
		{"arch in uname's names", []string{"EXPECTED_VERSION=1.25", "EXPECTED_ARCH=x86_64"}, `FAIL - EXPECTED_ARCH is arm64 or amd64: got 'x86_64'`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, dir, append(c.env, path)...)
			if r.exit != 2 {
				t.Errorf("exit %d, want 2", r.exit)
			}
			hasLine(t, r.out, regexp.QuoteMeta(c.line))
			hasLine(t, r.out, `self-test: FAILED before testing anything: fix the environment`)
		})
	}
}

// The default version command is "<name> --version"; a command with quotes
// in it reaches the self-test intact.
func TestVersionCommand(t *testing.T) {
	arch, _ := hostArch(t)
	tools := toolsPath(t)
	sep := string(os.PathListSeparator)
	r := golang
	r.Name, r.VersionCmd = "deno", ""
	dir := scaffolded(t, r)
	stub := t.TempDir()
	os.WriteFile(filepath.Join(stub, "deno"), []byte("#!/bin/sh\n[ \"$1\" = --version ] && echo 'deno 1.25.0 (stable)'\n"), 0o755)
	if res := run(t, dir, "PATH="+stub+sep+tools, "EXPECTED_VERSION=1.25", "EXPECTED_ARCH="+arch); res.exit != 0 {
		t.Errorf("default version command: exit %d:\n%s", res.exit, res.out)
	}

	r.Name, r.VersionCmd = "quoted", `echo "it's 1.25"`
	dir = scaffolded(t, r)
	res := run(t, dir, "PATH="+stub+sep+tools, "EXPECTED_VERSION=1.25", "EXPECTED_ARCH="+arch)
	if res.exit != 0 {
		t.Errorf("exit %d, want 0:\n%s", res.exit, res.out)
	}
	hasLine(t, res.out, regexp.QuoteMeta(`ok - quoted version matches EXPECTED_VERSION=1.25 (echo "it's 1.25": it's 1.25)`))
	src, _ := os.ReadFile(filepath.Join(dir, "self-test"))
	if !bytes.Contains(src, []byte(`version_cmd='echo "it'\''s 1.25"'`)) {
		t.Errorf("the version command is not quoted for sh:\n%s", src)
	}
}

// The generated files pass the linters that `make test` runs on every
// runtime folder; the round trip runs the contract tests on them.
func TestGeneratedFilesLintClean(t *testing.T) {
	for _, r := range []scaffold.Runtime{golang, temurin, renamed(alpineNode, "alpine-node")} {
		t.Run(r.Name, func(t *testing.T) { lintClean(t, scaffolded(t, r)) })
	}
}

func lintClean(t *testing.T, dir string) {
	for _, c := range []struct {
		tool string
		dirs []string
		args []string
	}{
		{"shellcheck", nil, []string{"-s", "sh", filepath.Join(dir, "self-test")}},
		{"hadolint", []string{filepath.Join(repoRoot, ".venv", "bin")}, []string{"--failure-threshold", "style", "--no-color", filepath.Join(dir, "Dockerfile")}},
	} {
		t.Run(c.tool, func(t *testing.T) {
			bin := ""
			for _, d := range c.dirs {
				if _, err := os.Stat(filepath.Join(d, c.tool)); err == nil {
					bin = filepath.Join(d, c.tool)
				}
			}
			if bin == "" {
				var err error
				if bin, err = exec.LookPath(c.tool); err != nil {
					if os.Getenv("CI") == "true" {
						t.Fatalf("%s not found (make setup installs it)", c.tool)
					}
					t.Skipf("%s not found (make setup installs it)", c.tool)
				}
			}
			if out, err := exec.Command(bin, c.args...).CombinedOutput(); err != nil {
				t.Errorf("%s %v: %v\n%s", c.tool, c.args, err, out)
			}
		})
	}
}

// TestVersionCheckReadsTheFirstVersionOfRealOutputs runs the generated
// version check on what real runtimes print (copied from their official
// images): the first version-shaped token counts, by components, so a date
// or a build number later in the line cannot pass for the version.
func TestVersionCheckReadsTheFirstVersionOfRealOutputs(t *testing.T) {
	arch, _ := hostArch(t)
	tools := toolsPath(t)
	sep := string(os.PathListSeparator)
	for _, c := range []struct {
		cmd, out   string
		pass, fail []string
	}{
		{"node --version", "v22.11.0", []string{"22", "22.11", "22.11.0"}, []string{"11", "2", "22.1", "0"}},
		{"python3 --version", "Python 3.13.1", []string{"3", "3.13", "3.13.1"}, []string{"13", "3.1", "1"}},
		{"go version", "go version go1.26.0 linux/amd64", []string{"1.26", "1"}, []string{"26", "1.2", "64"}},
		{"ruby --version", "ruby 3.4.1 (2024-12-25 revision 48d4efcb85) +PRISM [x86_64-linux]", []string{"3.4", "3.4.1"}, []string{"2024", "12", "25", "4.1"}},
		{"java -version", "openjdk version \"21.0.5\" 2024-10-15 LTS\nOpenJDK Runtime Environment Temurin-21.0.5+11 (build 21.0.5+11-LTS)\nOpenJDK 64-Bit Server VM Temurin-21.0.5+11 (build 21.0.5+11-LTS, mixed mode, sharing)", []string{"21", "21.0", "21.0.5"}, []string{"15", "2024", "10", "64", "5"}},
		{"java -version", "openjdk 17.0.15 2025-04-15", []string{"17"}, []string{"15", "25", "2025"}},
		{"java -version", "openjdk version \"25\" 2025-10-21", []string{"25"}, []string{"21", "2025", "10"}},
		{"php --version", "PHP 8.4.2 (cli) (built: Dec 19 2024 13:41:48) (NTS)\nCopyright (c) The PHP Group\nZend Engine v4.4.2, Copyright (c) Zend Technologies", []string{"8", "8.4", "8.4.2"}, []string{"4.4", "19", "2024", "4"}},
	} {
		name, _, _ := strings.Cut(c.cmd, " ")
		r := golang
		// A name of its own: the fixture's list already has node and python.
		r.Name, r.VersionCmd = "rt-"+name, c.cmd
		dir := scaffolded(t, r)
		path := "PATH=" + fakeTool(t, name, c.out, 0) + sep + tools
		for _, v := range c.pass {
			if res := run(t, dir, path, "EXPECTED_VERSION="+v, "EXPECTED_ARCH="+arch); res.exit != 0 {
				t.Errorf("%s printing %q: EXPECTED_VERSION=%s: exit %d, want 0:\n%s", c.cmd, c.out, v, res.exit, res.out)
			}
		}
		for _, v := range c.fail {
			if res := run(t, dir, path, "EXPECTED_VERSION="+v, "EXPECTED_ARCH="+arch); res.exit != 1 {
				t.Errorf("%s printing %q: EXPECTED_VERSION=%s: exit %d, want 1:\n%s", c.cmd, c.out, v, res.exit, res.out)
			}
		}
	}
}

package runtimes_test

// Tests of the runtime images' self-tests (runtimes/<name>/self-test), run on
// this host with real runtimes and real tools: the machine's python3, Node.js
// 22 from the npm registry, Debian's git, jq, zip, unzip, curl, ssh and awscli
// (AWS CLI v2). .ci/install-runtime-test-tools.sh installs what is missing.
//
// A missing tool skips its test on a developer's machine and fails it when
// CI=true.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evergreen-images/evergreen/runtimes"
)

const installHint = "run .ci/install-runtime-test-tools.sh"

// inCI reports whether a missing tool must fail the test instead of skipping it.
func inCI() bool { return os.Getenv("CI") == "true" }

// missingTool skips the test, or fails it in CI.
func missingTool(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (" + installHint + ")"
	if inCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// runtimeDirs lists the folders here that hold a Dockerfile.
func runtimeDirs(t *testing.T) []string {
	t.Helper()
	return runtimeDirsIn(t, ".")
}

// runtimeDirsIn lists the folders of dir that hold a Dockerfile.
func runtimeDirsIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "Dockerfile")); err == nil {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

// hostArch is this machine's architecture in Docker's names, and the other one.
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

type result struct {
	exit int
	out  string
}

// runSelfTest runs runtimes/<name>/self-test with the environment of the test
// process, less EXPECTED_*, plus env (NAME=VALUE; PATH=... replaces PATH).
func runSelfTest(t *testing.T, name string, env ...string) result {
	t.Helper()
	script, err := filepath.Abs(filepath.Join(name, "self-test"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = t.TempDir() // not the repo: the script must find its companion via $0
	cmd.Env = append(withoutVars(os.Environ(), env), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	r := result{out: out.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.exit = exitErr.ExitCode()
	default:
		t.Fatalf("running %s: %v\n%s", script, err, r.out)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s timed out\n%s", script, r.out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s/self-test exited %d with %v:\n%s", name, r.exit, env, r.out)
		}
	})
	return r
}

// withoutVars drops EXPECTED_* and every variable set in env from environ.
func withoutVars(environ, env []string) []string {
	drop := map[string]bool{"EXPECTED_VERSION": true, "EXPECTED_ARCH": true}
	for _, kv := range env {
		drop[strings.SplitN(kv, "=", 2)[0]] = true
	}
	var kept []string
	for _, kv := range environ {
		if !drop[strings.SplitN(kv, "=", 2)[0]] {
			kept = append(kept, kv)
		}
	}
	return kept
}

// hasLine asserts that out has a line matching the regular expression.
func hasLine(t *testing.T, out, pattern string) {
	t.Helper()
	re := regexp.MustCompile("(?m)^" + pattern + "$")
	if !re.MatchString(out) {
		t.Errorf("no line matches %q in:\n%s", pattern, out)
	}
}

// noLine asserts that no line of out matches the regular expression.
func noLine(t *testing.T, out, pattern string) {
	t.Helper()
	re := regexp.MustCompile("(?m)^" + pattern + "$")
	if m := re.FindString(out); m != "" {
		t.Errorf("unexpected line %q in:\n%s", m, out)
	}
}

func assertPassed(t *testing.T, r result) {
	t.Helper()
	if r.exit != 0 {
		t.Errorf("self-test exited %d, want 0:\n%s", r.exit, r.out)
	}
	noLine(t, r.out, `FAIL - .*`)
	hasLine(t, r.out, `self-test: passed: .*`)
}

func assertFailed(t *testing.T, r result, wantExit int) {
	t.Helper()
	if r.exit != wantExit {
		t.Errorf("self-test exited %d, want %d:\n%s", r.exit, wantExit, r.out)
	}
	hasLine(t, r.out, `self-test: FAILED.*`)
}

// Every line is a check result or the closing line: the output is read in a
// CodeBuild log.
func assertOnlyCheckLines(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if !strings.HasPrefix(line, "ok - ") && !strings.HasPrefix(line, "FAIL - ") &&
			!strings.HasPrefix(line, "self-test: ") {
			t.Errorf("line is not 'ok - ...', 'FAIL - ...' or the closing line: %q", line)
		}
	}
}

// commonEnvCases are the checks of EXPECTED_VERSION / EXPECTED_ARCH themselves,
// which every runtime's self-test makes before anything else.
func commonEnvCases(t *testing.T, name, version, pathEnv string) {
	arch, _ := hostArch(t)
	cases := []struct {
		label string
		env   []string
		lines []string
	}{
		{"version unset", []string{"EXPECTED_ARCH=" + arch},
			[]string{`FAIL - EXPECTED_VERSION is set: it is unset or empty; run with -e EXPECTED_VERSION=.*`}},
		{"version empty", []string{"EXPECTED_VERSION=", "EXPECTED_ARCH=" + arch},
			[]string{`FAIL - EXPECTED_VERSION is set: .*`}},
		{"arch unset", []string{"EXPECTED_VERSION=" + version},
			[]string{`FAIL - EXPECTED_ARCH is set: it is unset or empty; run with -e EXPECTED_ARCH=arm64 or amd64`}},
		{"both unset", nil,
			[]string{`FAIL - EXPECTED_VERSION is set: .*`, `FAIL - EXPECTED_ARCH is set: .*`}},
		{"version not a number", []string{"EXPECTED_VERSION=latest", "EXPECTED_ARCH=" + arch},
			[]string{`FAIL - EXPECTED_VERSION is a version number: got 'latest', want digits and dots, .*`}},
		{"version trailing dot", []string{"EXPECTED_VERSION=" + version + ".", "EXPECTED_ARCH=" + arch},
			[]string{`FAIL - EXPECTED_VERSION is a version number: got '` + regexp.QuoteMeta(version) + `\.'.*`}},
		{"arch in uname's names", []string{"EXPECTED_VERSION=" + version, "EXPECTED_ARCH=x86_64"},
			[]string{`FAIL - EXPECTED_ARCH is arm64 or amd64: got 'x86_64'`}},
	}
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			t.Parallel()
			r := runSelfTest(t, name, append(c.env, pathEnv)...)
			assertFailed(t, r, 2)
			for _, l := range c.lines {
				hasLine(t, r.out, l)
			}
			noLine(t, r.out, `ok - architecture .*`) // stopped before testing anything
			assertOnlyCheckLines(t, r.out)
		})
	}
}

// ---------------------------------------------------------------------------
// Files

func TestRuntimeFoldersHaveTheFilesOfTheContract(t *testing.T) {
	dirs := runtimeDirs(t)
	for _, rt := range load(t, "runtimes.yaml").Runtimes {
		if !slices.Contains(dirs, rt.Name) {
			t.Errorf("runtime folder %s (with a Dockerfile) is missing; have %v", rt.Name, dirs)
		}
	}
	for _, name := range dirs {
		t.Run(name, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(name, "self-test"))
			if err != nil {
				t.Fatalf("self-test: %v", err)
			}
			if got := fi.Mode().Perm(); got != 0o755 {
				t.Errorf("%s/self-test has mode %o, want 0755 (chmod 0755 it)", name, got)
			}
			src, err := os.ReadFile(filepath.Join(name, "self-test"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(src, []byte("#!/bin/sh\n")) {
				t.Errorf("%s/self-test does not start with #!/bin/sh", name)
			}
			// When git tracks the file, the index must say 100755 too (a checkout
			// with core.fileMode=false would otherwise hide a lost mode).
			if git, err := exec.LookPath("git"); err == nil {
				out, err := exec.Command(git, "ls-files", "-s", "--", filepath.Join(name, "self-test")).Output()
				if err == nil && len(out) > 0 && !bytes.HasPrefix(out, []byte("100755 ")) {
					t.Errorf("git index has %s/self-test as %s, want mode 100755 (git update-index --chmod=+x)",
						name, strings.Fields(string(out))[0])
				}
			}
		})
	}
}

func TestNodeCompanionScriptsAreIdentical(t *testing.T) {
	// Each runtime folder is its own build context, so node-ci-cd carries a copy.
	a, err := os.ReadFile(filepath.Join("node", "self-test.js"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("node-ci-cd", "self-test.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("node/self-test.js and node-ci-cd/self-test.js differ: copy one over the other")
	}
}

func TestSelfTestsPassShellcheck(t *testing.T) {
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		missingTool(t, "shellcheck not found")
	}
	for _, name := range runtimeDirs(t) {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(shellcheck, "-s", "sh", filepath.Join(name, "self-test")).CombinedOutput()
			if err != nil {
				t.Errorf("shellcheck -s sh %s/self-test: %v\n%s", name, err, out)
			}
		})
	}
}

// contractLists are the runtime lists whose folders must follow the
// contract: the default list, and one runtime of each distribution family as
// the scaffold writes it (testdata/runtimes/families, which internal/scaffold
// proves is what it writes today).
var contractLists = []string{"runtimes.yaml", "../testdata/runtimes/families/runtimes.yaml"}

// The Dockerfiles' side of the contract with the pipeline
// (docs/runtime-contract.md), for each runtime of each list, by its
// variant's family.
func TestDockerfilesFollowTheContract(t *testing.T) {
	for _, listPath := range contractLists {
		problems := contractProblems(t, listPath)
		abs, err := filepath.Abs(filepath.Dir(listPath))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range runtimeDirsIn(t, filepath.Dir(listPath)) {
			t.Run(filepath.Base(abs)+"/"+name, func(t *testing.T) {
				for _, p := range problems[name] {
					t.Error(p)
				}
			})
		}
	}
}

// TestContractRefusesAnotherFamilysDockerfile: the contract is the
// variant's, so a Dockerfile written for another family fails it, by each
// rule it breaks.
func TestContractRefusesAnotherFamilysDockerfile(t *testing.T) {
	src := "../testdata/runtimes/families"
	l := load(t, filepath.Join(src, "runtimes.yaml"))
	byFamily := map[runtimes.Family]string{}
	for _, rt := range l.Runtimes {
		byFamily[rt.Variant.Family] = rt.Name
	}
	for _, swap := range [][2]runtimes.Family{{runtimes.Ubuntu, runtimes.Debian}, {runtimes.Alpine, runtimes.Ubuntu}, {runtimes.Debian, runtimes.Alpine}} {
		victim, donor := byFamily[swap[0]], byFamily[swap[1]]
		if victim == "" || donor == "" {
			t.Fatalf("the families list has no %s or no %s runtime", swap[0], swap[1])
		}
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		df, err := os.ReadFile(filepath.Join(src, donor, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, victim, "Dockerfile"), df, 0o644)
		got := strings.Join(contractProblems(t, filepath.Join(dir, "runtimes.yaml"))[victim], "\n")
		var rt runtimes.Runtime
		for _, r := range l.Runtimes {
			if r.Name == victim {
				rt = r
			}
		}
		tag, _, _ := rt.Variant.FromTag()
		wants := []string{"FROM is ", "want \"FROM ${BASE_REGISTRY}/${BASE_IMAGE}:" + tag + "\"", "instructions before FROM", "org.opencontainers.image.base.name"}
		if swap[0].PackageManager() != swap[1].PackageManager() {
			wants = append(wants, "the Dockerfile runs "+swap[1].PackageManager(), "Dockerfile lacks")
		}
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("%s's Dockerfile in %s (%s): the problems do not say %q:\n%s", donor, victim, swap[0], want, got)
			}
		}
	}
}

// contractProblems checks each runtime folder next to the list at listPath
// against the contract and returns what is wrong, by folder.
func contractProblems(t *testing.T, listPath string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	// A listed runtime's defaults are its base registry and image, so that a
	// plain `docker build` builds what the pipeline builds; a folder the list
	// does not name yet may default to any image, on the default variant.
	listed := map[string]runtimes.Runtime{}
	for _, rt := range load(t, listPath).Runtimes {
		listed[rt.Name] = rt
	}
	dir := filepath.Dir(listPath)
	defaultVariant, err := runtimes.ParseVariant(runtimes.DefaultVariant, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range runtimeDirsIn(t, dir) {
		fail := func(format string, args ...any) { out[name] = append(out[name], fmt.Sprintf(format, args...)) }
		func() {
			folder := filepath.Join(dir, name)
			src, err := os.ReadFile(filepath.Join(folder, "Dockerfile"))
			if err != nil {
				fail("%v", err)
				return
			}
			var instr []string // instructions, continuation lines joined, comments dropped
			cur := ""
			for _, line := range strings.Split(string(src), "\n") {
				trimmed := strings.TrimSpace(line)
				if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
					continue
				}
				if strings.HasPrefix(trimmed, "#") {
					continue
				}
				if strings.HasSuffix(trimmed, "\\") {
					cur += strings.TrimSuffix(trimmed, "\\") + " "
					continue
				}
				instr = append(instr, strings.Join(strings.Fields(cur+trimmed), " "))
				cur = ""
			}
			var beforeFrom []string
			fromAt := -1
			for i, in := range instr {
				if strings.HasPrefix(strings.ToUpper(in), "FROM ") {
					if fromAt >= 0 {
						fail("more than one FROM: %q", in)
					}
					fromAt = i
				} else if fromAt < 0 {
					beforeFrom = append(beforeFrom, in)
				}
			}
			if fromAt < 0 {
				fail("no FROM")
				return
			}
			rt, ok := listed[name]
			if !ok {
				rt = runtimes.Runtime{BaseRegistry: runtimes.DefaultBaseRegistry, BaseImage: "<any>", Variant: defaultVariant}
				if len(beforeFrom) > 1 && strings.HasPrefix(beforeFrom[1], "ARG BASE_IMAGE=") {
					rt.BaseImage = strings.TrimPrefix(beforeFrom[1], "ARG BASE_IMAGE=")
				}
			}
			tag, releaseArg, releaseDefault := rt.Variant.FromTag()
			from := "${BASE_REGISTRY}/${BASE_IMAGE}:" + tag
			if got, want := instr[fromAt], "FROM "+from; got != want {
				fail("FROM is %q, want %q (the variant %s of the list)", got, want, rt.Variant.Tag)
			}
			wantArgs := []string{
				"ARG BASE_REGISTRY=" + rt.BaseRegistry,
				"ARG BASE_IMAGE=" + rt.BaseImage,
				"ARG VERSION",
			}
			if releaseArg != "" {
				wantArgs = append(wantArgs, "ARG "+releaseArg+"="+releaseDefault)
			}
			if strings.Join(beforeFrom, "\n") != strings.Join(wantArgs, "\n") {
				fail("instructions before FROM:\n%s\nwant:\n%s", strings.Join(beforeFrom, "\n"), strings.Join(wantArgs, "\n"))
			}
			all := strings.Join(instr, "\n")
			want := []string{
				"chmod 0755 /usr/local/bin/self-test",
				// Verify reads the base image's digest through this label
				// (the inventory's base), so it must name the FROM exactly.
				`org.opencontainers.image.base.name="` + from + `"`,
			}
			var foreign string // the other family's package manager
			switch rt.Variant.Family.PackageManager() {
			case "apt":
				want = append(want, "DEBIAN_FRONTEND=noninteractive", "apt-get update",
					"apt-get dist-upgrade -y --no-install-recommends",
					"-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold",
					"rm -rf /var/lib/apt/lists/*")
				foreign = "apk"
			case "apk":
				want = append(want, "apk upgrade --no-cache")
				foreign = "apt-get"
			default:
				fail("family %s has no patch step in this test", rt.Variant.Family)
			}
			for _, w := range want {
				if !strings.Contains(all, w) {
					fail("Dockerfile lacks %q (%s)", w, rt.Variant.Family)
				}
			}
			if regexp.MustCompile(`(^|[\s;&|])` + foreign + `\s`).MatchString(all) {
				fail("the Dockerfile runs %s on %s %s: patch with %s", foreign, rt.Variant.Family, rt.Variant.Release, rt.Variant.Family.PackageManager())
			}
			copied := false
			for _, in := range instr[fromAt:] {
				up := strings.ToUpper(in)
				if strings.HasPrefix(up, "CMD ") || strings.HasPrefix(up, "ENTRYPOINT ") {
					fail("%q: keep the base image's CMD and ENTRYPOINT", in)
				}
				if strings.HasPrefix(up, "COPY ") || strings.HasPrefix(up, "ADD ") {
					f := strings.Fields(in)
					if strings.HasPrefix(f[1], "--") {
						fail("%q: no COPY flags (Debian 12's buildah must build this file)", in)
						continue
					}
					for _, src := range f[1 : len(f)-1] {
						if _, err := os.Stat(filepath.Join(folder, src)); err != nil {
							fail("%q copies %s, which is not in the build context: %v", in, src, err)
						}
					}
					if f[len(f)-1] == "/usr/local/bin/" && strings.Contains(in, " self-test ") {
						copied = true
					}
				}
			}
			if !copied {
				fail("no COPY of self-test to /usr/local/bin/")
			}
			if name == "node-ci-cd" {
				for _, pkg := range []string{"git", "awscli", "jq", "zip", "unzip"} {
					if !regexp.MustCompile(`apt-get install -y --no-install-recommends [^;&]*\b` + pkg + `\b`).MatchString(all) {
						fail("node-ci-cd does not apt-get install %s", pkg)
					}
				}
			}
		}()
	}
	return out
}

// ---------------------------------------------------------------------------
// The version rule, in both companions: actual equals expected or starts with
// expected followed by ".".

var versionCases = []struct {
	actual, expected string
	want             bool
}{
	{"22.23.3", "22", true},
	{"22.23.3", "22.23", true},
	{"22.23.3", "22.23.3", true},
	{"22", "22", true},
	{"22.23.3", "2", false},
	{"22.23.3", "22.2", false},
	{"22.23.3", "220", false},
	{"22.23.3", "24", false},
	{"22.23.3", "22.23.3.1", false},
	{"3.13.9", "3.13", true},
	{"3.13.0", "3.1", false},
	{"3.13.0", "3", true},
	{"3.14.0rc1", "3.14", true},
	{"3.12.11", "3.13", false},
}

func TestVersionMatching(t *testing.T) {
	var lines []string
	for _, c := range versionCases {
		lines = append(lines, c.actual+" "+c.expected)
	}
	input := strings.Join(lines, "\n") + "\n"
	companions := []struct {
		name, tool string
		args       []string
	}{
		{"python/self-test.py", "python3", []string{"-c", `import importlib.util, sys
spec = importlib.util.spec_from_file_location("st", "python/self-test.py")
st = importlib.util.module_from_spec(spec)
spec.loader.exec_module(st)
for line in sys.stdin:
    a, e = line.split()
    print(st.version_matches(a, e))`}},
		{"node/self-test.js", "node", []string{"-e", `const { versionMatches } = require('./node/self-test.js');
const lines = require('fs').readFileSync(0, 'utf8').trim().split('\n');
for (const l of lines) { const [a, e] = l.split(' '); console.log(versionMatches(a, e) ? 'True' : 'False'); }`}},
	}
	for _, c := range companions {
		t.Run(c.name, func(t *testing.T) {
			tool, err := exec.LookPath(c.tool)
			if err != nil {
				missingTool(t, "%s not found", c.tool)
			}
			cmd := exec.Command(tool, c.args...)
			cmd.Stdin = strings.NewReader(input)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			if len(got) != len(versionCases) {
				t.Fatalf("got %d answers, want %d:\n%s", len(got), len(versionCases), out)
			}
			for i, vc := range versionCases {
				if want := map[bool]string{true: "True", false: "False"}[vc.want]; got[i] != want {
					t.Errorf("%s matches EXPECTED_VERSION=%s: got %s, want %s", vc.actual, vc.expected, got[i], want)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// python

func TestPythonSelfTest(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		missingTool(t, "python3 not found")
	}
	out, err := exec.Command(python, "-c",
		"import platform, sys; print('%d.%d' % sys.version_info[:2], platform.python_version())").Output()
	if err != nil {
		t.Fatalf("%s: %v", python, err)
	}
	f := strings.Fields(string(out))
	majorMinor, full := f[0], f[1]
	minor := strings.SplitN(majorMinor, ".", 2)[1]
	arch, otherArch := hostArch(t)
	pathEnv := "PATH=" + os.Getenv("PATH")
	t.Logf("host python3 is %s (%s) on %s", full, python, arch)

	// Each run creates a venv with pip (a few seconds): keep the cases few;
	// TestVersionMatching covers the matching rule.
	passing := []string{majorMinor}
	for _, v := range passing {
		t.Run("passes with "+v, func(t *testing.T) {
			t.Parallel()
			r := runSelfTest(t, "python", "EXPECTED_VERSION="+v, "EXPECTED_ARCH="+arch, pathEnv)
			assertPassed(t, r)
			for _, l := range []string{
				`ok - architecture is ` + arch + ` \(uname -m: .*\)`,
				`ok - python version ` + regexp.QuoteMeta(full) + ` matches EXPECTED_VERSION=` + regexp.QuoteMeta(v),
				`ok - python sees architecture ` + arch + ` .*`,
				`ok - a Python script computes correct results.*`,
				`ok - pip works with Python ` + regexp.QuoteMeta(majorMinor) + ` .*`,
				`ok - pip check finds no broken requirements`,
				`ok - python -m venv \+ offline pip install of a local wheel`,
			} {
				hasLine(t, r.out, l)
			}
			assertOnlyCheckLines(t, r.out)
		})
	}

	wrong := []string{majorMinor + "9"} // 3.119 is not 3.11
	if len(minor) > 1 {
		wrong = []string{"3." + minor[:1]} // 3.1 must not match 3.11.x
	}
	for _, v := range wrong {
		t.Run("fails with version "+v, func(t *testing.T) {
			t.Parallel()
			r := runSelfTest(t, "python", "EXPECTED_VERSION="+v, "EXPECTED_ARCH="+arch, pathEnv)
			assertFailed(t, r, 1)
			hasLine(t, r.out, `FAIL - python version matches EXPECTED_VERSION=`+regexp.QuoteMeta(v)+
				`: .* is Python `+regexp.QuoteMeta(full))
			hasLine(t, r.out, `ok - architecture is `+arch+` .*`)
			assertOnlyCheckLines(t, r.out)
		})
	}

	t.Run("fails with arch "+otherArch, func(t *testing.T) {
		t.Parallel()
		r := runSelfTest(t, "python", "EXPECTED_VERSION="+majorMinor, "EXPECTED_ARCH="+otherArch, pathEnv)
		assertFailed(t, r, 1)
		hasLine(t, r.out, `FAIL - architecture is `+otherArch+`: uname -m says .* \(`+arch+`\)`)
		hasLine(t, r.out, `FAIL - python sees architecture `+otherArch+`: platform.machine\(\) is .* \(`+arch+`\)`)
		hasLine(t, r.out, `ok - python version .*`)
	})

	t.Run("environment", func(t *testing.T) { commonEnvCases(t, "python", majorMinor, pathEnv) })

	t.Run("fails without python3", func(t *testing.T) {
		t.Parallel()
		empty := t.TempDir()
		r := runSelfTest(t, "python", "EXPECTED_VERSION="+majorMinor, "EXPECTED_ARCH="+arch,
			"PATH="+minimalPath(t, empty, "uname", "dirname", "printf"))
		assertFailed(t, r, 1)
		hasLine(t, r.out, `FAIL - python3 is on PATH: not found .*`)
	})
}

// minimalPath makes dir a PATH holding only links to the named host tools.
func minimalPath(t *testing.T, dir string, tools ...string) string {
	t.Helper()
	for _, tool := range tools {
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

// ---------------------------------------------------------------------------
// node and node-ci-cd

// node22Dir finds a directory holding Node.js 22 as `node`: NODE22_BIN, or
// what .ci/install-runtime-test-tools.sh installs.
func node22Dir(t *testing.T) (dir, version string) {
	t.Helper()
	dir = os.Getenv("NODE22_BIN")
	if dir == "" {
		dir = filepath.Join("..", ".tools", "node22", "node_modules", ".bin")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dir, "node"), "--version").Output()
	if err != nil {
		missingTool(t, "no Node.js 22 at %s (set NODE22_BIN to a directory holding node 22): %v", dir, err)
	}
	version = strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	if !strings.HasPrefix(version, "22.") {
		t.Fatalf("%s/node is %s, want 22.x", dir, version)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		missingTool(t, "npm not found")
	}
	return dir, version
}

func TestNodeSelfTest(t *testing.T) {
	dir, full := node22Dir(t)
	arch, otherArch := hostArch(t)
	pathEnv := "PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")

	for _, v := range []string{"22", full} {
		t.Run("passes with "+v, func(t *testing.T) {
			t.Parallel()
			r := runSelfTest(t, "node", "EXPECTED_VERSION="+v, "EXPECTED_ARCH="+arch, pathEnv)
			assertPassed(t, r)
			for _, l := range []string{
				`ok - architecture is ` + arch + ` \(uname -m: .*\)`,
				`ok - node version ` + regexp.QuoteMeta(full) + ` matches EXPECTED_VERSION=` + regexp.QuoteMeta(v),
				`ok - node sees architecture ` + arch + ` \(process.arch=.*\)`,
				`ok - a Node.js script computes correct results.*`,
				`ok - npm --version is [0-9]+\.[0-9]+\.[0-9]+.*`,
				`ok - npm pack \+ offline npm install of a local package`,
			} {
				hasLine(t, r.out, l)
			}
			assertOnlyCheckLines(t, r.out)
		})
	}

	for _, v := range []string{"2", "24", "220", "22.0"} { // 2 must not match 22.x
		t.Run("fails with version "+v, func(t *testing.T) {
			t.Parallel()
			r := runSelfTest(t, "node", "EXPECTED_VERSION="+v, "EXPECTED_ARCH="+arch, pathEnv)
			assertFailed(t, r, 1)
			hasLine(t, r.out, `FAIL - node version matches EXPECTED_VERSION=`+regexp.QuoteMeta(v)+
				`: .* is Node.js `+regexp.QuoteMeta(full))
			assertOnlyCheckLines(t, r.out)
		})
	}

	t.Run("fails with arch "+otherArch, func(t *testing.T) {
		t.Parallel()
		r := runSelfTest(t, "node", "EXPECTED_VERSION=22", "EXPECTED_ARCH="+otherArch, pathEnv)
		assertFailed(t, r, 1)
		hasLine(t, r.out, `FAIL - architecture is `+otherArch+`: uname -m says .* \(`+arch+`\)`)
		hasLine(t, r.out, `FAIL - node sees architecture `+otherArch+`: process.arch is .* \(`+arch+`\)`)
	})

	t.Run("fails with the host's other node", func(t *testing.T) {
		// Without node 22 first on PATH: whatever node the host has (or none).
		t.Parallel()
		r := runSelfTest(t, "node", "EXPECTED_VERSION=22", "EXPECTED_ARCH="+arch,
			"PATH="+withoutDir(os.Getenv("PATH"), dir))
		if r.exit == 0 {
			t.Skip("the host's own node is 22 too")
		}
		assertFailed(t, r, 1)
		hasLine(t, r.out, `FAIL - node .*`)
	})

	t.Run("environment", func(t *testing.T) { commonEnvCases(t, "node", "22", pathEnv) })
}

func withoutDir(path, dir string) string {
	var kept []string
	for _, d := range filepath.SplitList(path) {
		if d != dir {
			kept = append(kept, d)
		}
	}
	return strings.Join(kept, string(os.PathListSeparator))
}

// mirrorPath builds a directory of links to every command in the directories
// of PATH except the excluded ones: a PATH on which exactly those are missing.
func mirrorPath(t *testing.T, exclude ...string) string {
	t.Helper()
	skip := map[string]bool{}
	for _, e := range exclude {
		skip[e] = true
	}
	mirror := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			link := filepath.Join(mirror, e.Name())
			if skip[e.Name()] || e.IsDir() {
				continue
			}
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier PATH entry wins, as on PATH
			}
			if err := os.Symlink(filepath.Join(d, e.Name()), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	return mirror
}

// awsCLI finds an `aws` on PATH (or in /usr/bin) whose --version starts with
// prefix, e.g. "aws-cli/2.".
func awsCLI(prefix string) (path, version string) {
	dirs := append(filepath.SplitList(os.Getenv("PATH")), "/usr/bin", "/usr/local/bin")
	for _, d := range dirs {
		p := filepath.Join(d, "aws")
		if _, err := os.Stat(p); err != nil {
			continue
		}
		out, err := exec.Command(p, "--version").CombinedOutput()
		if err == nil && strings.HasPrefix(string(out), prefix) {
			return p, strings.TrimSpace(string(out))
		}
	}
	return "", ""
}

var ciTools = []string{"git", "jq", "zip", "unzip", "curl", "ssh"}

func TestNodeCICDSelfTest(t *testing.T) {
	dir, full := node22Dir(t)
	arch, otherArch := hostArch(t)
	for _, tool := range ciTools {
		if _, err := exec.LookPath(tool); err != nil {
			missingTool(t, "%s not found", tool)
		}
	}
	sep := string(os.PathListSeparator)
	toolLines := []string{
		`ok - git commits to a new repository \(git version .*\)`,
		`ok - jq evaluates a filter \(jq-.*\)`,
		`ok - zip creates an archive`,
		`ok - unzip extracts the archive`,
		`ok - curl reads a file:// URL \(curl .*\)`,
		`ok - ssh client runs \(.*\)`,
	}

	t.Run("passes with real AWS CLI v2", func(t *testing.T) {
		t.Parallel()
		aws, version := awsCLI("aws-cli/2.")
		if aws == "" {
			missingTool(t, "no AWS CLI v2 (Debian package awscli) found")
		}
		t.Logf("using %s: %s", aws, version)
		r := runSelfTest(t, "node-ci-cd", "EXPECTED_VERSION=22", "EXPECTED_ARCH="+arch,
			"PATH="+dir+sep+filepath.Dir(aws)+sep+os.Getenv("PATH"))
		assertPassed(t, r)
		hasLine(t, r.out, `ok - node version `+regexp.QuoteMeta(full)+` matches EXPECTED_VERSION=22`)
		hasLine(t, r.out, `ok - npm pack \+ offline npm install of a local package`)
		hasLine(t, r.out, `ok - aws --version reports AWS CLI v2 \(aws-cli/2\.[0-9.]+\)`)
		hasLine(t, r.out, `ok - aws ecr put-image --generate-cli-skeleton`)
		for _, l := range toolLines {
			hasLine(t, r.out, l)
		}
		assertOnlyCheckLines(t, r.out)
	})

	t.Run("fails without aws", func(t *testing.T) {
		t.Parallel()
		r := runSelfTest(t, "node-ci-cd", "EXPECTED_VERSION=22", "EXPECTED_ARCH="+arch,
			"PATH="+dir+sep+mirrorPath(t, "aws"))
		assertFailed(t, r, 1)
		hasLine(t, r.out, `FAIL - aws --version reports AWS CLI v2: aws not found on PATH`)
		noLine(t, r.out, `.* aws ecr put-image .*`)
		for _, l := range toolLines { // the other checks still run and pass
			hasLine(t, r.out, l)
		}
		hasLine(t, r.out, `ok - node version .*`)
	})

	t.Run("fails with real AWS CLI v1", func(t *testing.T) {
		t.Parallel()
		aws, version := awsCLI("aws-cli/1.")
		if aws == "" {
			t.Skip("no AWS CLI v1 on this machine; the stub test below covers the version parsing")
		}
		t.Logf("using %s: %s", aws, version)
		r := runSelfTest(t, "node-ci-cd", "EXPECTED_VERSION=22", "EXPECTED_ARCH="+arch,
			"PATH="+dir+sep+filepath.Dir(aws)+sep+os.Getenv("PATH"))
		assertFailed(t, r, 1)
		hasLine(t, r.out, `FAIL - aws --version reports AWS CLI v2: `+regexp.QuoteMeta(aws)+
			` printed \(exit status 0\): aws-cli/1\..*`)
		assertOnlyCheckLines(t, r.out)
	})

	t.Run("fails without jq and zip", func(t *testing.T) {
		t.Parallel()
		path := dir + sep + mirrorPath(t, "jq", "zip", "aws")
		if aws, _ := awsCLI("aws-cli/2."); aws != "" {
			awsOnly := t.TempDir() // just the real aws v2, not the rest of its directory
			if err := os.Symlink(aws, filepath.Join(awsOnly, "aws")); err != nil {
				t.Fatal(err)
			}
			path += sep + awsOnly
		}
		r := runSelfTest(t, "node-ci-cd", "EXPECTED_VERSION=22", "EXPECTED_ARCH="+arch, "PATH="+path)
		assertFailed(t, r, 1)
		hasLine(t, r.out, `FAIL - jq evaluates a filter: jq not found on PATH`)
		hasLine(t, r.out, `FAIL - zip creates an archive: zip not found on PATH`)
		hasLine(t, r.out, `FAIL - unzip extracts the archive: no archive to extract \(zip failed above\)`)
		hasLine(t, r.out, `ok - git commits to a new repository .*`)
	})

	t.Run("fails with version 24 and arch "+otherArch, func(t *testing.T) {
		t.Parallel()
		r := runSelfTest(t, "node-ci-cd", "EXPECTED_VERSION=24", "EXPECTED_ARCH="+otherArch,
			"PATH="+dir+sep+os.Getenv("PATH"))
		assertFailed(t, r, 1)
		hasLine(t, r.out, `FAIL - node version matches EXPECTED_VERSION=24: .* is Node.js `+regexp.QuoteMeta(full))
		hasLine(t, r.out, `FAIL - architecture is `+otherArch+`: .*`)
		hasLine(t, r.out, `FAIL - node sees architecture `+otherArch+`: .*`)
	})

	t.Run("environment", func(t *testing.T) {
		commonEnvCases(t, "node-ci-cd", "22", "PATH="+dir+sep+os.Getenv("PATH"))
	})
}

// TestNodeCICDSelfTestAWSVersionParsing_StubOnly tests ONLY how the self-test
// reads `aws --version`: `aws` here is a stub script that prints a given line.
// It proves nothing about a real AWS CLI; TestNodeCICDSelfTest does that.
func TestNodeCICDSelfTestAWSVersionParsing_StubOnly(t *testing.T) {
	dir, _ := node22Dir(t)
	arch, _ := hostArch(t)
	cases := []struct {
		printed string
		exit    int
		want    string
	}{
		{"aws-cli/2.23.6 Python/3.13.5 Linux/6.1.0 source/x86_64.debian.13 prompt/off", 0,
			`ok - aws --version reports AWS CLI v2 \(aws-cli/2\.23\.6\)`},
		{"aws-cli/2.31.0 Python/3.13.7 Linux/6.1.0 exe/aarch64.amzn.2023", 0,
			`ok - aws --version reports AWS CLI v2 \(aws-cli/2\.31\.0\)`},
		{"aws-cli/1.45.11 Python/3.11.7 Linux/6.1.0 botocore/1.43.11", 0,
			`FAIL - aws --version reports AWS CLI v2: .*/aws printed \(exit status 0\): aws-cli/1\.45\.11 .*`},
		{"aws-cli/20.0.0 Python/3.13.5", 0,
			`FAIL - aws --version reports AWS CLI v2: .*aws-cli/20\.0\.0 .*`},
		{"Traceback (most recent call last):", 1,
			`FAIL - aws --version reports AWS CLI v2: .*\(exit status 1\): Traceback .*`},
		{"aws-cli/2.23.6 Python/3.13.5", 3,
			`FAIL - aws --version reports AWS CLI v2: exit status 3: aws-cli/2\.23\.6 .*`},
	}
	for _, c := range cases {
		t.Run(c.printed, func(t *testing.T) {
			t.Parallel()
			stub := t.TempDir()
			script := fmt.Sprintf("#!/bin/sh\n# STUB for version parsing only\necho '%s'\nexit %d\n", c.printed, c.exit)
			if err := os.WriteFile(filepath.Join(stub, "aws"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			r := runSelfTest(t, "node-ci-cd", "EXPECTED_VERSION=22", "EXPECTED_ARCH="+arch,
				"PATH="+dir+string(os.PathListSeparator)+stub+string(os.PathListSeparator)+os.Getenv("PATH"))
			hasLine(t, r.out, c.want)
			if r.exit == 0 {
				t.Errorf("a stub aws cannot pass the skeleton check, yet the self-test passed")
			}
		})
	}
}

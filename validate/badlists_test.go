package validate

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The corpus of bad input (testdata/bad-lists/, one file per mistake, with
// the runtime folders they need) runs through the entry point a user runs:
// the app binary, as `cdk synth` runs it, from the repository root, with the
// context in CDK_CONTEXT_JSON and the output folder in CDK_OUTDIR. Each case
// must exit non-zero with a message naming the file, the line and the entry,
// print no Go panic, write nothing, and never start the CDK's Node.js process
// (main validates first; JSII_NODE points at a stand-in that would leave a
// mark).

type badCase struct {
	name string
	// context is CDK_CONTEXT_JSON; list is a shorthand for the runtime list.
	list    string
	context map[string]any
	raw     string // CDK_CONTEXT_JSON verbatim, when it must be malformed
	want    []string
}

const bl = "testdata/bad-lists/"

// badLists covers every problem runtimes/list.go reports.
var badLists = []badCase{
	{name: "malformed YAML", list: "malformed-yaml.yaml", want: []string{bl + "malformed-yaml.yaml: malformed YAML: yaml: line 2: did not find expected ',' or ']'"}},
	{name: "tab indentation", list: "tab-indent.yaml", want: []string{bl + "tab-indent.yaml: malformed YAML: yaml: line 2: found character that cannot start any token"}},
	{name: "empty file", list: "empty.yaml", want: []string{bl + "empty.yaml: the file is empty"}},
	{name: "comments only", list: "comments-only.yaml", want: []string{bl + "comments-only.yaml: the file is empty"}},
	{name: "two YAML documents", list: "two-documents.yaml", want: []string{bl + "two-documents.yaml:4: the file holds more than one YAML document"}},
	{name: "top level is a list", list: "top-level-list.yaml", want: []string{bl + "top-level-list.yaml:1: the top level must be a mapping with a 'runtimes' key"}},
	{name: "unknown top-level key", list: "unknown-top-level-key.yaml", want: []string{bl + `unknown-top-level-key.yaml:4: unknown key "repository-prefix"`}},
	{name: "no runtimes key", list: "no-runtimes-key.yaml", want: []string{bl + `no-runtimes-key.yaml:1: unknown key "runtime"`, bl + "no-runtimes-key.yaml:1: no 'runtimes' key"}},
	{name: "duplicate top-level key", list: "duplicate-top-level-key.yaml", want: []string{bl + `duplicate-top-level-key.yaml:4: key "runtimes" appears twice`}},
	{name: "empty list", list: "empty-list.yaml", want: []string{bl + "empty-list.yaml:1: 'runtimes' must be a non-empty list"}},
	{name: "runtimes is a mapping", list: "runtimes-not-a-list.yaml", want: []string{bl + "runtimes-not-a-list.yaml:2: 'runtimes' must be a non-empty list"}},
	{name: "runtime is not a mapping", list: "runtime-not-a-mapping.yaml", want: []string{bl + "runtime-not-a-mapping.yaml:2: runtimes[0]: must be a mapping with at least 'name' and 'versions'"}},
	{name: "unknown runtime key", list: "unknown-runtime-key.yaml", want: []string{bl + `unknown-runtime-key.yaml:4: runtimes[0]: unknown key "arch"`, "the keys of a runtime are: name, versions, architectures"}},
	{name: "duplicate runtime key", list: "duplicate-runtime-key.yaml", want: []string{bl + `duplicate-runtime-key.yaml:4: runtimes[0]: key "versions" appears twice`}},
	{name: "missing name", list: "missing-name.yaml", want: []string{bl + "missing-name.yaml:2: runtimes[0]: has no 'name'"}},
	{name: "missing versions", list: "missing-versions.yaml", want: []string{bl + `missing-versions.yaml:2: runtimes[0] "ok": has no 'versions'`}},
	{name: "name is a list", list: "name-not-a-string.yaml", want: []string{bl + "name-not-a-string.yaml:2: runtimes[0]: name must be a string"}},
	{name: "name is a boolean", list: "name-boolean.yaml", want: []string{bl + `name-boolean.yaml:2: runtimes[0]: name "true" is not a string`}},
	{name: "name too short", list: "name-too-short.yaml", want: []string{bl + `name-too-short.yaml:2: runtimes[0] "a": the name is 1 characters long`}},
	{name: "name ECR would reject", list: "name-ecr-would-reject.yaml", want: []string{bl + `name-ecr-would-reject.yaml:2: runtimes[0] "Node_JS": ECR would reject the repository name "Node_JS"`}},
	{name: "name with a slash", list: "name-with-slash.yaml", want: []string{bl + `name-with-slash.yaml:2: runtimes[0] "library/node": the name contains '/'`}},
	{name: "duplicate runtime", list: "duplicate-runtime.yaml", want: []string{bl + `duplicate-runtime.yaml:5: runtimes[1] "ok": runtime "ok" is already listed at line 2`}},
	{name: "versions is a string", list: "versions-not-a-list.yaml", want: []string{bl + `versions-not-a-list.yaml:3: runtimes[0] "ok": 'versions' must be a non-empty list`}},
	{name: "versions is empty", list: "versions-empty.yaml", want: []string{bl + `versions-empty.yaml:3: runtimes[0] "ok": 'versions' must be a non-empty list`}},
	{name: "duplicate version", list: "duplicate-version.yaml", want: []string{bl + `duplicate-version.yaml:3: runtimes[0] "ok": version "22" is listed twice`}},
	{name: "unquoted number version", list: "unquoted-number-version.yaml", want: []string{bl + `unquoted-number-version.yaml:3: runtimes[0] "ok": version 3.10 is a YAML number`, `quote it: "3.10"`}},
	{name: "null version", list: "null-version.yaml", want: []string{bl + `null-version.yaml:3: runtimes[0] "ok": version "~" is not a string`}},
	{name: "version not a Docker tag", list: "version-not-a-docker-tag.yaml", want: []string{bl + `version-not-a-docker-tag.yaml:3: runtimes[0] "ok": version "22 lts" is not a valid Docker tag`}},
	{name: "version starting with a dot", list: "version-starting-with-dot.yaml", want: []string{bl + `version-starting-with-dot.yaml:3: runtimes[0] "ok": version ".22" is not a valid Docker tag`}},
	{name: "version too long", list: "version-too-long.yaml", want: []string{bl + `version-too-long.yaml:3: runtimes[0] "ok": version "1.0000`, `is too long`, "shorten it to 79 characters or fewer"}},
	{name: "version starting with draft", list: "version-draft.yaml", want: []string{bl + `version-draft.yaml:3: runtimes[0] "ok": version "draft22" starts with 'draft'`}},
	{name: "version containing -r20", list: "version-dated-marker.yaml", want: []string{bl + `version-dated-marker.yaml:3: runtimes[0] "ok": version "22-r20260101" contains "-r20"`}},
	{name: "version ending in an architecture", list: "version-ends-in-arch.yaml", want: []string{bl + `version-ends-in-arch.yaml:3: runtimes[0] "ok": version "22-arm64" ends in an architecture`}},
	{name: "architectures empty", list: "architectures-empty.yaml", want: []string{bl + `architectures-empty.yaml:4: runtimes[0] "ok": 'architectures' must be a non-empty list`}},
	{name: "unknown architecture", list: "unknown-architecture.yaml", want: []string{bl + `unknown-architecture.yaml:4: runtimes[0] "ok": unknown architecture "x86_64"`, "use amd64 (Docker's name for x86_64)"}},
	{name: "duplicate architecture", list: "duplicate-architecture.yaml", want: []string{bl + `duplicate-architecture.yaml:4: runtimes[0] "ok": architecture "arm64" is listed twice`}},
	{name: "missing folder", list: "missing-folder.yaml", want: []string{bl + `missing-folder.yaml:2: runtimes[0] "ghost": folder testdata/bad-lists/ghost does not exist`}},
	{name: "missing Dockerfile", list: "missing-dockerfile.yaml", want: []string{bl + `missing-dockerfile.yaml:2: runtimes[0] "no-dockerfile": testdata/bad-lists/no-dockerfile/Dockerfile is missing`}},
	{name: "missing self-test", list: "missing-self-test.yaml", want: []string{bl + `missing-self-test.yaml:2: runtimes[0] "no-self-test": testdata/bad-lists/no-self-test/self-test is missing`}},
	{name: "self-test not executable", list: "self-test-not-executable.yaml", want: []string{bl + `self-test-not-executable.yaml:2: runtimes[0] "not-executable": testdata/bad-lists/not-executable/self-test is not executable`, "git update-index --chmod=+x"}},
	{name: "identifier collision", list: "identifier-collision.yaml", want: []string{bl + `identifier-collision.yaml:2: runtime "ok" version "1-0" arm64: build-graph identifier ok_1_0_arm64 is also the identifier of runtime "ok" version "1.0" arm64`}},
	{name: "identifier too long", list: "identifier-too-long.yaml", want: []string{bl + `identifier-too-long.yaml:2: runtime "identifier-overflow-runtime-name-for-tests" version "1.0000`, "_arm64 is 128 characters long"}},
	{name: "bad compute-type", list: "bad-compute-type.yaml", want: []string{bl + `bad-compute-type.yaml:4: runtimes[0] "ok": compute-type "ARM_CONTAINER" is not a CodeBuild compute type`}},
	{name: "bad base-image", list: "bad-base-image.yaml", want: []string{bl + `bad-base-image.yaml:4: runtimes[0] "ok": base-image "node:22" is not an image name`}},
	{name: "base-image naming a registry", list: "base-image-names-registry.yaml", want: []string{bl + `base-image-names-registry.yaml:4: runtimes[0] "ok": base-image "docker.io/library/ruby" names a registry (docker.io)`, `fix: split it: base-registry: "docker.io/library" and base-image: "ruby"`}},
	{name: "version with a v", list: "version-with-v.yaml", want: []string{bl + `version-with-v.yaml:3: runtimes[0] "ok": version "v24" starts with 'v'`, `fix: write it as "24"`}},
	{name: "bad base-registry", list: "bad-base-registry.yaml", want: []string{bl + `bad-base-registry.yaml:4: runtimes[0] "ok": base-registry "https://public.ecr.aws/docker/library/" is not a registry`}},
	{name: "several problems at once", list: "several-problems.yaml", want: []string{
		bl + "several-problems.yaml (4 problems)",
		bl + `several-problems.yaml:3: runtimes[0] "ok": version 22 is a YAML number`,
		bl + `several-problems.yaml:3: runtimes[0] "ok": version "draft-1" starts with 'draft'`,
		bl + `several-problems.yaml:4: runtimes[0] "ok": unknown architecture "x86_64"`,
		bl + `several-problems.yaml:6: runtimes[1] "ghost": folder testdata/bad-lists/ghost does not exist`,
	}},
	{name: "list file missing", list: "no-such-list.yaml", want: []string{bl + "no-such-list.yaml: cannot read the runtime list: no such file or directory"}},
	{name: "list is a folder", list: "ok", want: []string{bl + "ok: cannot read the runtime list: is a directory"}},
}

// badContexts covers the cdk.json context values config/ rejects.
var badContexts = []badCase{
	{name: "bad schedule", context: map[string]any{"evergreen:schedule": "daily at 4"}, want: []string{`-c (or cdk.context.json) "evergreen:schedule": "daily at 4" is not an EventBridge schedule expression`}},
	{name: "unix cron", context: map[string]any{"evergreen:schedule": "cron(0 4 * * *)"}, want: []string{`"cron(0 4 * * *)" has 5 fields; an EventBridge cron has 6`, "fix: write an EventBridge schedule expression"}},
	{name: "rate plural for 1", context: map[string]any{"evergreen:schedule": "rate(1 days)"}, want: []string{`with the value 1 the unit is singular: rate(1 day)`}},
	{name: "hour out of range", context: map[string]any{"evergreen:schedule": "cron(0 25 * * ? *)"}, want: []string{`hours field "25": "25" is not a value from 0 to 23`}},
	{name: "weekly schedule, 48-hour alarm", context: map[string]any{"evergreen:schedule": "rate(7 days)"}, want: []string{`"rate(7 days)" leaves up to 7 days between two runs, not less than evergreen:staleAfterHours (48 hours)`, "run at least every 167 hours"}},
	{name: "two-day schedule, 48-hour alarm", context: map[string]any{"evergreen:schedule": "rate(2 days)"}, want: []string{`"rate(2 days)" leaves up to 2 days between two runs, not less than evergreen:staleAfterHours (48 hours)`, "raise evergreen:staleAfterHours to at least 49"}},
	{name: "repository prefix ECR rejects", context: map[string]any{"evergreen:repositoryPrefix": "Platform/"}, want: []string{`-c (or cdk.context.json) "evergreen:repositoryPrefix": "Platform/" would make repository names ECR rejects`, "fix: use lowercase letters and digits"}},
	{name: "negative concurrency cap", context: map[string]any{"evergreen:maxConcurrentBuilds": -2}, want: []string{`-c (or cdk.context.json) "evergreen:maxConcurrentBuilds": -2 is not a whole number from 0 to 100`}},
	{name: "stack name CloudFormation rejects", context: map[string]any{"evergreen:stackName": "evergreen_images"}, want: []string{`-c (or cdk.context.json) "evergreen:stackName": "evergreen_images" is not a CloudFormation stack name`}},
	{name: "misspelled key", context: map[string]any{"evergreen:alarmEmial": "ops@example.com"}, want: []string{`-c (or cdk.context.json) "evergreen:alarmEmial": is not a key this app reads`, `did you mean "evergreen:alarmEmail"?`}},
	{name: "bad email", context: map[string]any{"evergreen:alarmEmail": "ops-at-example.com"}, want: []string{`-c (or cdk.context.json) "evergreen:alarmEmail": "ops-at-example.com" is not an email address`}},
	{name: "bad account id", context: map[string]any{"evergreen:pullAccounts": []any{"111122223333", "12345"}}, want: []string{`-c (or cdk.context.json) "evergreen:pullAccounts": "12345" is not a 12-digit AWS account id`}},
	{name: "bad account id from -c", context: map[string]any{"evergreen:pullAccounts": "111122223333,1111-2222-3333"}, want: []string{`-c (or cdk.context.json) "evergreen:pullAccounts": "1111-2222-3333" is not a 12-digit AWS account id`}},
	{name: "accounts not a list", context: map[string]any{"evergreen:pullAccounts": map[string]any{"a": "111122223333"}}, want: []string{`-c (or cdk.context.json) "evergreen:pullAccounts": map[a:111122223333] is not a list of account ids`}},
	{name: "bad organization id", context: map[string]any{"evergreen:pullOrganization": "o-123"}, want: []string{`-c (or cdk.context.json) "evergreen:pullOrganization": "o-123" is not an AWS Organization id`}},
	{name: "bad source connection", context: map[string]any{"evergreen:source": map[string]any{"connectionArn": "arn:aws:iam::111122223333:role/x", "repository": "org/repo", "branch": "main"}}, want: []string{`-c (or cdk.context.json) "evergreen:source": connectionArn "arn:aws:iam::111122223333:role/x" is not a CodeConnections connection ARN`}},
	{name: "bad source repository", context: map[string]any{"evergreen:source": map[string]any{"connectionArn": "arn:aws:codeconnections:eu-west-1:111122223333:connection/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f", "repository": "repo", "branch": "main"}}, want: []string{`-c (or cdk.context.json) "evergreen:source": repository "repo" is not owner/name`}},
	{name: "bad source branch", context: map[string]any{"evergreen:source": map[string]any{"connectionArn": "arn:aws:codeconnections:eu-west-1:111122223333:connection/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f", "repository": "org/repo", "branch": "feature branch"}}, want: []string{`-c (or cdk.context.json) "evergreen:source": branch "feature branch" is not a branch name`}},
	{name: "source with an unknown key", context: map[string]any{"evergreen:source": map[string]any{"connection": "x"}}, want: []string{`-c (or cdk.context.json) "evergreen:source": cannot read it: json: unknown field "connection"`}},
	{name: "source from -c not JSON", context: map[string]any{"evergreen:source": "github.com/org/repo"}, want: []string{`-c (or cdk.context.json) "evergreen:source": cannot read it: invalid character`}},
	{name: "retention out of range", context: map[string]any{"evergreen:draftRetentionDays": 0}, want: []string{`-c (or cdk.context.json) "evergreen:draftRetentionDays": 0 is not a whole number from 1 to 30`}},
	{name: "retention not a number", context: map[string]any{"evergreen:logRetentionDays": "ninety"}, want: []string{`-c (or cdk.context.json) "evergreen:logRetentionDays": ninety is not a whole number from 1 to 3653`}},
	{name: "stale alarm under a day", context: map[string]any{"evergreen:staleAfterHours": 24}, want: []string{`-c (or cdk.context.json) "evergreen:staleAfterHours": 24 is not a whole number from 25 to 168`}},
	{name: "drafts outlive dated tags", context: map[string]any{"evergreen:draftRetentionDays": 30, "evergreen:datedTagRetentionDays": 20}, want: []string{`-c (or cdk.context.json) "evergreen:draftRetentionDays": 30 days is not shorter than evergreen:datedTagRetentionDays (20 days)`}},
	{name: "malformed CDK_CONTEXT_JSON", raw: `{"evergreen:schedule": `, want: []string{"reading CDK_CONTEXT_JSON: unexpected end of JSON input"}},
}

var (
	appOnce sync.Once
	appBin  string
	appErr  error
	appDir  string
)

// app builds the app binary once per test run (`go build` of the repository
// root, as `go run .` in cdk.json does).
func app(t *testing.T) string {
	t.Helper()
	appOnce.Do(func() {
		appDir, appErr = os.MkdirTemp("", "validate-app-")
		if appErr != nil {
			return
		}
		appBin = filepath.Join(appDir, "app")
		cmd := exec.Command("go", "build", "-o", appBin, ".")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			appErr = &buildError{err, string(out)}
		}
	})
	if appErr != nil {
		t.Fatalf("building the app: %v", appErr)
	}
	return appBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// fakeNode is a stand-in for Node.js that leaves a mark: the CDK's jsii
// runtime starts JSII_NODE when the app creates its first construct.
func fakeNode(t *testing.T) (bin, mark string) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, "node")
	mark = filepath.Join(dir, "node-was-started")
	script := "#!/bin/sh\ntouch '" + mark + "'\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, mark
}

// checkFailure asserts what every bad input must produce.
func checkFailure(t *testing.T, code int, output, outdir string, want []string) {
	t.Helper()
	if code == 0 {
		t.Errorf("exit 0; want a non-zero exit. Output:\n%s", output)
	}
	for _, w := range want {
		if !strings.Contains(output, w) {
			t.Errorf("the output does not contain %q:\n%s", w, output)
		}
	}
	for _, bad := range []string{"panic:", "goroutine "} {
		if strings.Contains(output, bad) {
			t.Errorf("the output holds a Go panic trace (%q):\n%s", bad, output)
		}
	}
	entries, err := os.ReadDir(outdir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the output folder is not empty after a failure: %v", names)
	}
}

func TestBadInputThroughTheApp(t *testing.T) {
	bin := app(t)
	start := time.Now()
	for _, group := range [][]badCase{badLists, badContexts} {
		for _, c := range group {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				ctx := c.context
				if c.list != "" {
					ctx = map[string]any{"evergreen:runtimeList": bl + c.list}
				}
				raw := c.raw
				if raw == "" {
					b, err := json.Marshal(ctx)
					if err != nil {
						t.Fatal(err)
					}
					raw = string(b)
				}
				outdir := t.TempDir()
				// A report left by an earlier failed synth must not outlive
				// this run (checkFailure wants the folder empty): the CDK
				// CLI would read it and fail a later, fixed synth.
				if err := os.WriteFile(filepath.Join(outdir, "validation-report.json"), []byte(`{"title": "stale"}`), 0o644); err != nil {
					t.Fatal(err)
				}
				node, mark := fakeNode(t)
				// Its own temp directory, to see what the run leaves there:
				// the jsii runtime unpacks itself into it before validation.
				tmp := t.TempDir()
				env := append(os.Environ(), "CDK_CONTEXT_JSON="+raw, "CDK_OUTDIR="+outdir, "JSII_NODE="+node, "TMPDIR="+tmp)
				code, stdout, stderr := run(t, time.Minute, repoRoot, env, bin)
				checkFailure(t, code, stdout+stderr, outdir, c.want)
				if left, err := os.ReadDir(tmp); err != nil {
					t.Fatal(err)
				} else if len(left) > 0 {
					t.Errorf("a failed synth left %d entries in its temp directory (first: %s): nothing may outlive a run", len(left), left[0].Name())
				}
				if _, err := os.Stat(mark); err == nil {
					t.Errorf("the app started the CDK (jsii) before rejecting the input: validation must come first")
				}
			})
		}
	}
	t.Cleanup(func() {
		report("bad input through the app binary: %d runtime lists (testdata/bad-lists/) and %d context values in %s",
			len(badLists), len(badContexts), since(start))
	})
}

// TestBadListThroughTheCLI runs one bad list through the real CDK CLI:
// `cdk synth -c evergreen:runtimeList=...`, which runs cdk.json's app.
func TestBadListThroughTheCLI(t *testing.T) {
	dirs := []string{
		filepath.Join(repoRoot, ".tools", "node22", "node_modules", ".bin"),
		filepath.Join(repoRoot, ".tools", "cdk", "node_modules", ".bin"),
	}
	cdk := filepath.Join(dirs[1], "cdk")
	if _, err := os.Stat(cdk); err != nil {
		msg := "the CDK CLI is not installed in .tools/cdk (run `make setup`)"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	const list = bl + "unquoted-number-version.yaml"
	outdir := filepath.Join(t.TempDir(), "cdk.out")
	// Its own temp directory, to see what the run leaves there; no CLI
	// telemetry from a test (without a route to its endpoint the CLI keeps
	// its events in a file there).
	tmp := t.TempDir()
	env := append(os.Environ(), "TMPDIR="+tmp, "CDK_DISABLE_CLI_TELEMETRY=true", "PATH="+strings.Join(dirs, string(os.PathListSeparator))+string(os.PathListSeparator)+os.Getenv("PATH"))
	start := time.Now()
	code, stdout, stderr := run(t, 5*time.Minute, repoRoot, env, cdk, "synth", "--quiet", "--no-notices", "-c", "evergreen:runtimeList="+list, "-o", outdir)
	if left, err := os.ReadDir(tmp); err == nil && len(left) > 0 {
		t.Errorf("a failed cdk synth left %d entries in its temp directory (first: %s)", len(left), left[0].Name())
	}
	report("bad input through the CDK CLI: cdk synth -c evergreen:runtimeList=%s in %s", list, since(start))
	checkFailure(t, code, stdout+stderr, outdir, []string{
		bl + `unquoted-number-version.yaml:3: runtimes[0] "ok": version 3.10 is a YAML number`,
	})
}

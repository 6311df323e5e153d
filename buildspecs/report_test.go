package buildspecs_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/buildspecs"
)

// stubAWS stands in for the two AWS CLI calls the Report makes: `aws s3 cp`
// over a directory, and `aws sns publish`, whose topic, subject and message
// it keeps. A missing object fails as the CLI does (exit 1).
const stubAWS = `#!/bin/sh
set -eu
root=$STUB_ROOT
path() { printf '%s/s3/%s' "$root" "${1#s3://}"; }
case "$1 $2" in
"s3 cp")
  src=$3 dst=$4
  case $src in
    -) mkdir -p "$(dirname "$(path "$dst")")"; cat > "$(path "$dst")" ;;
    s3://*)
      f=$(path "$src")
      [ -f "$f" ] || { echo "fatal error: An error occurred (404) when calling the HeadObject operation: Not Found" >&2; exit 1; }
      if [ "$dst" = - ]; then cat "$f"; else cp "$f" "$dst"; fi ;;
    *) mkdir -p "$(dirname "$(path "$dst")")"; cp "$src" "$(path "$dst")" ;;
  esac ;;
"sns publish")
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
      --topic-arn) topic=${2##*:} ;;
      --subject) subject=$2 ;;
      --message) message=${2#file://} ;;
      *) echo "stub aws: unknown option $1" >&2; exit 252 ;;
    esac
    shift 2
  done
  mkdir -p "$root/sns"
  printf '%s' "$subject" > "$root/sns/$topic.subject"
  cp "$message" "$root/sns/$topic.message"
  echo '{"MessageId": "1"}' ;;
*) echo "stub aws: $*" >&2; exit 2 ;;
esac
`

// day is a set of Publish outcomes for every runtime-version of the list.
type day struct {
	name string
	// upgraded packages per architecture of each published runtime-version;
	// -1: unchanged; -2: published with no inventory of the previous image.
	upgraded int
	// missing runtime-versions have no Publish record.
	missing int
	// blocked: the first runtime-version was blocked by the gate.
	blocked bool
}

// runReport runs the Report's commands against the stub, with Publish
// records made for the list, and returns the changelog, the message and the
// subject.
func runReport(t *testing.T, d day) (changelog, message, subject string, alert string) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq is not installed (make test installs it)")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "aws"), []byte(stubAWS), 0o755); err != nil {
		t.Fatal(err)
	}
	const exec1 = "0a1b2c3d-1111-2222-3333-444455556666"
	releases := list.Releases()
	for i, r := range releases {
		if i >= len(releases)-d.missing {
			break
		}
		rec := map[string]any{
			"stage": "publish", "executionId": exec1, "runtime": r.Runtime.Name, "version": r.Version,
			"repository": opts.RepositoryPrefix + r.Runtime.Name, "registry": "111122223333.dkr.ecr.eu-west-1.amazonaws.com",
			"index": "sha256:" + strings.Repeat("1", 64), "datedTag": r.Version + "-r20261120-0a1b2c3d",
			"changedAt": "2026-11-20T04:12:00Z",
		}
		if d.upgraded == -1 {
			rec["result"] = "unchanged"
		} else {
			rec["result"] = "published"
			rec["datedTag"] = r.Version + "-r20261128-0a1b2c3d"
			rec["previous"] = map[string]any{"index": "sha256:" + strings.Repeat("2", 64), "datedTag": r.Version + "-r20261120-9f8e7d6c"}
			changes := map[string]any{}
			for _, a := range r.Runtime.Architectures {
				if d.upgraded == -2 {
					changes[string(a)] = map[string]any{"previousKnown": false, "base": nil, "recipeChanged": false, "added": []any{}, "removed": []any{}, "upgraded": []any{}, "packages": 420}
					continue
				}
				var up []any
				for p := 0; p < d.upgraded; p++ {
					up = append(up, map[string]any{"kind": "os", "name": fmt.Sprintf("libexample%d-3t64", p), "from": "3.5.1-1", "to": "3.5.1-1+deb13u1"})
				}
				changes[string(a)] = map[string]any{"previousKnown": true, "recipeChanged": false, "added": []any{}, "removed": []any{}, "upgraded": up,
					"base": map[string]any{"from": "sha256:" + strings.Repeat("a", 64), "to": "sha256:" + strings.Repeat("b", 64)}}
			}
			rec["changes"] = changes
			rec["vulnerabilities"] = map[string]any{"amd64": map[string]any{
				"counts": map[string]int{"HIGH": 2, "MEDIUM": 7}, "previousCounts": map[string]int{"CRITICAL": 1, "HIGH": 2, "MEDIUM": 7},
				"fixed": []any{map[string]any{"id": "CVE-2026-0001", "severity": "CRITICAL", "package": "libssl3t64"}}, "introduced": []any{}}}
		}
		if d.blocked && i == 0 {
			rec = map[string]any{"stage": "publish", "result": "blocked", "runtime": r.Runtime.Name, "version": r.Version, "gate": "never-worse",
				"repository": opts.RepositoryPrefix + r.Runtime.Name, "registry": "111122223333.dkr.ecr.eu-west-1.amazonaws.com",
				"index": "sha256:" + strings.Repeat("1", 64), "datedTag": r.Version + "-r20261120-0a1b2c3d",
				"blockedBy": []string{"amd64: CRITICAL 0 -> 1; new: CVE-2026-9999"}}
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(root, "s3", "records", "executions", exec1, "publish", r.Runtime.Name, r.Version+".json")
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pre, build := buildspecs.Commands(buildspecs.Report)
	cmd := exec.Command("sh", "-c", strings.Join(append(pre, build...), "\n"))
	cmd.Env = []string{
		"PATH=" + bin + ":" + os.Getenv("PATH"), "STUB_ROOT=" + root, "HOME=" + root, "TMPDIR=" + root,
		"PIPELINE_EXECUTION_ID=" + exec1, "SOURCE_REVISION=0123456789abcdef", "RECORDS_BUCKET=records",
		"STACK_NAME=EvergreenImages", "CHANGES_TOPIC_ARN=arn:aws:sns:eu-west-1:111122223333:changes", "ALERT_TOPIC_ARN=arn:aws:sns:eu-west-1:111122223333:alerts",
		"RELEASES=" + buildspecs.Releases(list),
	}
	out, err := cmd.CombinedOutput()
	if (err != nil) != d.blocked {
		t.Fatalf("the Report: %v (blocked: %v)\n%s", err, d.blocked, out)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	changelog = read(filepath.Join("s3", "records", "executions", exec1, "changelog.txt"))
	message, subject, alert = read("sns/changes.message"), read("sns/changes.subject"), read("sns/alerts.message")
	if d.blocked {
		// A retry (the stage retries itself after the failure) sends
		// neither message again.
		os.RemoveAll(filepath.Join(root, "sns"))
		if out, err := cmd2(cmd).CombinedOutput(); err == nil {
			t.Errorf("the retried Report passed with a blocked runtime-version:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(root, "sns")); err == nil {
			t.Error("the retried Report sent a message again")
		}
	}
	return changelog, message, subject, alert
}

// cmd2 is the same command, to run again.
func cmd2(c *exec.Cmd) *exec.Cmd {
	n := exec.Command(c.Path, c.Args[1:]...)
	n.Env = c.Env
	return n
}

// The Report renders every runtime-version of the list, sends what it
// stores, within SNS's limits. The sizes it logs are the changelog of the
// default list on four kinds of day (go test -v -run TestReport ./buildspecs).
func TestReportChangelog(t *testing.T) {
	releases := list.Releases()
	for _, d := range []day{
		{name: "nothing changed", upgraded: -1},
		{name: "one security fix in every image", upgraded: 1},
		{name: "a Debian point release (80 packages in every image)", upgraded: 80},
		{name: "first publish after upgrading to inventories", upgraded: -2},
		{name: "one runtime-version without a record", upgraded: 1, missing: 1},
		{name: "one runtime-version blocked by the gate", upgraded: 1, blocked: true},
	} {
		t.Run(d.name, func(t *testing.T) {
			changelog, message, subject, alert := runReport(t, d)
			if d.blocked != (alert != "") {
				t.Errorf("blocked %v, alert %q", d.blocked, alert)
			}
			if d.blocked && !strings.Contains(alert, "CVE-2026-9999") {
				t.Errorf("the alert does not name the new CVE:\n%s", alert)
			}
			if d.upgraded > 0 && !strings.Contains(changelog, "    fixed      CVE-2026-0001 (CRITICAL, libssl3t64)\n") {
				t.Errorf("the changelog does not list the fixed CVE:\n%s", changelog)
			}
			if message != changelog {
				t.Errorf("the message differs from the stored changelog")
			}
			if len(subject) > 100 || strings.ContainsAny(subject, "\n\r") || !strings.HasPrefix(subject, "Evergreen images: ") {
				t.Errorf("subject %q: SNS takes at most 100 characters on one line", subject)
			}
			for i, r := range releases {
				want := fmt.Sprintf("%s %s: published ", r.Runtime.Name, r.Version)
				switch {
				case d.blocked && i == 0:
					want = fmt.Sprintf("%s %s: BLOCKED by the vulnerability gate (never-worse)", r.Runtime.Name, r.Version)
				case i >= len(releases)-d.missing:
					want = fmt.Sprintf("%s %s: no Publish record in this execution", r.Runtime.Name, r.Version)
				case d.upgraded == -1:
					want = fmt.Sprintf("%s %s: unchanged, stays ", r.Runtime.Name, r.Version)
				}
				if !strings.Contains(changelog, "\n"+want) {
					t.Errorf("the changelog lacks %q:\n%s", want, changelog)
				}
			}
			if d.upgraded > 0 {
				published := len(releases) - d.missing
				if d.blocked {
					published--
				}
				if n := strings.Count(changelog, "    upgraded os libexample0-3t64 3.5.1-1 -> 3.5.1-1+deb13u1\n"); n != 2*published {
					t.Errorf("%d upgrade lines for libexample0, want one per image", n)
				}
			}
			t.Logf("%s: %d bytes, %d lines, %d runtime-versions", d.name, len(changelog), strings.Count(changelog, "\n"), len(releases))
		})
	}
}

package stage

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// defaultReleases is the default runtime list's runtime-versions, in list
// order, as RELEASES names them.
func defaultReleases(t *testing.T) []runtimes.Release {
	t.Helper()
	l, err := runtimes.Load(filepath.Join("..", "..", runtimes.DefaultPath))
	if err != nil {
		t.Fatal(err)
	}
	return l.Releases()
}

func releaseNames(rels []runtimes.Release) []string {
	var out []string
	for _, r := range rels {
		out = append(out, r.Runtime.Name+"/"+r.Version)
	}
	return out
}

// day is a set of Publish outcomes for every runtime-version of a list, as
// the Report's shell test made them.
type day struct {
	name string
	// upgraded packages per architecture of each published runtime-version;
	// -1: unchanged; -2: published with no inventory of the previous image.
	upgraded int
	// missing: the last this many runtime-versions have no Publish record.
	missing int
	// blocked: the first runtime-version was blocked by the gate.
	blocked bool
}

// The kinds of day the changelog is measured on, and the two that report
// a problem.
var (
	fourKindsOfDay = []day{
		{name: "nothing changed", upgraded: -1},
		{name: "one security fix in every image", upgraded: 1},
		{name: "a Debian point release (80 packages in every image)", upgraded: 80},
		{name: "first publish after upgrading to inventories", upgraded: -2},
	}
	problemDays = []day{
		{name: "one runtime-version without a record", upgraded: 1, missing: 1},
		{name: "one runtime-version blocked by the gate", upgraded: 1, blocked: true},
	}
)

const (
	dayBlockedCVE = "CVE-2026-9999"
	dayFixedLine  = "    fixed      CVE-2026-0001 (CRITICAL, libssl3t64)\n"
	dayUpgrade0   = "    upgraded os libexample0-3t64 3.5.1-1 -> 3.5.1-1+deb13u1\n"
)

// dayRecords is the Publish record of each release on day d, nil for one
// without a record.
func dayRecords(execID, registry string, rels []runtimes.Release, d day) []*records.Publish {
	out := make([]*records.Publish, len(rels))
	for i, r := range rels {
		if i >= len(rels)-d.missing {
			continue
		}
		p := &records.Publish{SchemaVersion: records.SchemaVersion, Stage: "publish", ExecutionID: execID, Runtime: r.Runtime.Name, Version: r.Version,
			Repository: "evergreen-test/" + r.Runtime.Name, Registry: registry,
			Index: "sha256:" + strings.Repeat("1", 64), DatedTag: r.Version + "-r20261120-0a1b2c3d", ChangedAt: "2026-11-20T04:12:00Z"}
		switch {
		case d.blocked && i == 0:
			p.Result, p.Gate = records.ResultBlocked, "never-worse"
			p.BlockedBy = []string{"amd64: CRITICAL 0 -> 1; new: " + dayBlockedCVE}
		case d.upgraded == -1:
			p.Result = records.ResultUnchanged
		default:
			p.Result = records.ResultPublished
			p.DatedTag = r.Version + "-r20261128-0a1b2c3d"
			p.Previous = &records.Set{Index: "sha256:" + strings.Repeat("2", 64), DatedTag: r.Version + "-r20261120-9f8e7d6c"}
			p.Changes = map[string]*records.Changes{}
			for _, a := range r.Runtime.Architectures {
				if d.upgraded == -2 {
					p.Changes[string(a)] = &records.Changes{PreviousKnown: false, Added: []records.Item{}, Removed: []records.Item{}, Upgraded: []records.Upgrade{}, Packages: 420}
					continue
				}
				c := &records.Changes{PreviousKnown: true, Added: []records.Item{}, Removed: []records.Item{},
					Base: &records.Move{From: "sha256:" + strings.Repeat("a", 64), To: "sha256:" + strings.Repeat("b", 64)}}
				for n := 0; n < d.upgraded; n++ {
					c.Upgraded = append(c.Upgraded, records.Upgrade{Kind: "os", Name: fmt.Sprintf("libexample%d-3t64", n), From: "3.5.1-1", To: "3.5.1-1+deb13u1"})
				}
				p.Changes[string(a)] = c
			}
			p.Vulnerabilities = map[string]*records.Vulnerabilities{"amd64": {
				Counts: map[string]int{"HIGH": 2, "MEDIUM": 7}, PreviousCounts: map[string]int{"CRITICAL": 1, "HIGH": 2, "MEDIUM": 7},
				Fixed: []records.CVE{{ID: "CVE-2026-0001", Severity: "CRITICAL", Package: "libssl3t64"}}, Introduced: []records.CVE{}}}
		}
		out[i] = p
	}
	return out
}

// outcomesOf is what Report reads from dayRecords: a missing record is
// result none.
func outcomesOf(rels []runtimes.Release, recs []*records.Publish) []records.Publish {
	out := make([]records.Publish, len(rels))
	for i, r := range rels {
		if recs[i] == nil {
			out[i] = outcomeNone(r.Runtime.Name, r.Version)
		} else {
			out[i] = *recs[i]
		}
	}
	return out
}

// checkDay checks a changelog of day d as the shell test did: every
// runtime-version has its paragraph, with the outcome its record says,
// and every image its upgrade lines.
func checkDay(t *testing.T, rels []runtimes.Release, d day, changelog string) {
	t.Helper()
	if d.upgraded > 0 && !strings.Contains(changelog, dayFixedLine) {
		t.Errorf("the changelog does not list the fixed CVE:\n%s", changelog)
	}
	images := 0
	for i, r := range rels {
		want := fmt.Sprintf("%s %s: published ", r.Runtime.Name, r.Version)
		switch {
		case d.blocked && i == 0:
			want = fmt.Sprintf("%s %s: BLOCKED by the vulnerability gate (never-worse)", r.Runtime.Name, r.Version)
		case i >= len(rels)-d.missing:
			want = fmt.Sprintf("%s %s: no Publish record in this execution", r.Runtime.Name, r.Version)
		case d.upgraded == -1:
			want = fmt.Sprintf("%s %s: unchanged, stays ", r.Runtime.Name, r.Version)
		default:
			images += len(r.Runtime.Architectures)
		}
		if !strings.Contains(changelog, "\n"+want) {
			t.Errorf("the changelog lacks %q:\n%s", want, changelog)
		}
	}
	if d.upgraded > 0 {
		if n := strings.Count(changelog, dayUpgrade0); n != images {
			t.Errorf("%d upgrade lines for libexample0, want %d, one per published image", n, images)
		}
	}
}

var reportedAt = time.Date(2026, 11, 28, 9, 34, 0, 0, time.UTC)

// The changelog has one paragraph per runtime-version of RELEASES, in that
// order, whatever the outcome, and its counts add up to the list.
func TestChangelogListsEveryRuntimeVersionInListOrder(t *testing.T) {
	rels := defaultReleases(t)
	recs := dayRecords("e1", "r", rels, day{upgraded: 1, missing: 1, blocked: true})
	// One of each outcome, in list order.
	results := []string{records.ResultBlocked, records.ResultPublished, records.ResultUnchanged, records.ResultHeld}
	for i := range recs {
		if recs[i] != nil && i < len(results) {
			recs[i].Result = results[i]
		}
	}
	outcomes := outcomesOf(rels, recs)
	c := renderChangelog(changelogHead{Stack: "S", ExecutionID: "e1", At: reportedAt}, outcomes)
	at := 0
	for _, r := range rels {
		i := strings.Index(c[at:], "\n\n"+r.Runtime.Name+" "+r.Version+": ")
		if i < 0 {
			t.Fatalf("%s %s is missing, or out of list order, in:\n%s", r.Runtime.Name, r.Version, c)
		}
		at += i + 1
	}
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o.Result]++
	}
	want := fmt.Sprintf("\n%d published, %d unchanged, %d held, %d blocked, %d without an outcome\n", counts[records.ResultPublished],
		counts[records.ResultUnchanged], counts[records.ResultHeld], counts[records.ResultBlocked], counts[records.ResultNone])
	if !strings.Contains(c, want) {
		t.Errorf("the changelog lacks the counts %q:\n%s", want, c)
	}
}

// The changelog reads as the Report's jq program wrote it, line for line,
// on every kind of outcome and change (checked against that program's
// output on the same records when this code replaced it).
func TestChangelogKeepsTheShellReportsLayout(t *testing.T) {
	const reg = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
	none := []records.Item{}
	outcomes := []records.Publish{
		{Result: records.ResultPublished, Runtime: "node", Version: "22", Registry: reg, Repository: "evergreen/node", Index: "sha256:idx", DatedTag: "22-r1",
			Previous: &records.Set{Index: "sha256:old", DatedTag: "22-r0"},
			Changes: map[string]*records.Changes{
				"arm64": {PreviousKnown: false, Added: none, Removed: none, Packages: 321},
				"amd64": {PreviousKnown: true, Base: &records.Move{From: "sha256:aa", To: "sha256:bb"}, RecipeChanged: true,
					Added:    []records.Item{{Kind: "os", Name: "newpkg", Version: "0.1"}},
					Removed:  []records.Item{{Kind: "npm", Name: "gone", Version: "1"}},
					Upgraded: []records.Upgrade{{Kind: "os", Name: "libc6", From: "2.41-1", To: "2.41-2"}, {Kind: "pip", Name: "x", From: "1", To: "2"}}},
			},
			Vulnerabilities: map[string]*records.Vulnerabilities{
				"arm64": {Counts: map[string]int{}},
				"amd64": {Counts: map[string]int{"MEDIUM": 7, "CRITICAL": 1, "HIGH": 2}, PreviousCounts: map[string]int{},
					Fixed:      []records.CVE{{ID: "CVE-1", Severity: "HIGH", Package: "a"}, {ID: "CVE-2", Severity: "LOW", Package: "b"}},
					Introduced: []records.CVE{{ID: "CVE-3", Severity: "CRITICAL", Package: "c"}}},
			}},
		{Result: records.ResultPublished, Runtime: "node", Version: "24", Registry: reg, Repository: "evergreen/node", Index: "sha256:i24", DatedTag: "24-r1",
			Changes: map[string]*records.Changes{"amd64": {Packages: 400}, "arm64": {Packages: 401}},
			Vulnerabilities: map[string]*records.Vulnerabilities{"amd64": {Counts: map[string]int{"LOW": 3}, PreviousCounts: map[string]int{"LOW": 3}},
				"arm64": nil}},
		outcomeNone("node", "20"),
		{Result: records.ResultBlocked, Runtime: "python", Version: "3.12", Registry: reg, Repository: "evergreen/python", Gate: "never-worse",
			BlockedBy: []string{"amd64: CRITICAL 0 -> 1; new: CVE-9", "arm64: HIGH 1 -> 2"}},
		{Result: records.ResultBlocked, Runtime: "python", Version: "3.13", Registry: reg, Repository: "evergreen/python", Index: "sha256:p13", DatedTag: "3.13-r0",
			Gate: `{"CRITICAL":0}`, BlockedBy: []string{"amd64: x"}},
		{Result: records.ResultUnchanged, Runtime: "python", Version: "3.14", Registry: reg, Repository: "evergreen/python", Index: "sha256:p14", DatedTag: "3.14-r0",
			ChangedAt: "2026-11-20T04:12:00Z"},
		{Result: records.ResultHeld, Runtime: "node-ci-cd", Version: "22", Registry: reg, Repository: "evergreen/node-ci-cd", Index: "sha256:h", DatedTag: "22-r5"},
	}
	got := renderChangelog(changelogHead{Stack: "EvergreenImages", ExecutionID: "exec-1", SourceRevision: "abc", At: reportedAt}, outcomes)
	want := `Evergreen images: stack EvergreenImages, execution exec-1
Source revision abc, reported 2026-11-28 09:34 UTC

2 published, 1 unchanged, 1 held, 2 blocked, 1 without an outcome

node 22: published 111122223333.dkr.ecr.eu-west-1.amazonaws.com/evergreen/node@sha256:idx (22-r1)
  replaces sha256:old (22-r0)
  amd64: base image sha256:aa -> sha256:bb; runtimes/node changed; 2 upgraded, 1 added, 1 removed
    upgraded os libc6 2.41-1 -> 2.41-2
    upgraded pip x 1 -> 2
    added    os newpkg 0.1
    removed  npm gone 1
  arm64: no inventory of the image it replaces; 321 packages and runtimes now
  amd64 findings: CRITICAL 1, HIGH 2, MEDIUM 7; CVEs fixed 2, introduced 1
    fixed      CVE-1 (HIGH, a), CVE-2 (LOW, b)
    introduced CVE-3 (CRITICAL, c)
  arm64 findings: none (the image it replaces had no scan)

node 24: published 111122223333.dkr.ecr.eu-west-1.amazonaws.com/evergreen/node@sha256:i24 (24-r1)
  first publish of this version
  amd64: 400 packages and runtimes
  arm64: 401 packages and runtimes
  amd64 findings: LOW 3; CVEs fixed 0, introduced 0

node 20: no Publish record in this execution

python 3.12: BLOCKED by the vulnerability gate (never-worse); it stays unpublished
  amd64: CRITICAL 0 -> 1; new: CVE-9
  arm64: HIGH 1 -> 2

python 3.13: BLOCKED by the vulnerability gate ({"CRITICAL":0}); it stays 111122223333.dkr.ecr.eu-west-1.amazonaws.com/evergreen/python@sha256:p13
  amd64: x

python 3.14: unchanged, stays 111122223333.dkr.ecr.eu-west-1.amazonaws.com/evergreen/python@sha256:p14 (3.14-r0), content of 2026-11-20T04:12:00Z

node-ci-cd 22: held by a rollback at 111122223333.dkr.ecr.eu-west-1.amazonaws.com/evergreen/node-ci-cd@sha256:h (22-r5); make resume RUNTIME=node-ci-cd VERSION=22 releases it

`
	if got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("line %d:\n got %q\nwant %q", i+1, g, w)
			}
		}
	}
	bl := blockedLines(outcomes)
	if want := []string{"python 3.12: amd64: CRITICAL 0 -> 1; new: CVE-9; arm64: HIGH 1 -> 2", "python 3.13: amd64: x"}; strings.Join(bl, "\n") != strings.Join(want, "\n") {
		t.Errorf("blocked lines %q, want %q", bl, want)
	}
	if got, want := alertMessage("EvergreenImages", "exec-1", "s3://b/executions/exec-1/changelog.txt", bl),
		"The vulnerability gate blocked, in execution exec-1 of stack EvergreenImages (their published images stay):\n"+
			bl[0]+"\n"+bl[1]+"\n\nThe changelog: s3://b/executions/exec-1/changelog.txt\n"; got != want {
		t.Errorf("alert:\n%s\nwant:\n%s", got, want)
	}
	if got, want := changesSubject("EvergreenImages", outcomes), "Evergreen images: 2 published, 1 unchanged (EvergreenImages)"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if got, want := alertSubject("EvergreenImages", bl), "Evergreen images: 2 blocked by the vulnerability gate (EvergreenImages)"; got != want {
		t.Errorf("alert subject %q, want %q", got, want)
	}
}

// The changelog of the default list on the four kinds of day, and on the
// two that report a problem, as the Report renders it from the records
// alone (TestReportOnFourKindsOfDay runs the stage against moto).
func TestChangelogOnFourKindsOfDay(t *testing.T) {
	rels := defaultReleases(t)
	for _, d := range append(append([]day(nil), fourKindsOfDay...), problemDays...) {
		t.Run(d.name, func(t *testing.T) {
			c := renderChangelog(changelogHead{Stack: "S", ExecutionID: "e1", SourceRevision: "r", At: reportedAt}, outcomesOf(rels, dayRecords("e1", "r", rels, d)))
			checkDay(t, rels, d, c)
			t.Logf("%s: %d bytes, %d lines, %d runtime-versions", d.name, len(c), strings.Count(c, "\n"), len(rels))
		})
	}
}

// SNS subjects are under 100 characters, one line of UTF-8: a cut never
// splits a character, and control characters become spaces.
func TestSubjectIsUnderSNSLimit(t *testing.T) {
	// CloudFormation takes stack names up to 128 characters.
	long := strings.Repeat("EvergreenImages", 9)[:128]
	outcomes := []records.Publish{{Result: records.ResultPublished}, {Result: records.ResultUnchanged}}
	for name, s := range map[string]string{
		"changes": changesSubject(long, outcomes),
		"alert":   alertSubject(long, []string{"node 22: x"}),
		"runes":   snsSubject("Evergreen images: " + strings.Repeat("é", 60)),
		"control": snsSubject("Evergreen images:\n1 published\r\t(S)"),
	} {
		if len(s) >= 100 || utf8.RuneCountInString(s) >= 100 || !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r\t") || !strings.HasPrefix(s, "Evergreen images:") {
			t.Errorf("%s: subject %q (%d bytes): SNS takes UTF-8 text of one line, under 100 characters", name, s, len(s))
		}
	}
	if s := changesSubject(long, outcomes); len(s) != snsSubjectMax {
		t.Errorf("a long subject is cut at %d bytes, want %d", len(s), snsSubjectMax)
	}
	if s := changesSubject("S", outcomes); s != "Evergreen images: 1 published, 1 unchanged (S)" {
		t.Errorf("a short subject is %q: it should be whole", s)
	}
	t.Run("through SNS", func(t *testing.T) { reportSubjectThroughSNS(t, long) })
}

// A message over SNS's size limit is the changelog's start, cut on a
// character, and a note naming where the whole changelog is.
func TestLongChangelogIsCutAndSaysWhere(t *testing.T) {
	const url = "s3://b/executions/e/changelog.txt"
	short := strings.Repeat("x", cutAbove)
	if changelogMessage(short, url) != short {
		t.Errorf("a changelog of %d bytes is cut; only one over %d is", len(short), cutAbove)
	}
	// Two bytes each, after one: cutAt falls inside a character.
	long := "x" + strings.Repeat("é", cutAbove/2)
	m := changelogMessage(long, url)
	note := fmt.Sprintf("\n[cut at %d bytes: the whole changelog is %s]\n", cutAt, url)
	if !strings.HasSuffix(m, note) || !strings.HasPrefix(long, strings.TrimSuffix(m, note)) || !utf8.ValidString(m) {
		t.Errorf("the cut message does not end with %q after a prefix of the changelog", note)
	}
	if n := len(m) - len(note); n > cutAt || n < cutAt-utf8.UTFMax {
		t.Errorf("the changelog is cut at %d bytes, want %d", n, cutAt)
	}
	const snsMax = 256 * 1024
	if len(m) > snsMax {
		t.Errorf("the message is %d bytes, over SNS's %d", len(m), snsMax)
	}
	t.Run("through SNS", reportLongChangelogThroughSNS)
}

// A Publish retried after a newer execution published records
// superseded; the changelog says so and counts it, and says which content
// stays.
func TestSupersededIsReportedAsSuch(t *testing.T) {
	p := records.Publish{Runtime: "node", Version: "22", Result: records.ResultSuperseded, Registry: "r.example", Repository: "evergreen/node",
		Index: "sha256:" + strings.Repeat("b", 64), DatedTag: "22-r20261201-0a1b2c3d-0000-4000-8000-000000000002"}
	text := renderChangelog(changelogHead{Stack: "S", ExecutionID: "e"}, []records.Publish{p})
	for _, want := range []string{
		"0 published, 0 unchanged, 0 held, 0 blocked, 1 superseded, 0 without an outcome\n",
		"node 22: superseded: a newer execution published " + p.Ref() + " (" + p.DatedTag + ") first; this execution's images were not published\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the changelog lacks %q:\n%s", want, text)
		}
	}
}

package stage

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/evergreen-images/evergreen/internal/records"
)

// The changelog is rendered from the Publish records alone (and the
// execution's names and the clock), so its wording and layout are tested
// without AWS. Maps in the records (architectures, severities) are listed in
// key order: that is the order encoding/json wrote them in, and the order
// the jq program that rendered the changelog before this code listed them.

// changelogHead names the execution a changelog reports on.
type changelogHead struct {
	Stack, ExecutionID, SourceRevision string
	At                                 time.Time
}

// Limits of SNS Publish (SNS API reference, Publish).
const (
	// snsSubjectMax: "must be less than 100 characters".
	snsSubjectMax = 99
	// A message takes at most 256 KB. A changelog over cutAbove bytes is
	// sent cut at cutAt, which leaves room for the note saying where the
	// whole one is.
	cutAbove = 260000
	cutAt    = 250000
)

// outcomeNone stands for a runtime-version without a Publish record in the
// execution, so that the changelog reports it rather than drops it.
func outcomeNone(rt, v string) records.Publish {
	return records.Publish{Runtime: rt, Version: v, Result: records.ResultNone}
}

func countResult(outcomes []records.Publish, result string) int {
	n := 0
	for _, o := range outcomes {
		if o.Result == result {
			n++
		}
	}
	return n
}

// renderChangelog is the execution's changelog: a header, the counts by
// result, and one paragraph per runtime-version in the order of outcomes.
func renderChangelog(h changelogHead, outcomes []records.Publish) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Evergreen images: stack %s, execution %s\n", h.Stack, h.ExecutionID)
	fmt.Fprintf(&b, "Source revision %s, reported %s\n\n", h.SourceRevision, h.At.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%d published, %d unchanged, %d held, %d blocked, ",
		countResult(outcomes, records.ResultPublished), countResult(outcomes, records.ResultUnchanged),
		countResult(outcomes, records.ResultHeld), countResult(outcomes, records.ResultBlocked))
	// Superseded is rare (a Publish retried after a newer execution
	// published): counted only when it happened.
	if n := countResult(outcomes, records.ResultSuperseded); n > 0 {
		fmt.Fprintf(&b, "%d superseded, ", n)
	}
	fmt.Fprintf(&b, "%d without an outcome\n", countResult(outcomes, records.ResultNone))
	for i := range outcomes {
		b.WriteString("\n")
		writeOutcome(&b, &outcomes[i])
	}
	// The blank last line: jq -r ended the text it rendered with a newline
	// of its own, and the changelog keeps that layout.
	b.WriteString("\n")
	return b.String()
}

func writeOutcome(b *strings.Builder, p *records.Publish) {
	switch p.Result {
	case records.ResultPublished:
		fmt.Fprintf(b, "%s %s: published %s (%s)\n", p.Runtime, p.Version, p.Ref(), p.DatedTag)
		if p.Previous != nil {
			fmt.Fprintf(b, "  replaces %s (%s)\n", p.Previous.Index, p.Previous.DatedTag)
		} else {
			b.WriteString("  first publish of this version\n")
		}
		for _, a := range slices.Sorted(maps.Keys(p.Changes)) {
			if c := p.Changes[a]; c != nil {
				writeChanges(b, p.Runtime, a, c, p.Previous == nil)
			}
		}
		for _, a := range slices.Sorted(maps.Keys(p.Vulnerabilities)) {
			if v := p.Vulnerabilities[a]; v != nil {
				writeVulnerabilities(b, a, v)
			}
		}
	case records.ResultBlocked:
		stays := "unpublished"
		if p.Index != "" {
			stays = p.Ref()
		}
		fmt.Fprintf(b, "%s %s: BLOCKED by the vulnerability gate (%s); it stays %s\n", p.Runtime, p.Version, p.Gate, stays)
		for _, r := range p.BlockedBy {
			fmt.Fprintf(b, "  %s\n", r)
		}
	case records.ResultUnchanged:
		fmt.Fprintf(b, "%s %s: unchanged, stays %s (%s), content of %s\n", p.Runtime, p.Version, p.Ref(), p.DatedTag, p.ChangedAt)
	case records.ResultHeld:
		fmt.Fprintf(b, "%s %s: held by a rollback at %s (%s); make resume RUNTIME=%s VERSION=%s releases it\n",
			p.Runtime, p.Version, p.Ref(), p.DatedTag, p.Runtime, p.Version)
	case records.ResultSuperseded:
		fmt.Fprintf(b, "%s %s: superseded: a newer execution published %s (%s) first; this execution's images were not published\n",
			p.Runtime, p.Version, p.Ref(), p.DatedTag)
	default:
		fmt.Fprintf(b, "%s %s: no Publish record in this execution\n", p.Runtime, p.Version)
	}
}

// writeChanges is one architecture's line of what changed, and a line per
// package that did. first: the runtime-version had no published image.
func writeChanges(b *strings.Builder, rt, arch string, c *records.Changes, first bool) {
	switch {
	case first:
		fmt.Fprintf(b, "  %s: %d packages and runtimes\n", arch, c.Packages)
		return
	case !c.PreviousKnown:
		fmt.Fprintf(b, "  %s: no inventory of the image it replaces; %d packages and runtimes now\n", arch, c.Packages)
		return
	}
	base := "base image unchanged"
	if c.Base != nil {
		base = fmt.Sprintf("base image %s -> %s", c.Base.From, c.Base.To)
	}
	recipe := "runtimes/" + rt + " unchanged"
	if c.RecipeChanged {
		recipe = "runtimes/" + rt + " changed"
	}
	fmt.Fprintf(b, "  %s: %s; %s; %d upgraded, %d added, %d removed\n", arch, base, recipe, len(c.Upgraded), len(c.Added), len(c.Removed))
	if c.Distro != nil {
		fmt.Fprintf(b, "    distribution %s -> %s\n", c.Distro.From, c.Distro.To)
	}
	for _, u := range c.Upgraded {
		fmt.Fprintf(b, "    upgraded %s %s %s -> %s\n", u.Kind, u.Name, u.From, u.To)
	}
	for _, i := range c.Added {
		fmt.Fprintf(b, "    added    %s %s %s\n", i.Kind, i.Name, i.Version)
	}
	for _, i := range c.Removed {
		fmt.Fprintf(b, "    removed  %s %s %s\n", i.Kind, i.Name, i.Version)
	}
}

// writeVulnerabilities is one architecture's findings by severity and, when
// the image it replaces was scanned, the CVEs fixed and introduced.
func writeVulnerabilities(b *strings.Builder, arch string, v *records.Vulnerabilities) {
	counts := make([]string, 0, len(v.Counts))
	for _, s := range slices.Sorted(maps.Keys(v.Counts)) {
		counts = append(counts, fmt.Sprintf("%s %d", s, v.Counts[s]))
	}
	found := strings.Join(counts, ", ")
	if found == "" {
		found = "none"
	}
	fmt.Fprintf(b, "  %s findings: %s", arch, found)
	// A nil PreviousCounts is the record's null: no scan to compare with;
	// an empty one is a scan without findings.
	if v.PreviousCounts == nil {
		b.WriteString(" (the image it replaces had no scan)\n")
		return
	}
	fmt.Fprintf(b, "; CVEs fixed %d, introduced %d\n", len(v.Fixed), len(v.Introduced))
	if len(v.Fixed) > 0 {
		fmt.Fprintf(b, "    fixed      %s\n", cveList(v.Fixed))
	}
	if len(v.Introduced) > 0 {
		fmt.Fprintf(b, "    introduced %s\n", cveList(v.Introduced))
	}
}

func cveList(cves []records.CVE) string {
	s := make([]string, len(cves))
	for i, c := range cves {
		s[i] = fmt.Sprintf("%s (%s, %s)", c.ID, c.Severity, c.Package)
	}
	return strings.Join(s, ", ")
}

// changesSubject is the changelog message's subject.
func changesSubject(stack string, outcomes []records.Publish) string {
	return snsSubject(fmt.Sprintf("Evergreen images: %d published, %d unchanged (%s)",
		countResult(outcomes, records.ResultPublished), countResult(outcomes, records.ResultUnchanged), stack))
}

// blockedLines are the blocked runtime-versions with the gate's reasons,
// one line each, in the order of outcomes.
func blockedLines(outcomes []records.Publish) []string {
	var out []string
	for _, o := range outcomes {
		if o.Result == records.ResultBlocked {
			out = append(out, fmt.Sprintf("%s %s: %s", o.Runtime, o.Version, strings.Join(o.BlockedBy, "; ")))
		}
	}
	return out
}

// alertSubject and alertMessage are the alert about blocked
// runtime-versions; changelogURL names the stored changelog.
func alertSubject(stack string, blocked []string) string {
	return snsSubject(fmt.Sprintf("Evergreen images: %d blocked by the vulnerability gate (%s)", len(blocked), stack))
}

func alertMessage(stack, executionID, changelogURL string, blocked []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The vulnerability gate blocked, in execution %s of stack %s (their published images stay):\n", executionID, stack)
	for _, l := range blocked {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "\nThe changelog: %s\n", changelogURL)
	return b.String()
}

// snsSubject makes s a subject SNS accepts: one line of printable text, less
// than 100 characters. It cuts at 99 bytes, on a rune boundary, so the
// subject is under the limit whether SNS counts characters or bytes.
func snsSubject(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return cutUTF8(s, snsSubjectMax)
}

// cutUTF8 is the longest prefix of s of at most n bytes that does not split
// a rune (SNS takes UTF-8 text only).
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// changelogMessage is what SNS is sent: the changelog, or, when it is over
// SNS's size limit, its start and a note naming wholeURL, where the whole
// of it is.
func changelogMessage(changelog, wholeURL string) string {
	if len(changelog) <= cutAbove {
		return changelog
	}
	return cutUTF8(changelog, cutAt) + fmt.Sprintf("\n[cut at %d bytes: the whole changelog is %s]\n", cutAt, wholeURL)
}

package eol

import (
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/evergreen-images/evergreen/runtimes"
)

// WarnWithinDays: a version is warned about from this many days before its
// end of life, about one quarter: time to plan the move in the normal course.
const WarnWithinDays = 90

// StaleAfterDays: a table taken longer ago than this may miss new cycles and
// changed dates, so the check says so once.
const StaleAfterDays = 180

// Warning is one listed version past, or within WarnWithinDays of, its
// upstream end of life.
type Warning struct {
	Runtime string
	Version string
	Product string // endoflife.date product, e.g. "nodejs"
	Cycle   string // endoflife.date cycle the version belongs to, e.g. "22"
	// EOL is the last day of upstream support, empty when endoflife.date
	// marks the cycle as ended without a date.
	EOL string
	// Days from today to EOL: negative once past, 0 on the day itself.
	Days   int
	Source Source
	// Listed are newer versions of the same runtime in the list that are
	// themselves not warned about; Upstream is the newest such cycle
	// upstream (an LTS cycle when the product has them, then UpstreamLTS),
	// if not listed.
	Listed      []string
	Upstream    string
	UpstreamLTS bool
}

// endOfLife says when an end of life is or was, days from today.
func endOfLife(eol string, days int) string {
	switch {
	case eol == "":
		return "is past its upstream end of life (endoflife.date gives no date)"
	case days < 0:
		return fmt.Sprintf("reached its upstream end of life on %s, %s ago", eol, plural(-days, "day"))
	case days == 0:
		return fmt.Sprintf("reaches its upstream end of life today, %s", eol)
	}
	return fmt.Sprintf("reaches its upstream end of life on %s, in %s", eol, plural(days, "day"))
}

func (w Warning) String() string {
	when := endOfLife(w.EOL, w.Days)
	cycle := ""
	if w.Cycle != w.Version {
		cycle = fmt.Sprintf(" (cycle %s)", w.Cycle)
	}
	var moves []string
	if len(w.Listed) > 0 {
		moves = append(moves, "listed: "+strings.Join(w.Listed, ", "))
	}
	switch {
	case w.Upstream != "" && w.UpstreamLTS:
		moves = append(moves, "newest upstream LTS: "+w.Upstream)
	case w.Upstream != "":
		moves = append(moves, "newest upstream: "+w.Upstream)
	}
	move := "move to a newer cycle"
	if len(moves) > 0 {
		move += " (" + strings.Join(moves, "; ") + ")"
	}
	return fmt.Sprintf("warning: %s %s%s %s (%s, https://endoflife.date/%s, taken %s).\n  %s, or drop %q from the runtime's versions; keeping it knowingly is fine.",
		w.Runtime, w.Version, cycle, when, w.Source.Name, w.Product, w.Source.Taken, capitalize(move), w.Version)
}

// Report is what Check found: warnings about runtime versions, about the
// distribution releases runtimes are built on, and notes about the table.
type Report struct {
	Warnings []Warning
	Distros  []DistroWarning
	Notes    []string
}

// FamilyProducts is endoflife.date's product for each distribution family
// (its product files, products/<product>.md, name Alpine "alpine-linux").
var FamilyProducts = map[runtimes.Family]string{
	runtimes.Debian: "debian",
	runtimes.Ubuntu: "ubuntu",
	runtimes.Alpine: "alpine-linux",
}

// DistroWarning is a runtime whose variant names a distribution release
// past, or within WarnWithinDays of, its upstream end of life: one per
// runtime (a runtime builds all its versions on one variant).
type DistroWarning struct {
	Runtime  string
	Versions []string // the runtime's versions built on it
	Family   runtimes.Family
	Release  string // as the variant names it: "bookworm", "noble", "3.20"
	Product  string // endoflife.date product, e.g. "debian"
	Cycle    string // endoflife.date cycle, e.g. "12"
	EOL      string // last day of support; empty when no date is given
	Days     int
	Source   Source
	// Upstream is the family's newest release upstream that is not due a
	// warning itself (an LTS one when the product has them, then
	// UpstreamLTS); empty when there is none newer.
	Upstream    string
	UpstreamLTS bool
}

func (w DistroWarning) String() string {
	when := endOfLife(w.EOL, w.Days)
	cycle := ""
	if w.Cycle != w.Release {
		cycle = fmt.Sprintf(" (cycle %s)", w.Cycle)
	}
	move := "Move the runtime's variant to a newer " + string(w.Family) + " release"
	switch {
	case w.Upstream != "" && w.UpstreamLTS:
		move += " (newest upstream LTS: " + w.Upstream + ")"
	case w.Upstream != "":
		move += " (newest upstream: " + w.Upstream + ")"
	}
	return fmt.Sprintf("warning: %s %s %s on %s %s%s, which %s (%s, https://endoflife.date/%s, taken %s).\n  %s; keeping it knowingly is fine.",
		w.Runtime, strings.Join(w.Versions, ", "), plural2(len(w.Versions), "is built", "are built"), w.Family, w.Release, cycle, when, w.Source.Name, w.Product, w.Source.Taken, move)
}

func plural2(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Check returns a warning for each listed version that is past its upstream
// end of life on today, or within WarnWithinDays of it, in list order. A
// version whose base image or cycle the table does not know gives none:
// endoflife.date does not track every image, and a new cycle is not yet in an
// old table (the staleness note covers that).
func Check(list *runtimes.List, t *Table, today time.Time) Report {
	today = day(today)
	var r Report
	taken, _ := parseDate(t.Source.Taken)
	if age := daysBetween(taken, today); age > StaleAfterDays {
		r.Notes = append(r.Notes, fmt.Sprintf("note: the end-of-life table %s was taken from %s on %s, %s ago: run make eol (needs internet) to refresh it.",
			t.path(), t.Source.Name, t.Source.Taken, plural(age, "day")))
	}
	missing := map[string]bool{}
	for _, rt := range list.Runtimes {
		product, ok := t.Images[path.Base(rt.BaseImage)]
		if !ok {
			continue
		}
		p, ok := t.Products[product]
		if !ok {
			if !missing[product] {
				missing[product] = true
				r.Notes = append(r.Notes, fmt.Sprintf("note: %s has no cycles for endoflife.date product %q (base image %s): run make eol (needs internet) to add them.",
					t.path(), product, rt.BaseImage))
			}
			continue
		}
		for _, v := range rt.Versions {
			c, ok := cycleOf(p, v)
			if !ok {
				continue
			}
			due, eol, days := status(c, today)
			if !due {
				continue
			}
			w := Warning{Runtime: rt.Name, Version: v, Product: product, Cycle: c.Name, EOL: eol, Days: days, Source: t.Source}
			w.Listed, w.Upstream, w.UpstreamLTS = newer(rt, p, c, today)
			r.Warnings = append(r.Warnings, w)
		}
	}
	r.Distros = checkDistros(list, t, today)
	return r
}

// checkDistros warns for each runtime whose variant names a release with an
// endoflife.date cycle that is due. A variant that names no release (a tag
// following the family's newest), a release the table does not know, or a
// table without the family's product gives none, as for runtime versions.
func checkDistros(list *runtimes.List, t *Table, today time.Time) []DistroWarning {
	var out []DistroWarning
	for _, rt := range list.Runtimes {
		v := rt.Variant
		cycle := v.Cycle()
		product, ok := FamilyProducts[v.Family]
		if cycle == "" || !ok || len(rt.Versions) == 0 {
			continue
		}
		p, ok := t.Products[product]
		if !ok {
			// A table from before the families holds none; the committed
			// one holds every family's (its test says so).
			continue
		}
		c, ok := cycleOf(p, cycle)
		if !ok {
			continue
		}
		due, eol, days := status(c, today)
		if !due {
			continue
		}
		w := DistroWarning{Runtime: rt.Name, Versions: slices.Clone(rt.Versions), Family: v.Family, Release: v.Release,
			Product: product, Cycle: c.Name, EOL: eol, Days: days, Source: t.Source}
		w.Upstream, w.UpstreamLTS = newestUpstream(p, c, today)
		out = append(out, w)
	}
	return out
}

// newestUpstream is the newest cycle released after c, by today, not due a
// warning and (when the product has LTS cycles) in its LTS phase.
func newestUpstream(p Product, c Cycle, today time.Time) (string, bool) {
	hasLTS := slices.ContainsFunc(p.Cycles, func(x Cycle) bool { return x.IsLTS || x.LTSFrom != "" })
	for _, x := range p.Cycles { // newest first
		if x.ReleaseDate <= c.ReleaseDate {
			break
		}
		if x.ReleaseDate > today.Format(dateLayout) {
			continue
		}
		if due, _, _ := status(x, today); due {
			continue
		}
		if hasLTS && !isLTS(x, today) {
			continue
		}
		return x.Name, hasLTS
	}
	return "", false
}

// Warn reads the table at tablePath, checks list against it on now and
// prints the notes and warnings to w. Only an unreadable or invalid table is
// an error: a version past its end of life is a warning, because a team may
// keep one knowingly.
func Warn(w io.Writer, list *runtimes.List, tablePath string, now time.Time) error {
	t, err := ReadTable(tablePath)
	if err != nil {
		return err
	}
	r := Check(list, t, now)
	for _, n := range r.Notes {
		fmt.Fprintln(w, n)
	}
	for _, x := range r.Warnings {
		fmt.Fprintln(w, x)
	}
	for _, x := range r.Distros {
		fmt.Fprintln(w, x)
	}
	return nil
}

// cycleOf finds the cycle of version v: the cycle of the same name, or else
// the longest cycle that v extends with "." or "-" ("22.11" and "22-slim" are
// in cycle "22"; "3.12" is not in cycle "3.1").
func cycleOf(p Product, v string) (Cycle, bool) {
	var best Cycle
	found := false
	for _, c := range p.Cycles {
		if c.Name == v {
			return c, true
		}
		if strings.HasPrefix(v, c.Name) && strings.ContainsRune(".-", rune(v[len(c.Name)])) && len(c.Name) > len(best.Name) {
			best, found = c, true
		}
	}
	return best, found
}

// status says whether c is due a warning on today: past its end of life or
// within WarnWithinDays of it. endoflife.date's eolFrom is the last day of
// support (its isEol turns true the day after).
func status(c Cycle, today time.Time) (due bool, eol string, days int) {
	if c.EOLFrom == "" {
		return c.IsEOL, "", 0
	}
	d, err := parseDate(c.EOLFrom)
	if err != nil {
		return false, "", 0 // ruled out by Validate
	}
	days = daysBetween(today, d)
	return days <= WarnWithinDays, c.EOLFrom, days
}

// newer lists what to move to: the runtime's listed versions in cycles
// released after c and not due a warning, and the newest cycle upstream that
// is released, not due and (when the product has LTS cycles) in its LTS
// phase on today, unless it is listed.
func newer(rt runtimes.Runtime, p Product, c Cycle, today time.Time) (listed []string, upstream string, lts bool) {
	listedCycles := map[string]bool{}
	for _, v := range rt.Versions {
		lc, ok := cycleOf(p, v)
		if !ok || lc.ReleaseDate <= c.ReleaseDate {
			continue
		}
		listedCycles[lc.Name] = true
		if due, _, _ := status(lc, today); !due {
			listed = append(listed, v)
		}
	}
	hasLTS := slices.ContainsFunc(p.Cycles, func(x Cycle) bool { return x.IsLTS || x.LTSFrom != "" })
	for _, x := range p.Cycles { // newest first
		if x.ReleaseDate <= c.ReleaseDate {
			break
		}
		if x.ReleaseDate > today.Format(dateLayout) {
			continue // not released yet on today (a table newer than today)
		}
		if due, _, _ := status(x, today); due {
			continue
		}
		if hasLTS && !isLTS(x, today) {
			continue
		}
		if !listedCycles[x.Name] {
			upstream, lts = x.Name, hasLTS
		}
		break
	}
	return listed, upstream, lts
}

// isLTS: in its LTS phase on today. The table's isLts is as of the day it
// was taken; ltsFrom, when given, decides.
func isLTS(c Cycle, today time.Time) bool {
	if c.LTSFrom == "" {
		return c.IsLTS
	}
	d, err := parseDate(c.LTSFrom)
	return err == nil && !d.After(today)
}

func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// daysBetween counts whole days from a to b (both UTC midnights).
func daysBetween(a, b time.Time) int {
	return int(b.Sub(a).Hours() / 24)
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

package eol

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/runtimes"
)

// distroList is a list whose runtimes name a release of each family; the
// runtime folders are the repository's.
func distroList(t *testing.T, yaml string) *runtimes.List {
	t.Helper()
	l, err := runtimes.Parse("distros.yaml", []byte(yaml), "../../runtimes")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// distroTable holds, per family product, the test's own cycles (not the
// committed table's dates): an old release, one ending 2027-01-31, a newer
// interim one and the newest.
func distroTable() *Table {
	tab := &Table{Source: Source{Name: "endoflife.date", URL: "test", Taken: "2027-01-01"}, Images: map[string]string{}, Products: map[string]Product{}}
	tab.Products["debian"] = Product{Cycles: []Cycle{
		{Name: "14", ReleaseDate: "2027-06-01", EOLFrom: "2030-06-01"},
		{Name: "13", ReleaseDate: "2025-08-09", EOLFrom: "2028-08-09"},
		{Name: "12", ReleaseDate: "2023-06-10", EOLFrom: "2027-01-31"},
	}}
	tab.Products["ubuntu"] = Product{Cycles: []Cycle{
		{Name: "25.10", ReleaseDate: "2025-10-09", EOLFrom: "2026-07-01"},
		{Name: "25.04", ReleaseDate: "2025-04-17", EOLFrom: "2027-12-01"},
		{Name: "24.04", ReleaseDate: "2024-04-25", IsLTS: true, EOLFrom: "2029-05-31"},
		{Name: "22.04", ReleaseDate: "2022-04-21", IsLTS: true, EOLFrom: "2027-01-31"},
	}}
	tab.Products["alpine-linux"] = Product{Cycles: []Cycle{
		{Name: "3.22", ReleaseDate: "2025-05-30", EOLFrom: "2027-05-01"},
		{Name: "3.20", ReleaseDate: "2024-05-22", IsEOL: true},
	}}
	return tab
}

const distroYAML = `runtimes:
  - name: node
    versions: ["22", "24"]
    variant: bookworm
  - name: node-ci-cd
    versions: ["24"]
    variant: jammy
  - name: python
    versions: ["3.13"]
    variant: alpine3.20
`

// Each runtime whose variant names a release due a warning gets one
// warning, naming its versions and the newest release to move to; a
// release not yet due, or a variant naming none, gets none.
func TestDistributionReleaseEndOfLifeWarnsPerRuntime(t *testing.T) {
	list := distroList(t, distroYAML)
	tab := distroTable()
	byRuntime := func(r Report) map[string]DistroWarning {
		m := map[string]DistroWarning{}
		for _, w := range r.Distros {
			if _, twice := m[w.Runtime]; twice {
				t.Errorf("%s warned twice", w.Runtime)
			}
			m[w.Runtime] = w
		}
		return m
	}
	// 2026-10-01: 122 days before debian 12 and ubuntu 22.04 end; alpine
	// 3.20 has ended (no date).
	early := byRuntime(Check(list, tab, date(t, "2026-10-01")))
	if len(early) != 1 || early["python"].Cycle != "3.20" || early["python"].EOL != "" {
		t.Errorf("2026-10-01: %+v, want only python's ended alpine 3.20", early)
	}
	// 2026-11-02: 90 days before: both due, with the move.
	got := byRuntime(Check(list, tab, date(t, "2026-11-02")))
	for _, rt := range list.Runtimes {
		w, ok := got[rt.Name]
		if !ok {
			t.Errorf("%s on %s: no warning", rt.Name, rt.Variant.Release)
			continue
		}
		if !slices.Equal(w.Versions, rt.Versions) || w.Family != rt.Variant.Family || w.Cycle != rt.Variant.Cycle() || w.Product != FamilyProducts[rt.Variant.Family] {
			t.Errorf("%s: %+v, want its versions %v on %s cycle %s", rt.Name, w, rt.Versions, rt.Variant.Family, rt.Variant.Cycle())
		}
	}
	if w := got["node"]; w.Days != 90 || w.Upstream != "13" || w.UpstreamLTS {
		t.Errorf("node on bookworm: %+v, want 90 days and the move to 13 (14 is not released on today)", w)
	}
	if w := got["node-ci-cd"]; w.Upstream != "24.04" || !w.UpstreamLTS {
		t.Errorf("node-ci-cd on jammy: %+v, want the move to the LTS 24.04 (25.04 is interim)", w)
	}
	if w := got["python"]; w.Upstream != "3.22" {
		t.Errorf("python on alpine 3.20: %+v, want the move to 3.22", w)
	}
	text := got["node"].String()
	for _, want := range []string{"node 22, 24 are built on debian bookworm (cycle 12)", "in 90 days", "https://endoflife.date/debian", "newest upstream: 13"} {
		if !strings.Contains(text, want) {
			t.Errorf("warning %q does not say %q", text, want)
		}
	}
	var b bytes.Buffer
	r := Check(list, tab, date(t, "2026-11-02"))
	for _, w := range r.Distros {
		b.WriteString(w.String())
	}
	if strings.Count(b.String(), "warning: ") != len(list.Runtimes) {
		t.Errorf("%d warnings, want one per runtime:\n%s", strings.Count(b.String(), "warning: "), b.String())
	}
}

// The default variant on a release far from its end, a variant that
// follows the family's newest (no release in the tag), or a table without
// the family's product (one from before the families) warns about nothing.
func TestDistributionReleaseQuietWhenNotDueOrUnknown(t *testing.T) {
	list := distroList(t, "runtimes:\n  - name: node\n    versions: [\"24\"]\n  - name: python\n    versions: [\"3.13\"]\n    variant: alpine\n")
	tab := distroTable()
	if r := Check(list, tab, date(t, "2026-11-02")); len(r.Distros) != 0 {
		t.Errorf("trixie and plain alpine: %+v, want no warning", r.Distros)
	}
	old := distroList(t, distroYAML)
	delete(tab.Products, "debian")
	delete(tab.Products, "ubuntu")
	delete(tab.Products, "alpine-linux")
	if r := Check(old, tab, date(t, "2027-06-01")); len(r.Distros)+len(r.Notes) != 0 {
		t.Errorf("a table without the families: %+v, want nothing", r)
	}
}

// Every family has an endoflife.date product, and the committed table holds
// its cycles, the release each known codename maps to among them.
func TestEveryFamilyHasItsProductInTheCommittedTable(t *testing.T) {
	tab, err := ReadTable("../../" + DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range runtimes.Families {
		p, ok := FamilyProducts[f]
		if !ok {
			t.Errorf("family %s has no endoflife.date product", f)
			continue
		}
		if len(tab.Products[p].Cycles) == 0 {
			t.Errorf("%s has no cycles of %s (family %s): rebuild it with cmd/eol", DefaultPath, p, f)
		}
	}
	def, err := runtimes.ParseVariant(runtimes.DefaultVariant, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cycleOf(tab.Products[FamilyProducts[def.Family]], def.Cycle()); !ok {
		t.Errorf("the default variant %s (cycle %s) is not in %s", runtimes.DefaultVariant, def.Cycle(), DefaultPath)
	}
}

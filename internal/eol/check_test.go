package eol

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evergreen-images/evergreen/runtimes"
)

const testdata = "../../testdata/eol"

// loadList reads a fixed list under testdata/eol/lists; runtime folders are
// looked up in the repository's runtimes/ (node, node-ci-cd, python).
func loadList(t *testing.T, name string) *runtimes.List {
	t.Helper()
	p := filepath.Join(testdata, "lists", name)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	l, err := runtimes.Parse(p, data, "../../runtimes")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func loadTable(t *testing.T) *Table {
	t.Helper()
	tab, err := ReadTable(filepath.Join(testdata, "table.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// cycle returns the table's cycle of a listed version, the way the test
// reads it: by name, not through cycleOf.
func cycle(t *testing.T, tab *Table, rt runtimes.Runtime, v string) Cycle {
	t.Helper()
	p := tab.Products[tab.Images[path.Base(rt.BaseImage)]]
	for _, c := range p.Cycles {
		if c.Name == v {
			return c
		}
	}
	t.Fatalf("test table has no cycle %q for %s", v, rt.BaseImage)
	return Cycle{}
}

func date(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func find(ws []Warning, version string) (Warning, bool) {
	for _, w := range ws {
		if w.Version == version {
			return w, true
		}
	}
	return Warning{}, false
}

// TestCheckAroundEachDate moves today around the end of life of each listed
// node version: past it, on it, 30 days before, 90 and 91 days before, 200
// days before. Whether every other listed version warns is derived from its
// own date in the table.
func TestCheckAroundEachDate(t *testing.T) {
	tab := loadTable(t)
	list := loadList(t, "node.yaml")
	rt := list.Runtimes[0]
	for _, v := range rt.Versions {
		eol := date(t, cycle(t, tab, rt, v).EOLFrom)
		for _, offset := range []int{-365, -1, 0, 30, 90, 91, 200} {
			// offset: days from today to the end of life.
			today := eol.AddDate(0, 0, -offset)
			r := Check(list, tab, today.Add(13*time.Hour)) // any time of the day
			w, warned := find(r.Warnings, v)
			if want := offset <= WarnWithinDays; warned != want {
				t.Errorf("node %s, %d days before its end of life %s: warned %v, want %v", v, offset, eol.Format("2006-01-02"), warned, want)
				continue
			}
			if warned {
				if w.Days != offset || w.EOL != eol.Format("2006-01-02") || w.Runtime != "node" || w.Product != "nodejs" || w.Source != tab.Source {
					t.Errorf("node %s, %d days before: got %+v", v, offset, w)
				}
				s := w.String()
				for _, part := range []string{"node " + v, w.EOL, tab.Source.Name, "taken " + tab.Source.Taken, "drop", "keeping it knowingly is fine"} {
					if !strings.Contains(s, part) {
						t.Errorf("warning %q does not mention %q", s, part)
					}
				}
			}
			for _, other := range rt.Versions {
				d := daysBetween(today, date(t, cycle(t, tab, rt, other).EOLFrom))
				if _, got := find(r.Warnings, other); got != (d <= WarnWithinDays) {
					t.Errorf("today %s: node %s (%d days before its end of life) warned %v", today.Format("2006-01-02"), other, d, got)
				}
			}
		}
	}
}

// TestCheckSuggests checks what a warning proposes: the newer listed
// versions that are not due themselves, and the newest upstream LTS cycle
// when it is not listed.
func TestCheckSuggests(t *testing.T) {
	tab := loadTable(t)
	list := loadList(t, "node.yaml")
	rt := list.Runtimes[0]
	// The day after node 20's end of life: 20 is past it; the suggestions
	// are the newer listed cycles that are released and not due.
	today := date(t, cycle(t, tab, rt, "20").EOLFrom).AddDate(0, 0, 1)
	var want []string
	for _, v := range rt.Versions {
		c := cycle(t, tab, rt, v)
		if c.ReleaseDate > cycle(t, tab, rt, "20").ReleaseDate && daysBetween(today, date(t, c.EOLFrom)) > WarnWithinDays {
			want = append(want, v)
		}
	}
	w, ok := find(Check(list, tab, today).Warnings, "20")
	if !ok {
		t.Fatal("no warning for node 20 after its end of life")
	}
	if !slices.Equal(w.Listed, want) {
		t.Errorf("listed suggestions %v, want %v", w.Listed, want)
	}
	if len(want) == 0 {
		t.Fatal("the test list has no newer version to suggest; fix testdata/eol/lists/node.yaml")
	}

	// With only node 20 listed, the suggestion is upstream: node has LTS
	// cycles, so the newest one in its LTS phase.
	only := &runtimes.List{Path: list.Path, Runtimes: []runtimes.Runtime{rt}}
	only.Runtimes[0].Versions = []string{"20"}
	w, _ = find(Check(only, tab, today).Warnings, "20")
	if want := wantUpstream(t, tab, "nodejs", today, true); w.Upstream != want || !w.UpstreamLTS || len(w.Listed) != 0 || !strings.Contains(w.String(), "newest upstream LTS: "+want) {
		t.Errorf("node 20 on %s: upstream suggestion %q (listed %v), want %q", today.Format("2006-01-02"), w.Upstream, w.Listed, want)
	}

	// Python has no LTS cycles. 30 days before 3.9's end of life the
	// suggestion is the newest cycle released by then.
	py := loadList(t, "variants.yaml")
	py.Runtimes[0].Versions = []string{"3.9"}
	today = date(t, cycle(t, tab, py.Runtimes[0], "3.9").EOLFrom).AddDate(0, 0, -30)
	w, _ = find(Check(py, tab, today).Warnings, "3.9")
	if want := wantUpstream(t, tab, "python", today, false); w.Upstream != want || w.UpstreamLTS || !strings.Contains(w.String(), "newest upstream: "+want) {
		t.Errorf("python 3.9 on %s: upstream suggestion %q, want %q", today.Format("2006-01-02"), w.Upstream, want)
	}
}

// wantUpstream is the newest cycle released by today, not due a warning,
// and in its LTS phase if lts.
func wantUpstream(t *testing.T, tab *Table, product string, today time.Time, lts bool) string {
	t.Helper()
	day := today.Format("2006-01-02")
	for _, c := range tab.Products[product].Cycles { // newest first
		if c.ReleaseDate > day || daysBetween(today, date(t, c.EOLFrom)) <= WarnWithinDays {
			continue
		}
		if !lts {
			return c.Name
		}
		if c.LTSFrom != "" && c.LTSFrom <= day {
			return c.Name
		}
	}
	t.Fatalf("testdata: no %s cycle to suggest on %s", product, day)
	return ""
}

// TestCheckQuiet: what the table does not know gives no warning.
func TestCheckQuiet(t *testing.T) {
	tab := loadTable(t)
	taken := date(t, tab.Source.Taken)
	for _, name := range []string{"unknown-product.yaml", "unknown-cycle.yaml"} {
		// Far in the future every known cycle would be past its end of life.
		r := Check(loadList(t, name), tab, taken.AddDate(0, 0, StaleAfterDays))
		if len(r.Warnings) != 0 || len(r.Notes) != 0 {
			t.Errorf("%s: got %+v, want nothing", name, r)
		}
	}
}

// TestCheckMissingProduct: a mapped product without cycles is noted once.
func TestCheckMissingProduct(t *testing.T) {
	tab := loadTable(t)
	list := loadList(t, "missing-product.yaml")
	r := Check(list, tab, date(t, tab.Source.Taken))
	if len(r.Warnings) != 0 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "make eol") || !strings.Contains(r.Notes[0], `"go"`) {
		t.Errorf("got %+v, want one note naming product go and make eol", r)
	}
}

// TestCheckUndated: a cycle that endoflife.date marks as ended without a
// date warns; one not ended and without a date does not.
func TestCheckUndated(t *testing.T) {
	tab := loadTable(t)
	list := loadList(t, "undated.yaml")
	r := Check(list, tab, date(t, tab.Source.Taken))
	rt := list.Runtimes[0]
	for _, v := range rt.Versions {
		c := cycle(t, tab, rt, v)
		if c.EOLFrom != "" {
			t.Fatalf("testdata: cycle %s has a date", v)
		}
		w, warned := find(r.Warnings, v)
		if warned != c.IsEOL {
			t.Errorf("version %s (isEol %v): warned %v", v, c.IsEOL, warned)
		}
		if warned && (w.EOL != "" || !strings.Contains(w.String(), "no date")) {
			t.Errorf("version %s: %q", v, w)
		}
	}
}

// TestCheckVariants: a version with a suffix gets its cycle's warning.
func TestCheckVariants(t *testing.T) {
	tab := loadTable(t)
	list := loadList(t, "variants.yaml")
	for _, v := range list.Runtimes[0].Versions {
		c, ok := cycleOf(tab.Products["python"], v)
		if !ok || !strings.HasPrefix(v, c.Name) || len(v) == len(c.Name) {
			t.Fatalf("version %s: cycle %q, %v", v, c.Name, ok)
		}
		today := date(t, c.EOLFrom)
		w, warned := find(Check(list, tab, today).Warnings, v)
		if !warned || w.Cycle != c.Name || !strings.Contains(w.String(), "(cycle "+c.Name+")") {
			t.Errorf("version %s on %s: %+v", v, c.EOLFrom, w)
		}
	}
}

// TestStale: the table's age is mentioned once, only after StaleAfterDays.
func TestStale(t *testing.T) {
	tab := loadTable(t)
	list := loadList(t, "unknown-product.yaml") // no warnings to mix in
	taken := date(t, tab.Source.Taken)
	if r := Check(list, tab, taken.AddDate(0, 0, StaleAfterDays)); len(r.Notes) != 0 {
		t.Errorf("%d days after: %v", StaleAfterDays, r.Notes)
	}
	r := Check(list, tab, taken.AddDate(0, 0, StaleAfterDays+1))
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "make eol") || !strings.Contains(r.Notes[0], tab.Source.Taken) {
		t.Errorf("%d days after: %v, want one note with the date and make eol", StaleAfterDays+1, r.Notes)
	}
}

// TestWarn: the app's entry point prints, and fails only on a bad table.
func TestWarn(t *testing.T) {
	tab := loadTable(t)
	list := loadList(t, "node.yaml")
	var out bytes.Buffer
	today := date(t, cycle(t, tab, list.Runtimes[0], "20").EOLFrom)
	if err := Warn(&out, list, filepath.Join(testdata, "table.json"), today); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "warning: "); n != len(Check(list, tab, today).Warnings) || n == 0 {
		t.Errorf("printed %d warnings:\n%s", n, out.String())
	}

	dir := t.TempDir()
	for name, body := range map[string]string{
		"malformed":   `{"source": `,
		"unknown key": `{"source": {"name": "endoflife.date", "url": "u", "taken": "2026-01-01"}, "image": {}}`,
		"no source":   `{"images": {}, "products": {}}`,
		"bad date":    `{"source": {"name": "endoflife.date", "url": "u", "taken": "2026-01-01"}, "products": {"nodejs": {"cycles": [{"name": "22", "eolFrom": "30/04/2027"}]}}}`,
		"duplicate":   `{"source": {"name": "endoflife.date", "url": "u", "taken": "2026-01-01"}, "products": {"nodejs": {"cycles": [{"name": "22"}, {"name": "22"}]}}}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Warn(&out, list, p, today)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%s: error %v, want one naming %s with a fix", name, err, p)
		}
	}
	if err := Warn(&out, list, filepath.Join(dir, "absent.json"), today); err == nil || !strings.Contains(err.Error(), "fix:") {
		t.Errorf("absent table: %v", err)
	}
}

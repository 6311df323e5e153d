package generate

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// The one drift test: every generated file in the repository (the
// buildspecs, the GitHub workflow, the table of context keys in
// docs/configuration.md, the evidence samples) is what make generate
// writes, and every file that is generated whole says so in its first line
// (the JSON samples, which cannot, in their folder's README).
func TestCommittedFilesAreUpToDate(t *testing.T) {
	r, err := Run("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Files {
		if f.Path == TablePath {
			continue // generated between markers, not whole
		}
		if path.Dir(f.Path) == EvidenceDir {
			readme, err := os.ReadFile(filepath.Join("../..", EvidenceDir, "README.md"))
			if err != nil || !strings.Contains(string(readme), "Code generated") || !strings.Contains(string(readme), path.Base(f.Path)) {
				t.Errorf("%s: JSON cannot say it is generated; %s/README.md must (Code generated ... DO NOT EDIT) and name it: %v", f.Path, EvidenceDir, err)
			}
			continue
		}
		first, _, _ := strings.Cut(string(f.Content), "\n")
		if !strings.Contains(first, "Code generated") || !strings.Contains(first, "DO NOT EDIT") {
			t.Errorf("%s: the first line %q does not say the file is generated", f.Path, first)
		}
	}
	stale, err := r.Stale("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Errorf("out of date: %s; run: %s", strings.Join(stale, ", "), Command)
	}
}

func TestReplaceBetween(t *testing.T) {
	got, err := replaceBetween([]byte("a\n"+tableStart+"old\n"+tableEnd+"b\n"), tableStart, tableEnd, "new\n")
	if err != nil || string(got) != "a\n"+tableStart+"new\n"+tableEnd+"b\n" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := replaceBetween([]byte("no markers\n"), tableStart, tableEnd, "x"); err == nil || !strings.Contains(err.Error(), "markers") {
		t.Errorf("missing markers: %v", err)
	}
}

// The table's links are written from the repository root; in docs/ they
// must point from there.
func TestRelativeLinks(t *testing.T) {
	for _, c := range []struct{ in, dir, want string }{
		{"([docs/github-actions.md](docs/github-actions.md))", "docs", "([docs/github-actions.md](github-actions.md))"},
		{"[list](runtimes/runtimes.yaml#L3)", "docs", "[list](../runtimes/runtimes.yaml#L3)"},
		{"[x](docs/a.md)", ".", "[x](docs/a.md)"},
		{"[site](https://endoflife.date/x)", "docs", "[site](https://endoflife.date/x)"},
		{"[here](#context-keys)", "docs", "[here](#context-keys)"},
	} {
		if got := relativeLinks(c.in, c.dir); got != c.want {
			t.Errorf("relativeLinks(%q, %q) = %q, want %q", c.in, c.dir, got, c.want)
		}
	}
}

// Package eol warns about runtime versions past, or close to, their upstream
// end of life.
//
// The dates come from a committed table (runtimes/eol.json) taken from
// endoflife.date, not from the network: a synth must not depend on a third
// party being reachable, and the same commit must print the same warnings.
// `make eol` (cmd/eol) refreshes the table where there is internet.
//
// The package is plain Go (no CDK, no jsii) so that the app, cmd/eol and the
// tests share it cheaply.
package eol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// DefaultPath is the committed table, next to the runtime list.
const DefaultPath = "runtimes/eol.json"

// dateLayout is how endoflife.date writes dates, and how the table does.
const dateLayout = "2006-01-02"

// Table is the committed end-of-life table.
type Table struct {
	// Path is the file the table was read from (not part of the file).
	Path   string `json:"-"`
	Source Source `json:"source"`
	// Images maps a base image (the last path segment of a runtime's
	// base-image, e.g. "node" for "library/node") to its endoflife.date
	// product ("nodejs"): Docker and endoflife.date name some runtimes
	// differently.
	Images map[string]string `json:"images"`
	// Products holds, per endoflife.date product, its release cycles.
	Products map[string]Product `json:"products"`
}

// Source says where the table's data came from and when.
type Source struct {
	// Name is "endoflife.date".
	Name string `json:"name"`
	// URL is what was read: the API URL, with {product} for the product.
	URL string `json:"url"`
	// Taken is the day the data was taken (YYYY-MM-DD, UTC).
	Taken string `json:"taken"`
	// Note explains a source other than the API, when there is one.
	Note string `json:"note,omitempty"`
}

// Product is one endoflife.date product.
type Product struct {
	// Cycles, newest release first (as endoflife.date lists them).
	Cycles []Cycle `json:"cycles"`
}

// Cycle is one release cycle, with the fields of endoflife.date's API v1
// that the check uses, under the API's names. The Is* fields are as
// endoflife.date computed them on the day the table was taken; the check
// recomputes them from the dates where there are dates.
type Cycle struct {
	Name        string `json:"name"`
	ReleaseDate string `json:"releaseDate,omitempty"`
	IsLTS       bool   `json:"isLts"`
	LTSFrom     string `json:"ltsFrom,omitempty"`
	IsEOL       bool   `json:"isEol"`
	// EOLFrom is the last day of support; empty when endoflife.date gives
	// no date (then IsEOL says whether the cycle has ended).
	EOLFrom string `json:"eolFrom,omitempty"`
	Latest  string `json:"latest,omitempty"`
}

// TableError is a problem with the table, naming the file, the entry and the fix.
type TableError struct {
	Path  string
	Entry string
	Msg   string
	Fix   string
}

func (e *TableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "end-of-life table %s: ", e.Path)
	if e.Entry != "" {
		b.WriteString(e.Entry + ": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString("\n  fix: " + e.Fix)
	}
	return b.String()
}

const fixTable = "restore the committed copy (git checkout -- %s) or rewrite it with make eol"

// ReadTable reads and validates the table at path.
func ReadTable(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &TableError{Path: path, Msg: fmt.Sprintf("cannot read it: %v", err), Fix: fmt.Sprintf("run from the repository root; "+fixTable, path)}
	}
	return ParseTable(path, data)
}

// ParseTable decodes the table strictly (an unknown key is a typo, not data)
// and validates it.
func ParseTable(path string, data []byte) (*Table, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var t Table
	if err := dec.Decode(&t); err != nil {
		return nil, &TableError{Path: path, Msg: fmt.Sprintf("malformed JSON: %v", err), Fix: fmt.Sprintf(fixTable, path)}
	}
	if err := t.Validate(); err != nil {
		err.Path = path
		return nil, err
	}
	t.Path = path
	return &t, nil
}

// Validate checks what the check relies on: a named source, real dates,
// unique cycle names.
func (t *Table) Validate() *TableError {
	fix := fmt.Sprintf(fixTable, DefaultPath)
	if t.Source.Name == "" || t.Source.URL == "" {
		return &TableError{Entry: "source", Msg: "name and url are required: the table must say where its dates come from", Fix: fix}
	}
	if _, err := parseDate(t.Source.Taken); err != nil {
		return &TableError{Entry: "source.taken", Msg: fmt.Sprintf("%q is not a date (YYYY-MM-DD)", t.Source.Taken), Fix: fix}
	}
	for _, img := range slices.Sorted(maps.Keys(t.Images)) {
		if img == "" || t.Images[img] == "" {
			return &TableError{Entry: fmt.Sprintf("images[%q]", img), Msg: "an empty base image or product name", Fix: "map a base image to an endoflife.date product, e.g. \"node\": \"nodejs\""}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Products)) {
		seen := map[string]bool{}
		for i, c := range t.Products[name].Cycles {
			entry := fmt.Sprintf("products[%q].cycles[%d]", name, i)
			if c.Name == "" {
				return &TableError{Entry: entry, Msg: "a cycle without a name", Fix: fix}
			}
			entry = fmt.Sprintf("products[%q] cycle %q", name, c.Name)
			if seen[c.Name] {
				return &TableError{Entry: entry, Msg: "listed twice", Fix: fix}
			}
			seen[c.Name] = true
			for _, d := range []struct{ field, value string }{{"releaseDate", c.ReleaseDate}, {"ltsFrom", c.LTSFrom}, {"eolFrom", c.EOLFrom}} {
				if d.value == "" {
					continue
				}
				if _, err := parseDate(d.value); err != nil {
					return &TableError{Entry: entry, Msg: fmt.Sprintf("%s %q is not a date (YYYY-MM-DD)", d.field, d.value), Fix: fix}
				}
			}
		}
	}
	return nil
}

// Marshal writes the table deterministically: sorted keys (encoding/json
// sorts map keys), cycles newest first, two-space indentation, a trailing
// newline. Rewriting an unchanged table changes no byte.
func (t *Table) Marshal() ([]byte, error) {
	for _, p := range t.Products {
		SortCycles(p.Cycles)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// The table holds URLs; keep & and < readable.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(t); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// SortCycles orders cycles newest release first, then by name, so the order
// does not depend on how the source listed them.
func SortCycles(cs []Cycle) {
	slices.SortStableFunc(cs, func(a, b Cycle) int {
		if c := strings.Compare(b.ReleaseDate, a.ReleaseDate); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

func parseDate(s string) (time.Time, error) {
	return time.Parse(dateLayout, s)
}

func (t *Table) path() string {
	if t.Path == "" {
		return DefaultPath
	}
	return t.Path
}

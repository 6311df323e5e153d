package eol

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// recording is a real response of the API v1 product endpoint for "go"
// (testdata/eol/README.md says where it comes from).
var recording = filepath.Join(testdata, "api-v1-products-go.json")

// TestParseAPIProductRecording parses the recorded response and compares
// every release with the same response read generically, field by field.
func TestParseAPIProductRecording(t *testing.T) {
	data, err := os.ReadFile(recording)
	if err != nil {
		t.Fatal(err)
	}
	cycles, err := ParseAPIProduct("go", data)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Result struct {
			Releases []map[string]any `json:"releases"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if len(cycles) != len(raw.Result.Releases) || len(cycles) == 0 {
		t.Fatalf("parsed %d cycles, the response has %d releases", len(cycles), len(raw.Result.Releases))
	}
	str := func(v any) string { s, _ := v.(string); return s }
	byName := map[string]Cycle{}
	for _, c := range cycles {
		byName[c.Name] = c
	}
	var undated, dated int
	for _, r := range raw.Result.Releases {
		name := str(r["name"])
		c, ok := byName[name]
		if !ok {
			t.Errorf("release %q not parsed", name)
			continue
		}
		latest, _ := r["latest"].(map[string]any)
		want := Cycle{
			Name:        name,
			ReleaseDate: str(r["releaseDate"]),
			IsLTS:       r["isLts"] == true,
			LTSFrom:     str(r["ltsFrom"]),
			IsEOL:       r["isEol"] == true,
			EOLFrom:     str(r["eolFrom"]),
			Latest:      str(latest["name"]),
		}
		if c != want {
			t.Errorf("release %q: parsed %+v, want %+v", name, c, want)
		}
		if r["eolFrom"] == nil {
			undated++
		} else {
			dated++
		}
	}
	// The recording must exercise both shapes of eolFrom, or this test
	// proves less than it claims.
	if undated == 0 || dated == 0 {
		t.Errorf("the recording has %d releases with an eolFrom and %d without; it should have both", dated, undated)
	}
}

func TestParseAPIProductErrors(t *testing.T) {
	data, err := os.ReadFile(recording)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		product string
		body    []byte
		want    string
	}{
		// The API answers an unknown product with its HTML page, status 404.
		"html":           {"go", []byte("<!DOCTYPE html><html><title>Page not found</title>"), "not an API v1 JSON response"},
		"schema 2":       {"go", bytes.Replace(data, []byte(`"schema_version":"1.`), []byte(`"schema_version":"2.`), 1), "schema_version"},
		"other product":  {"golang", data, `for product "go"`},
		"bad date":       {"go", bytes.Replace(data, []byte(`"eolFrom":"2025-08-12"`), []byte(`"eolFrom":"12/08/2025"`), 1), "not a date"},
		"empty releases": {"go", []byte(`{"schema_version":"1.2.0","result":{"name":"go","releases":[]}}`), "no releases"},
	} {
		_, err := ParseAPIProduct(c.product, c.body)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), ProductURL(c.product)) {
			t.Errorf("%s: error %v, want one naming %s and %q", name, err, ProductURL(c.product), c.want)
		}
	}
}

// TestParseProductFile reads the endoflife.date repository's products/go.md
// and checks it against the recorded API response: every cycle the API had
// already ended must have the same release and end-of-life dates in both
// (the product file is a year newer, so newer cycles differ).
func TestParseProductFile(t *testing.T) {
	file := filepath.Join(testdata, "endoflife.date", "products", "go.md")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	taken := date(t, "2026-08-22")
	cycles, err := ParseProductFile(file, data, taken)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(regexp.MustCompile(`(?m)^  - releaseCycle:`).FindAll(data, -1)); n != len(cycles) || n == 0 {
		t.Fatalf("parsed %d cycles, the file has %d", len(cycles), n)
	}
	fromFile := map[string]Cycle{}
	for _, c := range cycles {
		fromFile[c.Name] = c
		if c.EOLFrom != "" && c.IsEOL != (c.EOLFrom < "2026-08-22") {
			t.Errorf("cycle %s: isEol %v with eolFrom %s, taken 2026-08-22", c.Name, c.IsEOL, c.EOLFrom)
		}
	}
	rec, err := os.ReadFile(recording)
	if err != nil {
		t.Fatal(err)
	}
	api, err := ParseAPIProduct("go", rec)
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, a := range api {
		if !a.IsEOL {
			continue
		}
		f := fromFile[a.Name]
		if f.EOLFrom != a.EOLFrom || f.ReleaseDate != a.ReleaseDate || !f.IsEOL {
			t.Errorf("cycle %s: product file %+v, API %+v", a.Name, f, a)
		}
		compared++
	}
	if compared == 0 {
		t.Error("no ended cycle to compare")
	}

	for name, body := range map[string]string{
		"no front matter": "title: Go\n",
		"not closed":      "---\nreleases: []\n",
		"no releases":     "---\ntitle: Go\n---\n",
		"bad eol":         "---\nreleases:\n  - releaseCycle: \"1\"\n    eol: soon\n---\n",
	} {
		if _, err := ParseProductFile("x.md", []byte(body), taken); err == nil || !strings.Contains(err.Error(), "x.md") {
			t.Errorf("%s: error %v, want one naming x.md", name, err)
		}
	}
}

// TestCommittedTable: runtimes/eol.json is valid, names its source and is
// written exactly as cmd/eol writes it. (It need not cover every listed
// version: what it does not know gives no warning.)
func TestCommittedTable(t *testing.T) {
	p := filepath.Join("..", "..", DefaultPath)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := ParseTable(p, data)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Source.Name != "endoflife.date" {
		t.Errorf("source %q, want endoflife.date", tab.Source.Name)
	}
	again, err := tab.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("%s is not formatted as cmd/eol writes it; rewrite it with make eol", DefaultPath)
	}
}

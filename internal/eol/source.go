package eol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// APIURL is endoflife.date's API v1 product endpoint (documented at
// https://endoflife.date/docs/api/v1/, "Get a product"); {product} is the
// product name. v1 replaced the v0 endpoint /api/<product>.json, whose eol
// field was a date or a boolean, with isEol (boolean) and eolFrom (date or
// null).
const APIURL = "https://endoflife.date/api/v1/products/{product}"

// ProductURL is the API URL of one product.
func ProductURL(product string) string {
	return strings.ReplaceAll(APIURL, "{product}", product)
}

// apiResponse is the part of the API v1 ProductResponse the table keeps.
// Unknown fields are ignored: the API documents that it may add fields.
type apiResponse struct {
	SchemaVersion string `json:"schema_version"`
	Result        struct {
		Name     string `json:"name"`
		Releases []struct {
			Name        string  `json:"name"`
			ReleaseDate string  `json:"releaseDate"`
			IsLTS       bool    `json:"isLts"`
			LTSFrom     *string `json:"ltsFrom"`
			IsEOL       bool    `json:"isEol"`
			EOLFrom     *string `json:"eolFrom"`
			Latest      *struct {
				Name string `json:"name"`
			} `json:"latest"`
		} `json:"releases"`
	} `json:"result"`
}

// ParseAPIProduct parses a response of the API v1 product endpoint for
// product and returns its cycles, newest first.
func ParseAPIProduct(product string, data []byte) ([]Cycle, error) {
	url := ProductURL(product)
	var r apiResponse
	if err := json.Unmarshal(data, &r); err != nil {
		// The API answers an unknown product with its HTML error page.
		start := strings.TrimSpace(string(data[:min(len(data), 60)]))
		return nil, fmt.Errorf("%s: not an API v1 JSON response (%v); it starts with %q: check the product name", url, err, start)
	}
	if !strings.HasPrefix(r.SchemaVersion, "1.") {
		return nil, fmt.Errorf("%s: schema_version %q, want 1.x: the API changed; update internal/eol/source.go", url, r.SchemaVersion)
	}
	if r.Result.Name != product {
		return nil, fmt.Errorf("%s: the response is for product %q", url, r.Result.Name)
	}
	if len(r.Result.Releases) == 0 {
		return nil, fmt.Errorf("%s: no releases in the response", url)
	}
	var out []Cycle
	for _, rel := range r.Result.Releases {
		c := Cycle{
			Name:        rel.Name,
			ReleaseDate: rel.ReleaseDate,
			IsLTS:       rel.IsLTS,
			LTSFrom:     deref(rel.LTSFrom),
			IsEOL:       rel.IsEOL,
			EOLFrom:     deref(rel.EOLFrom),
		}
		if rel.Latest != nil {
			c.Latest = rel.Latest.Name
		}
		if err := checkCycle(c); err != nil {
			return nil, fmt.Errorf("%s: release %q: %v", url, rel.Name, err)
		}
		out = append(out, c)
	}
	SortCycles(out)
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func checkCycle(c Cycle) error {
	if c.Name == "" {
		return fmt.Errorf("no name")
	}
	for _, d := range []struct{ field, value string }{{"releaseDate", c.ReleaseDate}, {"ltsFrom", c.LTSFrom}, {"eolFrom", c.EOLFrom}} {
		if d.value == "" {
			continue
		}
		if _, err := parseDate(d.value); err != nil {
			return fmt.Errorf("%s %q is not a date", d.field, d.value)
		}
	}
	return nil
}

// ParseProductFile parses a product file of the endoflife.date repository
// (products/<product>.md), whose YAML front matter the site and the API are
// generated from. There eol and lts are each a date or a boolean; they become
// the API's isEol/eolFrom and isLts/ltsFrom as the site's generator
// (_plugins/product-data-enricher.rb, explode_date_or_boolean_field) makes
// them, with taken as its "today": is* is true for a boolean true, or for a
// date before taken.
//
// It is the offline way to build the table from a checkout of that
// repository (go run ./cmd/eol -from DIR).
func ParseProductFile(name string, data []byte, taken time.Time) ([]Cycle, error) {
	front, err := frontMatter(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	var doc struct {
		Releases []struct {
			ReleaseCycle string    `yaml:"releaseCycle"`
			ReleaseDate  yaml.Node `yaml:"releaseDate"`
			LTS          yaml.Node `yaml:"lts"`
			EOL          yaml.Node `yaml:"eol"`
			Latest       string    `yaml:"latest"`
		} `yaml:"releases"`
	}
	if err := yaml.Unmarshal(front, &doc); err != nil {
		return nil, fmt.Errorf("%s: front matter: %v", name, err)
	}
	if len(doc.Releases) == 0 {
		return nil, fmt.Errorf("%s: no releases in the front matter", name)
	}
	var out []Cycle
	for _, rel := range doc.Releases {
		c := Cycle{Name: rel.ReleaseCycle, Latest: rel.Latest, ReleaseDate: rel.ReleaseDate.Value}
		var err error
		if c.IsLTS, c.LTSFrom, err = dateOrBool(rel.LTS, taken); err != nil {
			return nil, fmt.Errorf("%s: release %q: lts: %v", name, c.Name, err)
		}
		if c.IsEOL, c.EOLFrom, err = dateOrBool(rel.EOL, taken); err != nil {
			return nil, fmt.Errorf("%s: release %q: eol: %v", name, c.Name, err)
		}
		if err := checkCycle(c); err != nil {
			return nil, fmt.Errorf("%s: release %q: %v", name, c.Name, err)
		}
		out = append(out, c)
	}
	SortCycles(out)
	return out, nil
}

// frontMatter returns the YAML between the first two "---" lines.
func frontMatter(data []byte) ([]byte, error) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) == 0 || strings.TrimSpace(string(lines[0])) != "---" {
		return nil, fmt.Errorf("no front matter: the file does not start with ---")
	}
	for i := 1; i < len(lines); i++ {
		if strings.TrimSpace(string(lines[i])) == "---" {
			return bytes.Join(lines[1:i], nil), nil
		}
	}
	return nil, fmt.Errorf("the front matter is not closed by ---")
}

// dateOrBool reads a field that is a date or a boolean; a missing field is false.
func dateOrBool(n yaml.Node, taken time.Time) (is bool, from string, err error) {
	switch {
	case n.Kind == 0:
		return false, "", nil
	case n.Kind != yaml.ScalarNode:
		return false, "", fmt.Errorf("not a date or a boolean")
	case n.Tag == "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return false, "", err
		}
		return b, "", nil
	}
	d, err := parseDate(n.Value)
	if err != nil {
		return false, "", fmt.Errorf("%q is not a date or a boolean", n.Value)
	}
	return taken.After(d), n.Value, nil
}

// Command eol refreshes the end-of-life table (runtimes/eol.json) from
// endoflife.date's API, for the products the runtime list's base images map
// to (the table's "images") and those of the distribution families runtimes
// are built on (eol.FamilyProducts).
//
//	go run ./cmd/eol    # make eol: fetch, then rewrite the table, taken today
//
// Nothing is written unless every product was fetched and parsed, so without
// internet the committed table is kept as it is.
//
// Offline, the table can be built from a checkout of the endoflife.date
// repository, whose products/<product>.md files the API is generated from:
//
//	go run ./cmd/eol -from DIR/products -taken 2026-08-22 \
//	    -url https://github.com/endoflife-date/endoflife.date/tree/<commit>/products
//
// Run it from the repository root.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/eol"
	"github.com/evergreen-images/evergreen/runtimes"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eol:", err)
		os.Exit(1)
	}
}

func run() error {
	tablePath := flag.String("table", eol.DefaultPath, "the end-of-life table to rewrite")
	listPath := flag.String("list", "", "the runtime list whose base images are looked up (default: evergreen:runtimeList in cdk.json)")
	from := flag.String("from", "", "read <product>.md files of the endoflife.date repository from this folder instead of the API")
	taken := flag.String("taken", "", "with -from: the day the files are from (YYYY-MM-DD), e.g. their commit date")
	fromURL := flag.String("url", "", "with -from: where the folder came from (a repository URL at a commit), recorded in the table")
	flag.Parse()

	if *listPath == "" {
		cfg, err := config.LoadCDKJSON(config.DefaultCDKJSON)
		if err != nil {
			return err
		}
		*listPath = cfg.RuntimeList
	}
	list, err := runtimes.Load(*listPath)
	if err != nil {
		return err
	}
	old, err := eol.ReadTable(*tablePath)
	if err != nil {
		return err
	}
	products := needed(list, old)

	t := &eol.Table{Images: old.Images, Products: map[string]eol.Product{}}
	if *from == "" {
		t.Source = eol.Source{Name: "endoflife.date", URL: eol.APIURL, Taken: time.Now().UTC().Format("2006-01-02")}
		client := &http.Client{Timeout: 30 * time.Second}
		for _, p := range products {
			cycles, err := fetch(client, p)
			if err != nil {
				return fmt.Errorf("%v\n  nothing was written: the committed table %s is kept (make eol needs internet access to endoflife.date)", err, *tablePath)
			}
			t.Products[p] = eol.Product{Cycles: cycles}
		}
	} else {
		day, err := time.Parse("2006-01-02", *taken)
		if err != nil || *fromURL == "" {
			return errors.New("-from needs -taken YYYY-MM-DD (the day the files are from) and -url (where they came from), so that the table names its source")
		}
		t.Source = eol.Source{
			Name:  "endoflife.date",
			URL:   *fromURL,
			Taken: *taken,
			Note:  "built offline from the endoflife.date repository's product files (products/<product>.md), which the API " + eol.APIURL + " is generated from; make eol replaces this with the API's data",
		}
		for _, p := range products {
			file := filepath.Join(*from, p+".md")
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			cycles, err := eol.ParseProductFile(file, data, day)
			if err != nil {
				return err
			}
			t.Products[p] = eol.Product{Cycles: cycles}
		}
	}
	if err := t.Validate(); err != nil {
		err.Path = *tablePath
		return err
	}
	data, err := t.Marshal()
	if err != nil {
		return err
	}
	if err := writeFile(*tablePath, data); err != nil {
		return err
	}
	var counts []string
	for _, p := range products {
		counts = append(counts, fmt.Sprintf("%s %d cycles", p, len(t.Products[p].Cycles)))
	}
	fmt.Printf("wrote %s: %s (%s, taken %s)\n", *tablePath, strings.Join(counts, ", "), t.Source.Name, t.Source.Taken)
	return nil
}

// needed returns the endoflife.date products of the list's base images,
// sorted. A base image the table does not map is reported, not guessed:
// Docker and endoflife.date do not always use the same name.
func needed(list *runtimes.List, t *eol.Table) []string {
	var out []string
	for _, rt := range list.Runtimes {
		img := path.Base(rt.BaseImage)
		p, ok := t.Images[img]
		if !ok {
			fmt.Fprintf(os.Stderr, "eol: runtime %q: base image %q has no endoflife.date product in the table's \"images\"; to track it, add \"%s\": \"<product>\" (see https://endoflife.date)\n", rt.Name, rt.BaseImage, img)
			continue
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	// The distribution releases runtimes are built on have ends of life of
	// their own: every family's, so that a runtime moved to another family
	// is checked without waiting for the next make eol.
	for _, f := range runtimes.Families {
		if p, ok := eol.FamilyProducts[f]; ok && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func fetch(client *http.Client, product string) ([]eol.Cycle, error) {
	url := eol.ProductURL(product)
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "evergreen-images-eol (make eol)")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: HTTP %d", url, resp.StatusCode)
	}
	return eol.ParseAPIProduct(product, body)
}

// writeFile replaces path through a temporary file in the same folder, so an
// interrupted run leaves the old table whole.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".eol-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

package runtimes_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/runtimes"
)

func load(t *testing.T, path string) *runtimes.List {
	t.Helper()
	l, err := runtimes.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fixedList has fixed values for the tests that need them; the default list
// (runtimes.yaml) is the product's input and changes without them.
const fixedList = "../testdata/runtimes/fixed/runtimes.yaml"

func TestReleasesAndDefaults(t *testing.T) {
	l := load(t, fixedList)
	var got []string
	for _, r := range l.Releases() {
		got = append(got, r.Identifier())
	}
	want := []string{"node_22", "node_24", "node_ci_cd_22", "node_ci_cd_24", "python_3_12", "python_3_13", "python_3_14"}
	if !slices.Equal(got, want) {
		t.Errorf("releases %v, want %v", got, want)
	}
	for _, rt := range l.Runtimes {
		if !slices.Equal(rt.Architectures, runtimes.DefaultArchitectures) {
			t.Errorf("%s: architectures %v, want the default arm64 and amd64", rt.Name, rt.Architectures)
		}
		if rt.BaseRegistry != runtimes.DefaultBaseRegistry || rt.ComputeType != runtimes.DefaultComputeType {
			t.Errorf("%s: defaults not applied: %+v", rt.Name, rt)
		}
	}
	// node-ci-cd names its base image; python defaults to its own name.
	if l.Runtimes[1].BaseImage != "node" || l.Runtimes[2].BaseImage != "python" {
		t.Errorf("base images: %q, %q", l.Runtimes[1].BaseImage, l.Runtimes[2].BaseImage)
	}
}

func TestImagesAreRuntimeByVersionByArchitectureInListOrder(t *testing.T) {
	l := load(t, fixedList)
	var ids []string
	for _, im := range l.Images() {
		ids = append(ids, im.Identifier())
	}
	if len(ids) != 14 || ids[0] != "node_22_arm64" || ids[1] != "node_22_amd64" || ids[13] != "python_3_14_amd64" {
		t.Errorf("images %v", ids)
	}
}

// The default list, whatever it holds: one image per runtime x version x
// architecture and one release per runtime x version, in list order, each
// with its own identifier.
func TestDefaultListExpandsEveryEntry(t *testing.T) {
	l := load(t, "runtimes.yaml")
	var wantImages, wantReleases []string
	for _, rt := range l.Runtimes {
		for _, v := range rt.Versions {
			wantReleases = append(wantReleases, rt.Name+" "+v)
			for _, a := range rt.Architectures {
				wantImages = append(wantImages, rt.Name+" "+v+" "+string(a))
			}
		}
	}
	var gotImages, gotReleases []string
	ids := map[string]bool{}
	for _, im := range l.Images() {
		gotImages = append(gotImages, im.Runtime.Name+" "+im.Version+" "+string(im.Arch))
		ids[im.Identifier()] = true
	}
	for _, r := range l.Releases() {
		gotReleases = append(gotReleases, r.Runtime.Name+" "+r.Version)
		ids[r.Identifier()] = true
	}
	if !slices.Equal(gotImages, wantImages) {
		t.Errorf("images %v, want %v", gotImages, wantImages)
	}
	if !slices.Equal(gotReleases, wantReleases) {
		t.Errorf("releases %v, want %v", gotReleases, wantReleases)
	}
	if len(ids) != len(wantImages)+len(wantReleases) {
		t.Errorf("%d identifiers for %d entries: two entries share one", len(ids), len(wantImages)+len(wantReleases))
	}
}

func TestTagScheme(t *testing.T) {
	exec := "0a1b2c3d-0000-4000-8000-000000000000"
	if got := runtimes.DraftTag("3.13", runtimes.ARM64, exec); got != "draft-3.13-arm64-"+exec {
		t.Errorf("draft tag %q", got)
	}
	if got := runtimes.ArchTag("22", runtimes.AMD64); got != "22-amd64" {
		t.Errorf("arch tag %q", got)
	}
	dated := runtimes.DatedTag("22", "20261126", exec[:8])
	if dated != "22-r20261126-0a1b2c3d" {
		t.Errorf("dated tag %q", dated)
	}
	// The immutability filter and the lifecycle rule tell dated tags apart
	// from every other tag with one wildcard.
	match := func(tag string) bool {
		ok, _ := filepath.Match(runtimes.DatedTagPattern, tag)
		return ok
	}
	if !match(dated) {
		t.Errorf("%s does not match %s", dated, runtimes.DatedTagPattern)
	}
	for _, other := range []string{"22", "22-arm64", "3.13-amd64", runtimes.DraftTag("22", runtimes.ARM64, exec), runtimes.DraftTag("3.14-rc", runtimes.AMD64, "d20f0000-0000-4000-8000-000000000000")} {
		if match(other) {
			t.Errorf("%s matches the dated pattern %s: it would become immutable", other, runtimes.DatedTagPattern)
		}
	}
}

// The bad-input corpus (validate/) runs every error through the app; these
// cases pin the parts of the message a user acts on.
func TestProblemsNameFileLineEntryAndFix(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"good", "noexec"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "good", "self-test"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "noexec", "self-test"), []byte("#!/bin/sh\n"), 0o644)

	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unquoted float", "runtimes:\n  - name: good\n    versions: [3.10]\n", []string{"list.yaml:3:", `runtimes[0] "good"`, "version 3.10 is a YAML number", `quote it: "3.10"`}},
		{"duplicate version", "runtimes:\n  - name: good\n    versions: [\"22\", \"22\"]\n", []string{"list.yaml:3:", `version "22" is listed twice`, "fix: remove the duplicate"}},
		{"not executable", "runtimes:\n  - name: noexec\n    versions: [\"1\"]\n", []string{"list.yaml:2:", "self-test is not executable", "chmod +x"}},
		{"unknown key", "runtimes:\n  - name: good\n    versoins: [\"1\"]\n", []string{"list.yaml:3:", `unknown key "versoins"`, "has no 'versions'"}},
		{"collision", "runtimes:\n  - name: good\n    versions: [\"1-2\", \"1.2\"]\n", []string{"good_1_2_arm64 is also the identifier of", "rename one of them"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "list.yaml")
			_, err := runtimes.Parse(path, []byte(c.yaml), dir)
			var lerr *runtimes.Error
			if !errors.As(err, &lerr) {
				t.Fatalf("error %v, want a *runtimes.Error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message lacks %q:\n%s", w, err)
				}
			}
		})
	}
}

package runtimes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVariantNamesItsFamilyReleaseAndTag(t *testing.T) {
	for _, c := range []struct {
		variant, family                     string
		tag22                               string
		fam                                 Family
		release, cycle                      string
		fromTag, releaseArg, releaseDefault string
	}{
		{"trixie", "", "22-trixie", Debian, "trixie", "13", "${VERSION}-${DEBIAN_RELEASE}", "DEBIAN_RELEASE", "trixie"},
		{"bookworm-slim", "", "22-bookworm-slim", Debian, "bookworm", "12", "${VERSION}-${DEBIAN_RELEASE}-slim", "DEBIAN_RELEASE", "bookworm"},
		{"noble", "", "22-noble", Ubuntu, "noble", "24.04", "${VERSION}-${UBUNTU_RELEASE}", "UBUNTU_RELEASE", "noble"},
		{"{version}-jdk-noble", "", "22-jdk-noble", Ubuntu, "noble", "24.04", "${VERSION}-jdk-${UBUNTU_RELEASE}", "UBUNTU_RELEASE", "noble"},
		{"alpine3.22", "", "22-alpine3.22", Alpine, "3.22", "3.22", "${VERSION}-alpine${ALPINE_RELEASE}", "ALPINE_RELEASE", "3.22"},
		{"{version}-jdk-alpine", "", "22-jdk-alpine", Alpine, "", "", "${VERSION}-jdk-alpine", "", ""},
		{"slim", "debian", "22-slim", Debian, "", "", "${VERSION}-slim", "", ""},
		{"noble", "ubuntu", "22-noble", Ubuntu, "noble", "24.04", "${VERSION}-${UBUNTU_RELEASE}", "UBUNTU_RELEASE", "noble"},
	} {
		v, err := ParseVariant(c.variant, Family(c.family))
		if err != nil {
			t.Errorf("%s (family %q): %v", c.variant, c.family, err)
			continue
		}
		if v.BaseTag("22") != c.tag22 || v.Family != c.fam || v.Release != c.release || v.Cycle() != c.cycle {
			t.Errorf("%s: tag %q family %s release %q cycle %q; want %q %s %q %q", c.variant, v.BaseTag("22"), v.Family, v.Release, v.Cycle(), c.tag22, c.fam, c.release, c.cycle)
		}
		tag, arg, def := v.FromTag()
		if tag != c.fromTag || arg != c.releaseArg || def != c.releaseDefault {
			t.Errorf("%s: FROM tag %q, arg %q=%q; want %q, %q=%q", c.variant, tag, arg, def, c.fromTag, c.releaseArg, c.releaseDefault)
		}
		// The FROM, with its release argument at its default, is the tag.
		if expanded := strings.ReplaceAll(strings.ReplaceAll(tag, "${VERSION}", "22"), "${"+arg+"}", def); arg != "" && expanded != c.tag22 {
			t.Errorf("%s: FROM expands to %q, want %q", c.variant, expanded, c.tag22)
		}
	}
}

func TestVariantRefusedWithItsFix(t *testing.T) {
	for _, c := range []struct{ variant, family, want string }{
		{"slim", "", "add family: debian, ubuntu, alpine"},
		{"noble", "alpine", "variant \"noble\" is ubuntu noble, but family says alpine"},
		{"{version}-{version}", "", "holds {version} 2 times"},
		{"jdk noble", "", "does not make a Docker tag"},
		{"{version}-{jdk}", "ubuntu", "does not make a Docker tag"},
		{"trixie", "fedora", "family \"fedora\" is not one of debian, ubuntu, alpine"},
	} {
		_, err := ParseVariant(c.variant, Family(c.family))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q (family %q): got %v, want an error containing %q", c.variant, c.family, err, c.want)
		}
	}
}

func TestRuntimeWithoutVariantIsDebianTrixie(t *testing.T) {
	dir := t.TempDir()
	mkRuntime(t, dir, "node")
	l, err := Parse("runtimes.yaml", []byte("runtimes:\n  - name: node\n    versions: [\"22\"]\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ParseVariant(DefaultVariant, "")
	if got := l.Runtimes[0].Variant; got != want || got.Family != Debian || got.BaseTag("22") != "22-trixie" {
		t.Errorf("variant %+v, want %+v (Debian trixie)", got, want)
	}
}

func mkRuntime(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
	os.WriteFile(filepath.Join(dir, name, "self-test"), []byte("#!/bin/sh\n"), 0o755)
}

func TestVariantKeyErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	mkRuntime(t, dir, "java")
	_, err := Parse("runtimes.yaml", []byte("runtimes:\n  - name: java\n    versions: [\"21\"]\n    variant: \"{version}-jdk\"\n"), dir)
	if err == nil || !strings.Contains(err.Error(), "runtimes.yaml:4: runtimes[0] \"java\": cannot tell the distribution") {
		t.Fatalf("got %v", err)
	}
}

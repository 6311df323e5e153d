package rehearsal

import (
	"archive/tar"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestBumpPackage(t *testing.T) {
	status := "Package: apt\nStatus: install ok installed\nVersion: 3.0.4\n\n" +
		"Package: base-files\nStatus: install ok installed\nPriority: required\nVersion: 13.8+deb13u8\nDescription: x\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
	pkg, from, to, out, err := bumpPackage([]byte(status))
	if err != nil || pkg != "base-files" || from != "13.8+deb13u8" || to != "13.8+deb13u8+rehearsal1" {
		t.Fatalf("%q %q %q %v", pkg, from, to, err)
	}
	if want := strings.Replace(status, "Version: 13.8+deb13u8\n", "Version: 13.8+deb13u8+rehearsal1\n", 1); string(out) != want {
		t.Fatalf("rewritten:\n%s", out)
	}
	if _, _, _, _, err := bumpPackage([]byte("Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n")); err == nil {
		t.Fatal("no installed package: accepted")
	}
}

func TestFileLayer(t *testing.T) {
	l, err := fileLayer("var/lib/dpkg/status", []byte("Package: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := l.MediaType(); mt != "application/vnd.docker.image.rootfs.diff.tar.gzip" {
		t.Fatalf("media type %s", mt)
	}
	rc, _ := l.Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	b, _ := io.ReadAll(tr)
	if err != nil || h.Name != "var/lib/dpkg/status" || string(b) != "Package: x\n" {
		t.Fatalf("%v %v %q", h, err, b)
	}
}

// The changelog as the Report's commands write it (buildspecs/commands.go).
func TestChangelogItems(t *testing.T) {
	changelog := "Evergreen images: stack S, execution e\nSource revision r, reported t\n\n1 published, 0 unchanged, 0 held, 1 without an outcome\n" +
		"\nnode 22: published reg/evergreen/node@sha256:1 (22-r20261128-abcdef12)\n  replaces sha256:0 (22-r20261127-01234567)\n" +
		"  amd64: base image unchanged; runtimes/node unchanged; 1 upgraded, 1 added, 0 removed\n" +
		"    upgraded os base-files 13.8 -> 13.8+rehearsal1\n    added    npm left-pad 1.3.0\n" +
		"  arm64: base image unchanged; runtimes/node unchanged; 0 upgraded, 0 added, 0 removed\n" +
		"\nnode 24: no Publish record in this execution\n"
	items := changelogItems(changelog, "node 22")
	if !slices.Equal(items["amd64"], []string{"upgraded os base-files 13.8 -> 13.8+rehearsal1", "added npm left-pad 1.3.0"}) || len(items["arm64"]) != 0 || len(items) != 1 {
		t.Fatalf("%v", items)
	}
	if items := changelogItems(changelog, "node 24"); len(items) != 0 {
		t.Fatalf("node 24: %v", items)
	}
}

package stage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evergreen-images/evergreen/internal/records"
)

// framed is a file as inventory.sh prints it: between its markers.
func framed(path, content string) string {
	return inventoryMarker + "\tfile\t" + path + "\n" + content + "\n" + inventoryMarker + "\tend\t" + path + "\n"
}

// The script, run for real on this machine (a Debian one), lists the OS
// packages dpkg-query lists, at the same versions: the default list's
// images' inventories are what they were before the families.
func TestInventoryScriptListsWhatDpkgQueryLists(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg-query on this machine: the comparison needs a Debian or Ubuntu one")
	}
	script := filepath.Join("..", "..", InventoryScript)
	out, err := exec.Command("sh", script).Output()
	if err != nil {
		t.Fatalf("sh %s: %v", InventoryScript, err)
	}
	inv, err := ParseInventory(string(out))
	if err != nil {
		t.Fatal(err)
	}
	q, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Package}\t${Version}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(q))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) == 3 && strings.HasPrefix(f[0], "ii") {
			want[f[1]] = f[2]
		}
	}
	if len(want) == 0 || len(inv.OS) != len(want) {
		t.Errorf("%d OS packages, dpkg-query lists %d installed", len(inv.OS), len(want))
	}
	for name, v := range want {
		if inv.OS[name] != v {
			t.Errorf("%s: %q, dpkg-query says %q", name, inv.OS[name], v)
		}
	}
	if inv.PackageManager != "dpkg" || inv.Distro == nil || inv.Distro.ID == "" {
		t.Errorf("package manager %q, distro %+v: want dpkg and this machine's os-release", inv.PackageManager, inv.Distro)
	}
	t.Logf("%d OS packages, as dpkg-query lists them; distro %s", len(inv.OS), inv.Distro)
}

// Package databases recorded from real images of each family parse into
// what the files say, read here the simple way: the count of installed
// stanzas, and a few named packages' versions.
func TestRecordedDatabasesOfEachFamily(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "..", "testdata", "inventory", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recorded databases under testdata/inventory: %v", err)
	}
	families := map[string]bool{}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		family, release, _ := strings.Cut(name, "-")
		t.Run(name, func(t *testing.T) {
			read := func(f string) string {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			if src := read("SOURCE"); !strings.Contains(src, "repository: https://github.com/") || !regexp.MustCompile(`commit: [0-9a-f]{40}`).MatchString(src) || !strings.Contains(src, "image: ") {
				t.Errorf("SOURCE does not name the repository, commit and image it came from:\n%s", src)
			}
			osRelease := read("os-release")
			var out, db, wantManager string
			var wantCount int
			named := map[string]string{}
			if _, err := os.Stat(filepath.Join(dir, "status")); err == nil {
				db, wantManager = read("status"), "dpkg"
				out = framed(osReleaseLibPath, osRelease) + framed(dpkgStatusPath, db)
				for _, stanza := range strings.Split(db, "\n\n") {
					if regexp.MustCompile(`(?m)^Status: install ok installed$`).MatchString(stanza) {
						wantCount++
					}
				}
				for _, pkg := range []string{"base-files", "libc6", "dpkg"} {
					m := regexp.MustCompile(`(?m)^Package: ` + regexp.QuoteMeta(pkg) + `\n(?:[^\n]+\n)*?Version: ([^\n]+)`).FindStringSubmatch(db)
					if m == nil {
						t.Fatalf("the status has no %s", pkg)
					}
					named[pkg] = m[1]
				}
			} else {
				db, wantManager = read("installed"), "apk"
				out = framed(osReleasePath, osRelease) + framed(apkInstalledPath, db)
				wantCount = strings.Count("\n"+db, "\nP:")
				for _, pkg := range []string{"alpine-baselayout", "musl", "busybox"} {
					m := regexp.MustCompile(`(?m)^P:` + regexp.QuoteMeta(pkg) + `\n(?:[^\n]+\n)*?V:([^\n]+)`).FindStringSubmatch(db)
					if m == nil {
						t.Fatalf("the database has no %s", pkg)
					}
					named[pkg] = m[1]
				}
			}
			start := time.Now()
			inv, err := ParseInventory(out)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.OS) != wantCount || len(inv.OSArch) != wantCount || inv.PackageManager != wantManager {
				t.Errorf("%d OS packages (%d architectures) by %q, the file holds %d installed, by %s", len(inv.OS), len(inv.OSArch), inv.PackageManager, wantCount, wantManager)
			}
			for pkg, v := range named {
				if inv.OS[pkg] != v {
					t.Errorf("%s: %q, the file says %q", pkg, inv.OS[pkg], v)
				}
			}
			if d := inv.Distro; d == nil || d.ID != family || !strings.HasPrefix(d.VersionID, release) || d.Name == "" {
				t.Errorf("distro %+v, want %s %s from the os-release", d, family, release)
			}
			families[family] = true
			t.Logf("%s: %d OS packages (%s), %s, parsed in %.2f ms", name, len(inv.OS), inv.PackageManager, inv.Distro, float64(took.Microseconds())/1000)
		})
	}
	for _, f := range []string{"debian", "ubuntu", "alpine"} {
		if !families[f] {
			t.Errorf("no recorded database of %s under testdata/inventory", f)
		}
	}
}

// An inventory recorded before the families (no distro, architectures or
// package manager) and one taken now of the same packages are the same
// content: Publish does not republish an unchanged image, and the
// changelog lists no change.
func TestInventoryFromBeforeFamiliesComparesEqual(t *testing.T) {
	now := mustParseInventory(t, inventoryTSV)
	now.Base, now.Recipe = records.Base{Name: "node:22-trixie", Digest: "sha256:b"}, "sha256:r"
	before := &records.Inventory{Base: now.Base, Recipe: now.Recipe, OS: map[string]string{}, Runtime: now.Runtime, Npm: now.Npm, Pip: now.Pip, Seconds: 9}
	for k, v := range now.OS {
		before.OS[k] = v
	}
	if now.Distro == nil || len(now.OSArch) == 0 {
		t.Fatalf("the inventory taken now has no distro or architectures: %+v", now)
	}
	if !sameContent(before, now) || !sameContent(now, before) {
		t.Error("the inventory from before the families differs from the one taken now")
	}
	c := inventoryDelta(before, now)
	if c.Distro != nil || len(c.Added)+len(c.Removed)+len(c.Upgraded) != 0 || c.Base != nil || c.RecipeChanged {
		t.Errorf("changes %+v, want none", c)
	}
}

// A new distribution release is a line of the changelog; the same release
// on both sides, or an unknown one, is none.
func TestDistributionReleaseChangeShowsInTheChangelog(t *testing.T) {
	old := mustParseInventory(t, inventoryTSV)
	bookworm := framed(osReleasePath, "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n")
	prev := mustParseInventory(t, bookworm+inventoryTSV[strings.Index(inventoryTSV, inventoryMarker+"\tfile\t"+dpkgStatusPath):])
	c := inventoryDelta(prev, old)
	if c.Distro == nil || c.Distro.From != prev.Distro.String() || c.Distro.To != old.Distro.String() {
		t.Fatalf("distro move %+v, want %s -> %s", c.Distro, prev.Distro, old.Distro)
	}
	var b strings.Builder
	writeChanges(&b, "node", "amd64", c, false)
	want := fmt.Sprintf("    distribution %s -> %s\n", prev.Distro, old.Distro)
	if !strings.Contains(b.String(), want) {
		t.Errorf("changelog:\n%s\nwant the line %q", b.String(), want)
	}
	if c := inventoryDelta(old, old); c.Distro != nil {
		t.Errorf("the same release is a move: %+v", c.Distro)
	}
	unknown := *prev
	unknown.Distro = nil
	if c := inventoryDelta(&unknown, old); c.Distro != nil {
		t.Errorf("an unknown release is a move: %+v", c.Distro)
	}
}

func TestParseOSReleaseQuotesAsOSRelease5Says(t *testing.T) {
	d := ParseOSRelease("# a comment\nNAME=\"Alpine Linux\"\n\nID=alpine\nVERSION_ID=3.22.1\nPRETTY_NAME=\"Alpine \\\"Linux\\\" v3.22\"\nVERSION_CODENAME='single quoted'\nJUNK\n")
	want := records.Distro{ID: "alpine", VersionID: "3.22.1", Codename: "single quoted", Name: `Alpine "Linux" v3.22`}
	if d == nil || *d != want {
		t.Errorf("%+v, want %+v", d, want)
	}
	if d := ParseOSRelease("NAME=nothing\n"); d != nil {
		t.Errorf("an os-release without ID: %+v, want none", d)
	}
}

// A file the script found is parsed whole or not at all: output cut inside
// it, or a database of each family at once, is an error, not fewer
// packages; an image without os-release or a package database has none.
func TestInventoryRefusesCutOrMixedOutput(t *testing.T) {
	cut := inventoryTSV[:strings.Index(inventoryTSV, "Package: openssl")]
	if _, err := ParseInventory(cut); err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("output cut inside the status: %v, want an error saying so", err)
	}
	both := inventoryTSV + framed(apkInstalledPath, "P:musl\nV:1.2.5-r10\nA:x86_64\n")
	if _, err := ParseInventory(both); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("dpkg and apk at once: %v, want an error", err)
	}
	bare := mustParseInventory(t, "runtime\tnode\t22.18.0\n")
	if len(bare.OS) != 0 || bare.Distro != nil || bare.PackageManager != "" || bare.Runtime["node"] != "22.18.0" {
		t.Errorf("an image without os-release or database: %+v", bare)
	}
	damaged := framed(apkInstalledPath, "P:musl\nA:x86_64\n")
	if _, err := ParseInventory(damaged); err == nil || !strings.Contains(err.Error(), "V:") {
		t.Errorf("an apk package without a version: %v, want an error", err)
	}
}

// The script needs nothing but POSIX sh and cat: run it under a PATH that
// holds only those, on this machine, and it frames what it finds.
func TestInventoryScriptNeedsOnlyShAndCat(t *testing.T) {
	dir := t.TempDir()
	for _, tool := range []string{"sh", "cat"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(dir, "sh"), filepath.Join("..", "..", InventoryScript))
	cmd.Env = []string{"PATH=" + dir}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the script with only sh and cat: %v", err)
	}
	inv, err := ParseInventory(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Runtime) != 0 {
		t.Errorf("runtimes found without node or python on the PATH: %v", inv.Runtime)
	}
	if _, err := os.Stat(dpkgStatusPath); err == nil && len(inv.OS) == 0 {
		t.Error("no OS packages, although this machine has dpkg's status")
	}
}

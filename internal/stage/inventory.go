package stage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evergreen-images/evergreen/internal/records"
)

// InventoryScript is buildspecs/inventory.sh, relative to the source
// directory: Verify runs it inside each image with sh.
const InventoryScript = "buildspecs/inventory.sh"

// inventoryMarker starts the lines that frame a file inventory.sh prints
// raw: "<marker>\tfile\t<path>" before it, "\n<marker>\tend\t<path>" after.
const inventoryMarker = "%evergreen-inventory"

// The files inventory.sh frames.
const (
	osReleasePath    = "/etc/os-release"
	osReleaseLibPath = "/usr/lib/os-release"
	dpkgStatusPath   = "/var/lib/dpkg/status"
	apkInstalledPath = "/lib/apk/db/installed"
)

// ParseInventory reads inventory.sh's output: the files it framed
// (os-release, dpkg's status or the apk database), then one runtime item
// per line, <kind>TAB<name>TAB<version>. Lines of another shape or kind are
// left out, as the shell's jq filter left them out, and a later line for
// the same item wins. Every kind's map is present, empty or not, so the
// record says "none" rather than "unknown". An image with neither package
// database (a distroless or scratch base) has no OS packages, not an
// error; output cut inside a file, or a database that cannot be read, is
// an error, so a half-taken inventory is never taken for the image's.
func ParseInventory(out string) (*records.Inventory, error) {
	inv := &records.Inventory{OS: map[string]string{}, Runtime: map[string]string{}, Npm: map[string]string{}, Pip: map[string]string{}}
	files, rest, err := splitFramed(out)
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(rest, "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[0] == "os" {
			// os lines came from the dpkg-query of an older script; the
			// database below is the only source of OS packages now.
			continue
		}
		if m := inv.Items(f[0]); m != nil {
			m[f[1]] = f[2]
		}
	}
	release, ok := files[osReleasePath]
	if !ok {
		release, ok = files[osReleaseLibPath]
	}
	if ok {
		inv.Distro = ParseOSRelease(release)
	}
	var pkgs []OSPackage
	switch dpkg, apk := files[dpkgStatusPath], files[apkInstalledPath]; {
	case dpkg != "" && apk != "":
		return nil, fmt.Errorf("the image holds both dpkg's status (%s) and the apk database (%s): its OS packages cannot be told apart; build it on one family's base", dpkgStatusPath, apkInstalledPath)
	case dpkg != "":
		inv.PackageManager = "dpkg"
		pkgs, err = ParseDpkgStatus(dpkg)
	case apk != "":
		inv.PackageManager = "apk"
		pkgs, err = ParseApkInstalled(apk)
	}
	if err != nil {
		return nil, err
	}
	if len(pkgs) > 0 {
		inv.OSArch = map[string]string{}
	}
	for _, p := range pkgs {
		inv.OS[p.Name] = p.Version
		if p.Arch != "" {
			inv.OSArch[p.Name] = p.Arch
		} else {
			delete(inv.OSArch, p.Name)
		}
	}
	return inv, nil
}

// splitFramed takes the framed files out of inventory.sh's output: path ->
// content, byte for byte, and what is left.
func splitFramed(out string) (files map[string]string, rest string, err error) {
	files = map[string]string{}
	begin := "\n" + inventoryMarker + "\tfile\t"
	s := "\n" + out // a marker counts only at the start of a line
	var left strings.Builder
	for {
		i := strings.Index(s, begin)
		if i < 0 {
			left.WriteString(s)
			return files, strings.TrimPrefix(left.String(), "\n"), nil
		}
		left.WriteString(s[:i+1])
		s = s[i+len(begin):]
		nl := strings.IndexByte(s, '\n')
		if nl < 0 {
			return nil, "", fmt.Errorf("the inventory output ends inside the marker of %q: the inventory was cut off; retry the Verify stage", s)
		}
		path := s[:nl]
		s = s[nl+1:]
		end := "\n" + inventoryMarker + "\tend\t" + path
		j := strings.Index(s, end)
		if j < 0 || (j+len(end) < len(s) && s[j+len(end)] != '\n') {
			return nil, "", fmt.Errorf("the inventory output ends inside %s (no end marker): the inventory was cut off; retry the Verify stage", path)
		}
		files[path] = s[:j]
		s = s[j+len(end):]
	}
}

// OSPackage is one installed package of the OS package database.
type OSPackage struct {
	Name    string
	Version string
	// Arch is the package manager's name for its architecture: amd64,
	// arm64, all (dpkg); x86_64, aarch64, noarch (apk).
	Arch string
	// Source is the source package it was built from (dpkg's Source, apk's
	// origin), and SourceVersion that package's version when it differs;
	// both empty when the package is its own source.
	Source, SourceVersion string
}

// ParseDpkgStatus reads dpkg's status database (deb822 stanzas, one per
// package) and returns the installed packages in its order, as
// `dpkg-query -W -f='${db:Status-Abbrev}...'` filtered on "ii" lists them:
// the package is wanted installed and is installed ("install ok
// installed"); a removed package whose configuration files remain
// (deinstall ok config-files), a half-installed one, or one on hold (hold
// ok installed, "hi") is not, so that records taken by the dpkg-query of
// the earlier script compare equal.
func ParseDpkgStatus(db string) ([]OSPackage, error) {
	var out []OSPackage
	for n, stanza := range deb822Stanzas(db) {
		status := strings.Fields(stanza["status"])
		if len(status) != 3 || status[0] != "install" || status[2] != "installed" {
			continue
		}
		name := stanza["package"]
		if name == "" {
			return nil, fmt.Errorf("%s: stanza %d is installed but names no Package: the database is damaged; rebuild the image", dpkgStatusPath, n+1)
		}
		p := OSPackage{Name: name, Version: stanza["version"], Arch: stanza["architecture"]}
		if src := stanza["source"]; src != "" {
			// "Source: openssl (3.0.13-0ubuntu3)": the source's own version
			// when it differs from the binary's.
			p.Source, p.SourceVersion, _ = strings.Cut(src, " ")
			p.SourceVersion = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(p.SourceVersion), "("), ")")
		}
		out = append(out, p)
	}
	return out, nil
}

// deb822Stanzas splits a deb822 file into stanzas of field (lowercased, as
// field names are case-insensitive) -> value; continuation lines (starting
// with a space or a tab) belong to the field before and are not needed
// here.
func deb822Stanzas(db string) []map[string]string {
	var out []map[string]string
	var cur map[string]string
	for line := range strings.SplitSeq(db, "\n") {
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
		case line[0] == ' ' || line[0] == '\t':
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if cur == nil {
				cur = map[string]string{}
			}
			cur[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

// ParseApkInstalled reads the apk database (/lib/apk/db/installed): one
// stanza per installed package, separated by a blank line, each line a
// one-letter key, a colon and the value (P: name, V: version, A: arch,
// o: origin, the source package). Every package in it is installed.
func ParseApkInstalled(db string) ([]OSPackage, error) {
	var out []OSPackage
	var cur OSPackage
	n := 0
	flush := func() error {
		if cur == (OSPackage{}) {
			return nil
		}
		n++
		if cur.Name == "" || cur.Version == "" {
			return fmt.Errorf("%s: package %d has no P: (name) or V: (version) line: the database is damaged; rebuild the image", apkInstalledPath, n)
		}
		if cur.Source == cur.Name {
			cur.Source = ""
		}
		out = append(out, cur)
		cur = OSPackage{}
		return nil
	}
	for line := range strings.SplitSeq(db, "\n") {
		if line == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			continue
		}
		v := line[2:]
		switch line[0] {
		case 'P':
			cur.Name = v
		case 'V':
			cur.Version = v
		case 'A':
			cur.Arch = v
		case 'o':
			cur.Source = v
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseOSRelease reads an os-release file (os-release(5)): VAR=value lines,
// the value in double or single quotes or bare, "#" lines comments; in
// double quotes (and bare) a backslash escapes the next character. It
// returns nil when the file names no ID.
func ParseOSRelease(text string) *records.Distro {
	vars := map[string]string{}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vars[strings.TrimSpace(k)] = osReleaseValue(v)
	}
	if vars["ID"] == "" {
		return nil
	}
	return &records.Distro{ID: vars["ID"], VersionID: vars["VERSION_ID"], Codename: vars["VERSION_CODENAME"], Name: vars["PRETTY_NAME"]}
}

func osReleaseValue(v string) string {
	if len(v) >= 2 && v[0] == '\'' {
		if i := strings.IndexByte(v[1:], '\''); i >= 0 {
			return v[1 : 1+i]
		}
	}
	quoted := len(v) > 0 && v[0] == '"'
	if quoted {
		v = v[1:]
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v):
			i++
			b.WriteByte(v[i])
		case c == '"' && quoted:
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// RecipeHash is the digest of every file of dir (a runtime's folder: its
// Dockerfile, its self-test), so that a changed recipe is a change even
// when no package moved. It is byte for byte what the shell computed,
//
//	cd runtimes/$RUNTIME && find . -type f -exec sha256sum {} + | LC_ALL=C sort -k 2 | sha256sum
//
// prefixed "sha256:", so that inventories recorded by the shell compare
// equal: one line "<hex>  ./<path>" per regular file (symbolic links are
// not followed, as find does not), sorted by path bytes, then hashed.
// sha256sum escapes a name holding a backslash, a newline or a carriage
// return (coreutils 9; 8.x leaves a carriage return as it is) and marks
// the line with a leading backslash; so does this.
func RecipeHash(dir string) (string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("reading the recipe %s: %w", dir, err)
	}
	type line struct{ key, text string }
	var lines []line
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := "./" + filepath.ToSlash(rel)
		prefix := ""
		if strings.ContainsAny(name, "\\\n\r") {
			prefix = "\\"
			name = strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r").Replace(name)
		}
		// sort -k 2 compares from the end of the first field (the blanks
		// included) to the end of the line: "  " + name.
		lines = append(lines, line{key: "  " + name, text: prefix + hex.EncodeToString(sum[:]) + "  " + name + "\n"})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("reading the recipe %s: %w", dir, err)
	}
	slices.SortFunc(lines, func(a, b line) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.text, b.text)
	})
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l.text))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

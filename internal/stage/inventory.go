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

// ParseInventory reads inventory.sh's output: one item per line,
// <kind>TAB<name>TAB<version>. Lines of another shape or kind are left out,
// as the shell's jq filter left them out, and a later line for the same
// item wins. Every kind's map is present, empty or not, so the record says
// "none" rather than "unknown".
func ParseInventory(tsv string) *records.Inventory {
	inv := &records.Inventory{OS: map[string]string{}, Runtime: map[string]string{}, Npm: map[string]string{}, Pip: map[string]string{}}
	for line := range strings.SplitSeq(tsv, "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		if m := inv.Items(f[0]); m != nil {
			m[f[1]] = f[2]
		}
	}
	return inv
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

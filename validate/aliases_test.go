package validate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/runtimes"
)

// TestListWithAliasesLoads: anchors and aliases are plain YAML; a list that
// uses them must read like the same list written out.
func TestListWithAliasesLoads(t *testing.T) {
	dir := filepath.Join(repoRoot, "testdata/runtimes/aliases")
	path := filepath.Join(dir, "runtimes.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	list, err := runtimes.Parse(path, data, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The same list with every alias written out, read from the same folder.
	written := strings.NewReplacer(
		`&node-versions ["22", "24"]`, `["22", "24"]`, `*node-versions`, `["22", "24"]`,
		`&arm-only [arm64]`, `[arm64]`, `*arm-only`, `[arm64]`).Replace(string(data))
	if strings.ContainsAny(written, "&*") {
		t.Fatalf("the written-out list still has an anchor or alias: update the replacer with the file:\n%s", written)
	}
	want, err := runtimes.Parse(path, []byte(written), dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "- name:"); len(list.Runtimes) != n || n == 0 {
		t.Fatalf("the list with aliases has %d runtimes, its file %d", len(list.Runtimes), n)
	}
	if !reflect.DeepEqual(list.Runtimes, want.Runtimes) {
		t.Errorf("with aliases: %+v\nwritten out: %+v", list.Runtimes, want.Runtimes)
	}
}

package validate

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/evergreen-images/evergreen/runtimes"
)

// TestListWithAliasesLoads: anchors and aliases are plain YAML; a list that
// uses them must read like the same list written out.
func TestListWithAliasesLoads(t *testing.T) {
	list, err := runtimes.Load(filepath.Join(repoRoot, "testdata/runtimes/aliases/runtimes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range list.Runtimes {
		if !slices.Equal(rt.Versions, []string{"22", "24"}) || !slices.Equal(rt.Architectures, []runtimes.Arch{runtimes.ARM64}) {
			t.Errorf("%s: versions %v, architectures %v; want [22 24] and [arm64]", rt.Name, rt.Versions, rt.Architectures)
		}
	}
}

package generate

import (
	"strings"
	"testing"
)

// Every generated file in the repository is what make generate writes. (The
// buildspecs and workflow packages check their own files in more detail;
// this test also covers the README's table of context keys.)
func TestCommittedFilesAreUpToDate(t *testing.T) {
	r, err := Run("../..")
	if err != nil {
		t.Fatal(err)
	}
	stale, err := r.Stale("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Errorf("out of date: %s; run: %s", strings.Join(stale, ", "), Command)
	}
}

func TestReplaceBetween(t *testing.T) {
	got, err := replaceBetween([]byte("a\n"+tableStart+"old\n"+tableEnd+"b\n"), tableStart, tableEnd, "new\n")
	if err != nil || string(got) != "a\n"+tableStart+"new\n"+tableEnd+"b\n" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := replaceBetween([]byte("no markers\n"), tableStart, tableEnd, "x"); err == nil || !strings.Contains(err.Error(), "markers") {
		t.Errorf("missing markers: %v", err)
	}
}

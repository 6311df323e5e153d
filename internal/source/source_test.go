package source

import (
	"archive/zip"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func run(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE=2026-11-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-11-01T00:00:00Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// Only committed files go in; the same commit gives the same bytes; a
// changed work tree is reported as dirty.
func TestArchiveHoldsTheCommitOnly(t *testing.T) {
	dir := t.TempDir()
	run(t, dir, "git", "init", "-q")
	os.WriteFile(filepath.Join(dir, "committed"), []byte("a\n"), 0o644)
	run(t, dir, "git", "add", "committed")
	run(t, dir, "git", "commit", "-q", "-m", "one")
	os.WriteFile(filepath.Join(dir, "untracked"), []byte("b\n"), 0o644)

	a, err := Make(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Remove()
	if a.Dirty {
		t.Error("an untracked file alone made the tree dirty")
	}
	z, err := zip.OpenReader(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
	}
	z.Close()
	if !slices.Equal(names, []string{"committed"}) {
		t.Errorf("zip holds %v, want only the committed file", names)
	}
	first, _ := os.ReadFile(a.Path)

	os.WriteFile(filepath.Join(dir, "committed"), []byte("changed\n"), 0o644)
	b, err := Make(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Remove()
	second, _ := os.ReadFile(b.Path)
	if !b.Dirty || !bytes.Equal(first, second) || b.Commit != a.Commit {
		t.Errorf("after an uncommitted change: dirty %v, same bytes %v, same commit %v; want true, true, true", b.Dirty, bytes.Equal(first, second), b.Commit == a.Commit)
	}
}

func TestNotAGitTree(t *testing.T) {
	_, err := Make(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "evergreen:source") {
		t.Errorf("got %v, want an error naming the fix", err)
	}
}

// What a deploy of HEAD would leave out is named, file by file, whether
// changed, added or never added; ignored files and other paths are not.
func TestUncommittedNamesWhatTheDeployWouldLeaveOut(t *testing.T) {
	dir := t.TempDir()
	run(t, dir, "git", "init", "-q")
	os.MkdirAll(filepath.Join(dir, "runtimes", "node"), 0o755)
	os.WriteFile(filepath.Join(dir, "runtimes", "runtimes.yaml"), []byte("a\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "runtimes", "node", "Dockerfile"), []byte("FROM x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("*.log\n"), 0o644)
	run(t, dir, "git", "add", "-A")
	run(t, dir, "git", "commit", "-q", "-m", "one")
	if got, err := Uncommitted(dir, "runtimes"); err != nil || len(got) != 0 {
		t.Fatalf("a clean tree: %v %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, "runtimes", "runtimes.yaml"), []byte("b\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "runtimes", "ruby"), 0o755)
	os.WriteFile(filepath.Join(dir, "runtimes", "ruby", "Dockerfile"), []byte("FROM y\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "runtimes", "ruby", "build.log"), []byte("ignored\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "elsewhere"), []byte("c\n"), 0o644)
	got, err := Uncommitted(dir, "runtimes/runtimes.yaml", "runtimes/ruby", "runtimes/node")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"runtimes/ruby/Dockerfile (not in git)", "runtimes/runtimes.yaml (changed)"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

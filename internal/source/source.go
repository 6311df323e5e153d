// Package source makes the pipeline's S3 source: the repository's committed
// files (git archive of HEAD), which the CDK app deploys as a file asset.
// Only committed files go in, so what the pipeline builds is exactly a
// commit, named by SOURCE_REVISION's object version and by the archive's
// own comment (the commit id).
package source

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Archive is a zip of one commit's files.
type Archive struct {
	// Path of the zip file, in a directory of its own; Remove deletes both.
	Path string
	// Commit is the full commit id the zip holds.
	Commit string
	// Dirty: the work tree has changes that are not in the zip.
	Dirty bool
}

// Make writes the zip of HEAD of the git work tree at dir. git archive's
// output is a function of the commit alone (file times are the commit's),
// so the same commit gives the same bytes, and the same asset hash.
func Make(dir string) (*Archive, error) {
	commit, err := git(dir, "rev-parse", "--verify", "HEAD")
	if err != nil {
		return nil, fmt.Errorf("the default S3 source deploys the repository's committed files (git archive HEAD), and %s is not a git work tree with a commit: %w\n  fix: run from a git clone with at least one commit, or set evergreen:source to build from a Git repository", dir, err)
	}
	status, err := git(dir, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "evergreen-source-")
	if err != nil {
		return nil, err
	}
	a := &Archive{Path: filepath.Join(tmp, "source.zip"), Commit: commit, Dirty: status != ""}
	if _, err := git(dir, "archive", "--format=zip", "-o", a.Path, commit); err != nil {
		a.Remove()
		return nil, err
	}
	return a, nil
}

// Uncommitted lists the files under paths (relative to dir) that the work
// tree holds differently from HEAD: modified, added, deleted, or untracked
// and not ignored. These are what a deploy of HEAD would leave out. Each
// entry is "<path> (<state>)", sorted.
func Uncommitted(dir string, paths ...string) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	// Not git(): its output is trimmed, and a porcelain line starts with a
	// space when only the work tree changed.
	cmd := exec.Command("git", append([]string{"-C", dir, "status", "--porcelain=v1", "--untracked-files=all", "--"}, paths...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git status: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var files []string
	for _, line := range strings.Split(string(out), "\n") {
		if len(line) < 4 {
			continue
		}
		state := "changed"
		switch code := line[:2]; {
		case code == "??":
			state = "not in git"
		case strings.Contains(code, "D"):
			state = "deleted"
		case strings.Contains(code, "A"):
			state = "added, not committed"
		}
		files = append(files, strings.Trim(line[3:], `"`)+" ("+state+")")
	}
	sort.Strings(files)
	return files, nil
}

// Remove deletes the zip and its directory.
func (a *Archive) Remove() { os.RemoveAll(filepath.Dir(a.Path)) }

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

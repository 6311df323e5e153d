package scaffold_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/evergreen-images/evergreen/internal/checkreport"
	"github.com/evergreen-images/evergreen/runtimes"
)

// selfTestsOfTheHost run the existing runtimes' self-tests against the host's
// python and node (a minute): the round trip changes none of them.
const selfTestsOfTheHost = "TestPythonSelfTest|TestNodeSelfTest|TestNodeCICDSelfTest|TestNodeCICDSelfTestAWSVersionParsing_StubOnly|TestVersionMatching"

// TestRoundTrip: changing the runtime list, and only the list, keeps the
// tests passing. In a clone of the repository's committed files it adds a
// version to a runtime, drops one from another, scaffolds a runtime with
// cmd/newruntime, regenerates with cmd/generate, and, without committing,
// runs the tests of the packages the list drives, with no Go file touched.
func TestRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test in a copy of the repository")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	start := time.Now()
	dir := t.TempDir()
	copyCommitted(t, dir)
	goFiles := hashGoFiles(t, dir)

	// A clone, as the user has it: committed. What follows is not
	// committed: the tests must pass on an uncommitted runtime as the
	// user's work tree holds it (synth, not the tests, refuses to deploy
	// it before it is committed).
	gitEnv := append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=round trip", "GIT_AUTHOR_EMAIL=round-trip@example.com",
		"GIT_COMMITTER_NAME=round trip", "GIT_COMMITTER_EMAIL=round-trip@example.com")
	goCmd(t, dir, gitEnv, "git", "init", "-q")
	goCmd(t, dir, gitEnv, "git", "add", "-A")
	goCmd(t, dir, gitEnv, "git", "commit", "-q", "-m", "clone")

	listPath := filepath.Join(dir, runtimes.DefaultPath)
	list, err := runtimes.Load(listPath)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(listPath)
	if err != nil {
		t.Fatal(err)
	}
	added := list.Runtimes[0]
	newVersion := nextVersion(added.Versions)
	text = addVersion(t, text, 0, newVersion)
	t.Logf("added %s %s", added.Name, newVersion)
	droppedText := "none dropped"
	dropped := -1
	for i := len(list.Runtimes) - 1; i > 0 && dropped < 0; i-- {
		if len(list.Runtimes[i].Versions) > 1 {
			dropped = i
		}
	}
	if dropped > 0 {
		text = dropFirstVersion(t, text, dropped)
		droppedText = list.Runtimes[dropped].Name + " " + list.Runtimes[dropped].Versions[0] + " dropped"
		t.Logf("%s", droppedText)
	} else {
		t.Logf("no runtime but the first has two versions: none dropped")
	}
	if err := os.WriteFile(listPath, text, 0o644); err != nil {
		t.Fatal(err)
	}

	bin := t.TempDir()
	env := append(os.Environ(), "CHECK_REPORT=")
	if node := filepath.Join(repoRoot, ".tools", "node22", "node_modules", ".bin"); exists(node) {
		env = append(env, "PATH="+node+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	goCmd(t, dir, env, goBin, "build", "-o", bin+string(os.PathSeparator), "./cmd/newruntime", "./cmd/generate")
	// One runtime of each family, as a user would ask for it (the default
	// Debian trixie, a Temurin Java on Ubuntu noble, a node on Alpine).
	var names []string
	for _, s := range []struct{ name, base, versions, variant, versionCmd string }{
		{scaffoldName(list, "roundtrip"), "golang", "1.25 1.26", "", "go version"},
		{scaffoldName(list, "roundtrip-java"), "eclipse-temurin", "21 25", "noble", "java -version"},
		{scaffoldName(list, "roundtrip-alpine"), "node", "22 24", "alpine3.22", "node --version"},
	} {
		goCmd(t, dir, env, filepath.Join(bin, "newruntime"), "-name", s.name, "-base", s.base, "-versions", s.versions, "-version-cmd", s.versionCmd, "-variant", s.variant)
		names = append(names, s.name)
	}
	name := strings.Join(names, ", ")
	goCmd(t, dir, env, filepath.Join(bin, "generate"))
	after, err := runtimes.Load(listPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the list now has %d releases, %d images (prepared in %s)", len(after.Releases()), len(after.Images()), time.Since(start).Round(time.Millisecond))

	for path, sum := range hashGoFiles(t, dir) {
		if goFiles[path] != sum {
			t.Errorf("%s was written: only the list and generated files may change", path)
		}
	}
	// The pinned tools are the original repository's; the links come after
	// the commit, which would otherwise hold them.
	for _, link := range []string{".tools", ".venv"} {
		if _, err := os.Stat(filepath.Join(repoRoot, link)); err == nil {
			if err := os.Symlink(filepath.Join(repoRoot, link), filepath.Join(dir, link)); err != nil {
				t.Fatal(err)
			}
		}
	}
	testStart := time.Now()
	packages := []string{"./runtimes", "./buildspecs", "./workflow", "./stacks", "./internal/generate"}
	out := goCmd(t, dir, env, goBin, append([]string{"test", "-count=1", "-skip", selfTestsOfTheHost}, packages...)...)
	t.Logf("go test in the copy:\n%s", out)
	// The contract test checked each scaffolded folder by its family.
	contract := goCmd(t, dir, env, goBin, "test", "-count=1", "-run", "^TestDockerfilesFollowTheContract$", "-v", "./runtimes")
	for _, n := range names {
		if !strings.Contains(contract, "--- PASS: TestDockerfilesFollowTheContract/runtimes/"+n+" ") {
			t.Errorf("the contract test in the copy did not pass %s:\n%s", n, contract)
		}
	}
	t.Logf("go test in the copy: %s; whole round trip: %s", time.Since(testStart).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	checkreport.Printf("scaffold: round trip (%s %s added, %s, runtimes %s scaffolded, regenerated, %s tested in a copy) in %s",
		added.Name, newVersion, droppedText, name, strings.Join(packages, " "), time.Since(start).Round(10*time.Millisecond))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// goCmd runs a command in the copy and fails the test with its output.
func goCmd(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in the copy: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// copyCommitted copies the files git tracks, with their modes, into dst.
func copyCommitted(t *testing.T, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (the round trip copies a git checkout)", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(repoRoot, rel)
		info, err := os.Lstat(src)
		if err != nil {
			continue // deleted in the work tree
		}
		if !info.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

func hashGoFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".tools" || d.Name() == ".venv") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			b, _ := os.ReadFile(path)
			rel, _ := filepath.Rel(dir, path)
			out[rel] = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		return nil
	})
	return out
}

// nextVersion is one more than the highest last component of the versions,
// e.g. 24 after 22 and 24, 3.15 after 3.14.
func nextVersion(versions []string) string {
	last := versions[len(versions)-1]
	i := strings.LastIndex(last, ".")
	n, err := strconv.Atoi(last[i+1:])
	if err != nil {
		return last + ".1"
	}
	for {
		n++
		v := last[:i+1] + strconv.Itoa(n)
		if !contains(versions, v) {
			return v
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// versionsNode finds the versions sequence of the i-th runtime.
func versionsNode(t *testing.T, text []byte, i int) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for k := 0; k+1 < len(root.Content); k += 2 {
		if root.Content[k].Value != "runtimes" {
			continue
		}
		rt := root.Content[k+1].Content[i]
		for j := 0; j+1 < len(rt.Content); j += 2 {
			if rt.Content[j].Value == "versions" {
				n := rt.Content[j+1]
				for n.Kind == yaml.AliasNode {
					n = n.Alias
				}
				return n
			}
		}
	}
	t.Fatalf("runtime %d has no versions", i)
	return nil
}

// addVersion edits the list as a person would: the new version goes after
// the last one, in the style of the list (flow or block).
func addVersion(t *testing.T, text []byte, i int, v string) []byte {
	t.Helper()
	n := versionsNode(t, text, i)
	lines := strings.SplitAfter(string(text), "\n")
	last := n.Content[len(n.Content)-1]
	if n.Style&yaml.FlowStyle != 0 {
		line := lines[last.Line-1]
		end := strings.Index(line[last.Column-1:], "]")
		if end < 0 || last.Line != n.Line {
			t.Skipf("versions of runtime %d span lines; the round trip edits one-line lists", i)
		}
		at := last.Column - 1 + end
		lines[last.Line-1] = line[:at] + ", " + strconv.Quote(v) + line[at:]
	} else {
		indent := strings.Repeat(" ", last.Column-3)
		lines = append(lines[:last.Line], append([]string{indent + "- " + strconv.Quote(v) + "\n"}, lines[last.Line:]...)...)
	}
	return []byte(strings.Join(lines, ""))
}

// dropFirstVersion removes the first version of the i-th runtime.
func dropFirstVersion(t *testing.T, text []byte, i int) []byte {
	t.Helper()
	n := versionsNode(t, text, i)
	lines := strings.SplitAfter(string(text), "\n")
	first, second := n.Content[0], n.Content[1]
	if n.Style&yaml.FlowStyle != 0 {
		if first.Line != second.Line {
			t.Skipf("versions of runtime %d span lines; the round trip edits one-line lists", i)
		}
		line := lines[first.Line-1]
		lines[first.Line-1] = line[:first.Column-1] + line[second.Column-1:]
	} else {
		lines = append(lines[:first.Line-1], lines[first.Line:]...)
	}
	out := []byte(strings.Join(lines, ""))
	if bytes.Equal(out, text) {
		t.Fatal("dropping a version changed nothing")
	}
	return out
}

// scaffoldName is a runtime name the list does not have, starting with name.
func scaffoldName(l *runtimes.List, name string) string {
	for taken := true; taken; {
		taken = false
		for _, rt := range l.Runtimes {
			if rt.Name == name {
				name += "-x"
				taken = true
			}
		}
	}
	return name
}

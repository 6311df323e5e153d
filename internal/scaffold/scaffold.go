// Package scaffold adds a runtime to the runtime list: its entry in
// runtimes.yaml and a folder with a Dockerfile and a self-test that follow the
// contract the pipeline and the tests enforce (`make runtime`, cmd/newruntime).
//
// The new list is validated by runtimes.Parse, with the new folder staged next
// to the existing ones, before anything is written: a bad NAME, BASE or
// VERSIONS gets the errors a bad list gets, and leaves the repository as it was.
package scaffold

import (
	"bytes"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"

	"github.com/evergreen-images/evergreen/runtimes"
)

// Runtime is what `make runtime` is given.
type Runtime struct {
	Name      string
	BaseImage string
	Versions  []string
	// VersionCmd prints the runtime's version inside the image; empty means
	// "<Name> --version".
	VersionCmd string
	// Variant is the base image's variant as the list writes it ("noble",
	// "alpine3.22", "{version}-jdk-noble"); empty means the list's default
	// (runtimes.DefaultVariant). It decides the Dockerfile's FROM, its
	// release argument and its patch step (apt or apk).
	Variant string
	// Family is the distribution family, needed only when the variant names
	// no release runtimes.ParseVariant knows ("slim").
	Family string
}

// File is one file of the new runtime's folder.
type File struct {
	Name    string
	Content []byte
	Mode    os.FileMode
}

// Plan is what Add writes: the whole new list and the new folder.
type Plan struct {
	ListPath string
	List     []byte
	Dir      string
	Files    []File
}

// Error is a problem with the arguments, reported like a bad list: what is
// wrong, and the fix.
type Error struct {
	ListPath string
	Name     string
	Problems []runtimes.Problem
	// List is set when the new entry made the list invalid.
	List *runtimes.Error
	// FirstLine is the first line the new entry would have in the list.
	FirstLine int
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot add runtime %q to %s; nothing was written:", e.Name, e.ListPath)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if p.Entry != "" {
			b.WriteString(p.Entry + ": ")
		}
		b.WriteString(p.Msg)
		if p.Fix != "" {
			b.WriteString("\n    fix: " + p.Fix)
		}
	}
	if e.List != nil {
		fmt.Fprintf(&b, "\nthe new entry (from line %d of the list, once appended) would make the list invalid:\n%s", e.FirstLine, e.List.Error())
	}
	return b.String()
}

var (
	//go:embed Dockerfile.tmpl
	dockerfileTmpl string
	//go:embed self-test.tmpl
	selfTestTmpl string
)

// plainVersion is what the generated self-test accepts as EXPECTED_VERSION.
var plainVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)

// Prepare computes the plan for adding r to the list at listPath, whose
// runtime folders are next to it, and validates it; it writes nothing.
func Prepare(listPath string, r Runtime) (*Plan, error) {
	e := &Error{ListPath: listPath, Name: r.Name}
	problem := func(entry, fix, format string, args ...any) {
		e.Problems = append(e.Problems, runtimes.Problem{Entry: entry, Msg: fmt.Sprintf(format, args...), Fix: fix})
	}
	example := `make runtime NAME=go BASE=golang VERSIONS="1.25 1.26" VERSION_CMD="go version"`
	if r.Name == "" {
		problem("NAME", "name the runtime (the ECR repository and folder), e.g. "+example, "is empty")
	}
	if r.BaseImage == "" {
		problem("BASE", fmt.Sprintf("name its image in the base registry (%s), e.g. BASE=golang for go; BASE=%s if it has the runtime's name", runtimes.DefaultBaseRegistry, r.Name), "is empty")
	}
	if len(r.Versions) == 0 {
		problem("VERSIONS", `list the versions, separated by spaces, e.g. VERSIONS="1.25 1.26"`, "is empty")
	}
	for _, v := range r.Versions {
		if !plainVersion.MatchString(v) {
			problem("VERSIONS", "use versions of digits and dots (e.g. 1.25); for other tags, write the Dockerfile and self-test by hand",
				"version %q is not digits and dots, which the generated self-test requires of EXPECTED_VERSION", v)
		}
	}
	if r.VersionCmd == "" {
		r.VersionCmd = r.Name + " --version"
	}
	if strings.ContainsAny(r.VersionCmd, "\n\r") || strings.TrimSpace(r.VersionCmd) != r.VersionCmd {
		problem("VERSION_CMD", `give one command line without leading or trailing spaces, e.g. VERSION_CMD="go version"`, "%q is not a single command line", r.VersionCmd)
	}
	variant, err := runtimes.ParseVariant(cmp.Or(r.Variant, runtimes.DefaultVariant), runtimes.Family(r.Family))
	if err != nil {
		entry := "VARIANT"
		if r.Family != "" && !slices.Contains(runtimes.Families, runtimes.Family(r.Family)) {
			entry = "FAMILY"
		}
		problem(entry, `name a release (VARIANT=noble, VARIANT=alpine3.22, default trixie) or a tag template (VARIANT="{version}-jdk-noble"), and FAMILY=debian, ubuntu or alpine when the release is not one this tool knows`, "%v", err)
	}

	data, err := os.ReadFile(listPath)
	if err != nil {
		problem("", "run from the repository root", "cannot read the runtime list: %v", err)
		return nil, e
	}
	dir := filepath.Dir(listPath)
	list, err := runtimes.Parse(listPath, data, dir)
	if err != nil {
		problem("", "fix the list first (make test names every problem)", "the runtime list is invalid already:\n%v", err)
		return nil, e
	}
	for _, rt := range list.Runtimes {
		if rt.Name == r.Name {
			problem("NAME", fmt.Sprintf("to add versions, add them to the versions of %q in %s; otherwise choose another NAME", r.Name, listPath), "runtime %q is already in the list", r.Name)
		}
	}
	if r.Name != "" {
		if _, err := os.Lstat(filepath.Join(dir, r.Name)); err == nil {
			problem("NAME", fmt.Sprintf("remove %s, or choose another NAME", filepath.Join(dir, r.Name)), "folder %s exists already", filepath.Join(dir, r.Name))
		}
	}
	// Without these, the new list says nothing more; with them, it may.
	if r.Name == "" || r.BaseImage == "" || len(r.Versions) == 0 || len(list.Runtimes) == 0 || hasEntry(e, "NAME") || hasEntry(e, "VARIANT") || hasEntry(e, "FAMILY") {
		return nil, e
	}

	entry, err := entryText(data, r)
	if err != nil {
		problem("", "add the entry by hand", "%v", err)
		return nil, e
	}
	newList := append(bytes.TrimRight(data, "\n"), '\n', '\n')
	e.FirstLine = bytes.Count(newList, []byte("\n")) + 1
	newList = append(newList, entry...)

	files, err := render(r, variant)
	if err != nil {
		return nil, err
	}
	plan := &Plan{ListPath: listPath, List: newList, Dir: filepath.Join(dir, r.Name), Files: files}

	// Validate the new list with the new folder staged next to the existing
	// ones, so that the folder checks (Dockerfile, executable self-test) run too.
	stage, err := os.MkdirTemp("", "newruntime-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, de := range entries {
		if err := os.Symlink(filepath.Join(abs, de.Name()), filepath.Join(stage, de.Name())); err != nil {
			return nil, err
		}
	}
	if plainName(r.Name) {
		if err := writeFiles(filepath.Join(stage, r.Name), files); err != nil {
			return nil, err
		}
	}
	got, err := runtimes.Parse(listPath, newList, stage)
	var lerr *runtimes.Error
	switch {
	case errors.As(err, &lerr):
		e.List = lerr
		return nil, e
	case err != nil:
		return nil, err
	case len(e.Problems) > 0:
		return nil, e
	}
	// The entry went where it was meant to: the end of the runtimes list.
	if n := len(got.Runtimes); n != len(list.Runtimes)+1 || got.Runtimes[n-1].Name != r.Name {
		problem("", "add the entry by hand:\n"+string(entry), "appending to %s did not add runtime %q at the end of its list", listPath, r.Name)
		return nil, e
	}
	return plan, nil
}

func hasEntry(e *Error, entry string) bool {
	for _, p := range e.Problems {
		if p.Entry == entry {
			return true
		}
	}
	return false
}

// Write writes the folder, then the list; a failure leaves neither.
func (p *Plan) Write() error {
	if err := writeFiles(p.Dir, p.Files); err != nil {
		os.RemoveAll(p.Dir)
		return err
	}
	st, err := os.Stat(p.ListPath)
	if err != nil {
		os.RemoveAll(p.Dir)
		return err
	}
	tmp := p.ListPath + ".new"
	if err := os.WriteFile(tmp, p.List, st.Mode().Perm()); err == nil {
		err = os.Rename(tmp, p.ListPath)
	}
	if err != nil {
		os.Remove(tmp)
		os.RemoveAll(p.Dir)
		return err
	}
	return nil
}

// Add validates r against the list at listPath and writes its entry and folder.
func Add(listPath string, r Runtime) (*Plan, error) {
	p, err := Prepare(listPath, r)
	if err != nil {
		return nil, err
	}
	return p, p.Write()
}

func writeFiles(dir string, files []File) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if err := os.WriteFile(path, f.Content, f.Mode); err != nil {
			return err
		}
		// The umask must not take the self-test's executable bit.
		if err := os.Chmod(path, f.Mode); err != nil {
			return err
		}
	}
	return nil
}

// plainName is a name that is safe as a folder; anything else is left to
// runtimes.Parse to report.
func plainName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`)
}

// entryText is the new entry in the style of the list's own entries: the
// indentation of its first entry, versions quoted (YAML reads 3.10 as 3.1),
// and always a base-image, since the default (the runtime's name) is right
// only by coincidence.
func entryText(list []byte, r Runtime) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(list, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("cannot read the list's layout: %v", err)
	}
	var seq *yaml.Node
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "runtimes" {
			seq = root.Content[i+1]
		}
	}
	if seq == nil || seq.Kind != yaml.SequenceNode || seq.Style&yaml.FlowStyle != 0 || len(seq.Content) == 0 {
		return nil, errors.New("the runtimes list is not a block list ('- name: ...' lines)")
	}
	lines := strings.Split(string(list), "\n")
	first := lines[seq.Content[0].Line-1]
	dash := strings.Index(first, "- ")
	if dash < 0 || strings.TrimSpace(first[:dash]) != "" {
		return nil, errors.New("the first runtime does not start a line with '- '")
	}
	indent := first[:dash]
	var quoted []string
	for _, v := range r.Versions {
		quoted = append(quoted, strconv.Quote(v))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s- name: %s\n", indent, scalar(r.Name))
	fmt.Fprintf(&b, "%s  versions: [%s]\n", indent, strings.Join(quoted, ", "))
	fmt.Fprintf(&b, "%s  base-image: %s\n", indent, scalar(r.BaseImage))
	// variant and family only where the list's default or the variant
	// itself would not say the same.
	if r.Variant != "" && r.Variant != runtimes.DefaultVariant {
		fmt.Fprintf(&b, "%s  variant: %s\n", indent, scalar(r.Variant))
	}
	if r.Family != "" {
		if v, err := runtimes.ParseVariant(cmp.Or(r.Variant, runtimes.DefaultVariant), ""); err != nil || string(v.Family) != r.Family {
			fmt.Fprintf(&b, "%s  family: %s\n", indent, scalar(r.Family))
		}
	}
	return b.Bytes(), nil
}

// scalar writes s plain when YAML reads it back as the same string, quoted
// otherwise (true, 3.10, "a: b").
func scalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil || bytes.Count(out, []byte("\n")) != 1 {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// shquote quotes s for POSIX sh.
func shquote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// familyNames are the families as the generated comments name them.
var familyNames = map[runtimes.Family]string{runtimes.Debian: "Debian", runtimes.Ubuntu: "Ubuntu", runtimes.Alpine: "Alpine"}

// shells are what a family's /bin/sh is, for the self-test's header: the
// generated self-test keeps to what all of them offer.
var shells = map[runtimes.Family]string{runtimes.Debian: "dash", runtimes.Ubuntu: "dash", runtimes.Alpine: "busybox's ash"}

// Files are the Dockerfile and self-test Add writes for r, without the list:
// what a runtime's folder holds when `make runtime` wrote it.
func Files(r Runtime) ([]File, error) {
	if len(r.Versions) == 0 {
		return nil, errors.New("no versions")
	}
	if r.VersionCmd == "" {
		r.VersionCmd = r.Name + " --version"
	}
	v, err := runtimes.ParseVariant(cmp.Or(r.Variant, runtimes.DefaultVariant), runtimes.Family(r.Family))
	if err != nil {
		return nil, err
	}
	return render(r, v)
}

func render(r Runtime, v runtimes.Variant) ([]File, error) {
	tag, releaseArg, releaseDefault := v.FromTag()
	release := ""
	if releaseArg != "" {
		release = "${" + releaseArg + "}"
	}
	data := struct {
		Runtime
		BaseRegistry string
		Example      string
		VersionsText string
		// FromRef is the FROM's image, and the base.name label's.
		FromRef                    string
		ReleaseArg, ReleaseDefault string
		// Release is the release argument as the description label
		// expands it, empty when the tag names no release.
		Release    string
		FamilyName string
		Apk        bool
		Shell      string
	}{r, runtimes.DefaultBaseRegistry, r.Versions[len(r.Versions)-1], strings.Join(r.Versions, ", "),
		"${BASE_REGISTRY}/${BASE_IMAGE}:" + tag, releaseArg, releaseDefault, release,
		familyNames[v.Family], v.Family.PackageManager() == "apk", shells[v.Family]}
	funcs := template.FuncMap{"shquote": shquote}
	var files []File
	for _, f := range []struct {
		name, tmpl string
		mode       os.FileMode
	}{{"Dockerfile", dockerfileTmpl, 0o644}, {"self-test", selfTestTmpl, 0o755}} {
		t, err := template.New(f.name).Funcs(funcs).Parse(f.tmpl)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, err
		}
		files = append(files, File{Name: f.name, Content: b.Bytes(), Mode: f.mode})
	}
	return files, nil
}

// Package runtimes loads and validates the runtime list (runtimes/runtimes.yaml),
// the only place where runtimes, versions and architectures are named.
//
// Everything downstream (ECR repositories, build-graph entries, tags) is derived
// from a validated *List, so a mistake in the list is reported here, once, with
// the file, the entry and the fix, before any construct or file is written.
package runtimes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultPath is the runtime list the app and the generator read unless told otherwise.
const DefaultPath = "runtimes/runtimes.yaml"

// DefaultBaseRegistry mirrors the Docker official images on ECR Public, which
// does not apply Docker Hub's anonymous pull limit (100 pulls per 6 hours per IP
// is quickly reached by shared CodeBuild fleets).
const DefaultBaseRegistry = "public.ecr.aws/docker/library"

// DefaultComputeType is the CodeBuild compute type used unless a runtime sets one.
const DefaultComputeType = "BUILD_GENERAL1_SMALL"

// Arch is a CPU architecture, spelled as Docker and OCI platforms spell it.
type Arch string

const (
	ARM64 Arch = "arm64"
	AMD64 Arch = "amd64"
)

// DefaultArchitectures are built for a runtime that names none.
var DefaultArchitectures = []Arch{ARM64, AMD64}

// computeTypes are the CodeBuild compute types that both ARM_CONTAINER and
// LINUX_CONTAINER accept, so a runtime can use one for both architectures.
var computeTypes = []string{
	"BUILD_GENERAL1_SMALL",
	"BUILD_GENERAL1_MEDIUM",
	"BUILD_GENERAL1_LARGE",
	"BUILD_GENERAL1_XLARGE",
	"BUILD_GENERAL1_2XLARGE",
}

// Runtime is one validated entry of the list.
type Runtime struct {
	Name          string
	Versions      []string
	Architectures []Arch
	BaseImage     string
	BaseRegistry  string
	ComputeType   string
	// Variant is the base image's variant: its tag shape, distribution
	// family and release (default: Debian trixie).
	Variant Variant
}

// List is a validated runtime list, in file order.
type List struct {
	// Path is the file the list was read from, as the user named it.
	Path     string
	Runtimes []Runtime
}

// Image is one runtime x version x architecture: one Build and one Verify entry.
type Image struct {
	Runtime *Runtime
	Version string
	Arch    Arch
}

// Release is one runtime x version: one Publish entry, which joins the
// per-architecture images into one multi-architecture tag.
type Release struct {
	Runtime *Runtime
	Version string
}

// Images lists every image to build, in list order, so identifiers and file
// output are deterministic.
func (l *List) Images() []Image {
	var out []Image
	for i := range l.Runtimes {
		rt := &l.Runtimes[i]
		for _, v := range rt.Versions {
			for _, a := range rt.Architectures {
				out = append(out, Image{Runtime: rt, Version: v, Arch: a})
			}
		}
	}
	return out
}

// Releases lists every runtime-version to publish, in list order.
func (l *List) Releases() []Release {
	var out []Release
	for i := range l.Runtimes {
		rt := &l.Runtimes[i]
		for _, v := range rt.Versions {
			out = append(out, Release{Runtime: rt, Version: v})
		}
	}
	return out
}

// Identifier is the build-graph identifier, e.g. node_ci_cd_22_arm64.
// CodeBuild accepts letters, digits and underscores only.
func (i Image) Identifier() string {
	return identifier(i.Runtime.Name, i.Version, string(i.Arch))
}

// Identifier is the publish build-graph identifier, e.g. python_3_13.
func (r Release) Identifier() string {
	return identifier(r.Runtime.Name, r.Version)
}

func identifier(parts ...string) string {
	s := strings.Join(parts, "_")
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' {
			return '_'
		}
		return r
	}, s)
}

// maxIdentifierLen: CodeBuild rejects a whole batch (BATCH_SPEC_VALIDATION_ERROR)
// when an identifier is 128 characters or longer.
const maxIdentifierLen = 127

// maxTagLen is Docker's and ECR's limit on a tag.
const maxTagLen = 128

// executionIDLen is the length of a CodePipeline execution id (a UUID), which
// is part of every draft tag.
const executionIDLen = 36

var (
	// ECR repository names, restricted to one path segment because the name is
	// also the runtime's folder under runtimes/.
	nameRe = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	// A Docker tag: the version is used verbatim in every tag.
	tagRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	// An image repository path inside a registry, e.g. "node" or "library/node".
	imageRe = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)
	// A registry host with an optional port and path, e.g. public.ecr.aws/docker/library.
	registryRe = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$`)
)

// Problem is one thing wrong with the list.
type Problem struct {
	Line  int    // 1-based line in the file, 0 when unknown
	Entry string // e.g. `runtime "node"`, empty for the whole file
	Msg   string
	Fix   string
}

// Error reports every problem found in a runtime list at once, so a user
// fixes them in one pass.
type Error struct {
	Path     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		fmt.Fprintf(&b, "invalid runtime list %s:\n", e.Path)
	} else {
		fmt.Fprintf(&b, "invalid runtime list %s (%d problems):\n", e.Path, len(e.Problems))
	}
	for _, p := range e.Problems {
		loc := e.Path
		if p.Line > 0 {
			loc = fmt.Sprintf("%s:%d", e.Path, p.Line)
		}
		b.WriteString("  ")
		b.WriteString(loc)
		b.WriteString(": ")
		if p.Entry != "" {
			b.WriteString(p.Entry)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
		if p.Fix != "" {
			b.WriteString("\n    fix: ")
			b.WriteString(p.Fix)
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// Load reads, strictly decodes and validates the runtime list at path. Each
// runtime's folder (Dockerfile, executable self-test) is looked up next to the
// list file.
func Load(path string) (*List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Path: path, Problems: []Problem{{
			Msg: fmt.Sprintf("cannot read the runtime list: %v", errors.Unwrap(err)),
			Fix: "run from the repository root, or pass the path of an existing runtime list",
		}}}
	}
	return Parse(path, data, filepath.Dir(path))
}

// Parse validates a runtime list read from path; runtime folders are looked up
// under dir.
func Parse(path string, data []byte, dir string) (*List, error) {
	p := &parser{path: path, dir: dir}
	list := p.parse(data)
	if len(p.problems) > 0 {
		return nil, &Error{Path: path, Problems: p.problems}
	}
	return list, nil
}

type parser struct {
	path     string
	dir      string
	problems []Problem
}

func (p *parser) add(line int, entry, fix, format string, args ...any) {
	p.problems = append(p.problems, Problem{Line: line, Entry: entry, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

const exampleList = `runtimes:
  - name: node
    versions: ["22", "24"]`

func (p *parser) parse(data []byte) *List {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(0, "", "add a list of runtimes, for example:\n"+exampleList, "the file is empty")
			return nil
		}
		p.add(0, "", "fix the YAML syntax at the line the parser names", "malformed YAML: %v", err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.add(extra.Line, "", "keep one YAML document: remove the second '---' and what follows it", "the file holds more than one YAML document")
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, "", "start the file with a 'runtimes:' key, for example:\n"+exampleList, "the top level must be a mapping with a 'runtimes' key")
		return nil
	}
	var runtimesNode *yaml.Node
	for _, kv := range pairs(root) {
		switch kv[0].Value {
		case "runtimes":
			runtimesNode = resolve(kv[1])
		default:
			p.add(kv[0].Line, "", "the only top-level key is 'runtimes'; remove or rename this one", "unknown key %q", kv[0].Value)
		}
	}
	if dups := duplicateKeys(root); len(dups) > 0 {
		for _, d := range dups {
			p.add(d.Line, "", "keep one 'runtimes' key", "key %q appears twice", d.Value)
		}
	}
	if runtimesNode == nil {
		p.add(root.Line, "", "add a 'runtimes:' list, for example:\n"+exampleList, "no 'runtimes' key")
		return nil
	}
	if runtimesNode.Kind != yaml.SequenceNode || len(runtimesNode.Content) == 0 {
		p.add(runtimesNode.Line, "", "list at least one runtime, for example:\n"+exampleList, "'runtimes' must be a non-empty list")
		return nil
	}

	list := &List{Path: p.path}
	seen := map[string]int{}
	for i, n := range runtimesNode.Content {
		rt, ok := p.runtime(i, n)
		if !ok {
			continue
		}
		if line, dup := seen[rt.Name]; dup {
			p.add(n.Line, fmt.Sprintf("runtimes[%d] %q", i, rt.Name), "merge the two entries into one, with all the versions", "runtime %q is already listed at line %d", rt.Name, line)
			continue
		}
		seen[rt.Name] = n.Line
		list.Runtimes = append(list.Runtimes, rt)
	}
	p.identifiers(list, runtimesNode)
	return list
}

var runtimeKeys = []string{"name", "versions", "architectures", "base-image", "base-registry", "variant", "family", "compute-type"}

func (p *parser) runtime(i int, n *yaml.Node) (Runtime, bool) {
	entry := fmt.Sprintf("runtimes[%d]", i)
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, entry, "write each runtime as a mapping, for example:\n"+exampleList, "must be a mapping with at least 'name' and 'versions'")
		return Runtime{}, false
	}
	before := len(p.problems)
	fields := map[string]*yaml.Node{}
	for _, kv := range pairs(n) {
		k := kv[0].Value
		if !slices.Contains(runtimeKeys, k) {
			p.add(kv[0].Line, entry, "the keys of a runtime are: "+strings.Join(runtimeKeys, ", "), "unknown key %q", k)
			continue
		}
		if _, dup := fields[k]; dup {
			p.add(kv[0].Line, entry, "keep one of them", "key %q appears twice", k)
			continue
		}
		fields[k] = resolve(kv[1])
	}

	rt := Runtime{}
	nameNode := fields["name"]
	if nameNode == nil {
		p.add(n.Line, entry, "add 'name: <repository name>'", "has no 'name'")
		return Runtime{}, false
	}
	rt.Name, _ = p.scalar(nameNode, entry, "name")
	if rt.Name != "" {
		entry = fmt.Sprintf("runtimes[%d] %q", i, rt.Name)
	}
	switch {
	case rt.Name == "":
	case len(rt.Name) < 2 || len(rt.Name) > 200:
		p.add(nameNode.Line, entry, "use a name of 2 to 200 characters", "the name is %d characters long", len(rt.Name))
	case strings.Contains(rt.Name, "/"):
		p.add(nameNode.Line, entry, "use a name without '/': it is also the runtime's folder under runtimes/", "the name contains '/'")
	case !nameRe.MatchString(rt.Name):
		p.add(nameNode.Line, entry, "use lowercase letters and digits, separated by single '-', '_' or '.' (e.g. node-ci-cd)", "ECR would reject the repository name %q", rt.Name)
	}

	rt.Versions = p.versions(fields["versions"], entry, n.Line)
	rt.Architectures = p.architectures(fields["architectures"], entry)

	rt.BaseImage = rt.Name
	if f := fields["base-image"]; f != nil {
		if v, ok := p.scalar(f, entry, "base-image"); ok {
			if host, rest, found := strings.Cut(v, "/"); found && (strings.ContainsAny(host, ".:") || host == "localhost") {
				p.add(f.Line, entry, fmt.Sprintf("split it: base-registry: %q and base-image: %q (base-registry defaults to %s)", host+registryPath(rest), imageName(rest), DefaultBaseRegistry), "base-image %q names a registry (%s): Build pulls <base-registry>/<base-image>", v, host)
			} else if !imageRe.MatchString(v) {
				p.add(f.Line, entry, "name an image repository such as 'node' or 'library/python', without a registry or tag", "base-image %q is not an image name", v)
			}
			rt.BaseImage = v
		}
	}
	rt.BaseRegistry = DefaultBaseRegistry
	if f := fields["base-registry"]; f != nil {
		if v, ok := p.scalar(f, entry, "base-registry"); ok {
			if !registryRe.MatchString(v) {
				p.add(f.Line, entry, "use a registry host with an optional path, without scheme or trailing '/', e.g. "+DefaultBaseRegistry, "base-registry %q is not a registry", v)
			}
			rt.BaseRegistry = v
		}
	}
	p.variant(&rt, fields, entry, n.Line)
	rt.ComputeType = DefaultComputeType
	if f := fields["compute-type"]; f != nil {
		if v, ok := p.scalar(f, entry, "compute-type"); ok {
			if !slices.Contains(computeTypes, v) {
				p.add(f.Line, entry, "use one of "+strings.Join(computeTypes, ", "), "compute-type %q is not a CodeBuild compute type available on both ARM_CONTAINER and LINUX_CONTAINER", v)
			}
			rt.ComputeType = v
		}
	}

	if rt.Name != "" && nameRe.MatchString(rt.Name) {
		p.folder(rt.Name, entry, nameNode.Line)
	}
	return rt, len(p.problems) == before
}

// registryPath and imageName split the part of a base-image after its
// registry host into the registry's path and the image: the last path
// element is the image, and Docker Hub's official images keep "library/".
func registryPath(rest string) string {
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		return "/" + rest[:i]
	}
	return ""
}

func imageName(rest string) string { return rest[strings.LastIndex(rest, "/")+1:] }

// versions checks each version as a Docker tag part. Tags derived from it:
// <v>, <v>-<arch>, <v>-r<yyyymmdd>-<id> (dated, immutable) and
// draft-<v>-<arch>-<execution id>.
func (p *parser) versions(n *yaml.Node, entry string, line int) []string {
	if n == nil {
		p.add(line, entry, `add 'versions: ["22"]' (quoted strings)`, "has no 'versions'")
		return nil
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.add(n.Line, entry, `list at least one version, e.g. versions: ["22", "24"]`, "'versions' must be a non-empty list")
		return nil
	}
	var out []string
	seen := map[string]bool{}
	maxLen := maxTagLen - len("draft-") - len("-arm64-") - executionIDLen
	for _, vn := range n.Content {
		vn = resolve(vn)
		v, ok := p.scalar(vn, entry, "version")
		if !ok {
			continue
		}
		switch {
		case seen[v]:
			p.add(vn.Line, entry, "remove the duplicate", "version %q is listed twice", v)
			continue
		case !tagRe.MatchString(v):
			p.add(vn.Line, entry, "use letters, digits, '_', '.' and '-' only, not starting with '.' or '-' (a Docker tag)", "version %q is not a valid Docker tag", v)
		case len(v) > maxLen:
			p.add(vn.Line, entry, fmt.Sprintf("shorten it to %d characters or fewer: the draft tag draft-<version>-<arch>-<execution id> must fit in %d", maxLen, maxTagLen), "version %q is too long", v)
		case len(v) > 1 && v[0] == 'v' && '0' <= v[1] && v[1] <= '9':
			p.add(vn.Line, entry, fmt.Sprintf("write it as %q: the base images' tags carry no 'v' (node:24, not node:v24), and Build pulls <base-image>:<version>", v[1:]), "version %q starts with 'v'", v)
		case strings.HasPrefix(v, "draft"):
			p.add(vn.Line, entry, "rename it: tags starting with 'draft' are retired by the lifecycle rule after a day", "version %q starts with 'draft'", v)
		case strings.Contains(v, DatedTagMarker):
			p.add(vn.Line, entry, fmt.Sprintf("rename it: %q marks the immutable dated tags", DatedTagMarker), "version %q contains %q", v, DatedTagMarker)
		case strings.HasSuffix(v, "-arm64") || strings.HasSuffix(v, "-amd64"):
			p.add(vn.Line, entry, "rename it: <version>-<arch> is the published per-architecture tag of another version", "version %q ends in an architecture", v)
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}

func (p *parser) architectures(n *yaml.Node, entry string) []Arch {
	if n == nil {
		return append([]Arch(nil), DefaultArchitectures...)
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.add(n.Line, entry, "list arm64, amd64 or both, or remove the key to build both", "'architectures' must be a non-empty list")
		return nil
	}
	var out []Arch
	seen := map[Arch]bool{}
	for _, an := range n.Content {
		an = resolve(an)
		v, ok := p.scalar(an, entry, "architecture")
		if !ok {
			continue
		}
		a := Arch(v)
		switch {
		case a != ARM64 && a != AMD64:
			fix := "use arm64 or amd64"
			if v == "x86_64" || v == "x86" || v == "x64" {
				fix = "use amd64 (Docker's name for x86_64)"
			} else if v == "aarch64" || v == "arm" {
				fix = "use arm64 (Docker's name for aarch64)"
			}
			p.add(an.Line, entry, fix, "unknown architecture %q", v)
		case seen[a]:
			p.add(an.Line, entry, "remove the duplicate", "architecture %q is listed twice", v)
		default:
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// folder checks what the Build and Verify stages need from the runtime's folder.
// A self-test without the executable bit is the classic failure that only shows
// up in the pipeline ("permission denied" in Verify).
func (p *parser) folder(name, entry string, line int) {
	dir := filepath.Join(p.dir, name)
	display := filepath.ToSlash(filepath.Join(filepath.Dir(p.path), name))
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		p.add(line, entry, fmt.Sprintf("create %s/ with a Dockerfile and an executable self-test (see runtimes/python/)", display), "folder %s does not exist", display)
		return
	}
	if st, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil || !st.Mode().IsRegular() {
		p.add(line, entry, fmt.Sprintf("add %s/Dockerfile (see runtimes/python/Dockerfile)", display), "%s/Dockerfile is missing", display)
	}
	st, err := os.Stat(filepath.Join(dir, "self-test"))
	switch {
	case err != nil || !st.Mode().IsRegular():
		p.add(line, entry, fmt.Sprintf("add an executable %s/self-test (see runtimes/python/self-test)", display), "%s/self-test is missing", display)
	case st.Mode().Perm()&0o111 == 0:
		p.add(line, entry, fmt.Sprintf("run: chmod +x %s/self-test && git update-index --chmod=+x %s/self-test", display, display), "%s/self-test is not executable", display)
	}
}

// identifiers rejects lists whose entries would map to the same build-graph
// identifier ("a-b" version "1" and "a" version "b-1" both give a_b_1), or to
// one CodeBuild rejects as too long.
func (p *parser) identifiers(l *List, n *yaml.Node) {
	owner := map[string]string{}
	check := func(id, what string) {
		if len(id) > maxIdentifierLen {
			p.add(n.Line, what, fmt.Sprintf("shorten the runtime name or version: CodeBuild identifiers must be under %d characters", maxIdentifierLen+1), "build-graph identifier %s is %d characters long", id, len(id))
		}
		if prev, dup := owner[id]; dup {
			p.add(n.Line, what, "rename one of them: '-' and '.' both become '_' in identifiers", "build-graph identifier %s is also the identifier of %s", id, prev)
			return
		}
		owner[id] = what
	}
	for _, img := range l.Images() {
		check(img.Identifier(), fmt.Sprintf("runtime %q version %q %s", img.Runtime.Name, img.Version, img.Arch))
	}
	for _, r := range l.Releases() {
		check(r.Identifier(), fmt.Sprintf("runtime %q version %q", r.Runtime.Name, r.Version))
	}
}

// scalar returns a plain string. Unquoted numbers are refused: YAML reads
// 3.10 as the float 3.1, which silently builds the wrong version.
func (p *parser) scalar(n *yaml.Node, entry, what string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		p.add(n.Line, entry, fmt.Sprintf("write %s as a single quoted string", what), "%s must be a string", what)
		return "", false
	}
	switch n.Tag {
	case "!!str":
		return n.Value, true
	case "!!int", "!!float":
		p.add(n.Line, entry, fmt.Sprintf("quote it: %q (unquoted, YAML reads 3.10 as 3.1)", n.Value), "%s %s is a YAML number", what, n.Value)
	default:
		p.add(n.Line, entry, fmt.Sprintf("write %s as a quoted string", what), "%s %q is not a string", what, n.Value)
	}
	return "", false
}

// resolve follows a YAML alias (*name) to the node its anchor (&name) marks,
// so a list that reuses a value through an anchor reads as if it were written
// out (unresolved, an aliased versions list was reported as "must be a
// non-empty list").
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func pairs(m *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		out = append(out, [2]*yaml.Node{m.Content[i], m.Content[i+1]})
	}
	return out
}

func duplicateKeys(m *yaml.Node) []*yaml.Node {
	seen := map[string]bool{}
	var dups []*yaml.Node
	for _, kv := range pairs(m) {
		if seen[kv[0].Value] {
			dups = append(dups, kv[0])
		}
		seen[kv[0].Value] = true
	}
	return dups
}

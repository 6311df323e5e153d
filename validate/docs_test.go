package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxBytes keeps the README a front door a newcomer reads in five
// minutes; the rest belongs in docs/, by reader.
const readmeMaxBytes = 12 * 1024

// TestReadmeFitsItsBudget: README.md is at most 12 KB.
func TestReadmeFitsItsBudget(t *testing.T) {
	fi, err := os.Stat(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > readmeMaxBytes {
		t.Errorf("README.md is %d bytes, more than %d: move what is not set-up, the first tasks or where things are into docs/ (by reader) and link it", fi.Size(), readmeMaxBytes)
	}
}

// TestDocLinksResolve: every relative link in README.md and docs/*.md names
// a file or folder of the repository, and every #anchor into a Markdown file
// (the same one included) names one of its headings, as GitHub spells them.
func TestDocLinksResolve(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join(repoRoot, "README.md")}, docs...)
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		a := headingAnchors(string(data))
		anchors[path] = a
		return a, nil
	}
	checked := 0
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, doc)
		for _, l := range relativeLinks(string(data)) {
			checked++
			where := fmt.Sprintf("%s:%d: link %q", filepath.ToSlash(rel), l.line, l.target)
			path, anchor, _ := strings.Cut(l.target, "#")
			target := doc
			if path != "" {
				target = filepath.Join(filepath.Dir(doc), filepath.FromSlash(path))
				if r, err := filepath.Rel(repoRoot, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
					t.Errorf("%s leaves the repository", where)
					continue
				}
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: %s does not exist", where, filepath.ToSlash(path))
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			a, err := anchorsOf(target)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if !a[anchor] {
				t.Errorf("%s: no heading of %s has the anchor #%s", where, filepath.Base(target), anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found in README.md and docs/: the link parser is broken")
	}
}

// TestDocLinkParsing pins the parser and GitHub's anchors on known cases.
func TestDocLinkParsing(t *testing.T) {
	md := "See [a](docs/a.md) and [b\nacross lines](b.md#x-y).\n" +
		"`[not](code.md)` and [web](https://example.com) and [mail](mailto:x@example.com)\n" +
		"```\n[fenced](fenced.md)\n```\n[self](#here)\n"
	var got []string
	for _, l := range relativeLinks(md) {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	if want := "1:docs/a.md 2:b.md#x-y 7:#here"; strings.Join(got, " ") != want {
		t.Errorf("links %q, want %q", strings.Join(got, " "), want)
	}
	a := headingAnchors("# Title\n## Deploy\n### After `cdk destroy`: the retained repositories\n## Deploy\n```\n# not a heading\n```\n## Names: the prefix, and two copies\n")
	for _, want := range []string{"title", "deploy", "deploy-1", "after-cdk-destroy-the-retained-repositories", "names-the-prefix-and-two-copies"} {
		if !a[want] {
			t.Errorf("no anchor %q among %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Error("a line in a fenced block counted as a heading")
	}
}

type docLink struct {
	line   int
	target string
}

var (
	linkTarget = regexp.MustCompile(`\]\(([^()\s]+)\)`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	heading    = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	inlineLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// relativeLinks are the inline links of md outside code, other than URLs.
func relativeLinks(md string) []docLink {
	text := blankCode(md)
	var out []docLink
	for _, m := range linkTarget.FindAllStringSubmatchIndex(text, -1) {
		target := text[m[2]:m[3]]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		out = append(out, docLink{line: 1 + strings.Count(text[:m[0]], "\n"), target: target})
	}
	return out
}

// blankCode replaces fenced blocks and code spans with spaces, keeping the
// newlines, so that line numbers stay right and code is never a link.
func blankCode(md string) string {
	lines := strings.Split(md, "\n")
	fenced := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			lines[i] = ""
			continue
		}
		if fenced {
			lines[i] = ""
		}
	}
	return codeSpan.ReplaceAllStringFunc(strings.Join(lines, "\n"), func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '\n' {
				return r
			}
			return ' '
		}, s)
	})
}

// headingAnchors are the anchors GitHub gives md's headings: the text
// lowercased, without punctuation, spaces as hyphens, and -1, -2, ... for
// repeats.
func headingAnchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		m := heading.FindStringSubmatch(l)
		if fenced || m == nil {
			continue
		}
		text := inlineLink.ReplaceAllString(m[2], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

package runtimes

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Family is the Linux distribution family an image is built on. It decides
// how the Dockerfile patches the OS (apt or apk), where the inventory reads
// the OS packages (dpkg's status or the apk database) and which
// distribution's end of life applies.
type Family string

const (
	Debian Family = "debian"
	Ubuntu Family = "ubuntu"
	Alpine Family = "alpine"
)

// Families lists the families this project builds on.
var Families = []Family{Debian, Ubuntu, Alpine}

// DefaultVariant is the variant of a runtime that names none: Debian trixie,
// as every runtime was built before variants existed.
const DefaultVariant = "trixie"

// ReleaseArg is the Dockerfile build argument that holds the release a
// Dockerfile of this family starts from (ARG DEBIAN_RELEASE=trixie).
func (f Family) ReleaseArg() string { return strings.ToUpper(string(f)) + "_RELEASE" }

// PackageManager is the tool that patches and lists the family's OS packages.
func (f Family) PackageManager() string {
	if f == Alpine {
		return "apk"
	}
	return "apt"
}

// Variant is which of a base image's variants a runtime builds on: the tag
// shape, the distribution family and its release.
type Variant struct {
	// Tag is the base image's tag with {version} standing for the version:
	// "{version}-trixie", "{version}-jdk-noble", "{version}-alpine3.22".
	Tag    string
	Family Family
	// Release is the distribution release the tag names: a Debian or
	// Ubuntu codename, or Alpine's major.minor. Empty when the tag names
	// none ("21-alpine" follows Alpine's newest release).
	Release string
	// token is the part of Tag that names the release ("trixie",
	// "alpine3.22"); the Dockerfile writes it with the release argument.
	token string
}

// Cycle is the release as endoflife.date names its cycle: "13" for trixie,
// "24.04" for noble, "3.22" for Alpine 3.22; empty when unknown.
func (v Variant) Cycle() string {
	if v.Family == Alpine {
		return v.Release
	}
	return knownReleases[v.Release].cycle
}

// BaseTag is the base image's tag for a version.
func (v Variant) BaseTag(version string) string {
	return strings.ReplaceAll(v.Tag, versionPlaceholder, version)
}

// FromTag is the tag as the Dockerfile's FROM writes it: ${VERSION} for the
// version and the family's release argument for the release, e.g.
// "${VERSION}-${DEBIAN_RELEASE}", "${VERSION}-jdk-${UBUNTU_RELEASE}",
// "${VERSION}-alpine${ALPINE_RELEASE}". ReleaseDefault is that argument's
// default; both are empty when the tag names no release.
func (v Variant) FromTag() (tag, releaseArg, releaseDefault string) {
	tag = strings.ReplaceAll(v.Tag, versionPlaceholder, "${VERSION}")
	if v.token == "" {
		return tag, "", ""
	}
	arg := v.Family.ReleaseArg()
	withArg := strings.Replace(v.token, v.Release, "${"+arg+"}", 1)
	parts := strings.Split(tag, "-")
	for i := len(parts) - 1; i >= 0; i-- {
		if parts[i] == v.token {
			parts[i] = withArg
			break
		}
	}
	return strings.Join(parts, "-"), arg, v.Release
}

// BaseRef is the image Build starts one version from.
func (r *Runtime) BaseRef(version string) string {
	return r.BaseRegistry + "/" + r.BaseImage + ":" + r.Variant.BaseTag(version)
}

const versionPlaceholder = "{version}"

type release struct {
	family Family
	cycle  string
}

// knownReleases are the codenames a variant's family follows from. A
// release missing here is not refused: the runtime states its family.
var knownReleases = map[string]release{
	"buster": {Debian, "10"}, "bullseye": {Debian, "11"}, "bookworm": {Debian, "12"},
	"trixie": {Debian, "13"}, "forky": {Debian, "14"},
	"focal": {Ubuntu, "20.04"}, "jammy": {Ubuntu, "22.04"}, "noble": {Ubuntu, "24.04"},
	"oracular": {Ubuntu, "24.10"}, "plucky": {Ubuntu, "25.04"}, "questing": {Ubuntu, "25.10"},
	"resolute": {Ubuntu, "26.04"},
}

var alpineToken = regexp.MustCompile(`^alpine([0-9]+\.[0-9]+)?$`)

// ParseVariant reads a variant as the list writes it: a release
// ("trixie", "noble", "alpine3.22", "bookworm-slim"), which is the tag
// "{version}-<variant>", or a tag template holding {version} once
// ("{version}-jdk-noble"). family is the list's family key, empty when it
// has none; it is needed only when the tag names no release this code knows.
// The error says what is wrong; the caller adds where.
func ParseVariant(s string, family Family) (Variant, error) {
	v := Variant{Tag: s}
	if !strings.Contains(s, versionPlaceholder) {
		v.Tag = versionPlaceholder + "-" + s
	}
	if n := strings.Count(v.Tag, versionPlaceholder); n != 1 {
		return Variant{}, fmt.Errorf("variant %q holds {version} %d times; write it once, e.g. \"{version}-jdk-noble\"", s, n)
	}
	if probe := v.BaseTag("1"); !tagRe.MatchString(probe) || strings.ContainsAny(probe, "{}") {
		return Variant{}, fmt.Errorf("variant %q does not make a Docker tag (letters, digits, '_', '.', '-'): write a release such as trixie, noble or alpine3.22, or a template such as \"{version}-jdk-noble\"", s)
	}
	parts := strings.Split(v.BaseTag(""), "-")
	for i := len(parts) - 1; i >= 0 && v.token == ""; i-- {
		t := parts[i]
		if r, ok := knownReleases[t]; ok {
			v.Family, v.Release, v.token = r.family, t, t
		} else if m := alpineToken.FindStringSubmatch(t); m != nil {
			v.Family, v.Release = Alpine, m[1]
			if m[1] != "" {
				v.token = t
			}
			if t == "alpine" {
				break
			}
		}
	}
	switch {
	case family != "" && !slices.Contains(Families, family):
		return Variant{}, fmt.Errorf("family %q is not one of %s", family, joinFamilies())
	case family != "" && v.Family != "" && family != v.Family:
		return Variant{}, fmt.Errorf("variant %q is %s %s, but family says %s: remove family, or name a %s release", s, v.Family, v.Release, family, family)
	case v.Family == "" && family == "":
		return Variant{}, fmt.Errorf("cannot tell the distribution of variant %q: add family: %s (how the image is patched and its packages listed depend on it)", s, joinFamilies())
	case v.Family == "":
		v.Family = family
	}
	return v, nil
}

func joinFamilies() string {
	s := make([]string, len(Families))
	for i, f := range Families {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// variant reads a runtime's variant and family keys.
func (p *parser) variant(rt *Runtime, fields map[string]*yaml.Node, entry string, line int) {
	raw, at := DefaultVariant, line
	if f := fields["variant"]; f != nil {
		s, ok := p.scalar(f, entry, "variant")
		if !ok {
			return
		}
		raw, at = s, f.Line
	}
	var family Family
	if f := fields["family"]; f != nil {
		s, ok := p.scalar(f, entry, "family")
		if !ok {
			return
		}
		family, at = Family(s), f.Line
	}
	v, err := ParseVariant(raw, family)
	if err != nil {
		p.add(at, entry, "see the keys at the top of the list (variant, family)", "%v", err)
		return
	}
	for _, version := range rt.Versions {
		if tag := v.BaseTag(version); len(tag) > maxTagLen {
			p.add(at, entry, fmt.Sprintf("shorten the variant: a tag is at most %d characters", maxTagLen), "the base tag %q is %d characters long", tag, len(tag))
		}
	}
	rt.Variant = v
}

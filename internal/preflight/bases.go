package preflight

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/evergreen-images/evergreen/internal/suggest"
	"github.com/evergreen-images/evergreen/runtimes"
)

// BaseRef is one base image the pipeline's Build will pull: what the
// runtime's Dockerfile's FROM names with the build arguments Build passes
// (VERSION, BASE_IMAGE, BASE_REGISTRY) and the Dockerfile's own ARG
// defaults, and the architectures it is built for.
type BaseRef struct {
	Runtime, Version string
	Ref              string
	Architectures    []runtimes.Arch
	// Listed is the base the list's variant names for the version
	// (Runtime.BaseRef): Verify, the inventory and end of life read the
	// image as that variant's, so a FROM that pulls another fails.
	Listed string
}

var (
	argRe  = regexp.MustCompile(`^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?\s*$`)
	fromRe = regexp.MustCompile(`^FROM\s+(?:--platform=\S+\s+)?(\S+)`)
	varRe  = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
)

// BaseRefs reads, for every runtime-version of the list, the base image
// its Dockerfile (in the list's folder of the runtime) pulls.
func BaseRefs(list *runtimes.List) ([]BaseRef, error) {
	var refs []BaseRef
	for _, rt := range list.Runtimes {
		path := filepath.Join(filepath.Dir(list.Path), rt.Name, "Dockerfile")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		for _, v := range rt.Versions {
			ref, err := fromOf(path, data, map[string]string{"VERSION": v, "BASE_IMAGE": rt.BaseImage, "BASE_REGISTRY": rt.BaseRegistry})
			if err != nil {
				return nil, err
			}
			refs = append(refs, BaseRef{Runtime: rt.Name, Version: v, Ref: ref, Architectures: rt.Architectures, Listed: rt.BaseRef(v)})
		}
	}
	return refs, nil
}

// fromOf is the first FROM of a Dockerfile with its variables expanded as
// BuildKit does for the global ARGs (those before the first FROM).
func fromOf(path string, data []byte, buildArgs map[string]string) (string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if m := argRe.FindStringSubmatch(line); m != nil {
			if v, ok := buildArgs[m[1]]; ok {
				vars[m[1]] = v
			} else {
				vars[m[1]] = m[2]
			}
			continue
		}
		if m := fromRe.FindStringSubmatch(line); m != nil {
			var unset []string
			ref := varRe.ReplaceAllStringFunc(m[1], func(s string) string {
				k := strings.Trim(s, "${}")
				v, ok := vars[k]
				if !ok || v == "" {
					unset = append(unset, k)
				}
				return v
			})
			if len(unset) > 0 {
				return "", fmt.Errorf("%s:%d: FROM %s uses %s, which no ARG before it sets (nor the pipeline's build arguments)", path, n, m[1], strings.Join(unset, ", "))
			}
			return ref, nil
		}
	}
	return "", fmt.Errorf("%s has no FROM", path)
}

// bases checks the list's base images; a Dockerfile it cannot read fails.
func bases(ctx context.Context, list *runtimes.List) []Result {
	refs, err := BaseRefs(list)
	if err != nil {
		return []Result{{Fail, "base image", err.Error(), "fix the runtime's Dockerfile"}}
	}
	return CheckBases(ctx, refs)
}

// CheckBases resolves every base reference anonymously, as Build's first
// pull would from its registry, and checks that it serves each
// architecture the list builds. A missing tag is named with the nearest
// tags the repository has. opts are for tests (an in-memory registry).
func CheckBases(ctx context.Context, refs []BaseRef, opts ...name.Option) []Result {
	var out []Result
	for _, b := range refs {
		what := b.Runtime + " " + b.Version
		if b.Listed != "" && b.Listed != b.Ref {
			out = append(out, Result{Fail, "base image", fmt.Sprintf("%s: the Dockerfile's FROM pulls %s, but the list's variant names %s", what, b.Ref, b.Listed),
				"write the FROM and its release ARG as the variant's (docs/runtime-contract.md; make runtime writes them), or change the runtime's variant in the list"})
			continue
		}
		ref, err := name.ParseReference(b.Ref, opts...)
		if err != nil {
			out = append(out, Result{Fail, "base image", fmt.Sprintf("%s: %q is not an image reference: %v", what, b.Ref, err), "fix the runtime's base-registry, base-image or Dockerfile"})
			continue
		}
		ro := []remote.Option{remote.WithContext(ctx), remote.WithAuth(authn.Anonymous)}
		desc, err := remote.Get(ref, ro...)
		if err != nil {
			out = append(out, missingTag(ctx, what, ref, err, ro))
			continue
		}
		have, err := platforms(desc)
		if err != nil {
			out = append(out, Result{Fail, "base image", fmt.Sprintf("%s: reading %s: %v", what, b.Ref, err), ""})
			continue
		}
		var lacking []string
		for _, a := range b.Architectures {
			if !slices.Contains(have, "linux/"+string(a)) {
				lacking = append(lacking, string(a))
			}
		}
		if len(lacking) > 0 {
			out = append(out, Result{Fail, "base image", fmt.Sprintf("%s: %s has no linux/%s image (it has %s)", what, b.Ref, strings.Join(lacking, ", linux/"), strings.Join(have, ", ")),
				"build only the architectures it has (architectures: in the list), or pick a base that has them"})
			continue
		}
		out = append(out, Result{OK, "base image", fmt.Sprintf("%s: %s (%s)", what, b.Ref, strings.Join(have, ", ")), ""})
	}
	return out
}

// platforms lists os/arch of an index's images, or of a single image.
func platforms(desc *remote.Descriptor) ([]string, error) {
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		var out []string
		for _, d := range m.Manifests {
			// BuildKit's attestation manifests are unknown/unknown.
			if d.Platform != nil && d.Platform.OS != "unknown" {
				out = append(out, d.Platform.OS+"/"+d.Platform.Architecture)
			}
		}
		sort.Strings(out)
		return slices.Compact(out), nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	return []string{cf.OS + "/" + cf.Architecture}, nil
}

func missingTag(ctx context.Context, what string, ref name.Reference, err error, ro []remote.Option) Result {
	var te *transport.Error
	if !(isNotFound(err, &te)) {
		return Result{Fail, "base image", fmt.Sprintf("%s: cannot read %s: %v", what, ref, err), "check your network (this check reads the base registry anonymously, as Build does)"}
	}
	tags, lerr := remote.List(ref.Context(), ro...)
	if lerr != nil || len(tags) == 0 {
		return Result{Fail, "base image", fmt.Sprintf("%s: %s does not exist, and its repository lists no tags", what, ref), "check base-registry and base-image in the list"}
	}
	return Result{Fail, "base image", fmt.Sprintf("%s: the tag %s does not exist in %s; nearest tags: %s", what, ref.Identifier(), ref.Context(), strings.Join(nearest(ref.Identifier(), tags, 5), ", ")),
		"change the version (or the Dockerfile's tag suffix) to a tag the base has"}
}

func isNotFound(err error, te **transport.Error) bool {
	if e, ok := err.(*transport.Error); ok {
		*te = e
		return e.StatusCode == 404
	}
	return strings.Contains(err.Error(), "MANIFEST_UNKNOWN") || strings.Contains(err.Error(), "NAME_UNKNOWN")
}

// nearest orders tags by how much of want's start they share, then by
// edit distance: "v24-trixie" finds "24-trixie", "21-trixie" finds
// "21-bookworm" and "22-trixie".
func nearest(want string, tags []string, n int) []string {
	type scored struct {
		tag          string
		prefix, dist int
	}
	var s []scored
	for _, t := range tags {
		p := 0
		for p < len(want) && p < len(t) && want[p] == t[p] {
			p++
		}
		s = append(s, scored{t, p, suggest.Distance(want, t)})
	}
	sort.Slice(s, func(i, j int) bool {
		if s[i].dist != s[j].dist {
			return s[i].dist < s[j].dist
		}
		if s[i].prefix != s[j].prefix {
			return s[i].prefix > s[j].prefix
		}
		return s[i].tag < s[j].tag
	})
	var out []string
	for i := 0; i < len(s) && i < n; i++ {
		out = append(out, s[i].tag)
	}
	return out
}

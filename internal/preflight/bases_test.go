package preflight

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/runtimes"
)

// baseRegistry is an in-memory registry serving, as ECR Public's mirror of
// the Docker official images does, multi-platform indexes.
func baseRegistry(t *testing.T, tags map[string][]string) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for tag, archs := range tags {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, a := range archs {
			img, err := random.Image(64, 1)
			if err != nil {
				t.Fatal(err)
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}}})
		}
		// A key is a tag of node, or image:tag.
		image := "node"
		if i, t, ok := strings.Cut(tag, ":"); ok {
			image, tag = i, t
		}
		ref, err := name.ParseReference(host+"/library/"+image+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(ref, idx); err != nil {
			t.Fatal(err)
		}
	}
	return host
}

func listWith(t *testing.T, registryHost, versions string) *runtimes.List {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "node"), 0o755)
	df, err := os.ReadFile("../../runtimes/node/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "node", "Dockerfile"), df, 0o644)
	os.WriteFile(filepath.Join(dir, "node", "self-test"), []byte("#!/bin/sh\n"), 0o755)
	path := filepath.Join(dir, "runtimes.yaml")
	os.WriteFile(path, []byte("runtimes:\n  - name: node\n    versions: ["+versions+"]\n    base-registry: "+registryHost+"/library\n"), 0o644)
	l, err := runtimes.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestBaseTagsResolveForEveryArchitecture(t *testing.T) {
	host := baseRegistry(t, map[string][]string{
		"22-trixie":   {"amd64", "arm64"},
		"24-trixie":   {"amd64", "arm64", "s390x"},
		"23-trixie":   {"amd64"},
		"22-bookworm": {"amd64", "arm64"},
	})
	list := listWith(t, host, `"22", "24", "23", "25"`)
	refs, err := BaseRefs(list)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 4 || refs[0].Ref != host+"/library/node:22-trixie" {
		t.Fatalf("refs %+v: want each version's FROM with the Dockerfile's DEBIAN_RELEASE", refs)
	}
	res := CheckBases(context.Background(), refs, name.Insecure)
	byVersion := map[string]Result{}
	for i, r := range res {
		byVersion[refs[i].Version] = r
	}
	for v, want := range map[string]struct {
		status Status
		detail string
	}{
		"22": {OK, "node:22-trixie (linux/amd64, linux/arm64)"},
		"24": {OK, "linux/s390x"},
		"23": {Fail, "has no linux/arm64 image (it has linux/amd64)"},
		"25": {Fail, "the tag 25-trixie does not exist in " + host + "/library/node; nearest tags: 22-trixie, 23-trixie, 24-trixie"},
	} {
		got := byVersion[v]
		if got.Status != want.status || !strings.Contains(got.Msg, want.detail) {
			t.Errorf("node %s: %s %q, want %s with %q", v, got.Status, got.Msg, want.status, want.detail)
		}
	}
	if Failed(res) != true {
		t.Error("a missing tag must fail the preflight")
	}
}

func TestFromUsesTheDockerfilesArgs(t *testing.T) {
	df := []byte("ARG BASE_REGISTRY=public.ecr.aws/docker/library\nARG BASE_IMAGE=node\nARG VERSION\nARG VARIANT=noble\nFROM --platform=$BUILDPLATFORM ${BASE_REGISTRY}/${BASE_IMAGE}:${VERSION}-jdk-$VARIANT\n")
	got, err := fromOf("Dockerfile", df, map[string]string{"VERSION": "21", "BASE_IMAGE": "eclipse-temurin", "BASE_REGISTRY": "public.ecr.aws/docker/library"})
	if err != nil || got != "public.ecr.aws/docker/library/eclipse-temurin:21-jdk-noble" {
		t.Errorf("got %q, %v", got, err)
	}
	_, err = fromOf("Dockerfile", []byte("FROM node:${TAG}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:1: FROM node:${TAG} uses TAG") {
		t.Errorf("unset variable: %v", err)
	}
}

// familiesList is testdata/runtimes/families (one runtime of each
// distribution family, as the scaffold writes it) with its base registry
// pointed at registryHost; swap replaces a runtime's Dockerfile by another's.
func familiesList(t *testing.T, registryHost string, swap map[string]string) *runtimes.List {
	t.Helper()
	src := filepath.Join("..", "..", "testdata", "runtimes", "families")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	for victim, donor := range swap {
		df, err := os.ReadFile(filepath.Join(src, donor, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, victim, "Dockerfile"), df, 0o644)
	}
	path := filepath.Join(dir, "runtimes.yaml")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every entry gets the registry, after its base-image line.
	text = []byte(strings.ReplaceAll(string(text), "    base-image: ", "    base-registry: "+registryHost+"/library\n    base-image: "))
	os.WriteFile(path, text, 0o644)
	l, err := runtimes.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestBaseTagsOfEveryFamilyResolve: the FROM of a Ubuntu (noble) and an
// Alpine Dockerfile, with their release arguments, names the tag the list's
// variant names, and that tag is resolved like any other.
func TestBaseTagsOfEveryFamilyResolve(t *testing.T) {
	list := familiesList(t, "registry.invalid", nil)
	tags := map[string][]string{}
	var missing *runtimes.Runtime
	for i, rt := range list.Runtimes {
		for j, v := range rt.Versions {
			// The last version of the last runtime is missing from the registry.
			if i == len(list.Runtimes)-1 && j == len(rt.Versions)-1 {
				missing = &list.Runtimes[i]
				continue
			}
			tags[rt.BaseImage+":"+rt.Variant.BaseTag(v)] = []string{"amd64", "arm64"}
		}
	}
	// A tag of another release, which the missing one's error names.
	last := missing.Versions[len(missing.Versions)-1]
	tags[missing.BaseImage+":"+last] = []string{"amd64", "arm64"}
	host := baseRegistry(t, tags)
	list = familiesList(t, host, nil)
	refs, err := BaseRefs(list)
	if err != nil {
		t.Fatal(err)
	}
	res := CheckBases(context.Background(), refs, name.Insecure)
	families := map[runtimes.Family]bool{}
	n := 0
	for _, rt := range list.Runtimes {
		families[rt.Variant.Family] = true
		for _, v := range rt.Versions {
			b, r := refs[n], res[n]
			n++
			want := host + "/library/" + rt.BaseImage + ":" + rt.Variant.BaseTag(v)
			if b.Ref != want || b.Listed != want {
				t.Errorf("%s %s: FROM %s, listed %s; want both %s", rt.Name, v, b.Ref, b.Listed, want)
			}
			if rt.Name == missing.Name && v == last {
				if r.Status != Fail || !strings.Contains(r.Msg, "the tag "+rt.Variant.BaseTag(v)+" does not exist") {
					t.Errorf("%s %s: %s %q, want the missing tag named", rt.Name, v, r.Status, r.Msg)
				}
				continue
			}
			if r.Status != OK {
				t.Errorf("%s %s (%s): %s %q, want OK", rt.Name, v, rt.Variant.Family, r.Status, r.Msg)
			}
		}
	}
	for _, f := range runtimes.Families {
		if !families[f] {
			t.Errorf("the families list has no %s runtime", f)
		}
	}
}

// TestFromThatIsNotTheVariantFails: a Dockerfile whose FROM pulls another
// variant than the list names fails, naming both, before any registry is
// asked.
func TestFromThatIsNotTheVariantFails(t *testing.T) {
	list := familiesList(t, "registry.invalid", nil)
	var ubuntu, debian string
	for _, rt := range list.Runtimes {
		switch rt.Variant.Family {
		case runtimes.Ubuntu:
			ubuntu = rt.Name
		case runtimes.Debian:
			debian = rt.Name
		}
	}
	list = familiesList(t, "registry.invalid", map[string]string{ubuntu: debian})
	refs, err := BaseRefs(list)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range CheckBases(context.Background(), refs, name.Insecure) {
		b := refs[i]
		if b.Runtime != ubuntu {
			continue
		}
		if r.Status != Fail || !strings.Contains(r.Msg, "the Dockerfile's FROM pulls "+b.Ref+", but the list's variant names "+b.Listed) || b.Ref == b.Listed {
			t.Errorf("%s %s: %s %q, want a failure naming %s and %s", b.Runtime, b.Version, r.Status, r.Msg, b.Ref, b.Listed)
		}
	}
}

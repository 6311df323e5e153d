package rehearsal

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/runtimes"
)

// familiesList is one runtime of each distribution family, as the scaffold
// writes it.
const familiesList = "../../testdata/runtimes/families/runtimes.yaml"

// pipelineOf is the Build, Verify and Publish entries the app makes of a
// list, as far as the selection reads them.
func pipelineOf(l *runtimes.List) *Pipeline {
	var build, verify, publish []Entry
	for _, img := range l.Images() {
		vars := []Var{{"RUNTIME", img.Runtime.Name}, {"VERSION", img.Version}, {"ARCH", string(img.Arch)}, {"BASE_IMAGE", img.Runtime.BaseImage}}
		build = append(build, Entry{ID: img.Identifier(), Vars: vars})
		verify = append(verify, Entry{ID: img.Identifier(), Vars: vars})
	}
	for _, rel := range l.Releases() {
		var archs []string
		for _, a := range rel.Runtime.Architectures {
			archs = append(archs, string(a))
		}
		publish = append(publish, Entry{ID: rel.Identifier(), Vars: []Var{{"RUNTIME", rel.Runtime.Name}, {"VERSION", rel.Version}, {"ARCHITECTURES", strings.Join(archs, " ")}}})
	}
	return &Pipeline{Actions: []Action{
		{Stage: "Build", Spec: Buildspec{Entries: build}},
		{Stage: "Verify", Spec: Buildspec{Entries: verify}},
		{Stage: "Publish", Spec: Buildspec{Entries: publish}},
	}}
}

func variantsOf(l *runtimes.List) map[string]runtimes.Variant {
	out := map[string]runtimes.Variant{}
	for _, rt := range l.Runtimes {
		out[rt.Name] = rt.Variant
	}
	return out
}

// TestStandInsExistForDebianTrixieOnly: a base of another family or release
// has no stand-in, and the reason names its image, tag and family; the
// default list's bases keep theirs.
func TestStandInsExistForDebianTrixieOnly(t *testing.T) {
	for _, path := range []string{familiesList, "../../" + runtimes.DefaultPath} {
		l, err := runtimes.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, rel := range l.Releases() {
			rt := rel.Runtime
			b := BaseSpec{Image: rt.BaseImage, Version: rel.Version, Variant: rt.Variant}
			ok, why := StandInFor(b)
			trixie := rt.Variant.Family == runtimes.Debian && rt.Variant.Release == StandInRelease
			if b.Tag() != rt.Variant.BaseTag(rel.Version) {
				t.Errorf("%s %s: stand-in tag %s, want the variant's %s", rt.Name, rel.Version, b.Tag(), rt.Variant.BaseTag(rel.Version))
			}
			if !trixie {
				if ok || !strings.Contains(why, "no stand-in for "+rt.BaseImage+":"+b.Tag()+" ("+string(rt.Variant.Family)) || !strings.Contains(why, "recorded from a real image") {
					t.Errorf("%s %s (%s %s): stand-in %v %q, want none, with the image, tag and family named", rt.Name, rel.Version, rt.Variant.Family, rt.Variant.Release, ok, why)
				}
				continue
			}
			// On trixie, what decides is whether the runtime can be installed.
			want := rt.BaseImage == "node" || (rt.BaseImage == "python" && rel.Version == TrixiePython)
			if ok != want {
				t.Errorf("%s %s: stand-in %v (%s), want %v", rt.Name, rel.Version, ok, why, want)
			}
		}
	}
}

// TestNotRehearsedRowsNameTheVariant: the rehearsal's table lists every
// entry of a runtime whose base has no stand-in as NOT REHEARSED, with the
// reason, for Build, Verify and Publish alike, and selects the others.
func TestNotRehearsedRowsNameTheVariant(t *testing.T) {
	l, err := runtimes.Load(familiesList)
	if err != nil {
		t.Fatal(err)
	}
	for _, subset := range []string{"full", "ci"} {
		r := &rehearsal{o: Options{Subset: subset}, pl: pipelineOf(l), variants: variantsOf(l)}
		builds, pubs, skipped := r.selectEntries()
		rows := map[string]Row{}
		for _, s := range skipped {
			rows[s.Entry+" "+s.Step] = s
			if subset == "full" {
				t.Logf("%s %s: %s: %s", s.Entry, s.Step, s.Result, s.Detail)
			}
		}
		var built []string
		for _, b := range builds {
			built = append(built, b.Build.ID)
		}
		var published []string
		for _, p := range pubs {
			published = append(published, p.Entry.ID)
		}
		for _, img := range l.Images() {
			ok, why := StandInFor(BaseSpec{img.Runtime.BaseImage, img.Version, img.Runtime.Variant})
			row, isSkipped := rows[img.Identifier()+" build+verify"]
			switch {
			case !ok && (row.Result != "NOT REHEARSED" || row.Detail != why):
				t.Errorf("subset %s: %s: row %+v, want NOT REHEARSED: %s", subset, img.Identifier(), row, why)
			case ok && !isSkipped && !slices.Contains(built, img.Identifier()):
				t.Errorf("subset %s: %s has a stand-in but is neither built nor in the table", subset, img.Identifier())
			}
		}
		for _, rel := range l.Releases() {
			ok, why := StandInFor(BaseSpec{rel.Runtime.BaseImage, rel.Version, rel.Runtime.Variant})
			row := rows[rel.Identifier()+" publish"]
			if !ok && (row.Result != "NOT REHEARSED" || !strings.HasSuffix(row.Detail, ": "+why)) {
				t.Errorf("subset %s: publish %s: row %+v, want NOT REHEARSED ending with %q", subset, rel.Identifier(), row, why)
			}
			if ok && subset == "full" && !slices.Contains(published, rel.Identifier()) {
				t.Errorf("subset full: publish %s has stand-ins but is not rehearsed: %+v", rel.Identifier(), row)
			}
		}
	}
}

// TestVariantsAreTheAppsList: the rehearsal reads the variants of the list
// cdk.json names, the one the template is synthesized from.
func TestVariantsAreTheAppsList(t *testing.T) {
	repo, _ := filepath.Abs("../..")
	got, err := Variants(repo)
	if err != nil {
		t.Fatal(err)
	}
	l, err := runtimes.Load(filepath.Join(repo, runtimes.DefaultPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range l.Runtimes {
		if got[rt.Name] != rt.Variant {
			t.Errorf("%s: variant %+v, want the list's %+v", rt.Name, got[rt.Name], rt.Variant)
		}
	}
	if e := (Entry{Vars: []Var{{"RUNTIME", "not-listed"}, {"VERSION", "22"}, {"BASE_IMAGE", "node"}}}); baseSpecOf(e, got).Tag() != "22-"+runtimes.DefaultVariant {
		t.Errorf("a runtime the list does not name: tag %s, want the default variant's", baseSpecOf(e, got).Tag())
	}
}

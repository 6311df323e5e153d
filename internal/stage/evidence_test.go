package stage

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/evidence"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/internal/referrers"
	"github.com/evergreen-images/evergreen/runtimes"
)

// evidenceOf is what is attached to a digest of the fixture's repository:
// each referrer's artifact type and what its document says.
func (f *fixture) evidenceOf(digest string) map[string][]evidence.Summary {
	f.t.Helper()
	repo, err := name.NewRepository(f.Evidence + "/" + f.Repo)
	if err != nil {
		f.t.Fatal(err)
	}
	descs, err := referrers.List(f.ctx, repo.Digest(digest))
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string][]evidence.Summary{}
	for _, d := range descs {
		r, err := referrers.Fetch(f.ctx, repo, d)
		if err != nil {
			f.t.Fatal(err)
		}
		s, err := evidence.Read(d.ArtifactType, r.Doc)
		if err != nil {
			f.t.Fatalf("the %s attached to %s does not read: %v", d.ArtifactType, digest, err)
		}
		out[d.ArtifactType] = append(out[d.ArtifactType], s)
	}
	return out
}

// evidenceKinds is the artifact types attached to what each moving tag
// names (the retry test's end state).
func (f *fixture) evidenceKinds() map[string][]string {
	out := map[string][]string{}
	for tag, digest := range f.published() {
		if digest == "" {
			continue
		}
		for typ, docs := range f.evidenceOf(digest) {
			for range docs {
				out[tag] = append(out[tag], typ)
			}
		}
		slices.Sort(out[tag])
	}
	return out
}

// Consumers can tell what is in every published image: each image has
// one SBOM and one provenance about it, the index one verdict naming the
// images, all of the commit that was built.
func TestEveryPublishedImageCarriesItsSBOMProvenanceAndTheIndexItsVerdict(t *testing.T) {
	f := newFixture(t)
	exec := executionID("e71de0ce", 1)
	vs := f.buildAndVerify(exec, "v1")
	rec, _ := f.mustPublish(exec)
	for _, a := range f.Env.Architectures {
		ev := f.evidenceOf(rec.Images[a])
		sboms, provs := ev[evidence.ArtifactSBOM], ev[evidence.ArtifactProvenance]
		if len(sboms) != 1 || len(provs) != 1 || len(ev) != 2 {
			t.Fatalf("%s image %s: evidence %v, want one SBOM and one provenance", a, rec.Images[a], ev)
		}
		for _, s := range []evidence.Summary{sboms[0], provs[0]} {
			if s.Subject != rec.Images[a] || s.SourceRevision != vs[a].SourceRevision || s.BaseDigest != vs[a].Inventory.Base.Digest {
				t.Errorf("%s %s: subject %s, revision %s, base %s; want %s, %s, %s", a, s.Kind, s.Subject, s.SourceRevision, s.BaseDigest,
					rec.Images[a], vs[a].SourceRevision, vs[a].Inventory.Base.Digest)
			}
		}
		if want := vs[a].Inventory.Count(); sboms[0].Packages < want {
			t.Errorf("%s SBOM lists %d packages, the inventory %d", a, sboms[0].Packages, want)
		}
		if provs[0].Builder != vs[a].Builder {
			t.Errorf("%s provenance builder %q, want the Build record's %q", a, provs[0].Builder, vs[a].Builder)
		}
	}
	f.expectEvidenceTags(rec)
	ev := f.evidenceOf(rec.Index)
	if v := ev[evidence.ArtifactVerdict]; len(v) != 1 || len(ev) != 1 || v[0].Subject != rec.Index || v[0].Result != records.ResultPublished ||
		!maps.Equal(v[0].Images, rec.Images) {
		t.Errorf("index %s: evidence %+v, want one verdict of this set", rec.Index, ev)
	}
}

// expectEvidenceTags: the current evidence carries the tags that keep it
// (the lifecycle's keep rule for evidence tags), named after its subject's
// moving tag, each naming the document attached to what that tag names.
func (f *fixture) expectEvidenceTags(rec *records.Publish) {
	f.t.Helper()
	repo, _ := name.NewRepository(f.Evidence + "/" + f.Repo)
	subjects := map[string]string{f.Env.Version: rec.Index}
	for _, a := range f.Env.Architectures {
		subjects[runtimes.ArchTag(f.Env.Version, runtimes.Arch(a))] = rec.Images[a]
	}
	for tag, digest := range subjects {
		descs, err := referrers.List(f.ctx, repo.Digest(digest))
		if err != nil {
			f.t.Fatal(err)
		}
		for _, d := range descs {
			et := referrers.EvidenceTag(tag, d.ArtifactType)
			got, err := remote.Head(repo.Tag(et))
			if err != nil || got.Digest != d.Digest {
				f.t.Errorf("%s: %v %v, want the %s of %s (%s)", et, got, err, d.ArtifactType, tag, d.Digest)
			}
		}
	}
}

// The published digest keeps its evidence: an unchanged day attaches
// nothing new, and a Publish run again attaches the same documents (the
// same digests), not copies.
func TestAnUnchangedDayOrARerunAttachesNothingNew(t *testing.T) {
	f := newFixture(t)
	e1, e2 := executionID("0dd1e000", 1), executionID("0dd1e000", 2)
	f.buildAndVerify(e1, "v1")
	f.mustPublish(e1)
	before := f.evidenceKinds()
	f.mustPublish(e1)
	f.buildAndVerify(e2, "v1")
	if rec, _ := f.mustPublish(e2); rec.Result != records.ResultUnchanged {
		t.Fatalf("result %s, want unchanged", rec.Result)
	}
	if after := f.evidenceKinds(); !equalKinds(before, after) {
		t.Errorf("evidence %v after a re-run and an unchanged day, want %v", after, before)
	}
	for tag, kinds := range before {
		if len(kinds) == 0 {
			t.Errorf("%s has no evidence", tag)
		}
	}
}

// No tag moves to an image without its evidence: when attaching fails,
// Publish stops before the moving tags and says to retry.
func TestNoTagMovesBeforeTheEvidenceIsAttached(t *testing.T) {
	f := newFixture(t)
	exec := executionID("a77ac4ed", 1)
	f.buildAndVerify(exec, "v1")
	fl := &faults{budget: -1}
	c := f.clients(fl, "")
	c.Evidence = refusingEvidence{}
	err := Publish(f.ctx, f.env(exec), c, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "retry the Publish stage") {
		t.Fatalf("Publish with the registry refusing: %v, want a failure saying to retry", err)
	}
	for tag, digest := range f.published() {
		if digest != "" {
			t.Errorf("the moving tag %s names %s, written before its evidence", tag, digest)
		}
	}
}

type refusingEvidence struct{}

func (refusingEvidence) Attached(context.Context, string, string) (map[string]string, error) {
	return nil, nil
}

func (refusingEvidence) Tag(context.Context, string, string, string) error {
	return errors.New("UNAUTHORIZED")
}

func (refusingEvidence) Attach(context.Context, string, awsops.Manifest, string, []byte) (string, error) {
	return "", errors.New("UNAUTHORIZED: authentication required")
}

func equalKinds(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// What Publish attaches passes the consumers' check (evergreen verify's
// referrers.Check, reading the real documents with evidence.Read): on the
// published tag, every image's SBOM and provenance and the index's verdict
// agree. moto has no registry API, so the published manifests are copied,
// by digest, into the registry that holds the evidence, and the tag with
// them, as ECR would serve them.
func TestWhatPublishAttachesPassesTheConsumersCheck(t *testing.T) {
	f := newFixture(t)
	exec := executionID("c0a5e11e", 1)
	f.buildAndVerify(exec, "v1")
	f.mustPublish(exec)
	repo, _ := name.NewRepository(f.Evidence + "/" + f.Repo)
	published := f.published()
	// The images before the index: a registry refuses an index whose
	// children it lacks.
	tags := slices.SortedFunc(maps.Keys(published), func(a, b string) int { return len(b) - len(a) })
	for _, tag := range tags {
		digest := published[tag]
		m, found, err := awsops.GetManifest(f.ctx, f.w.ECR, f.Repo, ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest)})
		if err != nil || !found {
			t.Fatalf("%s@%s: %v", f.Repo, digest, err)
		}
		raw := rawManifest{m.Bytes, types.MediaType(m.MediaType)}
		if err := remote.Put(repo.Digest(digest), raw); err != nil {
			t.Fatal(err)
		}
		if err := remote.Put(repo.Tag(tag), raw); err != nil {
			t.Fatal(err)
		}
	}
	res, err := referrers.Check(f.ctx, repo.Tag(f.Env.Version), evidence.Read)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res.Print(&out)
	t.Log("\n" + out.String())
	if len(res.Problems) > 0 || len(res.Images) != len(f.Env.Architectures) || res.Verdict == nil {
		t.Errorf("the consumers' check of what Publish published:\n%s", out.String())
	}
}

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// An image's evidence is written once. A Publish stopped after its commit
// point, whose drafts are then rebuilt and verified again (the records now
// name other images), completes the committed set, and the set's images
// keep the SBOM and provenance the first attempt attached: no second,
// poorer document of the same kind.
func TestAnImagesEvidenceIsWrittenOnce(t *testing.T) {
	f := newFixture(t)
	exec := executionID("0cce0ced", 1)
	vs := f.buildAndVerify(exec, "v1")
	f.stopAt(exec, runtimes.ArchTag(f.Env.Version, runtimes.Arch(f.Env.Architectures[0])))
	for _, a := range f.Env.Architectures {
		// moto D2: moving the draft tag would delete the committed image
		// (ECR leaves it untagged); another tag keeps it.
		putImage(f, "kept-"+a, imageOf(exec, "v1", a))
		b := f.pushDraft(exec, a, imageOf(exec, "v1-rebuilt", a))
		f.writeVerify(b, inventoryOf("v1", a), cleanScan(b.Digest), nil)
	}
	rec, _ := f.mustPublish(exec)
	for _, a := range f.Env.Architectures {
		if rec.Images[a] != vs[a].Digest {
			t.Fatalf("%s: published %s, want the committed %s", a, rec.Images[a], vs[a].Digest)
		}
		ev := f.evidenceOf(rec.Images[a])
		if len(ev[evidence.ArtifactSBOM]) != 1 || len(ev[evidence.ArtifactProvenance]) != 1 || len(ev) != 2 {
			t.Errorf("%s image %s: evidence %v, want the one SBOM and provenance the first attempt attached", a, rec.Images[a], ev)
		}
	}
	f.expectEvidenceTags(rec)
}

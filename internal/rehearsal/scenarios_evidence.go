package rehearsal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/internal/evidence"
	"github.com/evergreen-images/evergreen/internal/referrers"
)

// The evidence scenarios run once execution 1 has published (after the
// retry scenarios), on what it published:
//
//   - evidence-attached: every published per-architecture image has
//     exactly one SBOM and one provenance statement about it, every
//     published index one verdict naming its images, all of the commit the
//     rehearsal built, and the evidence tags name them. The rehearsal's
//     registry (distribution 2.8) has no Referrers API, so the documents
//     are found through the referrers tag schema (sha256-<hex> tags), as
//     the OCI distribution spec provides and go-containerregistry
//     maintains on push.
//   - evidence-verified: the consumers' check, `evergreen verify` (the
//     Tool stage's binary, logged in with a docker config as a consumer
//     would be), passes on a published tag and on an image by digest, and
//     fails, naming the SBOM, on an image whose SBOM is no longer listed.
func (r *rehearsal) evidenceScenarios(pubs []publishEntry) {
	var attached []string
	fail := func(format string, args ...any) { attached = append(attached, fmt.Sprintf(format, args...)) }
	var total, images, published int
	var checked []publishEntry
	for _, p := range pubs {
		if _, err := r.checkPublished(p); err != nil {
			continue // not published by execution 1 (a scenario made it fail): nothing to check
		}
		published++
		n, err := r.checkEvidence(p)
		if err != nil {
			fail("%s: %v", p.Entry.ID, err)
			continue
		}
		total += n
		images += len(strings.Fields(p.Entry.Get("ARCHITECTURES")))
		checked = append(checked, p)
	}
	switch {
	case published == 0:
		fail("no release of execution 1 was published")
	case len(checked) > 0:
		r.logf("   evidence: %d bytes of documents for %d images of %d releases (%d bytes per image, the verdict included)", total, images, len(checked), total/images)
	}
	r.scenario("evidence-attached", attached)

	var verified []string
	if len(checked) == 0 {
		verified = append(verified, "no published release whose evidence is complete to verify")
	} else if err := r.verifyScenario(checked[0]); err != nil {
		verified = append(verified, err.Error())
	}
	r.scenario("evidence-verified", verified)
}

// checkEvidence checks one published release's evidence and returns the
// bytes of its documents.
func (r *rehearsal) checkEvidence(p publishEntry) (int, error) {
	v := p.Entry.Get("VERSION")
	repo := r.repoRef(p.Entry.Get("REPOSITORY"))
	// Every tag: the published ones and the evidence tags.
	tags, err := r.ecr().tags(repo)
	if err != nil {
		return 0, err
	}
	total := 0
	images := map[string]string{}
	var bases []string
	for _, a := range strings.Fields(p.Entry.Get("ARCHITECTURES")) {
		tag := v + "-" + a
		digest := tags[tag]
		images[a] = digest
		docs, n, err := r.evidenceOf(repo, tag, digest, tags)
		if err != nil {
			return 0, err
		}
		total += n
		sbom, prov := docs[evidence.ArtifactSBOM], docs[evidence.ArtifactProvenance]
		if len(docs) != 2 || sbom == nil || prov == nil {
			return 0, fmt.Errorf("%s (%s) has the evidence %v, want one SBOM and one provenance", tag, digest, slices.Sorted(maps.Keys(docs)))
		}
		for _, s := range []*evidence.Summary{sbom, prov} {
			if s.SourceRevision != r.revision {
				return 0, fmt.Errorf("the %s of %s names the commit %q, the rehearsal built %q", s.Kind, tag, s.SourceRevision, r.revision)
			}
		}
		if sbom.BaseDigest == "" || sbom.BaseDigest != prov.BaseDigest {
			return 0, fmt.Errorf("%s: the SBOM's base %q and the provenance's %q differ", tag, sbom.BaseDigest, prov.BaseDigest)
		}
		bases = append(bases, a+" "+sbom.BaseDigest)
	}
	docs, n, err := r.evidenceOf(repo, v, tags[v], tags)
	if err != nil {
		return 0, err
	}
	total += n
	verdict := docs[evidence.ArtifactVerdict]
	if len(docs) != 1 || verdict == nil {
		return 0, fmt.Errorf("%s (%s) has the evidence %v, want one verdict", v, tags[v], slices.Sorted(maps.Keys(docs)))
	}
	if !maps.Equal(verdict.Images, images) || verdict.SourceRevision != r.revision {
		return 0, fmt.Errorf("the verdict of %s names the images %v of commit %q, want %v of %q", v, verdict.Images, verdict.SourceRevision, images, r.revision)
	}
	r.logf("   evidence of %s %s: %d bytes; verdict %s, %s; bases %s", p.Entry.Get("RUNTIME"), v, total, verdict.Result, verdict.Gate, strings.Join(bases, ", "))
	return total, nil
}

// evidenceOf reads what is attached to digest (the moving tag subjectTag
// names): each document read back by internal/evidence, whose subject
// must be digest, and whose evidence tag must name it.
func (r *rehearsal) evidenceOf(repo name.Repository, subjectTag, digest string, tags map[string]string) (map[string]*evidence.Summary, int, error) {
	if digest == "" {
		return nil, 0, fmt.Errorf("%s names nothing", subjectTag)
	}
	opts := r.ecr().options()
	descs, err := referrers.List(context.Background(), repo.Digest(digest), opts...)
	if err != nil {
		return nil, 0, err
	}
	out := map[string]*evidence.Summary{}
	total := 0
	for _, d := range descs {
		ref, err := referrers.Fetch(context.Background(), repo, d, opts...)
		if err != nil {
			return nil, 0, err
		}
		s, err := evidence.Read(d.ArtifactType, ref.Doc)
		if err != nil {
			return nil, 0, fmt.Errorf("the %s attached to %s: %v", d.ArtifactType, subjectTag, err)
		}
		if s.Subject != digest {
			return nil, 0, fmt.Errorf("the %s attached to %s (%s) is about %s", s.Kind, subjectTag, digest, s.Subject)
		}
		if _, dup := out[d.ArtifactType]; dup {
			return nil, 0, fmt.Errorf("%s has two %s", subjectTag, d.ArtifactType)
		}
		if et := referrers.EvidenceTag(subjectTag, d.ArtifactType); tags[et] != d.Digest.String() {
			return nil, 0, fmt.Errorf("the evidence tag %s names %q, not the %s %s", et, tags[et], s.Kind, d.Digest)
		}
		out[d.ArtifactType] = &s
		total += len(ref.Doc)
		if d.ArtifactType == evidence.ArtifactSBOM && subjectTag == "22-amd64" && strings.HasPrefix(repo.RepositoryStr(), "evergreen/node") && !strings.Contains(repo.RepositoryStr(), "ci-cd") {
			r.countAgainstTheImage(repo, digest, ref.Doc)
		}
	}
	return out, total, nil
}

// countAgainstTheImage logs how many packages the SBOM of node 22 amd64
// lists against what dpkg and npm count inside the image (the measure the
// evidence's SBOM is judged by).
func (r *rehearsal) countAgainstTheImage(repo name.Repository, digest string, sbom []byte) {
	var bom struct {
		Components []struct {
			Purl string `json:"purl"`
		} `json:"components"`
	}
	if err := json.Unmarshal(sbom, &bom); err != nil {
		r.logf("   evidence: the SBOM does not decode: %v", err)
		return
	}
	count := map[string]int{}
	for _, c := range bom.Components {
		typ, _, _ := strings.Cut(strings.TrimPrefix(c.Purl, "pkg:"), "/")
		count[typ]++
	}
	image := repo.Name() + "@" + digest
	cmd := exec.Command(filepath.Join(r.bin, "docker"), "run", "--rm", "--platform", "linux/amd64", "--entrypoint", "sh", image, "-c",
		`dpkg-query -W -f='${db:Status-Abbrev}\n' | grep -c '^ii'; npm ls -g --depth=0 --parseable | tail -n +2 | wc -l`)
	cmd.Env = append(os.Environ(), "PATH="+r.bin+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	out, err := cmd.Output()
	r.logf("   evidence: the SBOM of %s lists %d deb, %d npm, %d generic (runtime), %d oci (base) components; inside the image dpkg and npm ls -g count %q (%v)",
		image, count["deb"], count["npm"], count["generic"], count["oci"], strings.Join(strings.Fields(string(out)), " and "), err)
}

// verifyScenario runs `evergreen verify` as a consumer: on the release's
// tag and on one image by digest it passes; with an image's SBOM taken
// out of its referrers list it fails naming the SBOM.
func (r *rehearsal) verifyScenario(p publishEntry) error {
	dir, ok := r.artifacts["Tool"]
	if !ok {
		return errors.New("no Tool artifact: the Tool stage did not run")
	}
	host := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	bin := filepath.Join(dir, "bin", host, "evergreen")
	cfgDir := filepath.Join(r.work, "consumer-docker-config")
	auth := base64.StdEncoding.EncodeToString([]byte(r.cfg.User + ":" + r.cfg.Password))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.ecrReg.Addr, auth)
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(cfg), 0o600); err != nil {
		return err
	}
	verify := func(ref string) (string, int) {
		cmd := exec.Command(bin, "verify", ref)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		r.logf("   evergreen verify %s: exit %d\n%s", ref, code, indent(out.String()))
		return out.String(), code
	}

	repo := r.repoRef(p.Entry.Get("REPOSITORY"))
	v := p.Entry.Get("VERSION")
	arch := strings.Fields(p.Entry.Get("ARCHITECTURES"))[0]
	tags, err := r.publishedTags(p)
	if err != nil {
		return err
	}
	if _, code := verify(repo.Name() + ":" + v); code != 0 {
		return fmt.Errorf("evergreen verify %s:%s exited %d on a published release", repo.Name(), v, code)
	}
	digest := tags[v+"-"+arch]
	if _, code := verify(repo.Name() + "@" + digest); code != 0 {
		return fmt.Errorf("evergreen verify %s@%s exited %d on a published image", repo.Name(), digest, code)
	}

	// Take the SBOM out of the image's referrers: the registry lists them
	// by the referrers tag schema's index, so that index loses it (as the
	// Referrers API stops listing a deleted referrer). Put back after.
	h, err := v1.NewHash(digest)
	if err != nil {
		return err
	}
	fallback := repo.Tag(h.Algorithm + "-" + h.Hex)
	opts := r.ecr().options()
	idx, err := remote.Index(fallback, opts...)
	if err != nil {
		return fmt.Errorf("reading the referrers index %s: %v", fallback, err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return err
	}
	mt, _ := idx.MediaType()
	var im map[string]any
	if err := json.Unmarshal(raw, &im); err != nil {
		return err
	}
	list, _ := im["manifests"].([]any)
	var kept []any
	for _, m := range list {
		if d, _ := m.(map[string]any); d["artifactType"] != evidence.ArtifactSBOM {
			kept = append(kept, m)
		}
	}
	if len(kept) == len(list) {
		return fmt.Errorf("the referrers index %s lists no SBOM", fallback)
	}
	im["manifests"] = kept
	without, _ := json.Marshal(im)
	put := func(b []byte) error { return remote.Put(fallback, rawIndex{b, mt}, opts...) }
	if err := put(without); err != nil {
		return fmt.Errorf("taking the SBOM out of %s: %v", fallback, err)
	}
	defer func() {
		if err := put(raw); err != nil {
			r.row(Row{"(evidence)", "put the SBOM back", 0, "FAIL", err.Error()})
		}
	}()
	out, code := verify(repo.Name() + ":" + v)
	switch {
	case code != 1:
		return fmt.Errorf("evergreen verify %s:%s exited %d with the %s image's SBOM removed, want 1", repo.Name(), v, code, arch)
	case !strings.Contains(strings.ToLower(out), "sbom") || !strings.Contains(out, digest[:len("sha256:")+12]):
		return fmt.Errorf("evergreen verify, with the %s SBOM removed, did not name the SBOM and the image %s:\n%s", arch, digest, out)
	}
	return nil
}

// evidenceBlobs are the blobs of every referrer in the registry (the
// documents and the empty config): the only blobs Publish may upload.
func (r *rehearsal) evidenceBlobs() (map[string]bool, error) {
	out := map[string]bool{}
	opts := r.ecr().options()
	for _, rp := range r.pl.Repositories {
		repo := r.repoRef(rp.Name)
		tags, err := remote.List(repo, opts...)
		if err != nil {
			continue // a repository nothing was pushed to
		}
		for _, t := range tags {
			if !strings.HasPrefix(t, "sha256-") {
				continue
			}
			idx, err := remote.Index(repo.Tag(t), opts...)
			if err != nil {
				return nil, err
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return nil, err
			}
			for _, d := range im.Manifests {
				img, err := remote.Image(repo.Digest(d.Digest.String()), opts...)
				if err != nil {
					return nil, err
				}
				m, err := img.Manifest()
				if err != nil {
					return nil, err
				}
				out[m.Config.Digest.String()] = true
				for _, l := range m.Layers {
					out[l.Digest.String()] = true
				}
			}
		}
	}
	return out, nil
}

// imageLayersMoved is what a Publish run did with image layers: it reads
// none, and uploads no blob but its evidence (checking first whether the
// registry has it, a HEAD). It returns why not, empty when it kept to that.
func (r *rehearsal) imageLayersMoved(t Traffic) string {
	if len(t.ReadLayers)+len(t.UploadedLayers) == 0 {
		return ""
	}
	ev, err := r.evidenceBlobs()
	if err != nil {
		return "reading the evidence's blobs: " + err.Error()
	}
	var why []string
	for _, d := range t.ReadLayers {
		if !ev[d] {
			why = append(why, "read "+d)
		}
	}
	for _, d := range t.UploadedLayers {
		if !ev[d] {
			why = append(why, "uploaded "+d)
		}
	}
	if len(why) > 0 {
		return fmt.Sprintf("%d blob requests of no evidence's: %s", len(why), strings.Join(why, ", "))
	}
	return ""
}

// rawIndex is an index manifest put as it is.
type rawIndex struct {
	b  []byte
	mt types.MediaType
}

func (r rawIndex) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return r.mt, nil }

func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n      ")
}

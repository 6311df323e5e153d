package stage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/evidence"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/internal/referrers"
)

// Evidence attaches a document to an image of a repository as an OCI
// referrer, and tags it (internal/referrers: the evidence tags). It goes
// through the registry API: ECR's PutImage takes a manifest but not the
// document's blob.
type Evidence interface {
	// Attached is what is attached to a subject already: artifact type ->
	// the referrer's digest.
	Attached(ctx context.Context, repository, subject string) (map[string]string, error)
	Attach(ctx context.Context, repository string, subject awsops.Manifest, artifactType string, doc []byte) (digest string, err error)
	Tag(ctx context.Context, repository, digest, tag string) error
}

// RegistryEvidence attaches through the registry that ECR's login token
// names, logged in with that token (the build role's credentials).
func RegistryEvidence(tokens referrers.TokenGetter, registry string) Evidence {
	return &registryEvidence{tokens: tokens, registry: registry}
}

type registryEvidence struct {
	tokens   referrers.TokenGetter
	registry string

	once sync.Once
	opts []remote.Option
	err  error
}

func (r *registryEvidence) login(ctx context.Context) error {
	r.once.Do(func() {
		auth, err := referrers.ECRAuthenticator(ctx, r.tokens)
		if err != nil {
			r.err = fmt.Errorf("%v (the build role needs ecr:GetAuthorizationToken)", err)
			return
		}
		r.opts = []remote.Option{remote.WithAuth(auth)}
	})
	return r.err
}

func (r *registryEvidence) repository(ctx context.Context, repository string) (name.Repository, error) {
	if err := r.login(ctx); err != nil {
		return name.Repository{}, err
	}
	repo, err := name.NewRepository(r.registry + "/" + repository)
	if err != nil {
		return name.Repository{}, fmt.Errorf("the repository %s/%s: %v", r.registry, repository, err)
	}
	return repo, nil
}

func (r *registryEvidence) Attached(ctx context.Context, repository, subject string) (map[string]string, error) {
	repo, err := r.repository(ctx, repository)
	if err != nil {
		return nil, err
	}
	descs, err := referrers.List(ctx, repo.Digest(subject), r.opts...)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, d := range descs {
		if _, seen := out[d.ArtifactType]; !seen {
			out[d.ArtifactType] = d.Digest.String()
		}
	}
	return out, nil
}

func (r *registryEvidence) Tag(ctx context.Context, repository, digest, tag string) error {
	repo, err := r.repository(ctx, repository)
	if err != nil {
		return err
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return fmt.Errorf("the evidence %s: %v", digest, err)
	}
	return referrers.TagEvidence(ctx, repo, v1.Descriptor{Digest: h}, tag, r.opts...)
}

func (r *registryEvidence) Attach(ctx context.Context, repository string, subject awsops.Manifest, artifactType string, doc []byte) (string, error) {
	repo, err := r.repository(ctx, repository)
	if err != nil {
		return "", err
	}
	h, err := v1.NewHash(subject.Digest)
	if err != nil {
		return "", fmt.Errorf("the subject %s: %v", subject.Digest, err)
	}
	d, err := referrers.Attach(ctx, repo, v1.Descriptor{MediaType: types.MediaType(subject.MediaType), Digest: h, Size: int64(len(subject.Bytes))},
		artifactType, doc, nil, r.opts...)
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

// evidenceBuild is the provenance's account of how the image of one
// architecture was built, from its Build record. It says why not when the
// record cannot tell: it is of another image (a set completed by a retry,
// built by an attempt whose record was overwritten), or was written before
// Build recorded its builder. No provenance is better than a wrong one.
func (p *publisher) evidenceBuild(arch, digest string) (evidence.Build, string) {
	b := evidence.Build{SourceRevision: p.e.SourceRevision, Dockerfile: "runtimes/" + p.e.Runtime + "/Dockerfile", ExecutionID: p.e.ExecutionID}
	r, found := p.records[arch]
	if !found || r.Digest != digest {
		return b, "its Build record names another image"
	}
	b.SourceRevision, b.SourceRepository, b.ExecutionID, b.BuildID = r.SourceRevision, r.SourceRepository, r.ExecutionID, r.BuildID
	b.StartedOn, _ = time.Parse(records.TimeFormat, r.StartedAt)
	b.FinishedOn, _ = time.Parse(records.TimeFormat, r.PushedAt)
	if r.Builder == "" {
		return b, "its Build record was written before Build recorded its builder"
	}
	b.BuilderID, b.BuildType = r.Builder, evidence.BuildTypeCodeBuild
	if strings.HasPrefix(r.Builder, "https://") {
		b.BuildType = evidence.BuildTypeGitHubActions
	}
	return b, ""
}

// attachEvidence attaches, before any tag moves, each image's SBOM and
// provenance and the set's verdict, so that a consumer never pulls a
// published tag without them. The documents are made from records only
// (no clock), so a retried Publish attaches the same bytes: the same
// digests, nothing new.
//
// It returns what it attached, by the moving tag of its subject, for
// tagEvidence.
func (p *publisher) attachEvidence(ctx context.Context, index awsops.Manifest, set map[string]awsops.Manifest, inventories map[string]*records.Inventory,
	verdict evidence.Verdict) ([]attached, error) {
	e := p.e
	var out []attached
	add := func(subject awsops.Manifest, subjectTag, what, artifactType string, render func() ([]byte, error)) error {
		d, err := p.attach(ctx, subject, what, artifactType, render)
		if d != "" {
			out = append(out, attached{subjectTag, artifactType, d})
		}
		return err
	}
	if err := add(index, e.Version, "index", evidence.ArtifactVerdict, func() ([]byte, error) { return evidence.VerdictDocument(verdict) }); err != nil {
		return nil, err
	}
	for _, a := range e.Architectures {
		b, why := p.evidenceBuild(a, set[a].Digest)
		img := evidence.Image{Repository: e.Registry + "/" + e.Repository, Digest: set[a].Digest, Runtime: e.Runtime, Version: e.Version, Arch: a,
			Inventory: inventories[a]}
		if err := add(set[a], p.archTag(a), a, evidence.ArtifactSBOM, func() ([]byte, error) { return evidence.SBOM(img, b) }); err != nil {
			return nil, err
		}
		// Without the build's facts, no provenance is made; one an earlier
		// attempt attached stays (attach looks first).
		if err := add(set[a], p.archTag(a), a, evidence.ArtifactProvenance, func() ([]byte, error) {
			if why != "" {
				return nil, errNoDocument{why}
			}
			return evidence.Provenance(img, b)
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// errNoDocument: a document cannot be made, and is better absent than
// wrong.
type errNoDocument struct{ why string }

func (e errNoDocument) Error() string { return e.why }

// attached is one document attached to the image a moving tag names.
type attached struct{ subjectTag, artifactType, digest string }

// tagEvidence gives the current evidence the tags that keep it
// (internal/referrers, evidence tags), once the moving tags name its
// subjects.
func (p *publisher) tagEvidence(ctx context.Context, docs []attached) error {
	for _, d := range docs {
		tag := referrers.EvidenceTag(d.subjectTag, d.artifactType)
		if err := p.write(p.e.Repository+":"+tag, func() (bool, error) { return true, p.c.Evidence.Tag(ctx, p.e.Repository, d.digest, tag) }); err != nil {
			return p.fail("%v", err)
		}
	}
	return nil
}

// verdict is what Publish compared and decided for the set it publishes.
// It is checked as of the set's commit point (the index's push), not the
// clock, so that a retry makes the same document.
func (p *publisher) verdict(set records.Set, previous *records.Set, committedAt string,
	changes map[string]*records.Changes, vulns map[string]*records.Vulnerabilities) evidence.Verdict {
	e := p.e
	rec := records.Publish{Result: records.ResultPublished, ExecutionID: e.ExecutionID, Runtime: e.Runtime, Version: e.Version,
		Repository: e.Repository, Registry: e.Registry, Index: set.Index, DatedTag: set.DatedTag, Images: set.Images, Previous: previous,
		Changes: changes, Vulnerabilities: vulns, CheckedAt: committedAt}
	revision := e.SourceRevision
	for _, a := range e.Architectures {
		if r := p.records[a]; r.SourceRevision != "" {
			revision = r.SourceRevision
			break
		}
	}
	return evidence.VerdictFrom(&rec, p.gate, revision)
}

func (p *publisher) attach(ctx context.Context, subject awsops.Manifest, what, artifactType string, render func() ([]byte, error)) (string, error) {
	// A digest's evidence is written once: what an earlier attempt attached
	// stays (a retry may know less of the build: its Build record may name
	// a rebuilt image, see evidenceBuild), so a subject never carries two
	// documents of one kind.
	have, err := p.c.Evidence.Attached(ctx, p.e.Repository, subject.Digest)
	if err != nil {
		return "", p.fail("listing what is attached to %s: %v", subject.Digest, err)
	}
	if d := have[artifactType]; d != "" {
		fmt.Fprintf(p.out, "%s %s of %s: attached already as %s\n", what, artifactType, subject.Digest, d)
		return d, nil
	}
	doc, err := render()
	var none errNoDocument
	if errors.As(err, &none) {
		fmt.Fprintf(p.out, "no %s %s for %s: %s\n", what, artifactType, subject.Digest, none.why)
		return "", nil
	}
	if err != nil {
		return "", p.fail("making the %s %s of %s: %v", what, artifactType, subject.Digest, err)
	}
	start := p.now()
	var digest string
	err = p.write(fmt.Sprintf("%s@%s's %s", p.e.Repository, subject.Digest, artifactType), func() (bool, error) {
		var err error
		digest, err = p.c.Evidence.Attach(ctx, p.e.Repository, subject, artifactType, doc)
		return err == nil, err
	})
	if err != nil {
		return "", p.fail("attaching the %s %s to %s: %v", what, artifactType, subject.Digest, err)
	}
	fmt.Fprintf(p.out, "attached %s %s (%d bytes) to %s as %s in %.1f s\n", what, artifactType, len(doc), subject.Digest, digest, p.now().Sub(start).Seconds())
	return digest, nil
}

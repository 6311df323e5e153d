package stage

import (
	"context"
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
// referrer. It goes through the registry API: ECR's PutImage takes a
// manifest but not the document's blob.
type Evidence interface {
	Attach(ctx context.Context, repository string, subject awsops.Manifest, artifactType string, doc []byte) (digest string, err error)
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

func (r *registryEvidence) Attach(ctx context.Context, repository string, subject awsops.Manifest, artifactType string, doc []byte) (string, error) {
	r.once.Do(func() {
		auth, err := referrers.ECRAuthenticator(ctx, r.tokens)
		if err != nil {
			r.err = fmt.Errorf("%v (the build role needs ecr:GetAuthorizationToken)", err)
			return
		}
		r.opts = []remote.Option{remote.WithAuth(auth)}
	})
	if r.err != nil {
		return "", r.err
	}
	repo, err := name.NewRepository(r.registry + "/" + repository)
	if err != nil {
		return "", fmt.Errorf("the repository %s/%s: %v", r.registry, repository, err)
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
	r, found := p.records[arch]
	switch {
	case !found || r.Digest != digest:
		return evidence.Build{}, "its Build record names another image"
	case r.Builder == "":
		return evidence.Build{}, "its Build record was written before Build recorded its builder"
	}
	b := evidence.Build{
		BuilderID:        r.Builder,
		BuildType:        evidence.BuildTypeCodeBuild,
		SourceRepository: r.SourceRepository,
		SourceRevision:   r.SourceRevision,
		Dockerfile:       "runtimes/" + p.e.Runtime + "/Dockerfile",
		ExecutionID:      r.ExecutionID,
		BuildID:          r.BuildID,
	}
	if strings.HasPrefix(r.Builder, "https://") {
		b.BuildType = evidence.BuildTypeGitHubActions
	}
	b.StartedOn, _ = time.Parse(records.TimeFormat, r.StartedAt)
	b.FinishedOn, _ = time.Parse(records.TimeFormat, r.PushedAt)
	return b, ""
}

// attachEvidence attaches, before any tag moves, each image's SBOM and
// provenance and the set's verdict, so that a consumer never pulls a
// published tag without them. The documents are made from records only
// (no clock), so a retried Publish attaches the same bytes: the same
// digests, nothing new.
func (p *publisher) attachEvidence(ctx context.Context, index awsops.Manifest, set map[string]awsops.Manifest, inventories map[string]*records.Inventory, verdict evidence.Verdict) error {
	e := p.e
	if err := p.attach(ctx, index, "index", evidence.ArtifactVerdict, func() ([]byte, error) { return evidence.VerdictDocument(verdict) }); err != nil {
		return err
	}
	for _, a := range e.Architectures {
		b, why := p.evidenceBuild(a, set[a].Digest)
		img := evidence.Image{Repository: e.Registry + "/" + e.Repository, Digest: set[a].Digest, Runtime: e.Runtime, Version: e.Version, Arch: a,
			Inventory: inventories[a]}
		if err := p.attach(ctx, set[a], a, evidence.ArtifactSBOM, func() ([]byte, error) { return evidence.SBOM(img, b) }); err != nil {
			return err
		}
		if why != "" {
			fmt.Fprintf(p.out, "no provenance for the %s image %s: %s\n", a, set[a].Digest, why)
			continue
		}
		if err := p.attach(ctx, set[a], a, evidence.ArtifactProvenance, func() ([]byte, error) { return evidence.Provenance(img, b) }); err != nil {
			return err
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

func (p *publisher) attach(ctx context.Context, subject awsops.Manifest, what, artifactType string, render func() ([]byte, error)) error {
	doc, err := render()
	if err != nil {
		return p.fail("making the %s %s of %s: %v", what, artifactType, subject.Digest, err)
	}
	start := p.now()
	var digest string
	err = p.write(fmt.Sprintf("%s@%s's %s", p.e.Repository, subject.Digest, artifactType), func() (bool, error) {
		var err error
		digest, err = p.c.Evidence.Attach(ctx, p.e.Repository, subject, artifactType, doc)
		return err == nil, err
	})
	if err != nil {
		return p.fail("attaching the %s %s to %s: %v", what, artifactType, subject.Digest, err)
	}
	fmt.Fprintf(p.out, "attached %s %s (%d bytes) to %s as %s in %.1f s\n", what, artifactType, len(doc), subject.Digest, digest, p.now().Sub(start).Seconds())
	return nil
}

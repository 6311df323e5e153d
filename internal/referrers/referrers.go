// Package referrers attaches documents to images as OCI 1.1 referrers and
// reads them back: an artifact manifest whose subject is the image, found
// through the registry's Referrers API, or, on registries without it, the
// referrers tag schema of the OCI distribution spec (an index under the tag
// sha256-<hex>, which go-containerregistry's remote package maintains on push
// and reads on listing when GET /v2/<name>/referrers/<digest> is not served).
//
// ECR serves the Referrers API (OCI 1.1 support, June 2024), so Publish's
// pushes there leave no fallback tag; distribution 2.8 (the rehearsal's
// registry) does not, and gets the fallback index.
package referrers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// emptyConfig is the OCI 1.1 empty descriptor's content: an artifact with
// no configuration of its own points its config at these two bytes.
var emptyConfig = []byte("{}")

// MaxDocumentBytes bounds what Fetch reads of one document: the SBOM of an
// image with every Debian, npm and pip package is a few hundred KB; a
// referrer that claims more is refused rather than read into memory.
const MaxDocumentBytes = 32 << 20

// Manifest builds the referrer manifest for doc: artifactType, the empty
// config, one layer (the document, its media type the artifact type) and
// the subject. The bytes depend only on the arguments: encoding/json writes
// the annotations' keys sorted, and nothing here reads the clock, so the
// same document attached again has the same digest and a retried Publish
// adds nothing.
func Manifest(subject v1.Descriptor, artifactType string, doc []byte, annotations map[string]string) ([]byte, error) {
	if artifactType == "" {
		return nil, fmt.Errorf("attaching a document to %s: no artifact type", subject.Digest)
	}
	if subject.Digest.Hex == "" || subject.MediaType == "" || subject.Size <= 0 {
		return nil, fmt.Errorf("attaching %s: the subject needs a digest, a media type and a size (got %+v)", artifactType, subject)
	}
	docDigest, docSize, err := v1.SHA256(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	cfgDigest, cfgSize, err := v1.SHA256(bytes.NewReader(emptyConfig))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Digest: cfgDigest, Size: cfgSize},
		Layers:        []v1.Descriptor{{MediaType: types.MediaType(artifactType), Digest: docDigest, Size: docSize}},
		// Only what the subject is, not its platform or annotations: the
		// spec's descriptor, and the same bytes whatever the caller held.
		Subject:     &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations: annotations,
	}
	if len(m.Annotations) == 0 {
		m.Annotations = nil
	}
	return json.Marshal(m)
}

// rawManifest is a manifest to put as it is.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// Attach pushes doc as a referrer of subject into repo, untagged, by
// digest, and returns the referrer's descriptor (with its artifact type, as
// a referrers list shows it). The blobs are pushed first (the document and
// the empty config; a registry that has them answers the existence check
// and nothing is uploaded), then the manifest. Annotations come only from
// the caller: org.opencontainers.image.created, when wanted, is the build's
// time, never the clock's, or every retry would attach a new copy.
func Attach(ctx context.Context, repo name.Repository, subject v1.Descriptor, artifactType string, doc []byte, annotations map[string]string, opts ...remote.Option) (v1.Descriptor, error) {
	raw, err := Manifest(subject, artifactType, doc, annotations)
	if err != nil {
		return v1.Descriptor{}, err
	}
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	for _, blob := range []v1.Layer{static.NewLayer(emptyConfig, types.OCIEmptyJSON), static.NewLayer(doc, types.MediaType(artifactType))} {
		if err := remote.WriteLayer(repo, blob, opts...); err != nil {
			return v1.Descriptor{}, fmt.Errorf("attaching %s to %s@%s: pushing a blob: %w", artifactType, repo, subject.Digest, err)
		}
	}
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, err
	}
	// remote.Put, when the registry answers GET /v2/<name>/referrers/<digest>
	// with anything but 200, adds the manifest to the referrers tag schema's
	// index (sha256-<hex> of the subject) itself, once.
	//
	// That index is read, extended and written back: two Publish runs
	// attaching to one subject at once (a console retry while the stage
	// runs) race on it, and the registry refuses the loser's write (400,
	// MANIFEST_BLOB_UNKNOWN or DIGEST_INVALID from distribution 2.8, found
	// by the rehearsal). Putting again reads the winner's index and adds to
	// it; the manifest itself is put by digest, the same bytes each time.
	var perr error
	for attempt := 0; attempt < putAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return v1.Descriptor{}, ctx.Err()
			case <-time.After(time.Duration(attempt) * putRetryDelay):
			}
		}
		if perr = remote.Put(repo.Digest(d.String()), rawManifest{raw, types.OCIManifestSchema1}, opts...); perr == nil {
			break
		}
	}
	if perr != nil {
		return v1.Descriptor{}, fmt.Errorf("attaching %s to %s@%s: pushing the referrer manifest: %w", artifactType, repo, subject.Digest, perr)
	}
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: size, ArtifactType: artifactType, Annotations: annotations}, nil
}

// putAttempts and putRetryDelay bound Attach's retries of the manifest put.
const (
	putAttempts   = 4
	putRetryDelay = 300 * time.Millisecond
)

// List returns the referrers of subject, sorted by artifact type, then
// digest. Each descriptor's ArtifactType is the manifest's own: when the
// list does not carry it, or carries the empty config's media type instead
// (go-containerregistry's pkg/registry reports config.mediaType, and ghcr's
// fallback index was reported to, NVIDIA/aicr#1957), the manifest is read
// to find it, so that a check by artifact type is never fooled by the list.
func List(ctx context.Context, subject name.Digest, opts ...remote.Option) ([]v1.Descriptor, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	idx, err := remote.Referrers(subject, opts...)
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", subject, err)
	}
	var out []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, d := range im.Manifests {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		if d.ArtifactType == "" || d.ArtifactType == string(types.OCIEmptyJSON) {
			m, err := manifest(subject.Context(), d, opts)
			if err != nil {
				// Listed but unreadable: a referrer deleted from a registry
				// that keeps the fallback index (nothing updates the index
				// on delete). Kept, without a type, for the caller to report.
				d.ArtifactType = ""
			} else {
				d.ArtifactType = m.ArtifactType
				if d.ArtifactType == "" {
					d.ArtifactType = string(m.Config.MediaType)
				}
			}
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b v1.Descriptor) int {
		if c := strings.Compare(a.ArtifactType, b.ArtifactType); c != 0 {
			return c
		}
		return strings.Compare(a.Digest.String(), b.Digest.String())
	})
	return out, nil
}

// Referrer is a fetched referrer: its manifest and its document.
type Referrer struct {
	Manifest v1.Manifest
	Doc      []byte
}

func manifest(repo name.Repository, desc v1.Descriptor, opts []remote.Option) (v1.Manifest, error) {
	// By digest: remote.Get checks that the bytes hash to it.
	rd, err := remote.Get(repo.Digest(desc.Digest.String()), opts...)
	if err != nil {
		return v1.Manifest{}, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(rd.Manifest, &m); err != nil {
		return v1.Manifest{}, fmt.Errorf("reading the manifest %s: %w", desc.Digest, err)
	}
	return m, nil
}

// Fetch reads a referrer's manifest and its one document. A referrer with
// no layer, or several, is not one of ours and is refused.
func Fetch(ctx context.Context, repo name.Repository, desc v1.Descriptor, opts ...remote.Option) (Referrer, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	m, err := manifest(repo, desc, opts)
	if err != nil {
		return Referrer{}, fmt.Errorf("fetching the referrer %s from %s: %w", desc.Digest, repo, err)
	}
	if len(m.Layers) != 1 {
		return Referrer{}, fmt.Errorf("the referrer %s in %s has %d layers, want one document", desc.Digest, repo, len(m.Layers))
	}
	l := m.Layers[0]
	if l.Size > MaxDocumentBytes {
		return Referrer{}, fmt.Errorf("the referrer %s in %s has a %d-byte document, over the %d bytes read", desc.Digest, repo, l.Size, MaxDocumentBytes)
	}
	layer, err := remote.Layer(repo.Digest(l.Digest.String()), opts...)
	if err != nil {
		return Referrer{}, fmt.Errorf("fetching the document %s of %s: %w", l.Digest, desc.Digest, err)
	}
	rc, err := layer.Compressed() // the blob as stored; checked against its digest as it is read
	if err != nil {
		return Referrer{}, fmt.Errorf("fetching the document %s of %s: %w", l.Digest, desc.Digest, err)
	}
	defer rc.Close()
	doc, err := io.ReadAll(io.LimitReader(rc, MaxDocumentBytes+1))
	if err != nil {
		return Referrer{}, fmt.Errorf("reading the document %s of %s: %w", l.Digest, desc.Digest, err)
	}
	if int64(len(doc)) != l.Size {
		return Referrer{}, fmt.Errorf("the document %s of %s has %d bytes, its descriptor says %d", l.Digest, desc.Digest, len(doc), l.Size)
	}
	return Referrer{Manifest: m, Doc: doc}, nil
}

package rehearsal

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The ECR stand-in: ECR's API as the SDK sees it (the JSON 1.1 protocol:
// POST /, X-Amz-Target AmazonEC2ContainerRegistry_V20150921.<Op>, bodies
// with the API's member names, timestamps as epoch seconds), answered from
// the local registry that stands in for ECR's. moto has an ECR API, but it
// cannot see the images that docker pushes to a registry (moto has none),
// and it deviates from ECR where Publish depends on it (aws-facts.md:
// digests, exclusion filters, ImageTagAlreadyExistsException, untagged
// images, index children): so this one server, over the real registry,
// is the rehearsal's ECR. The pipeline's binary reaches it through
// AWS_ENDPOINT_URL_ECR (and AWS_ENDPOINT_URL_ECR_PUBLIC for ECR Public's
// GetAuthorizationToken, which moto lacks).

// APIError is a service error as ECR's JSON protocol returns it: HTTP 400
// and {"__type": Code, "message": ...}.
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func apiError(code, format string, args ...any) error {
	return &APIError{code, fmt.Sprintf(format, args...)}
}

// ECR answers the operations against one registry.
type ECR struct {
	Cfg *StandInConfig
	Now func() time.Time
	// Transport is used for registry requests (tests use an in-process one).
	Transport http.RoundTripper
}

// ImageID is ECR's ImageIdentifier.
type ImageID struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

// ecrRequest is the union of the members of the requests the stand-in
// answers; each operation reads its own.
type ecrRequest struct {
	RegistryID             string    `json:"registryId"`
	RepositoryName         string    `json:"repositoryName"`
	RepositoryNames        []string  `json:"repositoryNames"`
	ImageIDs               []ImageID `json:"imageIds"`
	ImageID                *ImageID  `json:"imageId"`
	AcceptedMediaTypes     []string  `json:"acceptedMediaTypes"`
	ImageManifest          string    `json:"imageManifest"`
	ImageManifestMediaType string    `json:"imageManifestMediaType"`
	ImageTag               string    `json:"imageTag"`
	ImageDigest            string    `json:"imageDigest"`
	Filter                 *struct {
		TagStatus string `json:"tagStatus"`
	} `json:"filter"`
	MaxResults int    `json:"maxResults"`
	NextToken  string `json:"nextToken"`
}

const (
	ecrTargetPrefix       = "AmazonEC2ContainerRegistry_V20150921."
	ecrPublicTargetPrefix = "SpencerFrontendService."
)

// ServeHTTP answers one API call.
func (e *ECR) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	target := req.Header.Get("X-Amz-Target")
	body, err := io.ReadAll(req.Body)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, &APIError{"SerializationException", err.Error()})
		return
	}
	out, err := e.Call(target, body)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			writeAPIError(w, http.StatusBadRequest, ae)
			return
		}
		// A failure of the stand-in itself: a 500 the SDK retries, then
		// reports; the message says what broke.
		writeAPIError(w, http.StatusInternalServerError, &APIError{"ServerException", "rehearsal stand-in: " + err.Error()})
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeAPIError(w, http.StatusInternalServerError, &APIError{"ServerException", err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
}

func writeAPIError(w http.ResponseWriter, status int, e *APIError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
	w.Write(b)
}

// Call runs the operation target (X-Amz-Target) with a JSON request body.
func (e *ECR) Call(target string, body []byte) (any, error) {
	var in ecrRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, apiError("SerializationException", "%v", err)
		}
	}
	if op, ok := strings.CutPrefix(target, ecrPublicTargetPrefix); ok {
		if op != "GetAuthorizationToken" {
			return nil, apiError("UnknownOperationException", "the rehearsal stands in for ECR Public's GetAuthorizationToken only, not %s", op)
		}
		// public.ecr.aws is the base images' stand-in registry, which is
		// anonymous: the docker stand-in logs in there with any token.
		return map[string]any{"authorizationData": map[string]any{
			"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:ecr-public-stand-in-token")),
			"expiresAt":          epoch(e.Now().Add(12 * time.Hour)),
		}}, nil
	}
	op, ok := strings.CutPrefix(target, ecrTargetPrefix)
	if !ok {
		return nil, apiError("UnknownOperationException", "unknown X-Amz-Target %q", target)
	}
	if e.Cfg.countCall(op, []string{in.RepositoryName}) {
		return nil, apiError("ThrottlingException", "Rate exceeded (injected by the rehearsal: a call failing half way through a stage)")
	}
	switch op {
	case "DescribeImages", "BatchGetImage", "ListImages", "DescribeImageScanFindings", "StartImageScan", "DescribeImageSigningStatus":
		unlock, err := e.Cfg.RLock()
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	switch op {
	case "GetAuthorizationToken":
		// The registry's htpasswd user and password, as ECR hands out a
		// token that `docker login` takes as AWS:<password>.
		return map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": base64.StdEncoding.EncodeToString([]byte(e.Cfg.User + ":" + e.Cfg.Password)),
			"expiresAt":          epoch(e.Now().Add(12 * time.Hour)),
			"proxyEndpoint":      "https://" + e.Cfg.Registry,
		}}}, nil
	case "DescribeRepositories":
		return e.describeRepositories(in)
	case "DescribeImages":
		return e.describeImages(in)
	case "BatchGetImage":
		return e.batchGetImage(in)
	case "PutImage":
		return e.putImage(in)
	case "ListImages":
		return e.listImages(in)
	case "BatchDeleteImage":
		return e.batchDeleteImage(in)
	case "DescribeImageScanFindings":
		return e.describeImageScanFindings(in)
	case "StartImageScan":
		return e.startImageScan(in)
	case "DescribeImageSigningStatus":
		return e.describeImageSigningStatus(in)
	}
	return nil, apiError("UnknownOperationException", "the rehearsal does not stand in for ECR's %s", op)
}

// epoch is the JSON protocol's timestamp: seconds since 1970, fractional.
func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// --- the registry ---------------------------------------------------------------

func (e *ECR) options() []remote.Option {
	var auth authn.Authenticator = authn.Anonymous
	if e.Cfg.User != "" {
		auth = &authn.Basic{Username: e.Cfg.User, Password: e.Cfg.Password}
	}
	o := []remote.Option{remote.WithAuth(auth)}
	if e.Transport != nil {
		o = append(o, remote.WithTransport(e.Transport))
	}
	return o
}

func (e *ECR) repoRef(repo string) (name.Repository, Repository, error) {
	r, ok := e.Cfg.Repo(repo)
	if !ok {
		return name.Repository{}, r, apiError("RepositoryNotFoundException",
			"The repository with name '%s' does not exist in the registry with id '%s'", repo, e.Cfg.Account)
	}
	ref, err := name.NewRepository(e.Cfg.Registry+"/"+repo, name.Insecure)
	return ref, r, err
}

func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

type manifest struct {
	Digest    string
	MediaType string
	Raw       []byte
}

// get fetches a manifest by tag or digest; nil when there is none.
func (e *ECR) get(repo name.Repository, ref string) (*manifest, error) {
	var r name.Reference
	var err error
	if strings.HasPrefix(ref, "sha256:") {
		r, err = name.NewDigest(repo.Name()+"@"+ref, name.Insecure)
	} else {
		r, err = name.NewTag(repo.Name()+":"+ref, name.Insecure)
	}
	if err != nil {
		return nil, apiError("InvalidParameterException", "Invalid parameter at 'imageId': %v", err)
	}
	d, err := remote.Get(r, e.options()...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &manifest{Digest: d.Digest.String(), MediaType: string(d.MediaType), Raw: d.Manifest}, nil
}

// tags maps every tag of repo to its digest.
func (e *ECR) tags(repo name.Repository) (map[string]string, error) {
	list, err := remote.List(repo, e.options()...)
	if isNotFound(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, t := range list {
		d, err := remote.Head(repo.Tag(t), e.options()...)
		if isNotFound(err) {
			continue // the registry lists a tag whose manifest was deleted
		}
		if err != nil {
			return nil, err
		}
		out[t] = d.Digest.String()
	}
	return out, nil
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

func (e *ECR) put(repo name.Repository, tag string, raw []byte, mt string) error {
	return remote.Put(repo.Tag(tag), rawManifest{raw, types.MediaType(mt)}, e.options()...)
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func isIndex(mt string) bool {
	return mt == string(types.OCIImageIndex) || mt == string(types.DockerManifestList)
}

type ociManifest struct {
	MediaType string `json:"mediaType"`
	Config    struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"config"`
	Layers []struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"layers"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
}

// --- operations ------------------------------------------------------------------

func (e *ECR) describeRepositories(in ecrRequest) (any, error) {
	names := in.RepositoryNames
	if len(names) == 0 {
		for _, r := range e.Cfg.Repositories {
			names = append(names, r.Name)
		}
	}
	var out []map[string]any
	for _, n := range names {
		_, r, err := e.repoRef(n)
		if err != nil {
			return nil, err
		}
		rep := map[string]any{
			"registryId": e.Cfg.Account, "repositoryName": r.Name,
			"repositoryArn":      "arn:aws:ecr:" + e.Cfg.Region + ":" + e.Cfg.Account + ":repository/" + r.Name,
			"repositoryUri":      e.Cfg.Registry + "/" + r.Name,
			"imageTagMutability": r.Mutability,
		}
		if len(r.Exclusions) > 0 {
			var fs []map[string]string
			for _, x := range r.Exclusions {
				fs = append(fs, map[string]string{"filterType": "WILDCARD", "filter": x})
			}
			rep["imageTagMutabilityExclusionFilters"] = fs
		}
		out = append(out, rep)
	}
	return map[string]any{"repositories": out}, nil
}

type imageDetail struct {
	RegistryID             string   `json:"registryId"`
	RepositoryName         string   `json:"repositoryName"`
	ImageDigest            string   `json:"imageDigest"`
	ImageTags              []string `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64    `json:"imageSizeInBytes"`
	ImagePushedAt          float64  `json:"imagePushedAt"`
	ImageManifestMediaType string   `json:"imageManifestMediaType"`
	ArtifactMediaType      string   `json:"artifactMediaType,omitempty"`
}

func (e *ECR) describeImages(in ecrRequest) (any, error) {
	repo, _, err := e.repoRef(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	tags, err := e.tags(repo)
	if err != nil {
		return nil, err
	}
	ids := in.ImageIDs
	if len(ids) == 0 {
		// Every tagged image: the registry cannot list untagged manifests.
		seen := map[string]bool{}
		for _, t := range slices.Sorted(maps.Keys(tags)) {
			if !seen[tags[t]] {
				seen[tags[t]] = true
				ids = append(ids, ImageID{ImageDigest: tags[t]})
			}
		}
	}
	details := []imageDetail{}
	for _, id := range ids {
		ref := id.ImageDigest
		if ref == "" {
			ref = id.ImageTag
		}
		m, err := e.get(repo, ref)
		if err != nil {
			return nil, err
		}
		if m == nil || (id.ImageDigest != "" && id.ImageTag != "" && tags[id.ImageTag] != id.ImageDigest) {
			return nil, apiError("ImageNotFoundException",
				"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
				nullIfEmpty(id.ImageDigest), nullIfEmpty(id.ImageTag), in.RepositoryName, e.Cfg.Account)
		}
		at, ok, err := e.Cfg.PushedAt(in.RepositoryName, m.Digest)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("no push time recorded for %s@%s (pushed around the stand-ins?)", in.RepositoryName, m.Digest)
		}
		d := imageDetail{
			RegistryID: e.Cfg.Account, RepositoryName: in.RepositoryName, ImageDigest: m.Digest,
			ImagePushedAt: epoch(at), ImageManifestMediaType: m.MediaType,
		}
		for t, dg := range tags {
			if dg == m.Digest {
				d.ImageTags = append(d.ImageTags, t)
			}
		}
		sort.Strings(d.ImageTags)
		var om ociManifest
		if json.Unmarshal(m.Raw, &om) == nil && !isIndex(m.MediaType) {
			for _, l := range om.Layers {
				d.ImageSizeInBytes += l.Size
			}
			d.ArtifactMediaType = map[string]string{
				string(types.DockerManifestSchema2): string(types.DockerConfigJSON),
				string(types.OCIManifestSchema1):    string(types.OCIConfigJSON),
			}[m.MediaType]
		}
		details = append(details, d)
	}
	return map[string]any{"imageDetails": details}, nil
}

func nullIfEmpty(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

type failure struct {
	ImageID       ImageID `json:"imageId"`
	FailureCode   string  `json:"failureCode"`
	FailureReason string  `json:"failureReason"`
}

type image struct {
	RegistryID             string  `json:"registryId"`
	RepositoryName         string  `json:"repositoryName"`
	ImageID                ImageID `json:"imageId"`
	ImageManifest          string  `json:"imageManifest"`
	ImageManifestMediaType string  `json:"imageManifestMediaType"`
}

func (e *ECR) batchGetImage(in ecrRequest) (any, error) {
	repo, _, err := e.repoRef(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if len(in.ImageIDs) == 0 {
		return nil, apiError("InvalidParameterException", "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
	}
	images, failures := []image{}, []failure{}
	for _, id := range in.ImageIDs {
		ref := id.ImageDigest
		if ref == "" {
			ref = id.ImageTag
		}
		m, err := e.get(repo, ref)
		if err != nil {
			return nil, err
		}
		if m == nil {
			failures = append(failures, failure{id, "ImageNotFound", "Requested image not found"})
			continue
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, m.MediaType) {
			failures = append(failures, failure{id, "UnsupportedImageType", fmt.Sprintf("Image's manifest media type %s is not in the accepted media types", m.MediaType)})
			continue
		}
		images = append(images, image{e.Cfg.Account, in.RepositoryName, ImageID{m.Digest, id.ImageTag}, string(m.Raw), m.MediaType})
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func (e *ECR) putImage(in ecrRequest) (any, error) {
	repo, r, err := e.repoRef(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	raw, mt, tag := in.ImageManifest, in.ImageManifestMediaType, in.ImageTag
	if raw == "" {
		return nil, apiError("InvalidParameterException", "Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
	}
	if tag == "" {
		return nil, fmt.Errorf("PutImage without imageTag is not emulated (the registry keeps no untagged manifest)")
	}
	var om ociManifest
	if err := json.Unmarshal([]byte(raw), &om); err != nil {
		return nil, apiError("InvalidParameterException", "Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Invalid JSON syntax'")
	}
	switch {
	case mt == "" && om.MediaType == "":
		return nil, apiError("InvalidParameterException", "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Manifest media type could not be determined; pass imageManifestMediaType'")
	case mt == "":
		mt = om.MediaType
	case om.MediaType != "" && om.MediaType != mt:
		return nil, apiError("InvalidParameterException", "Invalid parameter at 'imageManifestMediaType' failed to satisfy constraint: 'Manifest media type %s does not match the media type %s in the manifest'", mt, om.MediaType)
	}
	digest := digestOf([]byte(raw))
	if in.ImageDigest != "" && in.ImageDigest != digest {
		return nil, apiError("ImageDigestDoesNotMatchException", "Provided digest %s does not match the manifest digest %s", in.ImageDigest, digest)
	}

	unlock, err := e.Cfg.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := e.get(repo, tag)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Digest == digest {
		return nil, apiError("ImageAlreadyExistsException",
			"Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'", digest, tag, in.RepositoryName, e.Cfg.Account)
	}
	if cur != nil && r.Immutable(tag) {
		return nil, apiError("ImageTagAlreadyExistsException",
			"The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable.", tag, in.RepositoryName)
	}
	if isIndex(mt) {
		var missing []string
		for _, c := range om.Manifests {
			m, err := e.get(repo, c.Digest)
			if err != nil {
				return nil, err
			}
			if m == nil {
				missing = append(missing, c.Digest)
			}
		}
		if len(missing) > 0 {
			return nil, apiError("ReferencedImagesNotFoundException", "Some of the images referenced by the manifest list were not found: %s", strings.Join(missing, ", "))
		}
	}
	existing, err := e.get(repo, digest)
	if err != nil {
		return nil, err
	}
	if err := e.put(repo, tag, []byte(raw), mt); err != nil {
		var te *transport.Error
		if errors.As(err, &te) {
			for _, d := range te.Errors {
				if d.Code == transport.ManifestBlobUnknownErrorCode {
					return nil, apiError("LayersNotFoundException", "Layers with digests referenced by the manifest are not in the repository: %v", err)
				}
			}
		}
		return nil, apiError("InvalidParameterException", "the registry refused the manifest: %v", err)
	}
	if existing == nil {
		if err := e.Cfg.RecordPush(in.RepositoryName, digest, e.Now()); err != nil {
			return nil, err
		}
	}
	return map[string]any{"image": image{e.Cfg.Account, in.RepositoryName, ImageID{digest, tag}, raw, mt}}, nil
}

func (e *ECR) listImages(in ecrRequest) (any, error) {
	repo, _, err := e.repoRef(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if in.Filter != nil && in.Filter.TagStatus != "" && in.Filter.TagStatus != "TAGGED" {
		// The registry cannot list manifests without a tag.
		return nil, fmt.Errorf("ListImages with tagStatus %q is not emulated (only TAGGED is)", in.Filter.TagStatus)
	}
	tags, err := e.tags(repo)
	if err != nil {
		return nil, err
	}
	ids := []ImageID{}
	for _, t := range slices.Sorted(maps.Keys(tags)) {
		ids = append(ids, ImageID{tags[t], t})
	}
	return map[string]any{"imageIds": ids}, nil
}

// batchDeleteImage removes tags the way ECR does: a tag whose image has other
// tags goes alone; an image's last tag deletes the image, which ECR refuses
// while an index references it. The registry (distribution 2.8) cannot
// delete a tag, only a manifest with all its tags: so the stand-in deletes
// the manifest and puts the same bytes back under the tags that remain.
func (e *ECR) batchDeleteImage(in ecrRequest) (any, error) {
	repo, _, err := e.repoRef(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if len(in.ImageIDs) == 0 {
		return nil, apiError("InvalidParameterException", "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
	}
	unlock, err := e.Cfg.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	tags, err := e.tags(repo)
	if err != nil {
		return nil, err
	}
	deleted, failures := []ImageID{}, []failure{}
	for _, id := range in.ImageIDs {
		var digest string
		var remove []string
		switch {
		case id.ImageTag != "":
			d, ok := tags[id.ImageTag]
			if !ok || (id.ImageDigest != "" && d != id.ImageDigest) {
				failures = append(failures, failure{id, "ImageNotFound", "Requested image not found"})
				continue
			}
			digest, remove = d, []string{id.ImageTag}
		default:
			m, err := e.get(repo, id.ImageDigest)
			if err != nil {
				return nil, err
			}
			if m == nil {
				failures = append(failures, failure{id, "ImageNotFound", "Requested image not found"})
				continue
			}
			digest = m.Digest
			for t, d := range tags {
				if d == digest {
					remove = append(remove, t)
				}
			}
		}
		var keep []string
		for t, d := range tags {
			if d == digest && !slices.Contains(remove, t) {
				keep = append(keep, t)
			}
		}
		m, err := e.get(repo, digest)
		if err != nil {
			return nil, err
		}
		if len(keep) == 0 {
			parents, err := e.referencedBy(repo, tags, digest)
			if err != nil {
				return nil, err
			}
			if len(parents) > 0 {
				failures = append(failures, failure{id, "ImageReferencedByManifestList", fmt.Sprintf("Requested image referenced by manifest list: %v", parents)})
				continue
			}
		}
		dref, err := name.NewDigest(repo.Name()+"@"+digest, name.Insecure)
		if err != nil {
			return nil, err
		}
		if err := remote.Delete(dref, e.options()...); err != nil {
			return nil, fmt.Errorf("deleting %s: %w", dref, err)
		}
		sort.Strings(keep)
		for _, t := range keep {
			if err := e.put(repo, t, m.Raw, m.MediaType); err != nil {
				return nil, fmt.Errorf("putting %s back under %s after removing %v: %w", digest, t, remove, err)
			}
		}
		for _, t := range remove {
			delete(tags, t)
		}
		deleted = append(deleted, ImageID{digest, id.ImageTag})
	}
	return map[string]any{"imageIds": deleted, "failures": failures}, nil
}

// referencedBy lists the tagged indexes of repo that name digest.
func (e *ECR) referencedBy(repo name.Repository, tags map[string]string, digest string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, d := range tags {
		if seen[d] || d == digest {
			continue
		}
		seen[d] = true
		m, err := e.get(repo, d)
		if err != nil || m == nil || !isIndex(m.MediaType) {
			if err != nil {
				return nil, err
			}
			continue
		}
		var om ociManifest
		if json.Unmarshal(m.Raw, &om) != nil {
			continue
		}
		for _, c := range om.Manifests {
			if c.Digest == digest {
				out = append(out, d)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

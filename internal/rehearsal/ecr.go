package rehearsal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/jmespath/go-jmespath"
)

// The aws stand-in: the `aws ecr` operations the commands use, with ECR's
// semantics, answered from the local registry. Exit statuses are the AWS CLI
// v2 ones: 0, 252 (the command line does not parse), 254 (the service
// answered an error), 255 (anything else).

// CLIError is an AWS CLI failure.
type CLIError struct {
	Status  int
	Message string
}

func (e *CLIError) Error() string { return e.Message }

func serviceError(op, code, format string, args ...any) error {
	return &CLIError{254, fmt.Sprintf("\nAn error occurred (%s) when calling the %s operation: %s", code, op, fmt.Sprintf(format, args...))}
}

func usageError(format string, args ...any) error {
	return &CLIError{252, fmt.Sprintf(format, args...)}
}

// ECR answers the operations against one registry.
//
// The same type answers `aws s3 cp` over the records bucket's stand-in
// (s3.go) and `aws cloudwatch put-metric-data` (cloudwatch.go).
type ECR struct {
	Cfg *StandInConfig
	Now func() time.Time
	// Stdin is what `aws s3 cp -` uploads.
	Stdin io.Reader
	// Transport is used for registry requests (tests use an in-process one).
	Transport http.RoundTripper
}

type cliArgs struct {
	op     string
	opts   map[string][]string
	query  string
	output string
}

// knownOptions: the options each operation accepts (AWS CLI names), plus the
// global ones. Anything else is "Unknown options", as in the AWS CLI.
var knownOptions = map[string][]string{
	"get-login-password": {},
	"describe-images":    {"repository-name", "image-ids", "registry-id", "filter"},
	"batch-get-image":    {"repository-name", "image-ids", "registry-id", "accepted-media-types"},
	"put-image":          {"repository-name", "image-manifest", "image-manifest-media-type", "image-tag", "image-digest", "registry-id"},
	"list-images":        {"repository-name", "registry-id", "filter"},
	"batch-delete-image": {"repository-name", "image-ids", "registry-id"},
	// scan.go
	"describe-image-scan-findings": {"repository-name", "image-id", "registry-id", "max-results", "next-token"},
	"start-image-scan":             {"repository-name", "image-id", "registry-id"},
}

var globalOptions = map[string]bool{"region": true, "output": true, "query": true, "no-cli-pager": false, "no-paginate": false, "profile": true}

// listOptions take several values.
var listOptions = map[string]bool{"image-ids": true, "accepted-media-types": true}

// flagOptions take no value.
var flagOptions = map[string]bool{"only-show-errors": true, "quiet": true, "no-cli-pager": true, "no-paginate": true,
	"overwrite": true, "no-overwrite": true, "with-decryption": true, "no-with-decryption": true}

// RunAWS runs one `aws` command line (without the leading "aws").
func (e *ECR) RunAWS(args []string, stdout io.Writer) error {
	if len(args) < 2 {
		return usageError("usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\naws: error: the following arguments are required: command")
	}
	var pos []string
	ca := cliArgs{opts: map[string][]string{}, output: "json"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			pos = append(pos, a)
			continue
		}
		key := strings.TrimPrefix(a, "--")
		val := []string{}
		if k, v, ok := strings.Cut(key, "="); ok {
			key, val = k, []string{v}
		} else if flagOptions[key] {
			val = []string{"true"}
		} else {
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				val = append(val, args[i+1])
				i++
				if !listOptions[key] {
					break
				}
			}
		}
		if takes, ok := globalOptions[key]; ok {
			if takes && len(val) != 1 {
				return usageError("aws: error: argument --%s: expected one argument", key)
			}
			switch key {
			case "query":
				ca.query = val[0]
			case "output":
				ca.output = val[0]
			}
			continue
		}
		ca.opts[key] = val
	}
	if len(pos) == 2 && pos[0] == "ecr-public" && pos[1] == "get-login-password" {
		// The token for public.ecr.aws, whose stand-in registry is anonymous:
		// the docker stand-in logs in there with it.
		fmt.Fprintln(stdout, "ecr-public-stand-in-token")
		return nil
	}
	if len(pos) >= 2 && pos[0] == "s3" && pos[1] == "cp" {
		if err := checkOptions(ca, s3CpOptions); err != nil {
			return err
		}
		return e.s3Copy(pos[2:], ca, args, stdout)
	}
	if len(pos) == 2 && pos[0] == "cloudwatch" && pos[1] == "put-metric-data" {
		if err := checkOptions(ca, putMetricDataOptions); err != nil {
			return err
		}
		return e.putMetricData(ca, args)
	}
	if len(pos) == 2 && (pos[0] == "ssm" && (pos[1] == "get-parameter" || pos[1] == "put-parameter") || pos[0] == "sns" && pos[1] == "publish") {
		return e.runOther(pos[0]+" "+pos[1], ca, args, stdout)
	}
	if len(pos) != 2 || pos[0] != "ecr" {
		return usageError("aws: the rehearsal stands in for `aws ecr`, `aws s3 cp`, `aws cloudwatch put-metric-data`, `aws ssm get-parameter`, `aws ssm put-parameter`, `aws sns publish` and `aws ecr-public get-login-password` only, not for `aws %s`", strings.Join(pos, " "))
	}
	ca.op = pos[1]
	allowed, ok := knownOptions[ca.op]
	if !ok {
		return usageError("aws ecr: the rehearsal does not stand in for %q (the commands used to need only %s)", ca.op, strings.Join(slices.Sorted(maps.Keys(knownOptions)), ", "))
	}
	if err := checkOptions(ca, allowed); err != nil {
		return err
	}
	if ca.output != "json" && ca.output != "text" {
		return usageError("aws: error: argument --output: Invalid choice, the rehearsal has json and text")
	}
	if e.Cfg.countCall(ca.op, args) {
		return serviceError(opName(ca.op), "ThrottlingException", "Rate exceeded (injected by the rehearsal: a call failing half way through a stage)")
	}
	var out any
	var err error
	switch ca.op {
	case "describe-images", "batch-get-image", "list-images", "describe-image-scan-findings", "start-image-scan":
		unlock, err := e.Cfg.RLock()
		if err != nil {
			return err
		}
		defer unlock()
	}
	switch ca.op {
	case "get-login-password":
		fmt.Fprintln(stdout, e.Cfg.Password)
		return nil
	case "describe-images":
		out, err = e.describeImages(ca)
	case "batch-get-image":
		out, err = e.batchGetImage(ca)
	case "put-image":
		out, err = e.putImage(ca)
	case "list-images":
		out, err = e.listImages(ca)
	case "batch-delete-image":
		out, err = e.batchDeleteImage(ca)
	case "describe-image-scan-findings":
		out, err = e.describeImageScanFindings(ca)
	case "start-image-scan":
		out, err = e.startImageScan(ca)
	}
	if err != nil {
		return err
	}
	return printOutput(stdout, out, ca)
}

// runOther runs the SSM and SNS operations, which print their answer
// through the same --query and --output as the ECR ones.
func (e *ECR) runOther(cmd string, ca cliArgs, args []string, stdout io.Writer) error {
	allowed := map[string][]string{"ssm get-parameter": getParameterOptions, "ssm put-parameter": putParameterOptions, "sns publish": snsPublishOptions}[cmd]
	if err := checkOptions(ca, allowed); err != nil {
		return err
	}
	if ca.output != "json" && ca.output != "text" {
		return usageError("aws: error: argument --output: Invalid choice, the rehearsal has json and text")
	}
	var out any
	var err error
	switch cmd {
	case "ssm get-parameter":
		out, err = e.getParameter(ca)
	case "ssm put-parameter":
		out, err = e.putParameter(ca, args)
	case "sns publish":
		out, err = e.snsPublish(ca, args)
	}
	if err != nil {
		return err
	}
	return printOutput(stdout, out, ca)
}

// checkOptions refuses options the operation does not have, as the AWS CLI
// does ("Unknown options", exit 252).
func checkOptions(ca cliArgs, allowed []string) error {
	var unknown []string
	for k := range ca.opts {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, "--"+k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return usageError("\nUnknown options: %s", strings.Join(unknown, ", "))
	}
	return nil
}

func opName(op string) string {
	var b strings.Builder
	for _, p := range strings.Split(op, "-") {
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return b.String()
}

func printOutput(w io.Writer, out any, ca cliArgs) error {
	// Round-trip through JSON: JMESPath works on plain values.
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if ca.query != "" {
		v, err = jmespath.Search(ca.query, v)
		if err != nil {
			return usageError("Bad value for --query %s: %v", ca.query, err)
		}
	}
	if ca.output == "json" {
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\n", b)
		return nil
	}
	return printText(w, v)
}

// printText is the AWS CLI's text output for the shapes the commands query:
// a scalar, None for null, or a list of scalars on one tab-separated line.
func printText(w io.Writer, v any) error {
	scalar := func(x any) (string, bool) {
		switch s := x.(type) {
		case nil:
			return "None", true
		case string:
			return s, true
		case bool:
			if s {
				return "True", true
			}
			return "False", true
		case float64:
			return strings.TrimSuffix(fmt.Sprintf("%v", s), ".0"), true
		}
		return "", false
	}
	if s, ok := scalar(v); ok {
		fmt.Fprintln(w, s)
		return nil
	}
	if l, ok := v.([]any); ok {
		var parts []string
		for _, x := range l {
			s, ok := scalar(x)
			if !ok {
				return &CLIError{255, "rehearsal stand-in: --output text of nested values is not emulated; query a scalar or use --output json"}
			}
			parts = append(parts, s)
		}
		if len(parts) > 0 {
			fmt.Fprintln(w, strings.Join(parts, "\t"))
		}
		return nil
	}
	return &CLIError{255, "rehearsal stand-in: --output text of an object is not emulated; query a scalar or use --output json"}
}

// --- arguments ----------------------------------------------------------------

func (ca cliArgs) one(key string, required bool) (string, error) {
	v, ok := ca.opts[key]
	if !ok {
		if required {
			return "", usageError("\naws: error: the following arguments are required: --%s", key)
		}
		return "", nil
	}
	if len(v) != 1 {
		return "", usageError("aws: error: argument --%s: expected one argument", key)
	}
	s := v[0]
	if p, ok := strings.CutPrefix(s, "file://"); ok {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", &CLIError{255, fmt.Sprintf("\nError parsing parameter '--%s': Unable to load paramfile %s: %v", key, s, err)}
		}
		s = string(b)
	}
	return s, nil
}

// ImageID is ECR's ImageIdentifier.
type ImageID struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

func (ca cliArgs) imageIDs(required bool) ([]ImageID, error) {
	vals, ok := ca.opts["image-ids"]
	if !ok || len(vals) == 0 {
		if required {
			return nil, usageError("\naws: error: the following arguments are required: --image-ids")
		}
		return nil, nil
	}
	if strings.HasPrefix(strings.TrimSpace(vals[0]), "[") {
		var ids []ImageID
		if err := json.Unmarshal([]byte(strings.Join(vals, " ")), &ids); err != nil {
			return nil, usageError("\nError parsing parameter '--image-ids': Invalid JSON: %v", err)
		}
		return ids, nil
	}
	var ids []ImageID
	for _, v := range vals {
		var id ImageID
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(kv, "=")
			switch {
			case ok && k == "imageTag":
				id.ImageTag = val
			case ok && k == "imageDigest":
				id.ImageDigest = val
			default:
				return nil, usageError("\nError parsing parameter '--image-ids': Expected: '=', received: '%s' for input:\n%s", v, v)
			}
		}
		ids = append(ids, id)
	}
	return ids, nil
}

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

func (e *ECR) repoRef(op, repo string) (name.Repository, Repository, error) {
	r, ok := e.Cfg.Repo(repo)
	if !ok {
		return name.Repository{}, r, serviceError(op, "RepositoryNotFoundException",
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
		return nil, err
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

type imageDetail struct {
	RegistryID             string   `json:"registryId"`
	RepositoryName         string   `json:"repositoryName"`
	ImageDigest            string   `json:"imageDigest"`
	ImageTags              []string `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64    `json:"imageSizeInBytes"`
	ImagePushedAt          string   `json:"imagePushedAt"`
	ImageManifestMediaType string   `json:"imageManifestMediaType"`
	ArtifactMediaType      string   `json:"artifactMediaType,omitempty"`
}

func (e *ECR) describeImages(ca cliArgs) (any, error) {
	const op = "DescribeImages"
	repoName, err := ca.one("repository-name", true)
	if err != nil {
		return nil, err
	}
	repo, _, err := e.repoRef(op, repoName)
	if err != nil {
		return nil, err
	}
	ids, err := ca.imageIDs(false)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, &CLIError{255, "rehearsal stand-in: describe-images without --image-ids is not emulated"}
	}
	tags, err := e.tags(repo)
	if err != nil {
		return nil, err
	}
	var details []imageDetail
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
			return nil, serviceError(op, "ImageNotFoundException",
				"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
				nullIfEmpty(id.ImageDigest), nullIfEmpty(id.ImageTag), repoName, e.Cfg.Account)
		}
		at, ok, err := e.Cfg.PushedAt(repoName, m.Digest)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &CLIError{255, fmt.Sprintf("rehearsal stand-in: no push time recorded for %s@%s (pushed around the stand-ins?)", repoName, m.Digest)}
		}
		d := imageDetail{
			RegistryID: e.Cfg.Account, RepositoryName: repoName, ImageDigest: m.Digest,
			// The AWS CLI v2 prints timestamps in ISO 8601, in the local
			// time zone (UTC on CodeBuild).
			ImagePushedAt:          at.Local().Format("2006-01-02T15:04:05.000000-07:00"),
			ImageManifestMediaType: m.MediaType,
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

func (e *ECR) batchGetImage(ca cliArgs) (any, error) {
	const op = "BatchGetImage"
	repoName, err := ca.one("repository-name", true)
	if err != nil {
		return nil, err
	}
	repo, _, err := e.repoRef(op, repoName)
	if err != nil {
		return nil, err
	}
	ids, err := ca.imageIDs(true)
	if err != nil {
		return nil, err
	}
	accepted := ca.opts["accepted-media-types"]
	images, failures := []image{}, []failure{}
	for _, id := range ids {
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
		if len(accepted) > 0 {
			ok := false
			for _, a := range accepted {
				ok = ok || a == m.MediaType
			}
			if !ok {
				failures = append(failures, failure{id, "UnsupportedImageType", fmt.Sprintf("Image's manifest media type %s is not in the accepted media types", m.MediaType)})
				continue
			}
		}
		images = append(images, image{e.Cfg.Account, repoName, ImageID{m.Digest, id.ImageTag}, string(m.Raw), m.MediaType})
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func (e *ECR) putImage(ca cliArgs) (any, error) {
	const op = "PutImage"
	repoName, err := ca.one("repository-name", true)
	if err != nil {
		return nil, err
	}
	raw, err := ca.one("image-manifest", true)
	if err != nil {
		return nil, err
	}
	tag, _ := ca.one("image-tag", false)
	mt, _ := ca.one("image-manifest-media-type", false)
	wantDigest, _ := ca.one("image-digest", false)
	repo, r, err := e.repoRef(op, repoName)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		return nil, &CLIError{255, "rehearsal stand-in: put-image without --image-tag is not emulated"}
	}
	var om ociManifest
	if err := json.Unmarshal([]byte(raw), &om); err != nil {
		return nil, serviceError(op, "InvalidParameterException", "Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Invalid JSON syntax'")
	}
	switch {
	case mt == "" && om.MediaType == "":
		return nil, serviceError(op, "InvalidParameterException", "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Manifest media type could not be determined; pass imageManifestMediaType'")
	case mt == "":
		mt = om.MediaType
	case om.MediaType != "" && om.MediaType != mt:
		return nil, serviceError(op, "InvalidParameterException", "Invalid parameter at 'imageManifestMediaType' failed to satisfy constraint: 'Manifest media type %s does not match the media type %s in the manifest'", mt, om.MediaType)
	}
	digest := digestOf([]byte(raw))
	if wantDigest != "" && wantDigest != digest {
		return nil, serviceError(op, "ImageDigestDoesNotMatchException", "Provided digest %s does not match the manifest digest %s", wantDigest, digest)
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
		return nil, serviceError(op, "ImageAlreadyExistsException",
			"Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'", digest, tag, repoName, e.Cfg.Account)
	}
	if cur != nil && r.Immutable(tag) {
		return nil, serviceError(op, "ImageTagAlreadyExistsException",
			"The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable.", tag, repoName)
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
			return nil, serviceError(op, "ReferencedImagesNotFoundException", "Some of the images referenced by the manifest list were not found: %s", strings.Join(missing, ", "))
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
					return nil, serviceError(op, "LayersNotFoundException", "Layers with digests referenced by the manifest are not in the repository: %v", err)
				}
			}
		}
		return nil, serviceError(op, "InvalidParameterException", "the registry refused the manifest: %v", err)
	}
	if existing == nil {
		if err := e.Cfg.RecordPush(repoName, digest, e.Now()); err != nil {
			return nil, err
		}
	}
	return map[string]any{"image": image{e.Cfg.Account, repoName, ImageID{digest, tag}, raw, mt}}, nil
}

func (e *ECR) listImages(ca cliArgs) (any, error) {
	const op = "ListImages"
	repoName, err := ca.one("repository-name", true)
	if err != nil {
		return nil, err
	}
	repo, _, err := e.repoRef(op, repoName)
	if err != nil {
		return nil, err
	}
	filter, _ := ca.one("filter", false)
	if filter != "tagStatus=TAGGED" {
		// The registry cannot list manifests without a tag.
		return nil, &CLIError{255, fmt.Sprintf("rehearsal stand-in: list-images --filter %q is not emulated (only tagStatus=TAGGED is)", filter)}
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
func (e *ECR) batchDeleteImage(ca cliArgs) (any, error) {
	const op = "BatchDeleteImage"
	repoName, err := ca.one("repository-name", true)
	if err != nil {
		return nil, err
	}
	repo, _, err := e.repoRef(op, repoName)
	if err != nil {
		return nil, err
	}
	ids, err := ca.imageIDs(true)
	if err != nil {
		return nil, err
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
	for _, id := range ids {
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
			if d == digest && !contains(remove, t) {
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
			return nil, fmt.Errorf("rehearsal stand-in: deleting %s: %w", dref, err)
		}
		sort.Strings(keep)
		for _, t := range keep {
			if err := e.put(repo, t, m.Raw, m.MediaType); err != nil {
				return nil, fmt.Errorf("rehearsal stand-in: putting %s back under %s after removing %v: %w", digest, t, remove, err)
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

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

package rehearsal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/smithy-go"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// distributionDelete makes go-containerregistry's in-process registry delete
// a manifest by digest the way distribution 2.8 (the rehearsal's registry)
// does: with every tag that points at it.
func distributionDelete(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodDelete && strings.Contains(req.URL.Path, "/manifests/sha256:") {
			path := req.URL.Path
			repo := strings.TrimPrefix(path[:strings.Index(path, "/manifests/")], "/v2/")
			digest := path[strings.LastIndex(path, "/")+1:]
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/v2/"+repo+"/tags/list", nil))
			var tl struct{ Tags []string }
			json.Unmarshal(rr.Body.Bytes(), &tl)
			for _, t := range tl.Tags {
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, httptest.NewRequest(http.MethodHead, "/v2/"+repo+"/manifests/"+t, nil))
				if rr.Header().Get("Docker-Content-Digest") == digest {
					h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, "/v2/"+repo+"/manifests/"+t, nil))
				}
			}
		}
		h.ServeHTTP(w, req)
	})
}

type fixture struct {
	t   *testing.T
	ecr *ECR
	reg string
}

func newFixture(t *testing.T) *fixture {
	srv := httptest.NewServer(distributionDelete(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(srv.Close)
	state := t.TempDir()
	cfg := &StandInConfig{
		Registry: strings.TrimPrefix(srv.URL, "http://"), Account: "111122223333", Region: "eu-west-1", StateDir: state,
		Repositories: []Repository{{Name: "node", Mutability: "MUTABLE_WITH_EXCLUSION", Exclusions: []string{"*-r20*"}}},
	}
	return &fixture{t, &ECR{Cfg: cfg, Now: func() time.Time { return time.Date(2026, 11, 26, 23, 59, 0, 0, time.UTC) }}, cfg.Registry}
}

// client is the real SDK client, pointed at the stand-in as the binary is
// (AWS_ENDPOINT_URL_ECR), without retries: a test sees each answer.
func (f *fixture) client() *ecr.Client {
	srv := httptest.NewServer(f.ecr)
	f.t.Cleanup(srv.Close)
	return ecr.New(ecr.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
}

func (f *fixture) push(repo, tag string) string {
	img, err := random.Image(64, 2)
	if err != nil {
		f.t.Fatal(err)
	}
	ref, _ := name.NewTag(f.reg+"/"+repo+":"+tag, name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		f.t.Fatal(err)
	}
	d, _ := img.Digest()
	f.ecr.Cfg.RecordPush(repo, d.String(), time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC))
	return d.String()
}

var ctx = context.Background()

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

func tagDigest(t *testing.T, c *ecr.Client, tag string) string {
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("node"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String(tag)}}})
	if err != nil {
		return "missing: " + code(err)
	}
	return aws.ToString(out.ImageDetails[0].ImageDigest)
}

func TestDescribeImagesGivesMediaTypeTagsAndFirstPushTime(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	amd := f.push("node", "draft-22-amd64-x")
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("node"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("draft-22-amd64-x")}}})
	if err != nil {
		t.Fatal(err)
	}
	d := out.ImageDetails[0]
	if aws.ToString(d.ImageDigest) != amd || aws.ToString(d.ImageManifestMediaType) != "application/vnd.docker.distribution.manifest.v2+json" ||
		!d.ImagePushedAt.Equal(time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)) || len(d.ImageTags) != 1 || aws.ToInt64(d.ImageSizeInBytes) == 0 {
		t.Fatalf("describe-images: %+v", d)
	}
	if _, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("node"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("nope")}}}); code(err) != "ImageNotFoundException" {
		t.Fatalf("a missing tag: %v", err)
	}
	var rnf *ecrtypes.RepositoryNotFoundException
	if _, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("nope")}); !errors.As(err, &rnf) {
		t.Fatalf("an unknown repository, as the SDK's typed error: %v", err)
	}
}

func TestPutImageKeepsECRsTagRules(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	amd := f.push("node", "draft-22-amd64-x")
	arm := f.push("node", "draft-22-arm64-x")
	got, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("node"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("draft-22-amd64-x")}, {ImageTag: aws.String("nope")}},
		AcceptedMediaTypes: []string{"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"}})
	if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].ImageId.ImageDigest) != amd || len(got.Failures) != 1 || got.Failures[0].FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
		t.Fatalf("batch-get-image: %+v %v", got, err)
	}
	raw, mt := aws.ToString(got.Images[0].ImageManifest), aws.ToString(got.Images[0].ImageManifestMediaType)
	put := func(tag, mt, raw string) error {
		_, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("node"), ImageTag: aws.String(tag), ImageManifestMediaType: aws.String(mt), ImageManifest: aws.String(raw)})
		return err
	}
	if err := put("22-amd64", mt, raw); err != nil {
		t.Fatalf("a retag: %v", err)
	}
	var exists *ecrtypes.ImageAlreadyExistsException
	if err := put("22-amd64", mt, raw); !errors.As(err, &exists) {
		t.Fatalf("the same manifest under its tag again: %v", err)
	}
	if err := put("22-amd64", "application/vnd.oci.image.manifest.v1+json", raw); code(err) != "InvalidParameterException" {
		t.Fatalf("a media type the manifest contradicts: %v", err)
	}
	if _, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("node"), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(amd)}},
		AcceptedMediaTypes: []string{"application/vnd.oci.image.manifest.v1+json"}}); err != nil {
		t.Fatal(err)
	}
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"` + amd + `","size":1,"platform":{"architecture":"amd64","os":"linux"}},` +
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"` + arm + `","size":1,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}`
	if err := put("22-r20261125-abcdef12", "application/vnd.oci.image.index.v1+json", index); err != nil {
		t.Fatalf("the index under a dated tag: %v", err)
	}
	var immutable *ecrtypes.ImageTagAlreadyExistsException
	if err := put("22-r20261125-abcdef12", mt, raw); !errors.As(err, &immutable) {
		t.Fatalf("moving an immutable dated tag (exclusion filter *-r20*): %v", err)
	}
	if err := put("22", mt, raw); err != nil {
		t.Fatal(err)
	}
	if err := put("22", "application/vnd.oci.image.index.v1+json", index); err != nil {
		t.Fatalf("moving a mutable tag: %v", err)
	}
	missing := strings.Replace(index, amd, "sha256:"+strings.Repeat("0", 64), 1)
	if err := put("23", "application/vnd.oci.image.index.v1+json", missing); code(err) != "ReferencedImagesNotFoundException" {
		t.Fatalf("an index whose child is missing: %v", err)
	}
	if tagDigest(t, c, "22") == amd {
		t.Fatal("22 did not move to the index")
	}
	list, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("node"), Filter: &ecrtypes.ListImagesFilter{TagStatus: ecrtypes.TagStatusTagged}})
	if err != nil || len(list.ImageIds) != 5 {
		t.Fatalf("list-images: %+v %v", list, err)
	}
}

func TestBatchDeleteImageRemovesOneTagAndRefusesAReferencedImage(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	amd := f.push("node", "draft-22-amd64-x")
	arm := f.push("node", "draft-22-arm64-x")
	m, _ := f.ecr.get(mustRepo(t, f.reg+"/node"), amd)
	if err := f.ecr.put(mustRepo(t, f.reg+"/node"), "22-amd64", m.Raw, m.MediaType); err != nil {
		t.Fatal(err)
	}
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"` + arm + `","size":1,"platform":{"architecture":"arm64","os":"linux"}}]}`
	if _, err := c.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("node"), ImageTag: aws.String("22"), ImageManifest: aws.String(index)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("node"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("draft-22-amd64-x")}, {ImageTag: aws.String("draft-22-nope-x")}}})
	if err != nil || len(out.ImageIds) != 1 || len(out.Failures) != 1 || out.Failures[0].FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
		t.Fatalf("batch-delete-image: %+v %v", out, err)
	}
	if d := tagDigest(t, c, "draft-22-amd64-x"); !strings.HasPrefix(d, "missing") {
		t.Fatalf("the draft tag is still there: %s", d)
	}
	if d := tagDigest(t, c, "22-amd64"); d != amd {
		t.Fatalf("22-amd64 lost its image: %s", d)
	}
	out, err = c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("node"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("draft-22-arm64-x")}}})
	if err != nil || len(out.Failures) != 1 || out.Failures[0].FailureCode != ecrtypes.ImageFailureCodeImageReferencedByManifestList {
		t.Fatalf("the last tag of an image an index references: %+v %v", out, err)
	}
	if d := tagDigest(t, c, "draft-22-arm64-x"); d != arm {
		t.Fatalf("the refused delete removed the tag: %s", d)
	}
}

func TestAuthorizationTokenIsTheRegistrysLogin(t *testing.T) {
	f := newFixture(t)
	f.ecr.Cfg.User, f.ecr.Cfg.Password = "AWS", "secret"
	c := f.client()
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if string(tok) != "AWS:secret" || !strings.HasSuffix(aws.ToString(out.AuthorizationData[0].ProxyEndpoint), f.reg) || out.AuthorizationData[0].ExpiresAt.Before(f.ecr.Now()) {
		t.Fatalf("token %q, endpoint %q", tok, aws.ToString(out.AuthorizationData[0].ProxyEndpoint))
	}
	srv := httptest.NewServer(f.ecr)
	defer srv.Close()
	pc := ecrpublic.New(ecrpublic.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	po, err := pc.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
	if err != nil || aws.ToString(po.AuthorizationData.AuthorizationToken) == "" {
		t.Fatalf("ECR Public: %+v %v", po, err)
	}
}

func TestStickyFaultFailsFromTheNthCallOfItsRepository(t *testing.T) {
	f := newFixture(t)
	f.ecr.Cfg.Repositories = append(f.ecr.Cfg.Repositories, Repository{Name: "python", Mutability: "MUTABLE"})
	c := f.client()
	list := func(repo string) error {
		_, err := c.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String(repo)})
		return err
	}
	f.ecr.Cfg.SetFault(&Fault{Op: "ListImages", N: 2, Match: "node", Sticky: true})
	if err := list("node"); err != nil {
		t.Fatal("the fault fired early")
	}
	if err := list("python"); err != nil {
		t.Fatal("the fault fired on another repository")
	}
	if !f.ecr.Cfg.FaultPending() {
		t.Fatal("not pending")
	}
	for i := 0; i < 3; i++ {
		if err := list("node"); code(err) != "ThrottlingException" {
			t.Fatalf("call %d after the fault: %v", i, err)
		}
	}
	if f.ecr.Cfg.FaultPending() {
		t.Fatal("still pending after it fired")
	}
	f.ecr.Cfg.SetFaults(nil)
	if err := list("node"); err != nil {
		t.Fatal("cleared, but still failing")
	}
}

func mustRepo(t *testing.T, s string) name.Repository {
	r, err := name.NewRepository(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWildcardAndMutability(t *testing.T) {
	r := Repository{Mutability: "MUTABLE_WITH_EXCLUSION", Exclusions: []string{"*-r20*"}}
	for tag, want := range map[string]bool{"22-r20261126-abcdef12": true, "22": false, "draft-22-amd64-x": false, "3.13-amd64": false} {
		if got := r.Immutable(tag); got != want {
			t.Errorf("Immutable(%q) = %v, want %v", tag, got, want)
		}
	}
	if !WildcardMatch("draft-*", "draft-x") || WildcardMatch("draft-*", "x-draft-") || !WildcardMatch("a*b*c", "a-b-c") || WildcardMatch("a*b*c", "a-c-b") {
		t.Error("WildcardMatch")
	}
}

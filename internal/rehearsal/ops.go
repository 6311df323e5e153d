package rehearsal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/rollback"
	"github.com/evergreen-images/evergreen/internal/status"
	"github.com/evergreen-images/evergreen/runtimes"
)

// The status and rollback scenarios. make status and make rollback are Go
// programs on aws-sdk-go-v2: they speak the AWS APIs over HTTP, which the
// rehearsal's stand-ins (an AWS CLI look-alike) do not. So they run against
// moto (PyPI moto[server], pinned in .ci/install-moto.sh; make test installs
// it), seeded with what the rehearsal's real commands left: every manifest
// and tag of one repository of the ECR stand-in registry, every object of
// the records bucket's stand-in, and the consumers' parameters. What the
// scenarios then check is read back from moto.
//
// moto deviations worked around (aws-facts.md lists them):
//   - its digests are not the sha256 of the manifest: every put passes the
//     real digest;
//   - tag-mutability exclusion filters are taken as regular expressions
//     (`*-r20*` makes every put fail): the repository is created mutable,
//     so the immutability of dated tags is not part of these scenarios
//     (the ECR stand-in enforces it in the others);
//   - moving a tag off an image deletes the image there, where ECR keeps it
//     untagged: after the rollback, the images the tags left are not
//     looked at;
//   - no GetPipelineState: the pipeline is left out of status (Pipeline "").

// OpsState is what the ops scenarios copy into moto.
type OpsState struct {
	// Registry (host:port), User and Password: the ECR stand-in registry.
	Registry, User, Password string
	Repository               string
	// Bucket is the records bucket's name, BucketDir the stand-in's
	// directory of its objects.
	Bucket, BucketDir string
	Config            config.Config
	List              *runtimes.List
	// Runtime and Version: the release; RollbackTo: a dated tag of it that
	// is not the current one.
	Runtime, Version, RollbackTo string
}

// motoServer starts moto_server (from .venv/bin under repo) on a free port
// and returns its URL and a stop function.
func motoServer(repo string) (string, func(), error) {
	bin := filepath.Join(repo, ".venv", "bin", "moto_server")
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("moto is not installed (%s): run make setup, which runs .ci/install-moto.sh", bin)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("moto_server did not answer within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func motoConfig(ctx context.Context, url, region string) (aws.Config, error) {
	return awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		awsconfig.WithBaseEndpoint(url),
		// Not the caller's files: nothing of the machine's AWS set-up.
		awsconfig.WithSharedConfigFiles(nil), awsconfig.WithSharedCredentialsFiles(nil))
}

// seedMoto copies the repository, the bucket and the parameters (computed
// from the tags, with moto's registry host: what Publish writes, as the
// ssm-digests scenario checks against the stand-in) into moto.
func seedMoto(ctx context.Context, cfg aws.Config, st OpsState) error {
	ec := ecr.NewFromConfig(cfg)
	if _, err := ec.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(st.Repository)}); err != nil {
		return fmt.Errorf("moto: create repository: %w", err)
	}
	repo, err := name.NewRepository(st.Registry+"/"+st.Repository, name.Insecure)
	if err != nil {
		return err
	}
	opt := remote.WithAuth(&authn.Basic{Username: st.User, Password: st.Password})
	tags, err := remote.List(repo, opt)
	if err != nil {
		return fmt.Errorf("listing %s: %w", repo, err)
	}
	type entry struct {
		raw  []byte
		mt   string
		tags []string
	}
	byDigest := map[string]*entry{}
	get := func(ref string) (string, error) {
		r, err := name.ParseReference(repo.String()+ref, name.Insecure)
		if err != nil {
			return "", err
		}
		d, err := remote.Get(r, opt)
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", r, err)
		}
		dg := d.Digest.String()
		if byDigest[dg] == nil {
			byDigest[dg] = &entry{raw: d.Manifest, mt: string(d.MediaType)}
		}
		return dg, nil
	}
	slices.Sort(tags)
	for _, t := range tags {
		dg, err := get(":" + t)
		if err != nil {
			return err
		}
		byDigest[dg].tags = append(byDigest[dg].tags, t)
	}
	// The children of every index, tagged or not (yesterday's images).
	for _, dg := range slices.Sorted(maps.Keys(byDigest)) {
		e := byDigest[dg]
		if !awsops.IsIndex(e.mt) {
			continue
		}
		var idx struct{ Manifests []struct{ Digest string } }
		if err := json.Unmarshal(e.raw, &idx); err != nil {
			return err
		}
		for _, c := range idx.Manifests {
			if _, err := get("@" + c.Digest); err != nil {
				return err
			}
		}
	}
	put := func(dg string, e *entry, tag string) error {
		in := &ecr.PutImageInput{RepositoryName: aws.String(st.Repository), ImageManifest: aws.String(string(e.raw)),
			ImageManifestMediaType: aws.String(e.mt), ImageDigest: aws.String(dg)}
		if tag != "" {
			in.ImageTag = aws.String(tag)
		}
		if _, err := ec.PutImage(ctx, in); err != nil {
			return fmt.Errorf("moto: put %s %s: %w", dg, tag, err)
		}
		return nil
	}
	// Images before the indexes that name them; each under all its tags.
	for _, wantIndex := range []bool{false, true} {
		for _, dg := range slices.Sorted(maps.Keys(byDigest)) {
			e := byDigest[dg]
			if awsops.IsIndex(e.mt) != wantIndex {
				continue
			}
			if len(e.tags) == 0 {
				if err := put(dg, e, ""); err != nil {
					return err
				}
			}
			for _, t := range e.tags {
				if err := put(dg, e, t); err != nil {
					return err
				}
			}
		}
	}

	sc := awsops.NewS3(cfg)
	// Outside us-east-1, S3 (and moto) wants the region as the location.
	if _, err := sc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(st.Bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(cfg.Region)}}); err != nil {
		return fmt.Errorf("moto: create bucket: %w", err)
	}
	err = filepath.WalkDir(st.BucketDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key, _ := filepath.Rel(st.BucketDir, p)
		_, err = sc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(filepath.ToSlash(key)), Body: bytes.NewReader(b)})
		return err
	})
	if err != nil {
		return fmt.Errorf("moto: copying the records: %w", err)
	}

	uri, err := awsops.RepositoryURI(ctx, ec, st.Repository)
	if err != nil {
		return err
	}
	pc := ssm.NewFromConfig(cfg)
	prefix := st.Config.ParameterPrefix() + "/" + st.Runtime + "/" + st.Version
	params := map[string]string{}
	for dg, e := range byDigest {
		for _, t := range e.tags {
			switch {
			case t == st.Version:
				params[prefix] = uri + "@" + dg
			case strings.HasPrefix(t, st.Version+"-") && !strings.Contains(t, runtimes.DatedTagMarker):
				params[prefix+"/"+strings.TrimPrefix(t, st.Version+"-")] = uri + "@" + dg
			}
		}
	}
	for n, v := range params {
		if _, err := pc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(n), Value: aws.String(v), Type: "String", Overwrite: aws.Bool(true)}); err != nil {
			return fmt.Errorf("moto: put parameter %s: %w", n, err)
		}
	}
	return nil
}

// digestOfTag reads a tag's digest from moto.
func digestOfTag(ctx context.Context, ec *ecr.Client, repo, tag string) string {
	m, found, err := awsops.GetManifest(ctx, ec, repo, ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)})
	if err != nil || !found {
		return ""
	}
	return m.Digest
}

// RunOpsScenarios seeds moto with st, then runs the status and rollback
// scenarios. It returns the failures of each (empty: ok).
func RunOpsScenarios(ctx context.Context, repoRoot string, st OpsState, log io.Writer) (statusFails, rollbackFails []string) {
	fail := func(err error) ([]string, []string) {
		return []string{err.Error()}, []string{err.Error()}
	}
	url, stop, err := motoServer(repoRoot)
	if err != nil {
		return fail(err)
	}
	defer stop()
	cfg, err := motoConfig(ctx, url, "eu-west-1")
	if err != nil {
		return fail(err)
	}
	if err := seedMoto(ctx, cfg, st); err != nil {
		return fail(err)
	}
	ec := ecr.NewFromConfig(cfg)
	uri, err := awsops.RepositoryURI(ctx, ec, st.Repository)
	if err != nil {
		return fail(err)
	}
	current := digestOfTag(ctx, ec, st.Repository, st.Version)

	// status: the release's published digest and dated tag, parameters
	// that agree, and the last check from the records.
	var out bytes.Buffer
	if err := status.Run(ctx, cfg, status.Options{Config: st.Config, List: st.List, Bucket: st.Bucket}, &out); err != nil {
		statusFails = append(statusFails, "status: "+err.Error())
	}
	fmt.Fprintf(log, "make status against moto:\n%s\n", out.String())
	block := releaseBlock(out.String(), st.Runtime, st.Version)
	var releaseRec struct{ Result, DatedTag, Index string }
	if b, err := os.ReadFile(filepath.Join(st.BucketDir, "releases", st.Runtime, st.Version+".json")); err != nil || json.Unmarshal(b, &releaseRec) != nil {
		statusFails = append(statusFails, "the rehearsal left no releases/ record to compare status with")
	}
	for _, want := range []string{
		"published   " + current + "  " + releaseRec.DatedTag,
		"last check  ",
		" " + releaseRec.Result + " ",
		"hold        none",
		"parameters  agree with the tags",
	} {
		if !strings.Contains(block, want) {
			statusFails = append(statusFails, fmt.Sprintf("status of %s %s lacks %q", st.Runtime, st.Version, want))
		}
	}
	if releaseRec.Index != current {
		statusFails = append(statusFails, fmt.Sprintf("the releases/ record names %s, the tag %s", releaseRec.Index, current))
	}

	// rollback: a refusal changes nothing; then back to RollbackTo.
	before := digestOfTag(ctx, ec, st.Repository, st.Version)
	out.Reset()
	unknown := st.Version + "-r20200101-00000000"
	if err := rollback.Run(ctx, cfg, rollback.Options{Config: st.Config, List: st.List, Runtime: st.Runtime, Version: st.Version, To: unknown, Bucket: st.Bucket}, &out); err == nil {
		rollbackFails = append(rollbackFails, "a rollback to the unknown "+unknown+" was not refused")
	}
	if after := digestOfTag(ctx, ec, st.Repository, st.Version); after != before {
		rollbackFails = append(rollbackFails, "a refused rollback moved the tag")
	}
	out.Reset()
	if err := rollback.Run(ctx, cfg, rollback.Options{Config: st.Config, List: st.List, Runtime: st.Runtime, Version: st.Version, To: st.RollbackTo, Bucket: st.Bucket}, &out); err != nil {
		rollbackFails = append(rollbackFails, "rollback to "+st.RollbackTo+": "+err.Error())
	}
	fmt.Fprintf(log, "make rollback against moto:\n%s\n", out.String())
	target, found, err := awsops.GetManifest(ctx, ec, st.Repository, ecrtypes.ImageIdentifier{ImageTag: aws.String(st.RollbackTo)})
	if err != nil || !found {
		return statusFails, append(rollbackFails, fmt.Sprintf("%s is not in moto: %v", st.RollbackTo, err))
	}
	if got := digestOfTag(ctx, ec, st.Repository, st.Version); got != target.Digest {
		rollbackFails = append(rollbackFails, fmt.Sprintf("%s names %s after the rollback, want %s's %s", st.Version, got, st.RollbackTo, target.Digest))
	}
	children, err := awsops.IndexChildren(target)
	if err != nil {
		return statusFails, append(rollbackFails, err.Error())
	}
	pc := ssm.NewFromConfig(cfg)
	param := func(n string) string {
		o, err := pc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(n)})
		if err != nil {
			return "missing: " + awsops.Short(err)
		}
		return aws.ToString(o.Parameter.Value)
	}
	prefix := st.Config.ParameterPrefix() + "/" + st.Runtime + "/" + st.Version
	if got := param(prefix); got != uri+"@"+target.Digest {
		rollbackFails = append(rollbackFails, fmt.Sprintf("%s = %s, want %s@%s", prefix, got, uri, target.Digest))
	}
	for _, c := range children {
		tag := st.Version + "-" + c.Arch
		if got := digestOfTag(ctx, ec, st.Repository, tag); got != c.Digest {
			rollbackFails = append(rollbackFails, fmt.Sprintf("%s names %s, want %s", tag, got, c.Digest))
		}
		if got := param(prefix + "/" + c.Arch); got != uri+"@"+c.Digest {
			rollbackFails = append(rollbackFails, fmt.Sprintf("%s/%s = %s, want %s@%s", prefix, c.Arch, got, uri, c.Digest))
		}
	}
	var hold map[string]any
	found, err = awsops.GetJSON(ctx, awsops.NewS3(cfg), st.Bucket, "holds/"+st.Runtime+"/"+st.Version+".json", &hold)
	if err != nil || !found || hold["to"] != st.RollbackTo {
		rollbackFails = append(rollbackFails, fmt.Sprintf("the hold: %v %v %v", hold, found, err))
	}
	out.Reset()
	if err := status.Run(ctx, cfg, status.Options{Config: st.Config, List: st.List, Bucket: st.Bucket}, &out); err != nil {
		statusFails = append(statusFails, "status after the rollback: "+err.Error())
	}
	after := releaseBlock(out.String(), st.Runtime, st.Version)
	for _, want := range []string{"HELD at " + st.RollbackTo, "rolled-back", "published   " + target.Digest + "  " + st.RollbackTo} {
		if !strings.Contains(after, want) {
			statusFails = append(statusFails, fmt.Sprintf("status after the rollback lacks %q", want))
		}
	}
	return statusFails, rollbackFails
}

// releaseBlock is the part of status's output about one runtime-version.
func releaseBlock(out, rt, v string) string {
	head := "\n" + rt + " " + v + "  ("
	i := strings.Index(out, head)
	if i < 0 {
		return ""
	}
	rest := out[i+1:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// opsScenarios runs the status and rollback scenarios on node 22 as the
// rehearsal left it: rolled back to its oldest dated tag.
func (r *rehearsal) opsScenarios(pubs []publishEntry) {
	p, _ := releaseOf(pubs, nil, "node", "22")
	if p == nil {
		r.scenario("status", []string{"node 22 is not among the rehearsed releases"})
		r.scenario("rollback", []string{"node 22 is not among the rehearsed releases"})
		return
	}
	v := p.Entry.Get("VERSION")
	tags, err := r.publishedTags(*p)
	var dated []string
	for t, d := range tags {
		if runtimes.IsDatedTagOf(v, t) && d != tags[v] {
			dated = append(dated, t)
		}
	}
	slices.Sort(dated)
	if err != nil || len(dated) == 0 {
		why := fmt.Sprintf("no dated tag of node 22 other than the current one (%v)", err)
		r.scenario("status", []string{why})
		r.scenario("rollback", []string{why})
		return
	}
	cfg, err := config.LoadCDKJSON(filepath.Join(r.o.Repo, config.DefaultCDKJSON))
	var list *runtimes.List
	if err == nil {
		list, err = runtimes.Load(filepath.Join(r.o.Repo, cfg.RuntimeList))
	}
	if err != nil {
		r.scenario("status", []string{err.Error()})
		r.scenario("rollback", []string{err.Error()})
		return
	}
	start := time.Now()
	st := OpsState{
		Registry: r.ecrReg.Addr, User: r.cfg.User, Password: r.cfg.Password,
		Repository: p.Entry.Get("REPOSITORY"), Bucket: r.bucket, BucketDir: r.cfg.objectPath(r.bucket, ""),
		Config: cfg, List: list, Runtime: "node", Version: v, RollbackTo: dated[0],
	}
	logPath := filepath.Join(r.work, "logs", "ops-moto.log")
	f, err := os.Create(logPath)
	if err != nil {
		r.scenario("status", []string{err.Error()})
		r.scenario("rollback", []string{err.Error()})
		return
	}
	defer f.Close()
	r.logf("== status and rollback against moto: node 22 rolled back to %s (log %s)", dated[0], logPath)
	sf, rf := RunOpsScenarios(context.Background(), r.o.Repo, st, f)
	r.logf("   status and rollback: %.0f s", time.Since(start).Seconds())
	r.scenario("status", sf)
	r.scenario("rollback", rf)
}

package rehearsal

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/internal/rollback"
	"github.com/evergreen-images/evergreen/internal/status"
	"github.com/evergreen-images/evergreen/runtimes"
)

// The status and rollback scenarios: make status and make rollback (Go
// programs on aws-sdk-go-v2) against the state the rehearsal's executions
// left, through the same endpoints the stages used: ECR's API from the ECR
// stand-in over the registry (ecr.go), S3 and SSM from moto (moto.go).
// Nothing is copied: what the scenarios check is read back from there.
// moto has no CodePipeline: the pipeline is left out of status
// (Pipeline "").

// OpsState is what the ops scenarios run against.
type OpsState struct {
	// AWS reaches the ECR stand-in for ECR, moto for the rest.
	AWS        aws.Config
	Repository string
	// Bucket is the records bucket.
	Bucket string
	Config config.Config
	List   *runtimes.List
	// Runtime and Version: the release; RollbackTo: a dated tag of it that
	// is not the current one.
	Runtime, Version, RollbackTo string
}

// endpointFor sends one service (by its SDK id: "ECR", "ECR PUBLIC") to
// its own endpoint, as AWS_ENDPOINT_URL_<SERVICE> does for a build; it
// goes first among a configuration's sources, which are asked in order.
type endpointFor map[string]string

func (e endpointFor) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	u, ok := e[sdkID]
	return u, ok, nil
}

// OpsConfig is moto's configuration with ECR and ECR Public sent to the
// ECR stand-in at ecrURL.
func (m *Moto) OpsConfig(ecrURL string) aws.Config {
	cfg := m.cfg.Copy()
	cfg.ConfigSources = append([]any{endpointFor{"ECR": ecrURL, "ECR PUBLIC": ecrURL}}, cfg.ConfigSources...)
	return cfg
}

// digestOfTag reads a tag's digest.
func digestOfTag(ctx context.Context, ec *ecr.Client, repo, tag string) string {
	m, found, err := awsops.GetManifest(ctx, ec, repo, ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)})
	if err != nil || !found {
		return ""
	}
	return m.Digest
}

// RunOpsScenarios runs the status and rollback scenarios. It returns the
// failures of each (empty: ok).
func RunOpsScenarios(ctx context.Context, st OpsState, log io.Writer) (statusFails, rollbackFails []string) {
	fail := func(err error) ([]string, []string) {
		return []string{err.Error()}, []string{err.Error()}
	}
	cfg := st.AWS
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
	fmt.Fprintf(log, "make status:\n%s\n", out.String())
	block := releaseBlock(out.String(), st.Runtime, st.Version)
	var releaseRec records.Release
	if found, err := (records.Store{S3: awsops.NewS3(cfg), Bucket: st.Bucket}).GetJSON(ctx, records.ReleaseKey(st.Runtime, st.Version), &releaseRec); err != nil || !found {
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
	fmt.Fprintf(log, "make rollback:\n%s\n", out.String())
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
	var hold records.Hold
	found, err = (records.Store{S3: awsops.NewS3(cfg), Bucket: st.Bucket}).GetJSON(ctx, records.HoldKey(st.Runtime, st.Version), &hold)
	if err != nil || !found || hold.To != st.RollbackTo {
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
		AWS:        r.moto.OpsConfig(r.ecrURL),
		Repository: p.Entry.Get("REPOSITORY"), Bucket: r.bucket,
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
	r.logf("== status and rollback: node 22 rolled back to %s (log %s)", dated[0], logPath)
	sf, rf := RunOpsScenarios(context.Background(), st, f)
	r.logf("   status and rollback: %.0f s", time.Since(start).Seconds())
	r.scenario("status", sf)
	r.scenario("rollback", rf)
}

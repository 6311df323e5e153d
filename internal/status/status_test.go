package status

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/mototest"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

var update = flag.Bool("update", false, "rewrite testdata/status.golden")

const (
	lastExec  = "6f1c2a9e-4b7d-4e21-9a3f-0c5d8e7b1a24"
	priorExec = "2b8e4f10-93c6-4a5d-b7e2-1f0a6c9d3e58"
	draftExec = "c3d9a7e2-5f14-4b8a-9e06-7a2b1d4c8f93"
)

// pipelineStub stands in for CodePipeline: moto 5.2.5 implements
// ListPipelineExecutions but not GetPipelineState. The answers have the
// shape of the CodePipeline API reference (timestamps in epoch seconds, as
// its JSON protocol sends them): the last execution failed at Verify, so
// Publish's latest execution is the one before.
func pipelineStub(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch target := r.Header.Get("X-Amz-Target"); {
		case strings.HasSuffix(target, ".ListPipelineExecutions"):
			fmt.Fprintf(w, `{"pipelineExecutionSummaries": [
  {"pipelineExecutionId": %q, "status": "Failed", "startTime": 1795838400, "lastUpdateTime": 1795840200, "trigger": {"triggerType": "CloudWatchEvent"}},
  {"pipelineExecutionId": %q, "status": "Succeeded", "startTime": 1795752000, "lastUpdateTime": 1795754400, "trigger": {"triggerType": "CloudWatchEvent"}}]}`, lastExec, priorExec)
		case strings.HasSuffix(target, ".GetPipelineState"):
			stage := func(name, exec, status, actions string) string {
				return fmt.Sprintf(`{"stageName": %q, "latestExecution": {"pipelineExecutionId": %q, "status": %q}, "actionStates": [%s]}`, name, exec, status, actions)
			}
			fmt.Fprintf(w, `{"pipelineName": %q, "pipelineVersion": 3, "stageStates": [%s, %s, %s, %s]}`, name,
				stage("Source", lastExec, "Succeeded", ""),
				stage("Build", lastExec, "Succeeded", ""),
				stage("Verify", lastExec, "Failed", `{"actionName": "Verify", "latestExecution": {"status": "Failed", "errorDetails": {"code": "JobFailed", "message": "Build batch failed: node_22_arm64 self-test\nmore"}}}`),
				stage("Publish", priorExec, "Succeeded", ""))
		default:
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"__type": "InvalidRequestException", "message": "stub: %s"}`, target)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Status against moto, through the stack's outputs as make status reads
// them: a published version with pending drafts, a held one, one whose
// parameter is stale, one never published, and a runtime whose repository
// does not exist.
func TestStatus(t *testing.T) {
	mototest.Start(t, "eu-west-1")
	conf := config.Default()
	pipeline := conf.StackName + "-Pipeline"
	t.Setenv("AWS_ENDPOINT_URL_CODEPIPELINE", pipelineStub(t, pipeline))
	ctx := context.Background()
	cfg, err := awsops.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The golden output needs fixed runtimes and versions: the fixed list,
	// not the product's.
	list, err := runtimes.Load(filepath.Join("..", "..", "testdata", "runtimes", "fixed", "runtimes.yaml"))
	if err != nil {
		t.Fatal(err)
	}

	// Missing stack: an error that says to deploy.
	if err := Run(ctx, cfg, Options{Config: conf, List: list}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "make deploy") {
		t.Errorf("without the stack: %v", err)
	}

	bucket := mototest.Stack(t, cfg, conf.StackName, "records-status", pipeline)[awsops.OutputRecordsBucket]
	ecrc := ecr.NewFromConfig(cfg)
	ssmc := ssm.NewFromConfig(cfg)
	s3c := awsops.NewS3(cfg)
	param := func(name, value string) {
		if _, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	record := func(key string, v any) {
		if err := (records.Store{S3: s3c, Bucket: bucket}).PutJSON(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	// publish seeds what Publish leaves: the releases, the parameters of
	// the current one and its record.
	publish := func(rt *runtimes.Runtime, v, seed string, result string) (uri string, old, cur mototest.Release) {
		repo := conf.RepositoryName(rt.Name)
		var archs []string
		for _, a := range rt.Architectures {
			archs = append(archs, string(a))
		}
		old = mototest.SeedRelease(t, ecrc, repo, v, runtimes.DatedTag(v, "20261120", "0a1b2c3d"), archs, seed+"-old", false)
		cur = mototest.SeedRelease(t, ecrc, repo, v, runtimes.DatedTag(v, "20261127", "1b2c3d4e"), archs, seed, true)
		uri, err := awsops.RepositoryURI(ctx, ecrc, repo)
		if err != nil {
			t.Fatal(err)
		}
		prefix := conf.ParameterPrefix() + "/" + rt.Name + "/" + v
		param(prefix, uri+"@"+cur.Index.Digest)
		images := map[string]string{}
		for _, a := range archs {
			param(prefix+"/"+a, uri+"@"+cur.Images[a].Digest)
			images[a] = cur.Images[a].Digest
		}
		record(records.ReleaseKey(rt.Name, v), records.Release{SchemaVersion: records.SchemaVersion, Runtime: rt.Name, Version: v, Repository: repo, Result: result, ExecutionID: priorExec,
			CheckedAt: "2026-11-28T04:31:00Z", ChangedAt: "2026-11-27T04:30:00Z", Index: cur.Index.Digest, DatedTag: runtimes.DatedTag(v, "20261127", "1b2c3d4e"), Images: images})
		return uri, old, cur
	}
	for _, rt := range list.Runtimes[:2] {
		if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(conf.RepositoryName(rt.Name))}); err != nil {
			t.Fatal(err)
		}
	}

	// Published, unchanged at the last check, with drafts of an execution
	// that has not published yet.
	node := &list.Runtimes[0]
	publish(node, node.Versions[0], "a", records.ResultUnchanged)
	for _, a := range node.Architectures {
		mototest.Put(t, ecrc, conf.RepositoryName(node.Name), runtimes.DraftTag(node.Versions[0], a, draftExec), mototest.ImageManifest("draft", string(a)))
	}
	// Held: rolled back to its earlier dated tag.
	v := node.Versions[1]
	uri, old, _ := publish(node, v, "b", records.ResultUnchanged)
	held := runtimes.DatedTag(v, "20261120", "0a1b2c3d")
	repo := conf.RepositoryName(node.Name)
	prefix := conf.ParameterPrefix() + "/" + node.Name + "/" + v
	images := map[string]string{}
	for _, a := range node.Architectures {
		mototest.Put(t, ecrc, repo, runtimes.ArchTag(v, a), old.Images[string(a)])
		param(prefix+"/"+string(a), uri+"@"+old.Images[string(a)].Digest)
		images[string(a)] = old.Images[string(a)].Digest
	}
	mototest.Put(t, ecrc, repo, v, old.Index)
	param(prefix, uri+"@"+old.Index.Digest)
	record(records.HoldKey(node.Name, v), records.Hold{SchemaVersion: records.SchemaVersion, To: held, Index: old.Index.Digest, At: "2026-11-28T09:30:00Z", By: "arn:aws:sts::123456789012:user/moto"})
	record(records.ReleaseKey(node.Name, v), records.Release{SchemaVersion: records.SchemaVersion, Runtime: node.Name, Version: v, Repository: repo, Result: records.ResultRolledBack,
		CheckedAt: "2026-11-28T09:30:00Z", ChangedAt: "2026-11-28T09:30:00Z", Index: old.Index.Digest, DatedTag: held, Images: images})

	// Published, but one parameter still names the earlier image.
	ci := &list.Runtimes[1]
	ciURI, ciOld, _ := publish(ci, ci.Versions[0], "c", records.ResultPublished)
	stale := conf.ParameterPrefix() + "/" + ci.Name + "/" + ci.Versions[0] + "/" + string(ci.Architectures[0])
	param(stale, ciURI+"@"+ciOld.Images[string(ci.Architectures[0])].Digest)
	// ci.Versions[1]: never published. list.Runtimes[2:]: no repository.

	var out bytes.Buffer
	if err := Run(ctx, cfg, Options{Config: conf, List: list, Now: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}, &out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	// moto stamps each image with the time it was put: the only value in
	// the output that the test does not choose.
	got := regexp.MustCompile(`pushed \S+`).ReplaceAllString(out.String(), "pushed <time of the put>")
	golden := filepath.Join("testdata", "status.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("status output differs from %s (go test ./internal/status -update rewrites it):\n%s", golden, got)
	}
	for _, s := range []string{"HELD at " + held, "execution " + draftExec + ": amd64, arm64", "DIFFER from the tags:", stale, "nothing yet (no tag " + ci.Versions[1] + ")",
		"repository " + conf.RepositoryName(list.Runtimes[2].Name) + " does not exist", "Verify      Failed (action Verify: Build batch failed", "not run in " + lastExec} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q", s)
		}
	}
}

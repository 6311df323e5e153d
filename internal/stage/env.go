// Package stage is the pipeline's daily protocol in Go: Build, Verify,
// Publish and Report, as `evergreen stage <name>` runs them in CodeBuild
// (and in the GitHub workflow). The buildspecs only start the binary; every
// decision a stage makes is here, over small interfaces of the AWS APIs
// (the SDK's clients implement them; tests use moto and an in-memory
// registry behind the same interfaces).
//
// Facts flow down the pipeline through the records bucket
// (internal/records): Build records the digest it pushed, Verify pulls that
// digest, not a tag, and records that it passed with the image's inventory
// and scans, Publish publishes the verified digests and no others, and
// Report renders the changelog from Publish's records. Every stage is safe
// to run again in the same pipeline execution: a stage retry (the
// pipeline's automatic one, or Retry in the console) starts a new batch
// with every entry in it, and an entry whose work is done finds its record
// and skips it.
package stage

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evergreen-images/evergreen/runtimes"
)

// Env is what a stage's build receives, from the CodeBuild project, the
// pipeline action and the build-graph entry, as environment variables.
// The names are the contract between the buildspecs (buildspecs/), the
// stack (stacks/) and this package.
type Env struct {
	// PipelineExecutionID (PIPELINE_EXECUTION_ID, from the pipeline
	// action) ties the stages of one execution together and stays the same
	// when a stage is retried.
	ExecutionID string
	// SourceRevision (SOURCE_REVISION): the commit or S3 object version.
	SourceRevision string
	// Registry (REGISTRY): <account>.dkr.ecr.<region>.<suffix>.
	Registry string
	Region   string // AWS_REGION
	// RecordsBucket (RECORDS_BUCKET): the stack's records bucket.
	RecordsBucket string
	// The entry: RUNTIME names the folder under runtimes/, REPOSITORY the
	// ECR repository; ARCH for Build and Verify, ARCHITECTURES for Publish.
	Runtime, Repository, Version, Arch string
	Architectures                      []string
	BaseImage, BaseRegistry            string
	// Publish: the freshness metric and the consumers' parameters.
	MetricNamespace, StackName, ParameterPrefix string
	// Verify, Publish: VULNERABILITY_GATE (config.VulnerabilityGate.Env).
	Gate string
	// Verify: the bound on waiting for scans and the signature, and
	// whether ECR signs.
	ScanWait                 time.Duration
	ScanPoll                 time.Duration
	Signing                  bool
	Enhanced                 bool // ENHANCED_SCANNING: the registry scans with Inspector
	BuildID                  string
	Releases                 []string // Report: <runtime>/<version>, list order
	ChangesTopic, AlertTopic string
	// Builder is who builds, for provenance: the CodeBuild project's ARN
	// (from CODEBUILD_BUILD_ARN), or the GitHub workflow at its ref
	// (GITHUB_WORKFLOW_REF); SourceRepository is where the source came
	// from (CODEBUILD_SOURCE_REPO_URL, or the GitHub repository), empty
	// when the build does not say. On GitHub, BuildID is the run's URL.
	Builder, SourceRepository string
	// SourceDir is where the source artifact is (CODEBUILD_SRC_DIR, or the
	// working directory): runtimes/<runtime>/ and buildspecs/inventory.sh.
	SourceDir string
}

// EnvFromOS reads the environment. It checks only what every stage needs;
// each stage checks its own variables (Env.require).
func EnvFromOS() (Env, error) {
	g := os.Getenv
	e := Env{
		ExecutionID:      g("PIPELINE_EXECUTION_ID"),
		SourceRevision:   g("SOURCE_REVISION"),
		Registry:         g("REGISTRY"),
		Region:           g("AWS_REGION"),
		RecordsBucket:    g("RECORDS_BUCKET"),
		Runtime:          g("RUNTIME"),
		Repository:       g("REPOSITORY"),
		Version:          g("VERSION"),
		Arch:             g("ARCH"),
		Architectures:    strings.Fields(g("ARCHITECTURES")),
		BaseImage:        g("BASE_IMAGE"),
		BaseRegistry:     g("BASE_REGISTRY"),
		MetricNamespace:  g("METRIC_NAMESPACE"),
		StackName:        g("STACK_NAME"),
		ParameterPrefix:  g("PARAMETER_PREFIX"),
		Gate:             g("VULNERABILITY_GATE"),
		Signing:          g("SIGNING") == "true",
		Enhanced:         g("ENHANCED_SCANNING") == "true",
		BuildID:          g("CODEBUILD_BUILD_ID"),
		Releases:         strings.Fields(g("RELEASES")),
		ChangesTopic:     g("CHANGES_TOPIC_ARN"),
		AlertTopic:       g("ALERT_TOPIC_ARN"),
		SourceDir:        g("CODEBUILD_SRC_DIR"),
		ScanPoll:         15 * time.Second,
		Builder:          codeBuildProject(g("CODEBUILD_BUILD_ARN")),
		SourceRepository: g("CODEBUILD_SOURCE_REPO_URL"),
	}
	// GitHub Actions' default variables name the workflow, the run and
	// the repository.
	if ref := g("GITHUB_WORKFLOW_REF"); e.Builder == "" && ref != "" {
		server := g("GITHUB_SERVER_URL")
		e.Builder = server + "/" + ref
		e.SourceRepository = "git+" + server + "/" + g("GITHUB_REPOSITORY")
		if e.BuildID == "" {
			e.BuildID = server + "/" + g("GITHUB_REPOSITORY") + "/actions/runs/" + g("GITHUB_RUN_ID") + "/attempts/" + g("GITHUB_RUN_ATTEMPT")
		}
	}
	if e.SourceDir == "" {
		e.SourceDir = "."
	}
	if s := g("SCAN_WAIT_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return e, fmt.Errorf("SCAN_WAIT_SECONDS %q is not a whole number of seconds", s)
		}
		e.ScanWait = time.Duration(n) * time.Second
	}
	if s := g("SCAN_POLL_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return e, fmt.Errorf("SCAN_POLL_SECONDS %q is not a whole number of seconds", s)
		}
		e.ScanPoll = time.Duration(n) * time.Second
	}
	if e.ExecutionID == "" {
		return e, fmt.Errorf("PIPELINE_EXECUTION_ID is not set: start this build from the pipeline (it passes PIPELINE_EXECUTION_ID to every build)")
	}
	return e, nil
}

// codeBuildProject is the project ARN of a CodeBuild build ARN,
// arn:<partition>:codebuild:<region>:<account>:build/<project>:<build id>:
// the builder is the project, the build one of its runs.
func codeBuildProject(buildARN string) string {
	head, rest, ok := strings.Cut(buildARN, ":build/")
	if !ok {
		return buildARN
	}
	project, _, _ := strings.Cut(rest, ":")
	return head + ":project/" + project
}

// require fails naming every variable of names that is empty.
func (e Env) require(stage string, vars map[string]string) error {
	var missing []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if vars[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("stage %s: %s not set: the buildspec's entry and the project's environment set them (run this from the pipeline)", stage, strings.Join(missing, ", "))
	}
	return nil
}

// DraftTag is this entry's draft tag for an architecture (runtimes/tags.go).
func (e Env) DraftTag(arch string) string {
	return runtimes.DraftTag(e.Version, runtimes.Arch(arch), e.ExecutionID)
}

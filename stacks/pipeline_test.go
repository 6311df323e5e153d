package stacks_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/source"
	"github.com/evergreen-images/evergreen/stacks"
)

// projectsByStage maps each CodeBuild project to its spec through the
// buildspec it carries.
func projectsByStage(t *testing.T, s synthesized) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	projects := resources(s, "AWS::CodeBuild::Project")
	for _, spec := range s.specs {
		found := false
		for _, p := range projects {
			src := props(p)["Source"].(map[string]any)
			if src["BuildSpec"] == string(spec.Content) {
				out[spec.FileName()] = p
				found = true
			}
		}
		if !found {
			t.Errorf("no project carries the %s buildspec byte for byte", spec.FileName())
		}
	}
	if len(projects) != len(s.specs) {
		t.Errorf("%d CodeBuild projects for %d buildspecs", len(projects), len(s.specs))
	}
	return out
}

func TestProjectsInlineTheCommittedBuildspecs(t *testing.T) {
	stages := map[buildspecs.Stage]bool{}
	for _, sp := range def.specs {
		stages[sp.Stage] = true
	}
	for _, st := range []buildspecs.Stage{buildspecs.Build, buildspecs.Verify, buildspecs.Publish} {
		if !stages[st] {
			t.Errorf("the default list renders no %s buildspec", st)
		}
	}
	for name, p := range projectsByStage(t, def) {
		committed, err := os.ReadFile(filepath.Join("buildspecs", name))
		if err != nil {
			t.Fatal(err)
		}
		if got := props(p)["Source"].(map[string]any)["BuildSpec"]; got != string(committed) {
			t.Errorf("the project's inline buildspec differs from the committed buildspecs/%s: run: make generate", name)
		}
	}
}

// Every part of a stage may run its entries twice (one retry of each); its
// batch allows the build timeout once per entry (each may queue behind the
// others), up to CodeBuild's 36 hours. The counts come from the list.
func TestBatchProjects(t *testing.T) {
	projects := projectsByStage(t, def)
	want := map[buildspecs.Stage]struct {
		entries    int // build-graph entries over all parts of the stage
		privileged bool
		timeout    int // per build, minutes
	}{
		buildspecs.Build:   {len(defaultList.Images()), true, 60},
		buildspecs.Verify:  {len(defaultList.Images()), true, 30},
		buildspecs.Publish: {len(defaultList.Releases()), false, 15},
	}
	entries := map[buildspecs.Stage]int{}
	for _, sp := range def.specs {
		if !sp.Batch() || sp.Stage == buildspecs.Tool {
			continue // TestReportProject, TestToolProjectIsAPlainBuildWithLogsAndArtifactsOnly
		}
		name := sp.FileName()
		w := want[sp.Stage]
		builds := len(sp.Identifiers)
		entries[sp.Stage] += builds
		p := props(projects[name])
		batch, ok := p["BuildBatchConfig"].(map[string]any)
		if !ok {
			t.Errorf("%s: batch builds are not enabled", name)
			continue
		}
		r := batch["Restrictions"].(map[string]any)
		if r["MaximumBuildsAllowed"] != float64(2*builds) {
			t.Errorf("%s: MaximumBuildsAllowed = %v, want %d (the entries, and room for one retry of each)", name, r["MaximumBuildsAllowed"], 2*builds)
		}
		if got := jsonString(t, r["ComputeTypesAllowed"]); got != `["BUILD_GENERAL1_SMALL"]` {
			t.Errorf("%s: ComputeTypesAllowed = %s", name, got)
		}
		if batch["ServiceRole"] == nil {
			t.Errorf("%s: no batch service role", name)
		}
		if wantBatch := min(w.timeout*builds, 2160); batch["TimeoutInMins"] != float64(wantBatch) {
			t.Errorf("%s: batch timeout %v, want %d (%d entries, each queued behind the others, at most 2160)", name, batch["TimeoutInMins"], wantBatch, builds)
		}
		if p["TimeoutInMinutes"] != float64(w.timeout) {
			t.Errorf("%s: build timeout %v, want %d", name, p["TimeoutInMinutes"], w.timeout)
		}
		// No cdk-nag rule checks privileged mode: Docker-in-Docker is only
		// for the stages that run Docker.
		env := p["Environment"].(map[string]any)
		if priv, _ := env["PrivilegedMode"].(bool); priv != w.privileged {
			t.Errorf("%s: PrivilegedMode = %v, want %v", name, priv, w.privileged)
		}
		if strings.Contains(string(sp.Content), "privileged-mode") != w.privileged {
			t.Errorf("%s: build-graph entries disagree with the project on privileged mode", name)
		}
	}
	for st, w := range want {
		if entries[st] != w.entries {
			t.Errorf("stage %s: %d build-graph entries, want %d from the list", st, entries[st], w.entries)
		}
	}
}

// projectVars are a project's environment variables by name.
func projectVars(p map[string]any) map[string]any {
	vars := map[string]any{}
	list, _ := props(p)["Environment"].(map[string]any)["EnvironmentVariables"].([]any)
	for _, v := range list {
		vars[v.(map[string]any)["Name"].(string)] = v.(map[string]any)["Value"]
	}
	return vars
}

type stage struct {
	Name    string
	Actions []struct {
		Name            string
		ActionTypeId    map[string]string
		Configuration   map[string]any
		RunOrder        float64
		InputArtifacts  []map[string]string
		OutputArtifacts []map[string]string
	}
	OnFailure map[string]any
}

func pipelineStages(t *testing.T, s synthesized) (map[string]any, []stage) {
	t.Helper()
	pipelines := resources(s, "AWS::CodePipeline::Pipeline")
	if len(pipelines) != 1 {
		t.Fatalf("%d pipelines, want 1", len(pipelines))
	}
	for _, p := range pipelines {
		var stages []stage
		if err := json.Unmarshal([]byte(jsonString(t, props(p)["Stages"])), &stages); err != nil {
			t.Fatal(err)
		}
		return props(p), stages
	}
	return nil, nil
}

func TestPipelineStagesInOrderWithBatchBuilds(t *testing.T) {
	for _, c := range []struct {
		name     string
		s        synthesized
		revision string
	}{
		{"default (S3 source)", def, "#{SourceVariables.VersionId}"},
		{"configured (Git source)", configured, "#{SourceVariables.CommitId}"},
	} {
		p, stages := pipelineStages(t, c.s)
		if p["PipelineType"] != "V2" {
			t.Errorf("%s: PipelineType %v, want V2", c.name, p["PipelineType"])
		}
		if p["ExecutionMode"] != "SUPERSEDED" {
			t.Errorf("%s: ExecutionMode %v, want SUPERSEDED (one execution per stage, the newest waiting one wins)", c.name, p["ExecutionMode"])
		}
		var names []string
		for _, st := range stages {
			names = append(names, st.Name)
		}
		if strings.Join(names, ",") != "Source,Tool,Build,Verify,Publish,Report" {
			t.Fatalf("%s: stages %v, want Source, Tool, Build, Verify, Publish, Report", c.name, names)
		}
		for _, st := range stages[1:] {
			if st.Name == "Tool" {
				if st.OnFailure["Result"] != "RETRY" {
					t.Errorf("%s: the Tool stage does not retry its failed action once: %v", c.name, st.OnFailure)
				}
				continue // TestToolStageBuildsTheBinaryEveryLaterStageRuns
			}
			if st.OnFailure["Result"] != "RETRY" || jsonString(t, st.OnFailure["RetryConfiguration"]) != `{"RetryMode":"FAILED_ACTIONS"}` {
				t.Errorf("%s: stage %s does not retry its failed actions once: %v", c.name, st.Name, st.OnFailure)
			}
			for _, a := range st.Actions {
				if a.ActionTypeId["Provider"] != "CodeBuild" {
					t.Errorf("%s: %s/%s is %v, want CodeBuild", c.name, st.Name, a.Name, a.ActionTypeId["Provider"])
				}
				if (a.Configuration["BatchEnabled"] == "true") != (st.Name != "Report") {
					t.Errorf("%s: %s/%s: BatchEnabled %v, want a batch for every stage but Report", c.name, st.Name, a.Name, a.Configuration["BatchEnabled"])
				}
				var env []map[string]string
				if err := json.Unmarshal([]byte(a.Configuration["EnvironmentVariables"].(string)), &env); err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, e := range env {
					got[e["name"]] = e["value"]
				}
				if got["PIPELINE_EXECUTION_ID"] != "#{codepipeline.PipelineExecutionId}" || got["SOURCE_REVISION"] != c.revision {
					t.Errorf("%s: %s/%s passes %v, want the execution id and %s", c.name, st.Name, a.Name, got, c.revision)
				}
			}
		}
	}
}

func TestGitSourceTriggersOnPushToItsBranch(t *testing.T) {
	p, stages := pipelineStages(t, configured)
	src := stages[0].Actions[0]
	if src.ActionTypeId["Provider"] != "CodeStarSourceConnection" {
		t.Fatalf("source provider %v", src.ActionTypeId["Provider"])
	}
	c := src.Configuration
	if c["ConnectionArn"] != configuredSource.ConnectionArn || c["FullRepositoryId"] != configuredSource.Repository || c["BranchName"] != "main" {
		t.Errorf("source configuration %v", c)
	}
	want := `[{"GitConfiguration":{"Push":[{"Branches":{"Includes":["main"]}}],"SourceActionName":"Source"},"ProviderType":"CodeStarSourceConnection"}]`
	if got := jsonString(t, p["Triggers"]); got != want {
		t.Errorf("triggers:\n got %s\nwant %s", got, want)
	}
}

// The default source is the deployed commit: a file asset of the app (the
// repository's committed files), which cdk deploy uploads to the bootstrap's
// versioned staging bucket before it creates the stack. So the execution
// CodePipeline starts as soon as the pipeline is created reads an object
// that exists; a bucket of the stack's own would still be empty then.
func TestDefaultSourceIsTheDeployedCommit(t *testing.T) {
	_, stages := pipelineStages(t, def)
	src := stages[0].Actions[0]
	if src.ActionTypeId["Provider"] != "S3" || src.Configuration["PollForSourceChanges"] != false {
		t.Fatalf("default source: %v %v", src.ActionTypeId, src.Configuration)
	}
	bucket := jsonString(t, src.Configuration["S3Bucket"])
	if !strings.Contains(bucket, "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}") {
		t.Errorf("the source bucket is %s, not the bootstrap's staging bucket", bucket)
	}
	for id := range def.json["Resources"].(map[string]any) {
		if strings.Contains(bucket, `"`+id+`"`) {
			t.Errorf("the source bucket is the stack's own %s: empty when the first execution starts", id)
		}
	}
	key, _ := src.Configuration["S3ObjectKey"].(string)
	if !strings.HasSuffix(key, ".zip") {
		t.Fatalf("source key %q", key)
	}
	// The asset in the cloud assembly is the zip of the committed files.
	outdir := *awscdk.Stage_Of(def.stack.Stack).Outdir()
	staged, err := os.ReadFile(filepath.Join(outdir, "asset."+key))
	if err != nil {
		t.Fatalf("the source asset is not in the cloud assembly: %v", err)
	}
	want, err := os.ReadFile(sourceZip)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(staged, want) {
		t.Error("the staged source differs from git archive HEAD")
	}
	z, err := zip.NewReader(bytes.NewReader(staged), int64(len(staged)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range z.File {
		names[f.Name] = true
	}
	// What the source lacks, synth refuses to deploy (main.go's
	// checkCommitted): a runtime scaffolded and not committed yet is in
	// the work tree the tests see, and not in git archive HEAD.
	for _, rt := range defaultList.Runtimes {
		uncommitted, err := source.Uncommitted(".", "runtimes/"+rt.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"runtimes/" + rt.Name + "/Dockerfile", "runtimes/" + rt.Name + "/self-test"} {
			if !names[f] && !slices.ContainsFunc(uncommitted, func(u string) bool { return strings.HasPrefix(u, f+" ") }) {
				t.Errorf("the source lacks %s, and synth would not say so", f)
			}
		}
	}
	if _, ok := configured.json["Outputs"].(map[string]any)["SourceBucket"]; ok {
		t.Error("a source bucket output remains")
	}
}

func TestDailyScheduleStartsThePipeline(t *testing.T) {
	rules := resources(def, "AWS::Events::Rule")
	var found bool
	for _, r := range rules {
		p := props(r)
		if p["ScheduleExpression"] == nil {
			continue
		}
		found = true
		if p["ScheduleExpression"] != "cron(0 4 * * ? *)" {
			t.Errorf("schedule %v", p["ScheduleExpression"])
		}
		targets := p["Targets"].([]any)
		if len(targets) != 1 {
			t.Fatalf("schedule targets %v", targets)
		}
		target := jsonString(t, targets[0])
		pipelineID := slices.Sorted(maps.Keys(resources(def, "AWS::CodePipeline::Pipeline")))[0]
		if !strings.Contains(target, pipelineID) || !strings.Contains(target, "RoleArn") {
			t.Errorf("the schedule does not start pipeline %s with a role: %s", pipelineID, target)
		}
	}
	if !found {
		t.Fatal("no scheduled rule")
	}
	// The target role may start this pipeline and nothing else.
	found = false
	for _, pol := range resources(def, "AWS::IAM::Policy") {
		doc := jsonString(t, props(pol)["PolicyDocument"])
		if strings.Contains(doc, "codepipeline:StartPipelineExecution") {
			found = true
			if strings.Count(doc, `"Action"`) != 1 || strings.Contains(doc, `"Resource":"*"`) {
				t.Errorf("schedule role policy is broader than starting the pipeline: %s", doc)
			}
		}
	}
	if !found {
		t.Error("no role may start the pipeline")
	}
}

func TestOutputs(t *testing.T) {
	outputs := def.json["Outputs"].(map[string]any)
	for _, k := range []string{"PipelineName", "PipelineConsole", "AlertTopic"} {
		if outputs[k] == nil {
			t.Errorf("no output %s (have %v)", k, slices.Sorted(maps.Keys(outputs)))
		}
	}
	// One repository URI per runtime of the list.
	repoIDs := map[string]string{}
	for id, r := range resources(def, "AWS::ECR::Repository") {
		repoIDs[props(r)["RepositoryName"].(string)] = id
	}
	for _, rt := range defaultList.Runtimes {
		id, ok := repoIDs[config.Default().RepositoryName(rt.Name)]
		if !ok {
			t.Errorf("no repository for runtime %s", rt.Name)
			continue
		}
		found := false
		for k, o := range outputs {
			found = found || strings.HasPrefix(k, "RepositoryUri") && strings.Contains(jsonString(t, o), `"`+id+`"`)
		}
		if !found {
			t.Errorf("no RepositoryUri output for runtime %s (repository %s; have %v)", rt.Name, id, slices.Sorted(maps.Keys(outputs)))
		}
	}
	uris := 0
	for k := range outputs {
		if strings.HasPrefix(k, "RepositoryUri") {
			uris++
		}
	}
	if uris != len(defaultList.Runtimes) {
		t.Errorf("%d RepositoryUri outputs for %d runtimes", uris, len(defaultList.Runtimes))
	}
}

// The scale case: 60 runtime-versions still make a pipeline CodeBuild and
// CloudFormation accept, by splitting each stage into parallel parts.
func TestSixtyVersionsFitCodeBuildAndCloudFormation(t *testing.T) {
	parts := map[buildspecs.Stage]int{}
	builds := map[buildspecs.Stage]int{}
	for _, sp := range sixty.specs {
		parts[sp.Stage]++
		builds[sp.Stage] += len(sp.Identifiers)
		if len(sp.Content) > buildspecs.MaxInlineLen {
			t.Errorf("%s is %d characters, over CodeBuild's %d", sp.FileName(), len(sp.Content), buildspecs.MaxInlineLen)
		}
	}
	if builds[buildspecs.Build] != 120 || builds[buildspecs.Verify] != 120 || builds[buildspecs.Publish] != 60 {
		t.Errorf("builds per stage %v, want 120/120/60", builds)
	}
	if parts[buildspecs.Build] < 2 {
		t.Errorf("120 build entries fit in %d part: the test does not exercise splitting", parts[buildspecs.Build])
	}
	_, stages := pipelineStages(t, sixty)
	for _, st := range stages[1:] {
		want := parts[buildspecs.Stage(strings.ToLower(st.Name))]
		if len(st.Actions) != want {
			t.Errorf("stage %s has %d actions, want %d parallel parts", st.Name, len(st.Actions), want)
		}
		for _, a := range st.Actions {
			if a.RunOrder != 1 {
				t.Errorf("%s/%s runs after the others (RunOrder %v): parts must run in parallel", st.Name, a.Name, a.RunOrder)
			}
		}
	}
	n := len(sixty.json["Resources"].(map[string]any))
	if n > stacks.MaxResources || sixty.bytes > stacks.MaxTemplateBytes {
		t.Errorf("template: %d resources, %d bytes; limits %d and %d", n, sixty.bytes, stacks.MaxResources, stacks.MaxTemplateBytes)
	}
	t.Logf("60 versions: %d parts, %d resources, %d template bytes", len(sixty.specs), n, sixty.bytes)
}

// The Report stage is one plain build after Publish, with what its commands
// read: the records bucket, the changes topic, the stack name.
func TestReportProject(t *testing.T) {
	projects := projectsByStage(t, def)
	p := props(projects["report.yml"])
	if p["BuildBatchConfig"] != nil {
		t.Error("the report project is a batch project")
	}
	if env := p["Environment"].(map[string]any); env["PrivilegedMode"] == true {
		t.Error("the report project is privileged")
	}
	vars := map[string]any{}
	for _, v := range p["Environment"].(map[string]any)["EnvironmentVariables"].([]any) {
		vars[v.(map[string]any)["Name"].(string)] = v.(map[string]any)["Value"]
	}
	for _, name := range []string{"RECORDS_BUCKET", "CHANGES_TOPIC_ARN", "STACK_NAME"} {
		if vars[name] == nil {
			t.Errorf("the report project has no %s", name)
		}
	}
	if got := jsonString(t, vars["CHANGES_TOPIC_ARN"]); !strings.Contains(got, `"Ref":"ImagesChanges`) {
		t.Errorf("CHANGES_TOPIC_ARN = %s, want the stack's changes topic", got)
	}
	_, stages := pipelineStages(t, def)
	if last := stages[len(stages)-1]; last.Name != "Report" || len(last.Actions) != 1 {
		t.Errorf("the last pipeline stage is %s with %d actions, want Report with one", last.Name, len(last.Actions))
	}
}

// Verify and Publish judge scans by the configuration: the gate, the wait,
// and whether ECR signs.
func TestScanSettingsReachTheProjects(t *testing.T) {
	for _, c := range []struct {
		name    string
		s       synthesized
		signing string
	}{{"default", def, "false"}, {"configured", configured, "true"}} {
		for name, p := range projectsByStage(t, c.s) {
			vars := projectVars(p)
			switch {
			case strings.HasPrefix(name, "verify"):
				if vars["VULNERABILITY_GATE"] != "never-worse" || vars["SCAN_WAIT_SECONDS"] != "600" || vars["SIGNING"] != c.signing {
					t.Errorf("%s %s: gate %v, wait %v, signing %v", c.name, name, vars["VULNERABILITY_GATE"], vars["SCAN_WAIT_SECONDS"], vars["SIGNING"])
				}
			case strings.HasPrefix(name, "publish"):
				if vars["VULNERABILITY_GATE"] != "never-worse" {
					t.Errorf("%s %s: gate %v", c.name, name, vars["VULNERABILITY_GATE"])
				}
			case name == "report.yml":
				if vars["ALERT_TOPIC_ARN"] == nil {
					t.Errorf("%s: the report cannot alert", c.name)
				}
			}
		}
	}
}

func artifactNames(arts []map[string]string) []string {
	var out []string
	for _, a := range arts {
		out = append(out, a["Name"])
	}
	return out
}

// The binary is built once per execution, from the source artifact (the
// deployed commit), and every later action receives it as a second input
// artifact while the source stays the primary one: the buildspecs start
// $CODEBUILD_SRC_DIR_Tool/bin/<arch>/evergreen from the source directory.
func TestToolStageBuildsTheBinaryEveryLaterStageRuns(t *testing.T) {
	for _, c := range []struct {
		name string
		s    synthesized
	}{{"default", def}, {"configured", configured}, {"sixty", sixty}} {
		_, stages := pipelineStages(t, c.s)
		if len(stages) < 2 || stages[1].Name != "Tool" {
			t.Fatalf("%s: the stage after Source is not Tool", c.name)
		}
		source := artifactNames(stages[0].Actions[0].OutputArtifacts)
		tool := stages[1]
		if len(tool.Actions) != 1 {
			t.Fatalf("%s: the Tool stage has %d actions, want one build", c.name, len(tool.Actions))
		}
		a := tool.Actions[0]
		if a.ActionTypeId["Provider"] != "CodeBuild" || a.Configuration["BatchEnabled"] != nil {
			t.Errorf("%s: the Tool action is %v (BatchEnabled %v), want one plain CodeBuild build", c.name, a.ActionTypeId["Provider"], a.Configuration["BatchEnabled"])
		}
		if got := artifactNames(a.InputArtifacts); !slices.Equal(got, source) {
			t.Errorf("%s: the Tool action reads %v, want the source artifact %v", c.name, got, source)
		}
		if got := artifactNames(a.OutputArtifacts); !slices.Equal(got, []string{buildspecs.ToolArtifact}) {
			t.Errorf("%s: the Tool action writes %v, want [%s] (the buildspecs read $CODEBUILD_SRC_DIR_%s)", c.name, got, buildspecs.ToolArtifact, buildspecs.ToolArtifact)
		}
		actions := 0
		for _, st := range stages[2:] {
			for _, a := range st.Actions {
				actions++
				if got := artifactNames(a.InputArtifacts); !slices.Equal(got, append(slices.Clone(source), buildspecs.ToolArtifact)) {
					t.Errorf("%s: %s/%s reads %v, want the source and %s", c.name, st.Name, a.Name, got, buildspecs.ToolArtifact)
				}
				if a.Configuration["PrimarySource"] != source[0] {
					t.Errorf("%s: %s/%s: PrimarySource %v, want %s: the buildspec runs in the source", c.name, st.Name, a.Name, a.Configuration["PrimarySource"], source[0])
				}
			}
		}
		if want := len(c.s.specs) - 1; actions != want {
			t.Errorf("%s: %d actions after Tool, want one per buildspec but Tool's (%d)", c.name, actions, want)
		}
	}
}

// The Tool project compiles Go and nothing else: a plain build on the amd64
// image, without Docker, whose role may write its logs and the pipeline's
// artifacts and may not touch an image, a record, a parameter or a topic.
func TestToolProjectIsAPlainBuildWithLogsAndArtifactsOnly(t *testing.T) {
	var spec buildspecs.Spec
	for _, sp := range def.specs {
		if sp.Stage == buildspecs.Tool {
			spec = sp
		}
	}
	p := props(projectsByStage(t, def)[spec.FileName()])
	if p == nil {
		t.Fatal("no project carries the Tool buildspec")
	}
	if p["BuildBatchConfig"] != nil {
		t.Error("the Tool project is a batch project")
	}
	env := p["Environment"].(map[string]any)
	if env["Type"] != "LINUX_CONTAINER" || env["Image"] != buildspecs.DefaultImages().AMD64 || env["PrivilegedMode"] == true {
		t.Errorf("the Tool project runs %v %v privileged=%v, want LINUX_CONTAINER %s unprivileged", env["Type"], env["Image"], env["PrivilegedMode"], buildspecs.DefaultImages().AMD64)
	}
	id := func(c any) string { return *def.stack.Stack.GetLogicalId(c.(awscdk.CfnElement)) }
	artifactsKey := id(def.stack.ArtifactsKey.Node().DefaultChild())
	bucket := id(def.stack.Pipeline.ArtifactBucket.Node().DefaultChild())
	if got := jsonString(t, p["EncryptionKey"]); !strings.Contains(got, `"`+artifactsKey+`"`) {
		t.Errorf("the Tool project's EncryptionKey is %s, want the artifacts key %s", got, artifactsKey)
	}
	var logs string
	for lid := range resources(def, "AWS::Logs::LogGroup") {
		if strings.HasPrefix(lid, "ImagesToolLogs") {
			logs = lid
		}
	}
	roleID, stmts := rolePolicies(t, def, "ImagesToolRole")
	if got := jsonString(t, p["ServiceRole"]); !strings.Contains(got, `"`+roleID+`"`) {
		t.Errorf("the Tool project runs as %s, want its own role %s", got, roleID)
	}
	for _, st := range stmts {
		for _, a := range st.actions() {
			if !slices.Contains([]string{"logs", "codebuild", "s3", "kms"}, strings.SplitN(a, ":", 2)[0]) {
				t.Errorf("the Tool role may %s", a)
			}
		}
		for _, r := range st.resources() {
			ok := strings.Contains(r, `"`+bucket+`"`) || strings.Contains(r, `"`+artifactsKey+`"`) ||
				(logs != "" && strings.Contains(r, `"`+logs+`"`)) ||
				strings.Contains(r, ":log-group:/aws/codebuild/") || strings.Contains(r, ":report-group/")
			if !ok {
				t.Errorf("the Tool role may %v on %s: only its logs, its report groups, the artifact bucket and the artifacts key", st.actions(), r)
			}
		}
	}
	if len(stmts) == 0 {
		t.Error("the Tool role has no policy: it cannot read the source")
	}
}

package rehearsal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

// template builds a CloudFormation template shaped like the synthesized one
// (same resource types, properties and pipeline wiring), with the committed
// buildspecs inlined: no CDK synth, so the test is cheap.
func template(t *testing.T) []byte {
	t.Helper()
	// The project variables as the stack writes them: REGISTRY an Fn::Sub,
	// RECORDS_BUCKET a Ref to the bucket, STACK_NAME a Ref to the pseudo
	// parameter (Publish only, with METRIC_NAMESPACE).
	vars := []any{
		map[string]any{"Name": "RECORDS_BUCKET", "Type": "PLAINTEXT", "Value": map[string]any{"Ref": "Records"}},
		map[string]any{"Name": "REGISTRY", "Type": "PLAINTEXT", "Value": map[string]any{"Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}"}},
	}
	publishVars := append(append([]any{}, vars...),
		map[string]any{"Name": "METRIC_NAMESPACE", "Type": "PLAINTEXT", "Value": "EvergreenImages"},
		map[string]any{"Name": "STACK_NAME", "Type": "PLAINTEXT", "Value": map[string]any{"Ref": "AWS::StackName"}})
	// Report: no REGISTRY; the changes topic is a Ref (its ARN).
	reportVars := []any{vars[0],
		map[string]any{"Name": "STACK_NAME", "Type": "PLAINTEXT", "Value": map[string]any{"Ref": "AWS::StackName"}},
		map[string]any{"Name": "CHANGES_TOPIC_ARN", "Type": "PLAINTEXT", "Value": map[string]any{"Ref": "Changes"}}}
	project := func(file string) map[string]any {
		vars := vars
		switch file {
		case "publish.yml":
			vars = publishVars
		case "report.yml":
			vars = reportVars
		}
		b, err := os.ReadFile(filepath.Join("..", "..", "buildspecs", file))
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"Type": "AWS::CodeBuild::Project", "Properties": map[string]any{
			"TimeoutInMinutes": 30,
			"Source":           map[string]any{"Type": "CODEPIPELINE", "BuildSpec": string(b)},
			"Environment":      map[string]any{"EnvironmentVariables": vars},
		}}
	}
	env := `[{"name":"PIPELINE_EXECUTION_ID","type":"PLAINTEXT","value":"#{codepipeline.PipelineExecutionId}"},{"name":"SOURCE_REVISION","type":"PLAINTEXT","value":"#{SourceVariables.VersionId}"}]`
	action := func(stage, ref string) map[string]any {
		conf := map[string]any{"ProjectName": map[string]any{"Ref": ref}, "EnvironmentVariables": env, "BatchEnabled": "true"}
		if stage == "Report" {
			delete(conf, "BatchEnabled") // one plain build
		}
		return map[string]any{"Name": stage, "Actions": []any{map[string]any{
			"Name":          stage,
			"ActionTypeId":  map[string]any{"Category": "Build", "Owner": "AWS", "Provider": "CodeBuild"},
			"Configuration": conf,
		}}}
	}
	tpl := map[string]any{"Resources": map[string]any{
		"Repo": map[string]any{"Type": "AWS::ECR::Repository", "Properties": map[string]any{
			"RepositoryName": "evergreen/node", "ImageTagMutability": "MUTABLE_WITH_EXCLUSION",
			"ImageTagMutabilityExclusionFilters": []any{map[string]any{"ImageTagMutabilityExclusionFilterType": "WILDCARD", "ImageTagMutabilityExclusionFilterValue": "*-r20*"}},
		}},
		"Records": map[string]any{"Type": "AWS::S3::Bucket", "Properties": map[string]any{"VersioningConfiguration": map[string]any{"Status": "Enabled"}}},
		"StaleNode22": map[string]any{"Type": "AWS::CloudWatch::Alarm", "Properties": map[string]any{
			"Namespace": "EvergreenImages", "MetricName": "Fresh", "Statistic": "Sum", "ComparisonOperator": "LessThanThreshold", "Threshold": 1,
			"Dimensions": []any{
				map[string]any{"Name": "Runtime", "Value": "node"},
				map[string]any{"Name": "Stack", "Value": map[string]any{"Ref": "AWS::StackName"}},
				map[string]any{"Name": "Version", "Value": "22"},
			},
		}},
		"Changes": map[string]any{"Type": "AWS::SNS::Topic", "Properties": map[string]any{"DisplayName": "Evergreen images changelog"}},
		"B":       project("build.yml"), "V": project("verify.yml"), "P": project("publish.yml"), "R": project("report.yml"),
		"Pipeline": map[string]any{"Type": "AWS::CodePipeline::Pipeline", "Properties": map[string]any{"Stages": []any{
			map[string]any{"Name": "Source", "Actions": []any{map[string]any{"Name": "Source", "ActionTypeId": map[string]any{"Provider": "S3"}}}},
			action("Build", "B"), action("Verify", "V"), action("Publish", "P"), action("Report", "R"),
		}}},
	}}
	b, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTemplate(t *testing.T) {
	pl, err := ParseTemplate(template(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Actions) != 4 || pl.Actions[0].Stage != "Build" || pl.Actions[2].Stage != "Publish" || pl.Actions[3].Stage != "Report" {
		t.Fatalf("actions: %+v", pl.Actions)
	}
	if len(pl.Repositories) != 1 || !pl.Repositories[0].Immutable("22-r20261126-abcdef12") {
		t.Fatalf("repositories: %+v", pl.Repositories)
	}
	b := pl.Stage("Build")[0]
	if b.TimeoutMinutes != 30 || !b.Batch || len(b.Spec.Entries) == 0 {
		t.Fatalf("build action: %+v", b)
	}
	e := b.Spec.Entries[0]
	var names []string
	for _, v := range e.Vars {
		names = append(names, v.Name)
	}
	if strings.Join(names, " ") != "RUNTIME REPOSITORY VERSION ARCH BASE_IMAGE BASE_REGISTRY" {
		t.Fatalf("entry variables in order: %v", names)
	}
	// The commands are the generator's, byte for byte.
	for i, st := range buildspecs.Stages {
		pre, cmds := buildspecs.InlineCommands(st)
		var want []Phase
		if len(pre) > 0 {
			want = append(want, Phase{"pre_build", pre})
		}
		want = append(want, Phase{"build", cmds})
		got := pl.Actions[i].Spec.Phases
		if len(got) != len(want) {
			t.Fatalf("%s: phases %v", st, got)
		}
		for j := range want {
			if strings.Join(got[j].Commands, "\x00") != strings.Join(want[j].Commands, "\x00") {
				t.Errorf("%s %s: the template's commands differ from buildspecs.InlineCommands", st, want[j].Name)
			}
		}
	}

	// Every project variable resolves with the stand-in's references.
	if len(pl.Buckets) != 1 || pl.Buckets[0].LogicalID != "Records" || pl.Buckets[0].Name != "" {
		t.Fatalf("buckets: %+v", pl.Buckets)
	}
	if len(pl.Topics) != 1 || pl.Topics[0].LogicalID != "Changes" || pl.Topics[0].Name != "" {
		t.Fatalf("topics: %+v", pl.Topics)
	}
	refs := map[string]string{"AWS::AccountId": "1", "AWS::Region": "r", "AWS::URLSuffix": "s", "AWS::StackName": "Stack", "Records": "stack-records-x",
		"Changes": "arn:aws:sns:r:1:Stack-Changes-X"}
	got := map[string]string{}
	for _, a := range pl.Actions {
		for _, v := range a.ProjectEnv {
			val, err := ResolveProjectValue(v.Value, refs)
			if err != nil {
				t.Fatalf("%s %s: %v", a.Stage, v.Name, err)
			}
			got[a.Stage+" "+v.Name] = val
		}
	}
	if got["Build RECORDS_BUCKET"] != "stack-records-x" || got["Publish STACK_NAME"] != "Stack" || got["Publish METRIC_NAMESPACE"] != "EvergreenImages" ||
		got["Report CHANGES_TOPIC_ARN"] != "arn:aws:sns:r:1:Stack-Changes-X" {
		t.Fatalf("resolved project variables: %v", got)
	}
	if len(pl.Alarms) != 1 || pl.Alarms[0].MetricName != "Fresh" || len(pl.Alarms[0].Dimensions) != 3 {
		t.Fatalf("alarms: %+v", pl.Alarms)
	}
	if v, err := ResolveProjectValue(pl.Alarms[0].Dimensions[1].Value, refs); err != nil || v != "Stack" {
		t.Fatalf("the alarm's Stack dimension: %q %v", v, err)
	}
	reg, err := ResolveProjectValue(got["Build REGISTRY"], nil)
	if err != nil || reg != "1.dkr.ecr.r.s" {
		t.Fatalf("REGISTRY: %q %v", reg, err)
	}
	if _, err := ResolveProjectValue(map[string]any{"Fn::GetAtt": []any{"X", "Arn"}}, nil); err == nil {
		t.Fatal("an unknown intrinsic must not resolve")
	}
	v, err := ResolvePipelineValue(b.ActionEnv[0].Value, map[string]string{"codepipeline.PipelineExecutionId": "id"})
	if err != nil || v != "id" {
		t.Fatalf("pipeline variable: %q %v", v, err)
	}
	if _, err := ResolvePipelineValue("#{Other.X}", nil); err == nil {
		t.Fatal("an unknown pipeline variable must not resolve")
	}
}

func TestParseBuildspecRefusesWhatItCannotRun(t *testing.T) {
	for _, spec := range []string{
		"version: 0.2\nphases:\n  build:\n    commands: [x]\n    finally: [y]\n",
		"version: \"0.2\"\nphases:\n  build:\n    commands: [x]\n",
		"version: 0.2\nbatch:\n  build-list: []\n",
		"version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      env:\n        compute-type: ARM_CONTAINER\n        types: x\n",
		"version: 0.2\nphases:\n  buld:\n    commands: [x]\n",
	} {
		if _, err := ParseBuildspec([]byte(spec)); err == nil {
			t.Errorf("accepted:\n%s", spec)
		}
	}
}

func TestBuildEnvRefusesAmbiguousNames(t *testing.T) {
	_, err := BuildEnv(nil, Env{Action: []Var{{"VERSION", "1"}}}, Buildspec{}, Entry{ID: "e", Vars: []Var{{"VERSION", "2"}}})
	if err == nil {
		t.Fatal("a variable set by the action and the entry must be refused")
	}
}

// A build graph generated with a concurrency cap parses with its depend-on
// chains, and inOrder runs them as a batch would: never more than jobs at
// once, each entry after the ones it depends on.
func TestDependOnIsHonoured(t *testing.T) {
	list, err := runtimes.Load(filepath.Join("..", "..", "testdata", "runtimes", "sixty", "runtimes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o := buildspecs.OptionsFrom(config.Default())
	o.MaxConcurrentBuilds = 2
	specs, err := buildspecs.Generate(list, o)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := ParseBuildspec(specs[0].Content)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(bs.Entries))
	deps := make([][]string, len(bs.Entries))
	chained := 0
	for i, e := range bs.Entries {
		ids[i], deps[i] = e.ID, e.DependOn
		if len(e.DependOn) > 0 {
			chained++
		}
	}
	if chained == 0 {
		t.Fatal("no entry has depend-on with a cap of 2")
	}
	var mu sync.Mutex
	finished := map[string]bool{}
	running, most := 0, 0
	inOrder(ids, deps, 3, func(i int) {
		mu.Lock()
		for _, d := range deps[i] {
			if !finished[d] {
				t.Errorf("%s started before %s finished", ids[i], d)
			}
		}
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		finished[ids[i]] = true
		mu.Unlock()
	})
	if len(finished) != len(ids) || most > 3 {
		t.Errorf("ran %d of %d entries, at most %d at once (jobs 3)", len(finished), len(ids), most)
	}
}

// The Report stage: a plain build, run once with the project's, the
// action's and the buildspec's variables (RELEASES), no entry's.
func TestPlainAction(t *testing.T) {
	pl, err := ParseTemplate(template(t))
	if err != nil {
		t.Fatal(err)
	}
	rep := pl.Stage("Report")
	if len(rep) != 1 || rep[0].Batch || rep[0].Spec.HasBatch || len(rep[0].Spec.Entries) != 0 {
		t.Fatalf("report action: %+v", rep)
	}
	r := &rehearsal{bin: "/bin", revision: "rev", refs: map[string]string{"AWS::StackName": "Stack", "Records": "stack-records-x", "Changes": "arn:aws:sns:r:1:Stack-Changes-X"}}
	env, err := r.env(rep[0], Entry{}, rep[0].Spec, "exec-1", "/src", "/home", false)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	if vars["CHANGES_TOPIC_ARN"] != "arn:aws:sns:r:1:Stack-Changes-X" || vars["PIPELINE_EXECUTION_ID"] != "exec-1" || vars["SOURCE_REVISION"] != "rev" ||
		vars["RECORDS_BUCKET"] != "stack-records-x" || !strings.Contains(vars["RELEASES"], "node/22") {
		t.Fatalf("report environment: %v", vars)
	}
	if _, ok := vars["CODEBUILD_BATCH_BUILD_IDENTIFIER"]; ok {
		t.Fatal("a plain build has no batch build identifier")
	}

	// A batch action whose buildspec has no batch section, or the reverse,
	// is refused.
	var tpl map[string]any
	json.Unmarshal(template(t), &tpl)
	stages := tpl["Resources"].(map[string]any)["Pipeline"].(map[string]any)["Properties"].(map[string]any)["Stages"].([]any)
	conf := stages[4].(map[string]any)["Actions"].([]any)[0].(map[string]any)["Configuration"].(map[string]any)
	conf["BatchEnabled"] = "true"
	b, _ := json.Marshal(tpl)
	if _, err := ParseTemplate(b); err == nil || !strings.Contains(err.Error(), "no batch section") {
		t.Fatalf("batch action on a plain buildspec: %v", err)
	}
	delete(conf, "BatchEnabled")
	conf = stages[1].(map[string]any)["Actions"].([]any)[0].(map[string]any)["Configuration"].(map[string]any)
	delete(conf, "BatchEnabled")
	b, _ = json.Marshal(tpl)
	if _, err := ParseTemplate(b); err == nil || !strings.Contains(err.Error(), "has a batch section") {
		t.Fatalf("plain action on a batch buildspec: %v", err)
	}
}

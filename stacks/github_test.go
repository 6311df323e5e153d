package stacks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

// ghStack is synthesized once for this file (one Node.js process serves the
// whole package; see aws-facts). It holds the repositories, a GitHubAccess
// that creates its provider, one that imports an existing provider, and one
// reference role per stage granted by grantStage exactly as the pipeline
// grants its CodeBuild roles.
var (
	ghOnce     sync.Once
	ghTemplate map[string]any
	ghErr      error
)

const existingProviderArn = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"

func ghSynth(t *testing.T) map[string]any {
	t.Helper()
	ghOnce.Do(func() {
		defer func() {
			if r := recover(); r != nil {
				ghErr = errors.New(strings.TrimSpace(toString(r)))
			}
		}()
		ctx, err := cdkJSONContext()
		if err != nil {
			ghErr = err
			return
		}
		app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
		stack := awscdk.NewStack(app, jsii.String("GitHubTest"), nil)
		list := &runtimes.List{Path: "test", Runtimes: []runtimes.Runtime{
			{Name: "node", Versions: []string{"22"}, Architectures: runtimes.DefaultArchitectures, BaseImage: "node", BaseRegistry: runtimes.DefaultBaseRegistry, ComputeType: runtimes.DefaultComputeType},
			{Name: "python", Versions: []string{"3.13"}, Architectures: runtimes.DefaultArchitectures, BaseImage: "python", BaseRegistry: runtimes.DefaultBaseRegistry, ComputeType: runtimes.DefaultComputeType},
		}}
		repos := NewRepositories(stack, "Repositories", &RepositoriesProps{List: list, Config: config.Default()})
		records := awss3.NewBucket(stack, jsii.String("Records"), nil)
		access := stageAccess{Repositories: repos, Records: records, ParameterPrefix: config.Default().ParameterPrefix(),
			Changes: awssns.NewTopic(stack, jsii.String("Changes"), nil), Alerts: awssns.NewTopic(stack, jsii.String("Alerts"), nil)}
		NewGitHubAccess(stack, "GitHub", &GitHubAccessProps{
			Config:       &config.GitHub{Repository: "acme/evergreen-images", Branch: "main"},
			Repositories: repos,
			Access:       access,
		})
		NewGitHubAccess(stack, "GitHubImported", &GitHubAccessProps{
			Config:       &config.GitHub{Repository: "acme/other", Branch: "release", OIDCProviderArn: existingProviderArn},
			Repositories: repos,
			Access:       access,
		})
		for _, st := range append(slices.Clone(buildspecs.Stages), buildspecs.Report) {
			role := awsiam.NewRole(stack, jsii.String("Reference"+title(st)), &awsiam.RoleProps{
				AssumedBy: awsiam.NewServicePrincipal(jsii.String("codebuild.amazonaws.com"), nil),
			})
			grantStage(role, st, access)
		}
		tpl := assertions.Template_FromStack(stack, nil)
		b, err := json.Marshal(tpl.ToJSON())
		if err != nil {
			ghErr = err
			return
		}
		ghErr = json.Unmarshal(b, &ghTemplate)
	})
	if ghErr != nil {
		t.Fatal(ghErr)
	}
	return ghTemplate
}

func toString(v any) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// cdkJSONContext is cdk.json's context (feature flags included), so the test
// stack synthesizes as the app does.
func cdkJSONContext() (map[string]any, error) {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "cdk.json"))
	if err != nil {
		return nil, err
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc.Context, nil
}

func resources(tpl map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tpl["Resources"].(map[string]any) {
		out[id] = r.(map[string]any)
	}
	return out
}

// roleByPrefix finds the one AWS::IAM::Role whose logical id starts with prefix.
func roleByPrefix(t *testing.T, tpl map[string]any, prefix string) (string, map[string]any) {
	t.Helper()
	var id string
	var role map[string]any
	for rid, r := range resources(tpl) {
		if r["Type"] == "AWS::IAM::Role" && strings.HasPrefix(rid, prefix) {
			if role != nil {
				t.Fatalf("two roles start with %s: %s and %s", prefix, id, rid)
			}
			id, role = rid, r
		}
	}
	if role == nil {
		t.Fatalf("no role starts with %s", prefix)
	}
	return id, role
}

// grants are a role's policy statements as "effect action resource" lines,
// sorted, with resources rendered as JSON (references stay references).
func grants(t *testing.T, tpl map[string]any, roleID string) []string {
	t.Helper()
	var out []string
	for _, r := range resources(tpl) {
		if r["Type"] != "AWS::IAM::Policy" {
			continue
		}
		props := r["Properties"].(map[string]any)
		attached := false
		for _, ref := range props["Roles"].([]any) {
			if m, ok := ref.(map[string]any); ok && m["Ref"] == roleID {
				attached = true
			}
		}
		if !attached {
			continue
		}
		for _, s := range props["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := s.(map[string]any)
			for _, a := range asList(st["Action"]) {
				for _, res := range asList(st["Resource"]) {
					b, _ := json.Marshal(res)
					out = append(out, st["Effect"].(string)+" "+a.(string)+" "+string(b))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func TestGitHubRoleTrustIsOneRepositoryAndBranch(t *testing.T) {
	tpl := ghSynth(t)
	_, role := roleByPrefix(t, tpl, "GitHubRole")
	props := role["Properties"].(map[string]any)
	if got := props["MaxSessionDuration"]; got != float64(3600) {
		t.Errorf("MaxSessionDuration = %v, want 3600", got)
	}
	stmts := props["AssumeRolePolicyDocument"].(map[string]any)["Statement"].([]any)
	if len(stmts) != 1 {
		t.Fatalf("trust policy has %d statements, want 1: %v", len(stmts), stmts)
	}
	st := stmts[0].(map[string]any)
	if st["Action"] != "sts:AssumeRoleWithWebIdentity" || st["Effect"] != "Allow" {
		t.Errorf("trust statement = %v", st)
	}
	want := map[string]any{"StringEquals": map[string]any{
		"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
		"token.actions.githubusercontent.com:sub": "repo:acme/evergreen-images:ref:refs/heads/main",
	}}
	if got, _ := json.Marshal(st["Condition"]); string(got) != mustJSON(want) {
		t.Errorf("trust condition = %s\nwant %s", got, mustJSON(want))
	}
	if strings.Contains(mustJSON(st), "*") {
		t.Errorf("trust statement has a wildcard: %s", mustJSON(st))
	}
	fed := st["Principal"].(map[string]any)["Federated"]
	ref, ok := fed.(map[string]any)
	if !ok || ref["Ref"] == nil {
		t.Fatalf("trust principal = %v, want a Ref to the provider created here", fed)
	}
	provider := resources(tpl)[ref["Ref"].(string)]
	if provider["Type"] != "AWS::IAM::OIDCProvider" {
		t.Fatalf("the trusted provider is %v, want AWS::IAM::OIDCProvider", provider["Type"])
	}
	pp := provider["Properties"].(map[string]any)
	if pp["Url"] != "https://token.actions.githubusercontent.com" || mustJSON(pp["ClientIdList"]) != `["sts.amazonaws.com"]` {
		t.Errorf("provider properties = %s", mustJSON(pp))
	}
}

func TestGitHubRoleImportsAnExistingProvider(t *testing.T) {
	tpl := ghSynth(t)
	_, role := roleByPrefix(t, tpl, "GitHubImportedRole")
	st := role["Properties"].(map[string]any)["AssumeRolePolicyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
	if got := st["Principal"].(map[string]any)["Federated"]; got != existingProviderArn {
		t.Errorf("trusted provider = %v, want %s", got, existingProviderArn)
	}
	cond := st["Condition"].(map[string]any)["StringEquals"].(map[string]any)
	if got := cond["token.actions.githubusercontent.com:sub"]; got != "repo:acme/other:ref:refs/heads/release" {
		t.Errorf("sub = %v", got)
	}
	n := 0
	for _, r := range resources(tpl) {
		if r["Type"] == "AWS::IAM::OIDCProvider" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d OIDC providers in the template, want 1 (the imported one creates none)", n)
	}
}

func TestGitHubRoleHasExactlyTheStageGrants(t *testing.T) {
	tpl := ghSynth(t)
	var want []string
	for _, st := range append(slices.Clone(buildspecs.Stages), buildspecs.Report) {
		id, _ := roleByPrefix(t, tpl, "Reference"+title(st))
		want = append(want, grants(t, tpl, id)...)
	}
	slices.Sort(want)
	want = slices.Compact(want)
	for _, prefix := range []string{"GitHubRole", "GitHubImportedRole"} {
		id, _ := roleByPrefix(t, tpl, prefix)
		got := grants(t, tpl, id)
		if !slices.Equal(got, want) {
			t.Errorf("%s grants:\n  %s\nwant the union of the stages':\n  %s", prefix, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	if len(want) == 0 || !slices.ContainsFunc(want, func(s string) bool { return strings.Contains(s, "ecr:PutImage") }) {
		t.Fatalf("the reference grants look empty: %v", want)
	}
}

// IAM rejects a policy whose statements repeat a Sid; grantStage names its
// statements per stage kind, so three stages on one role must still be unique.
func TestGitHubRolePolicySidsAreUnique(t *testing.T) {
	tpl := ghSynth(t)
	for _, r := range resources(tpl) {
		if r["Type"] != "AWS::IAM::Policy" {
			continue
		}
		seen := map[string]bool{}
		for _, s := range r["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			sid, _ := s.(map[string]any)["Sid"].(string)
			if sid == "" {
				continue
			}
			if seen[sid] {
				t.Errorf("policy %v repeats Sid %q", r["Properties"].(map[string]any)["PolicyName"], sid)
			}
			seen[sid] = true
		}
	}
}

func TestGitHubAccessAddsNoCustomResource(t *testing.T) {
	tpl := ghSynth(t)
	for id, r := range resources(tpl) {
		typ, _ := r["Type"].(string)
		if strings.HasPrefix(typ, "Custom::") || typ == "AWS::CloudFormation::CustomResource" || typ == "AWS::Lambda::Function" {
			t.Errorf("%s is a %s: the native OIDC provider needs no custom resource", id, typ)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

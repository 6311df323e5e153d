package stacks_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/source"
	"github.com/evergreen-images/evergreen/runtimes"
	"github.com/evergreen-images/evergreen/stacks"
)

// The stacks are synthesized once for the whole package: aws-cdk-go runs one
// Node.js process per Go process and every synth goes through it.
var (
	defaultList *runtimes.List
	// def: the default list and cdk.json defaults (S3 source, no consumers).
	def synthesized
	// configured: a Git source, consumers, an alert email, and both
	// account-wide options (enhanced scanning, signing).
	configured synthesized
	// sixty: 60 runtime-versions, 120 builds per stage.
	sixty synthesized
	// staging: a second copy for the same account and region (another stack
	// name and repository prefix), with a concurrency cap.
	staging synthesized
)

// sourceZip is the repository's committed files, the S3 source's asset.
var sourceZip string

// stagingConfig is the second copy's configuration.
func stagingConfig() config.Config {
	c := config.Default()
	c.StackName = "EvergreenImagesStaging"
	c.RepositoryPrefix = "staging/evergreen-"
	c.MaxConcurrentBuilds = 2
	return c
}

type synthesized struct {
	stack    *stacks.EvergreenStack
	cfg      config.Config
	specs    []buildspecs.Spec
	template assertions.Template
	json     map[string]any
	bytes    int
}

var configuredSource = &config.GitSource{
	ConnectionArn: "arn:aws:codeconnections:eu-west-1:111122223333:connection/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f",
	Repository:    "acme/evergreen-images",
	Branch:        "main",
}

func TestMain(m *testing.M) {
	// The package runs from stacks/; the runtime list names folders relative
	// to the repository root.
	if err := os.Chdir(".."); err != nil {
		panic(err)
	}
	code := func() int {
		defer jsii.Close()
		var err error
		src, err := source.Make(".")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer src.Remove()
		sourceZip = src.Path
		defaultList, err = runtimes.Load(runtimes.DefaultPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		big, err := runtimes.Load(SixtyVersionsList)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cfg := config.Default()
		cfg.Source = configuredSource
		cfg.PullAccounts = []string{"444455556666", "777788889999"}
		cfg.PullOrganization = "o-a1b2c3d4e5"
		cfg.AlarmEmail = "platform@example.com"
		cfg.ChangesEmail = "image-consumers@example.com"
		cfg.EnhancedScanning = true
		cfg.Signing = true

		// The feature flags in cdk.json change what the CDK writes: the tests
		// synthesize with exactly the context `cdk synth` uses.
		ctx, err := config.ReadCDKJSON(config.DefaultCDKJSON)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
		stacks.AddNagChecks(app)
		// Every stack must exist before the first synth: the app synthesizes once.
		cfg.GitHub = &config.GitHub{Repository: "acme/evergreen-images", Branch: "main"}
		def = build(app, "Default", defaultList, config.Default())
		configured = build(app, "Configured", defaultList, cfg)
		sixty = build(app, "Sixty", big, config.Default())
		staging = build(app, stagingConfig().StackName, defaultList, stagingConfig())
		for _, s := range []*synthesized{&def, &configured, &sixty, &staging} {
			s.synth()
		}
		return m.Run()
	}()
	os.Exit(code)
}

func build(app awscdk.App, id string, l *runtimes.List, cfg config.Config) synthesized {
	specs, err := buildspecs.Generate(l, buildspecs.OptionsFrom(cfg))
	if err != nil {
		panic(err)
	}
	s := stacks.NewEvergreenStack(app, id, &stacks.EvergreenStackProps{List: l, Specs: specs, Config: cfg, SourceZip: sourceZip})
	return synthesized{stack: s, cfg: cfg, specs: specs}
}

func (s *synthesized) synth() {
	s.template = assertions.Template_FromStack(s.stack.Stack, nil)
	raw, err := json.Marshal(s.template.ToJSON())
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(raw, &s.json); err != nil {
		panic(err)
	}
	s.bytes = len(raw)
}

// SixtyVersionsList is the scale case of the issue: 60 runtime-versions on
// two architectures (120 builds in Build and in Verify).
const SixtyVersionsList = "testdata/runtimes/sixty/runtimes.yaml"

// resources returns the resources of a type, by logical id, sorted by id.
func resources(s synthesized, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.json["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNoNagFindings(t *testing.T) {
	nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, c := range []struct {
		name string
		s    synthesized
	}{{"default", def}, {"configured", configured}, {"sixty", sixty}} {
		a := assertions.Annotations_FromStack(c.s.stack.Stack)
		for _, level := range []string{"error", "warning"} {
			var got any
			if level == "error" {
				got = a.FindError(jsii.String("*"), nag)
			} else {
				got = a.FindWarning(jsii.String("*"), nag)
			}
			var entries []struct {
				ID    string `json:"id"`
				Entry struct {
					Data any `json:"data"`
				} `json:"entry"`
			}
			raw, _ := json.Marshal(got)
			if err := json.Unmarshal(raw, &entries); err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("%s stack: unsuppressed cdk-nag %s at %s: %v", c.name, level, e.ID, e.Entry.Data)
			}
		}
	}
}

func TestNoCustomResourcesOrFunctions(t *testing.T) {
	// Each Custom:: resource is a Lambda function someone has to patch and pay for.
	for name, s := range map[string]synthesized{"default": def, "configured": configured} {
		for id, r := range s.json["Resources"].(map[string]any) {
			typ := r.(map[string]any)["Type"].(string)
			if strings.HasPrefix(typ, "Custom::") || typ == "AWS::Lambda::Function" || typ == "AWS::CloudFormation::CustomResource" {
				t.Errorf("%s stack: unexpected %s %s", name, typ, id)
			}
		}
	}
}

package preflight

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/mototest"
	"github.com/evergreen-images/evergreen/runtimes"
)

// quotasStub stands in for Service Quotas: moto 5.2.5 implements it for the
// vpc service code only (its ListAWSDefaultServiceQuotas answers
// NoSuchResourceException for codebuild). The answers have the shape of the
// Service Quotas API reference (ListServiceQuotas: {"Quotas": [{"QuotaName",
// "QuotaCode", "ServiceCode", "Value", ...}]}); the quota names are the ones
// the console shows for CodeBuild's concurrency quotas.
func quotasStub(t *testing.T, applied map[string]float64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		var quotas []string
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".ListServiceQuotas") {
			for name, v := range applied {
				quotas = append(quotas, fmt.Sprintf(`{"ServiceCode":"codebuild","QuotaName":%q,"QuotaCode":"L-TEST","Value":%g,"Adjustable":true}`, name, v))
			}
		}
		fmt.Fprintf(w, `{"Quotas":[%s]}`, strings.Join(quotas, ","))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func results(t *testing.T, in Inputs) []Result {
	t.Helper()
	ctx := context.Background()
	cfg, err := awsops.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs := Run(ctx, NewClients(cfg), cfg.Region, in)
	for _, r := range rs {
		t.Log(r)
	}
	return rs
}

func find(rs []Result, check, contains string) *Result {
	for i := range rs {
		if rs[i].Check == check && strings.Contains(rs[i].Msg, contains) {
			return &rs[i]
		}
	}
	return nil
}

// The checks run against moto, with a low quota served by a stand-in: an
// account without the bootstrap, then with an old one, then with a current
// one; a repository name taken by something else, and one owned by this
// stack.
func TestPreflightAgainstMoto(t *testing.T) {
	mototest.Start(t, "eu-west-3") // not among the ARM_CONTAINER regions
	const account = mototest.Account
	t.Setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", quotasStub(t, map[string]float64{
		"Concurrently running builds for Linux/Small environment": 1,
		"Concurrently running builds for ARM/Small environment":   15,
	}))

	list, err := runtimes.Load(filepath.Join("..", "..", config.DefaultRuntimeList))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	specs, err := buildspecs.Generate(list, buildspecs.OptionsFrom(cfg))
	if err != nil {
		t.Fatal(err)
	}
	in := Inputs{Config: cfg, List: list, Specs: specs, Qualifier: DefaultQualifier, SkipBases: true}

	ctx := context.Background()
	awsCfg, err := awsops.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ecrc := ecr.NewFromConfig(awsCfg)
	clash := cfg.RepositoryName(list.Runtimes[0].Name)
	if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(clash)}); err != nil {
		t.Fatal(err)
	}
	// A repository the stack owns: moto's CloudFormation creates it from a
	// template, and lists it among the stack's resources.
	owned := cfg.RepositoryName(list.Runtimes[1].Name)
	cfn := cloudformation.NewFromConfig(awsCfg)
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(cfg.StackName),
		TemplateBody: aws.String(`{"Resources": {"Repo": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": "` + owned + `"}}}}`)}); err != nil {
		t.Fatal(err)
	}
	// A repository kept by an earlier cdk destroy: CloudFormation's tag of
	// this very stack, but not one of its resources. (moto accepts tags
	// with the reserved aws: prefix, which ECR itself would refuse from a
	// caller; here it stands for the tag CloudFormation wrote.)
	kept := cfg.RepositoryName(list.Runtimes[2].Name)
	if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(kept),
		Tags: []ecrtypes.Tag{{Key: aws.String("aws:cloudformation:stack-name"), Value: aws.String(cfg.StackName)}}}); err != nil {
		t.Fatal(err)
	}

	// No bootstrap.
	rs := results(t, in)
	if r := find(rs, "bootstrap", "not bootstrapped"); r == nil || r.Status != Fail || !strings.Contains(r.Fix, "make bootstrap") {
		t.Errorf("no bootstrap: %v", r)
	}
	if r := find(rs, "repository", clash); r == nil || r.Status != Fail || !strings.Contains(r.Fix, "evergreen:repositoryPrefix") {
		t.Errorf("clashing repository: %v", r)
	}
	if r := find(rs, "repository", owned); r == nil || r.Status != OK {
		t.Errorf("the stack's own repository: %v", r)
	}
	if r := find(rs, "repository", kept); r == nil || r.Status != Fail || !strings.Contains(r.Msg, "tagged it for stack "+cfg.StackName) {
		t.Errorf("a repository kept from a deleted stack: %v", r)
	}
	for _, rt := range list.Runtimes[3:] {
		if r := find(rs, "repository", cfg.RepositoryName(rt.Name)+" is free"); r == nil {
			t.Errorf("%s should be free", cfg.RepositoryName(rt.Name))
		}
	}
	// Linux/Small: Build and Verify start one per amd64 image, Publish one
	// per release; all above 5 x 1.
	var linux int
	for _, p := range buildspecs.Peak(specs, false) {
		if p.Type == "LINUX_CONTAINER" {
			linux = p.AtOnce
		}
	}
	if r := find(rs, "quota", fmt.Sprintf("LINUX_CONTAINER/BUILD_GENERAL1_SMALL: up to %d builds at once, quota 1", linux)); r == nil || (linux > 5 && r.Status != Fail) || !strings.Contains(r.Fix, "evergreen:maxConcurrentBuilds to 1") {
		t.Errorf("low quota: %v", r)
	}
	if r := find(rs, "quota", "ARM_CONTAINER/BUILD_GENERAL1_SMALL"); r == nil || r.Status != OK {
		t.Errorf("ARM quota 15: %v", r)
	}
	if r := find(rs, "region", "eu-west-3"); r == nil || r.Status != Warn {
		t.Errorf("region: %v", r)
	}
	if r := find(rs, "stack", "exists (CREATE_COMPLETE)"); r == nil || r.Status != OK {
		t.Errorf("stack: %v", r)
	}
	if !Failed(rs) {
		t.Error("Failed() is false with FAIL lines")
	}

	// An old bootstrap, then a current one with its versioned bucket.
	ssmc := ssm.NewFromConfig(awsCfg)
	put := func(v string) {
		if _, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/cdk-bootstrap/hnb659fds/version"), Value: aws.String(v), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	put("3")
	if r := find(results(t, in), "bootstrap", "version 3"); r == nil || r.Status != Fail {
		t.Errorf("old bootstrap: %v", r)
	}
	put("30")
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := fmt.Sprintf("cdk-hnb659fds-assets-%s-eu-west-3", account)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint("eu-west-3")}}); err != nil {
		t.Fatal(err)
	}
	if r := find(results(t, in), "source bucket", "not versioned"); r == nil || r.Status != Fail {
		t.Errorf("unversioned staging bucket: %v", r)
	}
	if _, err := s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	rs = results(t, in)
	if r := find(rs, "bootstrap", "version 30"); r == nil || r.Status != OK {
		t.Errorf("current bootstrap: %v", r)
	}
	if r := find(rs, "source bucket", "is versioned"); r == nil || r.Status != OK {
		t.Errorf("versioned staging bucket: %v", r)
	}

	// With the cap the preflight suggests, the quota lines pass, and once
	// the clashing repository is gone nothing fails.
	capped := cfg
	capped.MaxConcurrentBuilds = 1
	specs, err = buildspecs.Generate(list, buildspecs.OptionsFrom(capped))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{clash, kept} {
		if _, err := ecrc.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	rs = results(t, Inputs{Config: capped, List: list, Specs: specs, Qualifier: DefaultQualifier, SkipBases: true})
	if Failed(rs) {
		t.Errorf("with the suggested cap, a bootstrap and free names, the preflight still fails")
	}
}

// moto never leaves a stack in a failed state, so the states are judged
// here as the pinned CDK CLI and CloudFormation treat them.
func TestStackStatus(t *testing.T) {
	for st, want := range map[string]Status{
		"CREATE_COMPLETE": OK, "UPDATE_COMPLETE": OK, "UPDATE_ROLLBACK_COMPLETE": OK,
		"REVIEW_IN_PROGRESS":     OK,   // the CLI treats it as no stack yet
		"ROLLBACK_COMPLETE":      Warn, // the CLI deletes it and creates it again
		"UPDATE_ROLLBACK_FAILED": Fail, // no update is accepted
		"ROLLBACK_FAILED":        Fail,
		"DELETE_FAILED":          Fail,
		"UPDATE_IN_PROGRESS":     Fail,
		"CREATE_IN_PROGRESS":     Fail,
	} {
		if r := stackStatus("S", st); r.Status != want || (want == Fail && r.Fix == "") {
			t.Errorf("%s: %v, want %s with a fix", st, r, want)
		}
	}
}

// The filter rule is the ECR User Guide's table ("Filters to choose which
// repositories are scanned"): repository names across, filters down.
func TestScanningFiltersMatchAsECRDocumentsThem(t *testing.T) {
	names := []string{"prod", "repo-prod", "prod-repo", "repo-prod-repo", "prodrepo"}
	for filter, row := range map[string][]bool{
		"prod":      {true, true, true, true, true},
		"*prod":     {true, true, false, false, false},
		"prod*":     {true, false, true, false, true},
		"*prod*":    {true, true, true, true, true},
		"prod*repo": {false, false, true, false, true},
	} {
		for i, name := range names {
			if got := filterMatches(filter, name); got != row[i] {
				t.Errorf("filter %q, repository %q: %v, the guide says %v", filter, name, got, row[i])
			}
		}
	}
}

// A registry whose scanning rules leave the stack's repositories out of
// scan on push gets a warning naming them and the rule that fixes it; a
// registry on Inspector while the stack expects basic findings too.
// Against moto, whose Get/PutRegistryScanningConfiguration store and
// return the configuration as given (it does not check the filters).
func TestPreflightWarnsWhenRegistryRulesSkipTheRepositories(t *testing.T) {
	mototest.Start(t, "eu-west-1")
	list, err := runtimes.Load(filepath.Join("..", "..", config.DefaultRuntimeList))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	ctx := context.Background()
	awsCfg, err := awsops.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClients(awsCfg)
	check := func(in Inputs) Result {
		t.Helper()
		rs := scanning(ctx, c, in)
		if len(rs) != 1 {
			t.Fatalf("scanning: %v, want one line", rs)
		}
		t.Log(rs[0])
		return rs[0]
	}
	put := func(scanType ecrtypes.ScanType, filters ...string) {
		t.Helper()
		var rules []ecrtypes.RegistryScanningRule
		if len(filters) > 0 {
			r := ecrtypes.RegistryScanningRule{ScanFrequency: ecrtypes.ScanFrequencyScanOnPush}
			if scanType == ecrtypes.ScanTypeEnhanced {
				r.ScanFrequency = ecrtypes.ScanFrequencyContinuousScan
			}
			for _, f := range filters {
				r.RepositoryFilters = append(r.RepositoryFilters, ecrtypes.ScanningRepositoryFilter{Filter: aws.String(f), FilterType: ecrtypes.ScanningRepositoryFilterTypeWildcard})
			}
			rules = append(rules, r)
		}
		if _, err := c.ECR.PutRegistryScanningConfiguration(ctx, &ecr.PutRegistryScanningConfigurationInput{ScanType: scanType, Rules: rules}); err != nil {
			t.Fatal(err)
		}
	}
	in := Inputs{Config: cfg, List: list}

	// The default: basic scanning, no rules; the repositories' own setting holds.
	if r := check(in); r.Status != OK {
		t.Errorf("no registry rules: %v", r)
	}
	// A rule for other repositories only: every repository of the stack is named.
	put(ecrtypes.ScanTypeBasic, "team-a/*")
	r := check(in)
	if r.Status != Warn || !strings.Contains(r.Fix, cfg.RepositoryPrefix+"*") || !strings.Contains(r.Msg, "scan-timeout") {
		t.Errorf("rules that miss the stack: %v", r)
	}
	for _, rt := range list.Runtimes {
		if !strings.Contains(r.Msg, cfg.RepositoryName(rt.Name)) {
			t.Errorf("the warning does not name %s: %s", cfg.RepositoryName(rt.Name), r.Msg)
		}
	}
	// A rule that matches one runtime's repository: only the others are named.
	first := cfg.RepositoryName(list.Runtimes[0].Name)
	put(ecrtypes.ScanTypeBasic, "team-a/*", first)
	if r := check(in); r.Status != Warn || strings.Contains(r.Msg, first+",") || strings.HasSuffix(r.Msg, first) {
		t.Errorf("with a rule for %s: %v", first, r)
	}
	// The fix the warning suggests clears it.
	put(ecrtypes.ScanTypeBasic, "team-a/*", cfg.RepositoryPrefix+"*")
	if r := check(in); r.Status != OK {
		t.Errorf("with the suggested rule: %v", r)
	}
	// An Inspector registry the stack did not configure.
	put(ecrtypes.ScanTypeEnhanced, "*")
	if r := check(in); r.Status != Warn || !strings.Contains(r.Fix, config.KeyEnhancedScanning) {
		t.Errorf("enhanced registry, enhanced scanning off: %v", r)
	}
	// With evergreen:enhancedScanning the stack writes the configuration.
	enhanced := cfg
	enhanced.EnhancedScanning = true
	if r := check(Inputs{Config: enhanced, List: list}); r.Status != OK {
		t.Errorf("enhanced scanning on: %v", r)
	}
}

package stacks_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/config"
)

// The default template has no registry-wide resource: enhanced scanning and
// managed signing replace account-wide configuration, and are opt-in.
func TestNoRegistryWideResourceByDefault(t *testing.T) {
	for _, typ := range []string{"AWS::ECR::RegistryScanningConfiguration", "AWS::ECR::SigningConfiguration", "AWS::Signer::SigningProfile", "AWS::ECR::RegistryPolicy", "AWS::ECR::ReplicationConfiguration"} {
		if n := len(resources(def, typ)); n != 0 {
			t.Errorf("the default template has %d %s", n, typ)
		}
	}
	for id, p := range resources(def, "AWS::IAM::Policy") {
		if strings.Contains(jsonString(t, props(p)["PolicyDocument"]), "signer:") {
			t.Errorf("%s grants signing without evergreen:signing", id)
		}
	}
}

func repositoryNames(t *testing.T) []string {
	var out []string
	for _, rt := range defaultList.Runtimes {
		out = append(out, config.Default().RepositoryName(rt.Name))
	}
	slices.Sort(out)
	return out
}

// With evergreen:enhancedScanning, Inspector scans exactly this stack's
// repositories continuously, and a new CRITICAL finding on a published image
// starts the pipeline.
func TestEnhancedScanningIsScopedToTheStacksRepositories(t *testing.T) {
	scans := resources(configured, "AWS::ECR::RegistryScanningConfiguration")
	if len(scans) != 1 {
		t.Fatalf("%d registry scanning configurations", len(scans))
	}
	for _, r := range scans {
		p := props(r)
		rules := p["Rules"].([]any)
		if p["ScanType"] != "ENHANCED" || len(rules) != 1 || rules[0].(map[string]any)["ScanFrequency"] != "CONTINUOUS_SCAN" {
			t.Errorf("scanning: %s", jsonString(t, p))
		}
		var filters []string
		for _, f := range rules[0].(map[string]any)["RepositoryFilters"].([]any) {
			f := f.(map[string]any)
			if f["FilterType"] != "WILDCARD" || strings.Contains(f["Filter"].(string), "*") {
				t.Errorf("filter %v matches more than one repository", f)
			}
			filters = append(filters, f["Filter"].(string))
		}
		slices.Sort(filters)
		if !slices.Equal(filters, repositoryNames(t)) {
			t.Errorf("scanned repositories %v, want %v", filters, repositoryNames(t))
		}
	}
	var rule map[string]any
	for _, r := range resources(configured, "AWS::Events::Rule") {
		if strings.Contains(jsonString(t, props(r)["EventPattern"]), "aws.inspector2") {
			rule = props(r)
		}
	}
	if rule == nil {
		t.Fatal("no rule reacts to Inspector findings")
	}
	pattern := jsonString(t, rule["EventPattern"])
	for _, want := range []string{`"detail-type":["Inspector2 Finding"]`, `"severity":["CRITICAL"]`, `"status":["ACTIVE"]`, `"anything-but":{"prefix":"draft-"}`} {
		if !strings.Contains(pattern, want) {
			t.Errorf("finding rule pattern lacks %s: %s", want, pattern)
		}
	}
	for _, n := range repositoryNames(t) {
		if !strings.Contains(pattern, `"`+n+`"`) {
			t.Errorf("finding rule does not match %s", n)
		}
	}
	if !strings.Contains(jsonString(t, rule["Targets"]), "codepipeline") {
		t.Errorf("finding rule does not start the pipeline: %s", jsonString(t, rule["Targets"]))
	}
}

// With evergreen:signing, ECR signs this stack's repositories on push with a
// Notation profile the stack creates, and only the roles that push may sign.
func TestSigningIsScopedAndOnlyPushersMaySign(t *testing.T) {
	profiles := resources(configured, "AWS::Signer::SigningProfile")
	if len(profiles) != 1 {
		t.Fatalf("%d signing profiles", len(profiles))
	}
	for _, p := range profiles {
		if props(p)["PlatformId"] != "Notation-OCI-SHA384-ECDSA" {
			t.Errorf("signing platform %v", props(p)["PlatformId"])
		}
	}
	signing := resources(configured, "AWS::ECR::SigningConfiguration")
	if len(signing) != 1 {
		t.Fatalf("%d signing configurations", len(signing))
	}
	for _, r := range signing {
		var filters []string
		for _, rule := range props(r)["Rules"].([]any) {
			for _, f := range rule.(map[string]any)["RepositoryFilters"].([]any) {
				filters = append(filters, f.(map[string]any)["Filter"].(string))
			}
		}
		slices.Sort(filters)
		if !slices.Equal(filters, repositoryNames(t)) {
			t.Errorf("signed repositories %v, want %v", filters, repositoryNames(t))
		}
	}
	signers := map[string]bool{}
	for id, p := range resources(configured, "AWS::IAM::Policy") {
		if strings.Contains(jsonString(t, props(p)["PolicyDocument"]), "signer:SignPayload") {
			signers[id[:strings.Index(id, "DefaultPolicy")]] = true
		}
	}
	// Verify waits for the signature: it alone reads the signing status,
	// and only with signing on.
	for id, p := range resources(configured, "AWS::IAM::Policy") {
		if reads := strings.Contains(jsonString(t, props(p)["PolicyDocument"]), "ecr:DescribeImageSigningStatus"); reads != (strings.HasPrefix(id, "ImagesVerifyRole") || strings.HasPrefix(id, "GitHubRole")) {
			t.Errorf("%s: reads the signing status %v", id, reads)
		}
	}
	for id, p := range resources(def, "AWS::IAM::Policy") {
		if strings.Contains(jsonString(t, props(p)["PolicyDocument"]), "ecr:DescribeImageSigningStatus") {
			t.Errorf("%s reads the signing status without evergreen:signing", id)
		}
	}
	want := map[string]bool{"ImagesBuildRole": true, "ImagesPublishRole": true, "GitHubRole": true}
	if len(signers) != len(want) {
		t.Errorf("roles that may sign: %v, want %v", signers, want)
	}
	for r := range want {
		if !signers[r] {
			t.Errorf("%s may not sign: its pushes would go unsigned", r)
		}
	}
}

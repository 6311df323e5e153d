package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := FromContext(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Schedule.Expr != DefaultSchedule || c.RepositoryPrefix != DefaultRepositoryPrefix || c.MaxConcurrentBuilds != 0 || c.RuntimeList != DefaultRuntimeList {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.RepositoryName("node"); got != "evergreen/node" {
		t.Errorf("RepositoryName = %q", got)
	}
}

// The repository's own cdk.json must load: it is what make synth reads.
func TestRepositoryCDKJSON(t *testing.T) {
	if _, err := LoadCDKJSON("../cdk.json"); err != nil {
		t.Fatal(err)
	}
}

func TestValues(t *testing.T) {
	c, err := FromContext(map[string]any{
		KeySchedule:            "rate(12 hours)",
		KeyStaleAfterHours:     "30", // -c gives strings
		KeyMaxConcurrentBuilds: float64(3),
		KeyRepositoryPrefix:    "platform/images-",
		KeyStackName:           "EvergreenImagesStaging",
		KeyEnhancedScanning:    "true",
		KeySigning:             true,
		KeyPullAccounts:        "444455556666,111122223333",
		KeyGitHub:              `{"repository": "acme/images"}`,
		KeySource:              map[string]any{"connectionArn": "arn:aws:codeconnections:eu-west-1:111122223333:connection/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f", "repository": "acme/images", "branch": "main"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Schedule.Every != 12*time.Hour || c.StaleAfterHours != 30 || c.MaxConcurrentBuilds != 3 ||
		c.RepositoryName("node") != "platform/images-node" || c.StackName != "EvergreenImagesStaging" || !c.EnhancedScanning || !c.Signing || strings.Join(c.PullAccounts, ",") != "111122223333,444455556666" ||
		c.GitHub.Branch != "main" || c.Source.Owner() != "acme" {
		t.Errorf("got %+v", c)
	}
	if _, err := FromContext(map[string]any{KeyRepositoryPrefix: ""}); err != nil {
		t.Errorf("an empty prefix (bare runtime names) is allowed: %v", err)
	}
	for v, want := range map[any]string{
		"off": "off", "never-worse": "never-worse",
		`{"HIGH": 5, "CRITICAL": 0}`: "CRITICAL=0 HIGH=5",
	} {
		c, err := FromContext(map[string]any{KeyVulnerabilityGate: v})
		if err != nil || c.VulnerabilityGate.Env() != want {
			t.Errorf("gate %v: %q, %v; want %q", v, c.VulnerabilityGate.Env(), err, want)
		}
	}
	c, err = FromContext(map[string]any{KeyVulnerabilityGate: map[string]any{"LOW": float64(100)}})
	if err != nil || c.VulnerabilityGate.Env() != "LOW=100" {
		t.Errorf("gate object from cdk.json: %v, %v", c.VulnerabilityGate, err)
	}
	if d := Default(); d.VulnerabilityGate.Env() != "never-worse" || d.ScanWaitMinutes != 10 {
		t.Errorf("defaults: gate %q, scan wait %d", d.VulnerabilityGate.Env(), d.ScanWaitMinutes)
	}
}

// Each bad value names its key, and the fix says what to write.
func TestBadValues(t *testing.T) {
	cases := []struct {
		ctx      map[string]any
		key, msg string
	}{
		{map[string]any{"evergreen:alarmEmial": "ops@example.com"}, "evergreen:alarmEmial", `did you mean "evergreen:alarmEmail"`},
		{map[string]any{"evergreen:schedul": "rate(1 day)"}, "evergreen:schedul", `did you mean "evergreen:schedule"`},
		{map[string]any{"evergreen:somethingElseEntirely": 1}, "evergreen:somethingElseEntirely", "docs/configuration.md"},
		{map[string]any{KeySchedule: "cron(0 4 * * *)"}, KeySchedule, "has 5 fields"},
		{map[string]any{KeySchedule: "rate(1 days)"}, KeySchedule, "singular"},
		{map[string]any{KeySchedule: "rate(2 day)"}, KeySchedule, "plural"},
		{map[string]any{KeySchedule: "cron(0 25 * * ? *)"}, KeySchedule, `hours field "25"`},
		{map[string]any{KeySchedule: "rate(7 days)"}, KeySchedule, "run at least every 167 hours"},
		{map[string]any{KeySchedule: "rate(36 hours)", KeyStaleAfterHours: float64(30)}, KeySchedule, "raise evergreen:staleAfterHours to at least 37"},
		{map[string]any{KeySchedule: "cron(0 4 ? * MON *)"}, KeySchedule, "7 days between two runs"},
		{map[string]any{KeySchedule: "rate(2 days)", KeyStaleAfterHours: float64(48)}, KeySchedule, "at least 49"},
		{map[string]any{KeySchedule: "cron(0 4 * * ? 2027)"}, KeySchedule, "year field"},
		{map[string]any{KeyEnhancedScanning: "yes"}, KeyEnhancedScanning, "not true or false"},
		{map[string]any{KeySigning: float64(1)}, KeySigning, "not true or false"},
		{map[string]any{KeyStackName: "1stack"}, KeyStackName, "not a CloudFormation stack name"},
		{map[string]any{KeyStackName: "my_stack"}, KeyStackName, "not a CloudFormation stack name"},
		{map[string]any{KeyStackName: "AwsImages"}, KeyStackName, "Parameter Store refuses"},
		{map[string]any{KeyStackName: "ssm-images"}, KeyStackName, "Parameter Store refuses"},
		{map[string]any{KeyRepositoryPrefix: "Evergreen/"}, KeyRepositoryPrefix, "ECR rejects"},
		{map[string]any{KeyRepositoryPrefix: "a//"}, KeyRepositoryPrefix, "ECR rejects"},
		{map[string]any{KeyRepositoryPrefix: "/x"}, KeyRepositoryPrefix, "ECR rejects"},
		{map[string]any{KeyRepositoryPrefix: float64(1)}, KeyRepositoryPrefix, "not a string"},
		{map[string]any{KeyMaxConcurrentBuilds: float64(-1)}, KeyMaxConcurrentBuilds, "from 0 to 100"},
		{map[string]any{KeyStaleAfterHours: float64(24)}, KeyStaleAfterHours, "from 25 to 168"},
		{map[string]any{KeyDraftRetentionDays: float64(10), KeyDatedRetentionDays: float64(5)}, KeyDraftRetentionDays, "not shorter"},
		{map[string]any{KeyAlarmEmail: "ops"}, KeyAlarmEmail, "not an email"},
		{map[string]any{KeyPullAccounts: "123"}, KeyPullAccounts, "12-digit"},
		{map[string]any{KeyGitHub: map[string]any{"repository": "acme/x", "branch": "refs/heads/main"}}, KeyGitHub, "is a ref"},
		{map[string]any{KeyRuntimeList: ""}, KeyRuntimeList, "empty"},
		{map[string]any{KeyVulnerabilityGate: "sometimes"}, KeyVulnerabilityGate, "not a gate"},
		{map[string]any{KeyVulnerabilityGate: map[string]any{"SEVERE": float64(1)}}, KeyVulnerabilityGate, "not an ECR finding severity"},
		{map[string]any{KeyVulnerabilityGate: `{"HIGH": -1}`}, KeyVulnerabilityGate, "not a whole number"},
		{map[string]any{KeyVulnerabilityGate: map[string]any{}}, KeyVulnerabilityGate, "names no severity"},
		{map[string]any{KeyScanWaitMinutes: float64(45)}, KeyScanWaitMinutes, "from 1 to 20"},
	}
	for _, tc := range cases {
		_, err := FromContext(tc.ctx)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), tc.msg) || ce.Fix == "" {
			t.Errorf("%v: got %v; want an error for %s containing %q, with a fix", tc.ctx, err, tc.key, tc.msg)
		}
	}
}

// Every problem is reported at once.
func TestAllProblemsAtOnce(t *testing.T) {
	_, err := FromContext(map[string]any{"evergreen:alarmEmial": "x", KeyStaleAfterHours: float64(1)})
	if err == nil || !strings.Contains(err.Error(), "alarmEmial") || !strings.Contains(err.Error(), "staleAfterHours") {
		t.Errorf("got %v", err)
	}
}

func TestMarkdownNamesEveryKey(t *testing.T) {
	md := Markdown()
	for _, k := range Keys {
		if !strings.Contains(md, "`"+k.Name+"`") {
			t.Errorf("Markdown lacks %s", k.Name)
		}
	}
}

func TestGitHub(t *testing.T) {
	const existingProviderArn = "arn:aws:iam::111122223333:oidc-provider/" + GitHubOIDCHost
	get := func(v any) (*GitHub, error) {
		c, err := FromContext(map[string]any{KeyGitHub: v})
		return c.GitHub, err
	}
	if c, err := FromContext(map[string]any{}); c.GitHub != nil || err != nil {
		t.Errorf("absent: got %v, %v; want nil, nil (no GitHub resources)", c.GitHub, err)
	}
	g, err := get(map[string]any{"repository": "acme/evergreen-images"})
	if err != nil || g.Branch != "main" || g.Subject() != "repo:acme/evergreen-images:ref:refs/heads/main" {
		t.Errorf("defaults: got %+v, %v", g, err)
	}
	g, err = get(`{"repository": "acme/x.y", "branch": "release/2026", "oidcProviderArn": "` + existingProviderArn + `"}`)
	if err != nil || g.Branch != "release/2026" || g.OIDCProviderArn != existingProviderArn {
		t.Errorf("from a -c string: got %+v, %v", g, err)
	}
	bad := []any{
		map[string]any{"repository": "acme"},
		map[string]any{"repository": "acme/x", "branch": "*"},
		map[string]any{"repository": "acme/x", "branch": "feature/*"},
		map[string]any{"repository": "acme/x", "branch": "refs/heads/main"},
		map[string]any{"repository": "acme/x", "branch": "ma in"},
		map[string]any{"repository": "acme/*", "branch": "main"},
		map[string]any{"repository": "acme/x", "oidcProviderArn": "arn:aws:iam::111122223333:oidc-provider/example.com"},
		map[string]any{"repository": "acme/x", "brnach": "main"},
		"not json",
	}
	for _, v := range bad {
		_, err := get(v)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != KeyGitHub || ce.Fix == "" {
			t.Errorf("%v: got %v, want an Error for %s with a fix", v, err, KeyGitHub)
		}
	}
}

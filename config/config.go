// Package config is the one reader of the app's configuration: every
// evergreen:* key of cdk.json's context (or `cdk synth -c key=value`), with its
// type, range, default and meaning, read and validated here and nowhere else.
//
// It is plain Go, with no aws-cdk-go or jsii import, so that the generators
// (cmd/generate), the GitHub workflow and the AWS commands (preflight, status)
// read exactly what the CDK app reads, without starting the CDK's Node.js
// process.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/evergreen-images/evergreen/internal/suggest"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Prefix starts every key this app reads. A key with this prefix that is not
// in Keys is an error, not silently ignored: a misspelled alarmEmail would
// leave the team believing alerts reach them.
const Prefix = "evergreen:"

// Context keys.
const (
	KeyRuntimeList         = "evergreen:runtimeList"
	KeySource              = "evergreen:source"
	KeySchedule            = "evergreen:schedule"
	KeyDraftRetentionDays  = "evergreen:draftRetentionDays"
	KeyDatedRetentionDays  = "evergreen:datedTagRetentionDays"
	KeyLogRetentionDays    = "evergreen:logRetentionDays"
	KeyAlarmEmail          = "evergreen:alarmEmail"
	KeyChangesEmail        = "evergreen:changesEmail"
	KeyStaleAfterHours     = "evergreen:staleAfterHours"
	KeyPullAccounts        = "evergreen:pullAccounts"
	KeyPullOrganization    = "evergreen:pullOrganization"
	KeyGitHub              = "evergreen:github"
	KeyRepositoryPrefix    = "evergreen:repositoryPrefix"
	KeyMaxConcurrentBuilds = "evergreen:maxConcurrentBuilds"
	KeyStackName           = "evergreen:stackName"
	KeyEnhancedScanning    = "evergreen:enhancedScanning"
	KeySigning             = "evergreen:signing"
	KeyVulnerabilityGate   = "evergreen:vulnerabilityGate"
	KeyScanWaitMinutes     = "evergreen:scanWaitMinutes"
)

// DefaultStackName is the CloudFormation stack `cdk deploy` creates.
const DefaultStackName = "EvergreenImages"

// DefaultRuntimeList is the runtime list read unless evergreen:runtimeList
// names another.
const DefaultRuntimeList = runtimes.DefaultPath

// DefaultRepositoryPrefix keeps the stack's repositories out of the way of
// the "node" or "python" repositories an organisation account often has.
const DefaultRepositoryPrefix = "evergreen/"

// Config is every evergreen:* setting, validated. Start from Default.
type Config struct {
	// StackName is the CloudFormation stack (and the CDK stack id). A
	// second copy of the app in one account and region needs its own, and
	// its own RepositoryPrefix.
	StackName string
	// RuntimeList is the path of the runtime list, relative to cdk.json.
	RuntimeList string
	// Source is the Git repository the pipeline builds. Nil: a versioned S3
	// bucket that the stack creates, so the app deploys with no outside set-up.
	Source *GitSource
	// Schedule starts the pipeline (EventBridge schedule expression).
	Schedule Schedule
	// DraftRetentionDays: draft tags older than this are retired. It bounds how
	// long a failed execution can wait for a retry of Verify or Publish.
	DraftRetentionDays int
	// DatedRetentionDays: how long an immutable dated tag stays pullable.
	DatedRetentionDays int
	// LogRetentionDays for the CodeBuild and pipeline event logs.
	LogRetentionDays int
	// AlarmEmail, if set, is subscribed to the alert topic.
	AlarmEmail string
	// ChangesEmail, if set, is subscribed to the changelog topic.
	ChangesEmail string
	// StaleAfterHours: a runtime-version's staleness alarm fires after this
	// long without Publish publishing or confirming it.
	StaleAfterHours int
	// PullAccounts and PullOrganization may pull the images (read-only).
	// Both empty: the repositories have no resource policy at all.
	PullAccounts     []string
	PullOrganization string
	// GitHub, if set, is the repository and branch whose workflow may assume
	// the stack's OIDC role.
	GitHub *GitHub
	// RepositoryPrefix starts every ECR repository name: <prefix><runtime>.
	RepositoryPrefix string
	// MaxConcurrentBuilds caps the entries of a batch that run at once per
	// CodeBuild environment type and compute type; 0 is no cap.
	MaxConcurrentBuilds int
	// EnhancedScanning and Signing are account-wide (registry-level)
	// settings, off unless asked for: the default template has no
	// registry-wide resource.
	EnhancedScanning bool
	Signing          bool
	// VulnerabilityGate is what Publish refuses to publish, judged on ECR's
	// scans of the verified images; ScanWaitMinutes bounds Verify's wait
	// for a scan (and, with Signing, for the signature).
	VulnerabilityGate VulnerabilityGate
	ScanWaitMinutes   int
}

// Severities are ECR's finding severities, most severe first.
var Severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}

// VulnerabilityGate: Mode is "never-worse" (no more CRITICAL or HIGH
// findings than the published image has), "off", or "max" (at most Max[s]
// findings of each severity s it names).
type VulnerabilityGate struct {
	Mode string
	Max  map[string]int
}

// Env is the gate as the Verify and Publish commands read it
// (VULNERABILITY_GATE): never-worse, off, or "CRITICAL=0 HIGH=5".
func (g VulnerabilityGate) Env() string {
	if g.Mode != "max" {
		return g.Mode
	}
	var parts []string
	for _, sev := range Severities {
		if n, ok := g.Max[sev]; ok {
			parts = append(parts, fmt.Sprintf("%s=%d", sev, n))
		}
	}
	return strings.Join(parts, " ")
}

// ParameterPrefix is the root of the SSM parameters Publish keeps for
// consumers: <prefix>/<runtime>/<version>[/<arch>].
func (c Config) ParameterPrefix() string {
	return "/" + c.StackName
}

// RepositoryName is the ECR repository of a runtime.
func (c Config) RepositoryName(runtime string) string {
	return c.RepositoryPrefix + runtime
}

// GitSource is a repository reached through an AWS CodeConnections (formerly
// CodeStar Connections) connection: GitHub, GitLab or Bitbucket.
type GitSource struct {
	ConnectionArn string `json:"connectionArn"`
	Repository    string `json:"repository"` // owner/name
	Branch        string `json:"branch"`
}

// Owner and Name split Repository.
func (g *GitSource) Owner() string { o, _, _ := strings.Cut(g.Repository, "/"); return o }
func (g *GitSource) Name() string  { _, n, _ := strings.Cut(g.Repository, "/"); return n }

// GitHubOIDCHost is the issuer of GitHub Actions' OIDC tokens, and the prefix
// of the claim keys in a trust policy.
const GitHubOIDCHost = "token.actions.githubusercontent.com"

// GitHub is the evergreen:github value.
type GitHub struct {
	// Repository is owner/name, spelled as GitHub spells it (the trust
	// policy compares it case-sensitively).
	Repository string `json:"repository"`
	// Branch is the one branch whose runs may assume the role; default "main".
	Branch string `json:"branch"`
	// OIDCProviderArn, if set, is an existing provider for GitHubOIDCHost
	// (an account holds one provider per URL).
	OIDCProviderArn string `json:"oidcProviderArn,omitempty"`
}

// Subject is the token's sub claim for a run of a push, schedule or
// workflow_dispatch event on Branch, with GitHub's default claim template and
// no deployment environment.
func (g *GitHub) Subject() string {
	return "repo:" + g.Repository + ":ref:refs/heads/" + g.Branch
}

// Error names the key that is wrong, what is wrong and how to fix it.
type Error struct {
	Key, Msg, Fix string
}

// Error names where the value came from: cdk.json's context, or -c.
func (e *Error) Error() string {
	where := "cdk.json context"
	if _, ok := cliOrigins[e.Key]; ok {
		where = "-c (or cdk.context.json)"
	}
	return fmt.Sprintf("%s %q: %s\n  fix: %s", where, e.Key, e.Msg, e.Fix)
}

// Key documents and reads one context key. Keys is the table of them, in the
// order docs/configuration.md lists them.
type Key struct {
	Name string
	// Type, Default and Meaning are the table's columns.
	Type, Default, Meaning string
	read                   func(c *Config, v any) error
}

// Keys is every key the app reads. docs/configuration.md's table is generated from it
// (make generate).
var Keys = []Key{
	{KeyRuntimeList, "path", "`" + DefaultRuntimeList + "`", "The runtime list to build.", readRuntimeList},
	{KeyStackName, "stack name", "`" + DefaultStackName + "`", "The CloudFormation stack `make deploy` creates; CloudFormation names the stack's resources (all but the repositories) from it. A second copy in one account and region needs another stack name and another `evergreen:repositoryPrefix`.", readStackName},
	{KeyRepositoryPrefix, "string", "`" + DefaultRepositoryPrefix + "`", "Starts every ECR repository name (`<prefix><runtime>`). Lowercase letters, digits, `.`, `_`, `-` and `/`; empty is allowed (bare runtime names).", readRepositoryPrefix},
	{KeySource, "object", "unset: S3 bucket", "Git source through CodeConnections: `{\"connectionArn\": ..., \"repository\": \"owner/name\", \"branch\": \"main\"}`.", readSource},
	{KeySchedule, "schedule expression", "`cron(0 4 * * ? *)`", "EventBridge schedule that starts the pipeline (04:00 UTC daily). Its longest gap between two runs must be shorter than `evergreen:staleAfterHours`.", readSchedule},
	{KeyMaxConcurrentBuilds, "whole number, 0 to 100", "`0` (no cap)", "How many entries of a batch run at once per CodeBuild environment type and compute type; set it to your account's concurrency quota (`make preflight` suggests a value).", readMaxConcurrentBuilds},
	{KeyDraftRetentionDays, "whole number, 1 to 30", "`1`", "Draft tags older than this are retired; a failed execution must be retried within it. Shorter than `evergreen:datedTagRetentionDays`.", readInt(KeyDraftRetentionDays, func(c *Config) *int { return &c.DraftRetentionDays }, 1, 30, "drafts only need to outlive one pipeline execution and its retries")},
	{KeyDatedRetentionDays, "whole number, 1 to 3650", "`90`", "How long a dated tag stays pullable.", readInt(KeyDatedRetentionDays, func(c *Config) *int { return &c.DatedRetentionDays }, 1, 3650, "days a dated tag stays pullable")},
	{KeyLogRetentionDays, "whole number, 1 to 3653", "`90`", "Retention of build logs and bucket access logs.", readInt(KeyLogRetentionDays, func(c *Config) *int { return &c.LogRetentionDays }, 1, 3653, "CloudWatch Logs retention in days")},
	{KeyAlarmEmail, "email address", "unset", "Email address subscribed to the alert topic.", readAlarmEmail},
	{KeyChangesEmail, "email address", "unset", "Email address subscribed to the changelog topic: one plain-text message per execution, what each runtime-version published or kept.", readChangesEmail},
	// A CloudWatch alarm looks back at most 7 days; the pipeline runs daily.
	{KeyStaleAfterHours, "whole number, 25 to 168", "`48`", "A runtime-version's staleness alarm fires when Publish has not published or confirmed it for this long.", readInt(KeyStaleAfterHours, func(c *Config) *int { return &c.StaleAfterHours }, 25, maxStaleAfterHours, "hours without a publish before a runtime-version's alarm fires; more than a day, since the pipeline runs daily")},
	{KeyPullAccounts, "list of account ids", "unset", "AWS account ids allowed to pull the images (read-only).", readPullAccounts},
	{KeyPullOrganization, "organization id", "unset", "AWS Organization id (`o-...`) whose accounts may pull the images.", readPullOrganization},
	{KeyEnhancedScanning, "true or false", "`false`", "**Account-wide, billed.** Amazon Inspector enhanced scanning, continuous, for this stack's repositories (`AWS::ECR::RegistryScanningConfiguration`, which replaces the registry's whole scanning configuration), and a rule that starts the pipeline when a new CRITICAL finding appears on a published image.", readBool(KeyEnhancedScanning, func(c *Config) *bool { return &c.EnhancedScanning })},
	{KeySigning, "true or false", "`false`", "**Account-wide.** ECR managed signing of this stack's repositories with an AWS Signer profile the stack creates (`AWS::ECR::SigningConfiguration`, which replaces the registry's signing configuration).", readBool(KeySigning, func(c *Config) *bool { return &c.Signing })},
	{KeyVulnerabilityGate, "`never-worse`, `off`, or an object", "`never-worse`", "What Publish refuses, judged on ECR's scans of the verified images: `never-worse` refuses a runtime-version whose new image has more CRITICAL or more HIGH findings, on either architecture, than the published one; an object such as `{\"CRITICAL\": 0, \"HIGH\": 5}` refuses more findings of a severity than its maximum; `off` publishes whatever the scans say. A refused runtime-version keeps its published image, the others publish, and the Report stage alerts with the CVEs.", readVulnerabilityGate},
	{KeyScanWaitMinutes, "whole number, 1 to 20", "`10`", "How long, in all, a Verify entry waits for ECR's scans (of its image, and of the published image it would replace) and, with `evergreen:signing`, for its signature, before it ends the entry with `scan-timeout` (or `signing-timeout`); with `evergreen:vulnerabilityGate` `off`, a scan that does not finish is recorded and the entry passes.", readInt(KeyScanWaitMinutes, func(c *Config) *int { return &c.ScanWaitMinutes }, 1, 20, "Verify's 30-minute build must also pull and test the image")},
	{KeyGitHub, "object", "unset", "`{\"repository\": \"owner/name\", \"branch\": \"main\"}`: the OIDC role the generated GitHub workflow assumes ([docs/github-actions.md](docs/github-actions.md)).", readGitHub},
}

// Default documents every default in one place.
func Default() Config {
	s, err := ParseSchedule(DefaultSchedule)
	if err != nil {
		panic("the default schedule does not parse: " + err.Error())
	}
	return Config{
		StackName:          DefaultStackName,
		RuntimeList:        DefaultRuntimeList,
		Schedule:           s,
		DraftRetentionDays: 1,
		DatedRetentionDays: 90,
		LogRetentionDays:   90,
		StaleAfterHours:    48,
		RepositoryPrefix:   DefaultRepositoryPrefix,
		VulnerabilityGate:  VulnerabilityGate{Mode: "never-worse"},
		ScanWaitMinutes:    10,
	}
}

// DefaultSchedule is 04:00 UTC daily: after the Docker official images'
// nightly rebuilds, before most teams' working day.
const DefaultSchedule = "cron(0 4 * * ? *)"

// FromContext reads and validates every evergreen:* key of ctx (cdk.json's
// context, or the CLI's). Values may come from cdk.json (JSON types) or from
// `-c key=value` (always strings), so both spellings are accepted. Every
// problem is reported, joined, each as an *Error.
func FromContext(ctx map[string]any) (Config, error) {
	c := Default()
	var errs []error
	known := map[string]bool{}
	for _, k := range Keys {
		known[k.Name] = true
	}
	var unknown []string
	for k := range ctx {
		if strings.HasPrefix(k, Prefix) && !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, unknownKey(k))
	}
	for _, k := range Keys {
		v, ok := ctx[k.Name]
		if !ok || v == nil {
			continue
		}
		if err := k.read(&c, v); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, c.crossChecks()...)
	}
	return c, errors.Join(errs...)
}

// crossChecks are the rules that tie two keys together.
func (c Config) crossChecks() []error {
	var errs []error
	if c.DraftRetentionDays >= c.DatedRetentionDays {
		errs = append(errs, &Error{KeyDraftRetentionDays, fmt.Sprintf("%d days is not shorter than %s (%d days)", c.DraftRetentionDays, KeyDatedRetentionDays, c.DatedRetentionDays), "keep drafts for a day or two; dated tags for weeks"})
	}
	gap, err := c.Schedule.MaxGap()
	if err != nil {
		errs = append(errs, &Error{KeySchedule, fmt.Sprintf("%q: %v", c.Schedule, err), "start the pipeline at least daily, e.g. " + DefaultSchedule})
	} else if hours := gap.Hours(); hours >= float64(c.StaleAfterHours) {
		// Equal is refused too: a run takes time, so the gap between two
		// successes is the schedule's gap plus the run's length.
		need := int(hours) + 1
		fix := fmt.Sprintf("run more often (e.g. %s), or raise %s to at least %d", DefaultSchedule, KeyStaleAfterHours, need)
		if need > maxStaleAfterHours {
			fix = fmt.Sprintf("run at least every %d hours (e.g. %s): %s stops at %d, the longest a CloudWatch alarm can look back", maxStaleAfterHours-1, DefaultSchedule, KeyStaleAfterHours, maxStaleAfterHours)
		}
		errs = append(errs, &Error{KeySchedule, fmt.Sprintf("%q leaves up to %s between two runs, not less than %s (%d hours): the staleness alarm would fire between runs", c.Schedule, formatHours(hours), KeyStaleAfterHours, c.StaleAfterHours), fix})
	}
	return errs
}

func formatHours(h float64) string {
	if h >= 48 && h == float64(int(h/24)*24) {
		return fmt.Sprintf("%d days", int(h/24))
	}
	return strconv.FormatFloat(h, 'f', -1, 64) + " hours"
}

// unknownKey names the nearest known key, as a typo is the likely cause.
func unknownKey(k string) error {
	best, dist := "", 1<<30
	for _, key := range Keys {
		if d := suggest.Distance(strings.ToLower(k), strings.ToLower(key.Name)); d < dist {
			best, dist = key.Name, d
		}
	}
	fix := "remove it; the keys the app reads are listed in docs/configuration.md"
	if dist <= 4 {
		fix = fmt.Sprintf("did you mean %q? Rename it, or remove it", best)
	}
	return &Error{k, "is not a key this app reads, so its value would be ignored", fix}
}

var (
	connectionArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:connection/[0-9a-f-]{36}$`)
	repositoryRe    = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+$`)
	accountRe       = regexp.MustCompile(`^[0-9]{12}$`)
	orgRe           = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	emailRe         = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	// ECR repository names: (?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*
	// (CreateRepository). A prefix is such a name's leading part: path
	// segments each followed by '/', then optionally the start of the last
	// segment ending in a separator or an alphanumeric.
	prefixRe = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*(?:[a-z0-9]+(?:[._-][a-z0-9]+)*[._-]?)?$`)
	// GitHub owners: letters, digits, single hyphens; repositories: letters,
	// digits, '.', '-', '_'.
	githubRepositoryRe = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
	// A branch name as git check-ref-format accepts it, less anything that
	// would read as a pattern in an IAM condition or a GitHub filter.
	githubBranchBadRe = regexp.MustCompile(`[\s~^:?*\[\\\x00-\x1f\x7f]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$`)
	oidcProviderArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/` + regexp.QuoteMeta(GitHubOIDCHost) + `$`)
)

// maxStaleAfterHours: a CloudWatch alarm evaluates at most 7 days of data.
const maxStaleAfterHours = 168

// MaxRepositoryPrefixLen leaves room in ECR's 256-character repository names
// for the runtime name (at most 200 characters, runtimes/list.go).
const MaxRepositoryPrefixLen = 56

func readRuntimeList(c *Config, v any) error {
	s, err := str(KeyRuntimeList, v)
	if err != nil {
		return err
	}
	if strings.TrimSpace(s) == "" {
		return &Error{KeyRuntimeList, "is empty", "name the runtime list file, or remove the key to use " + DefaultRuntimeList}
	}
	c.RuntimeList = s
	return nil
}

// stackNameRe: CloudFormation stack names start with a letter and hold
// letters, digits and hyphens, at most 128 characters (CreateStack).
var stackNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)

func readStackName(c *Config, v any) error {
	s, err := str(KeyStackName, v)
	if err != nil {
		return err
	}
	if !stackNameRe.MatchString(s) {
		return &Error{KeyStackName, fmt.Sprintf("%q is not a CloudFormation stack name", s), "start with a letter; use letters, digits and '-' only, at most 128 characters (e.g. EvergreenImagesStaging)"}
	}
	// The stack name is the root of the SSM parameters (ParameterPrefix),
	// and Parameter Store refuses names that begin with "aws" or "ssm", in
	// any case (PutParameter, "Parameter names can't be prefixed with aws or
	// ssm").
	if l := strings.ToLower(s); strings.HasPrefix(l, "aws") || strings.HasPrefix(l, "ssm") {
		return &Error{KeyStackName, fmt.Sprintf("%q begins with %q, which Parameter Store refuses as the root of the parameters Publish writes (/%s/<runtime>/<version>)", s, s[:3], s), "choose a name that does not begin with aws or ssm (e.g. EvergreenImages)"}
	}
	c.StackName = s
	return nil
}

func readRepositoryPrefix(c *Config, v any) error {
	s, err := str(KeyRepositoryPrefix, v)
	if err != nil {
		return err
	}
	fix := `use lowercase letters and digits, with '.', '_', '-' between them and '/' between path segments, e.g. "evergreen/" or "platform/images-"; or "" for bare runtime names`
	switch {
	case len(s) > MaxRepositoryPrefixLen:
		return &Error{KeyRepositoryPrefix, fmt.Sprintf("%q is %d characters long", s, len(s)), fmt.Sprintf("use at most %d characters", MaxRepositoryPrefixLen)}
	case !prefixRe.MatchString(s):
		return &Error{KeyRepositoryPrefix, fmt.Sprintf("%q would make repository names ECR rejects", s), fix}
	}
	c.RepositoryPrefix = s
	return nil
}

func readSource(c *Config, v any) error {
	fix := `set {"connectionArn": "arn:aws:codeconnections:<region>:<account>:connection/<id>", "repository": "owner/name", "branch": "main"}, or remove the key to use the S3 source`
	var g GitSource
	if err := decodeObject(v, &g); err != nil {
		return &Error{KeySource, fmt.Sprintf("cannot read it: %v", err), fix}
	}
	switch {
	case !connectionArnRe.MatchString(g.ConnectionArn):
		return &Error{KeySource, fmt.Sprintf("connectionArn %q is not a CodeConnections connection ARN", g.ConnectionArn), fix}
	case !repositoryRe.MatchString(g.Repository):
		return &Error{KeySource, fmt.Sprintf("repository %q is not owner/name", g.Repository), fix}
	case g.Branch == "" || strings.ContainsAny(g.Branch, " ~^:?*[\\"):
		return &Error{KeySource, fmt.Sprintf("branch %q is not a branch name", g.Branch), fix}
	}
	c.Source = &g
	return nil
}

func readSchedule(c *Config, v any) error {
	s, err := str(KeySchedule, v)
	if err != nil {
		return err
	}
	sch, err := ParseSchedule(s)
	if err != nil {
		return &Error{KeySchedule, err.Error(), `write an EventBridge schedule expression, e.g. "cron(0 4 * * ? *)" (04:00 UTC daily) or "rate(12 hours)"`}
	}
	c.Schedule = sch
	return nil
}

func readMaxConcurrentBuilds(c *Config, v any) error {
	return readInt(KeyMaxConcurrentBuilds, func(c *Config) *int { return &c.MaxConcurrentBuilds }, 0, 100, "builds of one environment type and compute type that may run at once; 0 for no cap")(c, v)
}

func readInt(key string, dst func(*Config) *int, lo, hi int, why string) func(*Config, any) error {
	return func(c *Config, v any) error {
		n, ok := toInt(v)
		if !ok || n < lo || n > hi {
			return &Error{key, fmt.Sprintf("%v is not a whole number from %d to %d", v, lo, hi), fmt.Sprintf("set a number from %d to %d (%s)", lo, hi, why)}
		}
		*dst(c) = n
		return nil
	}
}

func readBool(key string, dst func(*Config) *bool) func(*Config, any) error {
	return func(c *Config, v any) error {
		switch t := v.(type) {
		case bool:
			*dst(c) = t
			return nil
		case string: // -c key=true
			switch t {
			case "true":
				*dst(c) = true
				return nil
			case "false":
				*dst(c) = false
				return nil
			}
		}
		return &Error{key, fmt.Sprintf("%v is not true or false", v), "set true or false (a JSON boolean in cdk.json, or -c " + key + "=true)"}
	}
}

func readAlarmEmail(c *Config, v any) error {
	s, err := str(KeyAlarmEmail, v)
	if err != nil {
		return err
	}
	if s != "" && !emailRe.MatchString(s) {
		return &Error{KeyAlarmEmail, fmt.Sprintf("%q is not an email address", s), "set the address that receives pipeline alerts, or remove the key"}
	}
	c.AlarmEmail = s
	return nil
}

func readPullAccounts(c *Config, v any) error {
	fix := `use a JSON list of 12-digit account ids, e.g. ["111122223333"]`
	accounts, ok := toStrings(v)
	if !ok {
		return &Error{KeyPullAccounts, fmt.Sprintf("%v is not a list of account ids", v), fix}
	}
	for _, a := range accounts {
		if !accountRe.MatchString(a) {
			return &Error{KeyPullAccounts, fmt.Sprintf("%q is not a 12-digit AWS account id", a), fix}
		}
	}
	sort.Strings(accounts)
	c.PullAccounts = slices.Compact(accounts)
	return nil
}

func readPullOrganization(c *Config, v any) error {
	s, err := str(KeyPullOrganization, v)
	if err != nil {
		return err
	}
	if s != "" && !orgRe.MatchString(s) {
		return &Error{KeyPullOrganization, fmt.Sprintf("%q is not an AWS Organization id", s), "use the organization id, e.g. o-a1b2c3d4e5 (aws organizations describe-organization)"}
	}
	c.PullOrganization = s
	return nil
}

func readGitHub(c *Config, v any) error {
	fix := `set {"repository": "owner/name", "branch": "main"} (add "oidcProviderArn": "arn:aws:iam::<account>:oidc-provider/` + GitHubOIDCHost + `" when the account already has GitHub's provider), or remove the key`
	var g GitHub
	if err := decodeObject(v, &g); err != nil {
		return &Error{KeyGitHub, fmt.Sprintf("cannot read it: %v", err), fix}
	}
	if g.Branch == "" {
		g.Branch = "main"
	}
	switch {
	case !githubRepositoryRe.MatchString(g.Repository):
		return &Error{KeyGitHub, fmt.Sprintf("repository %q is not a GitHub owner/name", g.Repository), fix}
	case strings.HasPrefix(g.Branch, "refs/"):
		return &Error{KeyGitHub, fmt.Sprintf("branch %q is a ref, not a branch name", g.Branch), `give the branch name alone, e.g. "main"`}
	case githubBranchBadRe.MatchString(g.Branch):
		return &Error{KeyGitHub, fmt.Sprintf("branch %q is not a plain branch name", g.Branch), "name one branch exactly: wildcards would let other branches assume the role"}
	case g.OIDCProviderArn != "" && !oidcProviderArnRe.MatchString(g.OIDCProviderArn):
		return &Error{KeyGitHub, fmt.Sprintf("oidcProviderArn %q is not the ARN of an IAM OIDC provider for %s", g.OIDCProviderArn, GitHubOIDCHost), "copy it from: aws iam list-open-id-connect-providers, or remove it to create the provider"}
	}
	c.GitHub = &g
	return nil
}

// str reads a value that must be a string: a number or a list where a string
// belongs is an error, not a silent fallback to the default.
func str(key string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", &Error{key, fmt.Sprintf("%v is not a string", v), "write the value as a JSON string in cdk.json, or remove the key to use the default"}
	}
	return s, nil
}

// decodeObject reads a JSON object given as JSON (cdk.json) or as a string
// (-c key='{"...": ...}'), refusing unknown fields.
func decodeObject(v any, dst any) error {
	var raw []byte
	switch t := v.(type) {
	case string:
		raw = []byte(t)
	default:
		raw, _ = json.Marshal(t)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

func toInt(v any) (int, bool) {
	switch t := v.(type) {
	case float64:
		if t != float64(int(t)) {
			return 0, false
		}
		return int(t), true
	case string:
		n, err := strconv.Atoi(t)
		return n, err == nil
	}
	return 0, false
}

func toStrings(v any) ([]string, bool) {
	switch t := v.(type) {
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	case string: // -c evergreen:pullAccounts=111122223333,444455556666 or a JSON list
		if strings.HasPrefix(strings.TrimSpace(t), "[") {
			var out []string
			if err := json.Unmarshal([]byte(t), &out); err != nil {
				return nil, false
			}
			return out, true
		}
		return strings.Split(t, ","), true
	}
	return nil, false
}

func readChangesEmail(c *Config, v any) error {
	s, err := str(KeyChangesEmail, v)
	if err != nil {
		return err
	}
	if s != "" && !emailRe.MatchString(s) {
		return &Error{KeyChangesEmail, fmt.Sprintf("%q is not an email address", s), "set the address that receives the changelogs, or remove the key"}
	}
	c.ChangesEmail = s
	return nil
}

// readVulnerabilityGate takes "never-worse", "off", or an object of
// maximum counts per severity, given as JSON (cdk.json) or as a string
// (-c key='{"CRITICAL": 0}').
func readVulnerabilityGate(c *Config, v any) error {
	const fix = `set "never-worse" (the default), "off", or maximum counts per severity such as {"CRITICAL": 0, "HIGH": 5} (severities: CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED)`
	if s, ok := v.(string); ok {
		switch s {
		case "never-worse", "off":
			c.VulnerabilityGate = VulnerabilityGate{Mode: s}
			return nil
		}
		if !strings.HasPrefix(strings.TrimSpace(s), "{") {
			return &Error{KeyVulnerabilityGate, fmt.Sprintf("%q is not a gate", s), fix}
		}
	}
	var raw map[string]any
	if err := decodeObject(v, &raw); err != nil {
		return &Error{KeyVulnerabilityGate, err.Error(), fix}
	}
	if len(raw) == 0 {
		return &Error{KeyVulnerabilityGate, "the object names no severity", fix}
	}
	g := VulnerabilityGate{Mode: "max", Max: map[string]int{}}
	for sev, n := range raw {
		if !slices.Contains(Severities, sev) {
			return &Error{KeyVulnerabilityGate, fmt.Sprintf("%q is not an ECR finding severity", sev), fix}
		}
		count, ok := toInt(n)
		if !ok || count < 0 {
			return &Error{KeyVulnerabilityGate, fmt.Sprintf("the maximum for %s, %v, is not a whole number of findings", sev, n), fix}
		}
		g.Max[sev] = count
	}
	c.VulnerabilityGate = g
	return nil
}

package stacks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Context keys read from cdk.json (or `cdk synth -c key=value`). They are read
// once, in main, and reach the stack as a Config.
const (
	CtxRuntimeList        = "evergreen:runtimeList"
	CtxSource             = "evergreen:source"
	CtxSchedule           = "evergreen:schedule"
	CtxDraftRetentionDays = "evergreen:draftRetentionDays"
	CtxDatedRetentionDays = "evergreen:datedTagRetentionDays"
	CtxLogRetentionDays   = "evergreen:logRetentionDays"
	CtxAlarmEmail         = "evergreen:alarmEmail"
	CtxStaleAfterHours    = "evergreen:staleAfterHours"
	CtxPullAccounts       = "evergreen:pullAccounts"
	CtxPullOrganization   = "evergreen:pullOrganization"
)

// Config is everything the stack needs besides the runtime list. The zero
// value is not valid: start from DefaultConfig.
type Config struct {
	// Source is the Git repository the pipeline builds. Nil: a versioned S3
	// bucket that the stack creates, so the app deploys with no outside set-up.
	Source *GitSource
	// Schedule is the EventBridge schedule expression that starts the pipeline.
	Schedule string
	// DraftRetentionDays: draft tags older than this are retired. It bounds how
	// long a failed execution can wait for a retry of Verify or Publish.
	DraftRetentionDays int
	// DatedRetentionDays: how long an immutable dated tag stays pullable.
	DatedRetentionDays int
	// LogRetentionDays for the CodeBuild and pipeline event logs.
	LogRetentionDays int
	// AlarmEmail, if set, is subscribed to the alert topic.
	AlarmEmail string
	// StaleAfterHours: the staleness alarm fires when no execution has
	// succeeded for this long.
	StaleAfterHours int
	// PullAccounts and PullOrganization may pull the images (read-only).
	// Both empty: the repositories have no resource policy at all.
	PullAccounts     []string
	PullOrganization string
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

// DefaultConfig documents every default in one place.
func DefaultConfig() Config {
	return Config{
		// 04:00 UTC daily: after the Docker official images' nightly rebuilds,
		// before most teams' working day.
		Schedule:           "cron(0 4 * * ? *)",
		DraftRetentionDays: 1,
		DatedRetentionDays: 90,
		LogRetentionDays:   90,
		StaleAfterHours:    48,
	}
}

// ContextError names the cdk.json context key that is wrong and how to fix it.
type ContextError struct {
	Key, Msg, Fix string
}

func (e *ContextError) Error() string {
	return fmt.Sprintf("cdk.json context %q: %s\n  fix: %s", e.Key, e.Msg, e.Fix)
}

var (
	connectionArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:connection/[0-9a-f-]{36}$`)
	repositoryRe    = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+$`)
	accountRe       = regexp.MustCompile(`^[0-9]{12}$`)
	orgRe           = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	emailRe         = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	scheduleRe      = regexp.MustCompile(`^(cron|rate)\(.+\)$`)
)

// ConfigFromContext reads the context through get (app.Node().TryGetContext)
// and validates it. Values may come from cdk.json (JSON types) or from
// `-c key=value` (always strings), so both spellings are accepted.
func ConfigFromContext(get func(key string) any) (Config, error) {
	c := DefaultConfig()
	var err error
	if v := get(CtxSource); v != nil {
		if c.Source, err = gitSource(v); err != nil {
			return c, err
		}
	}
	schedule, err := ContextString(get, CtxSchedule)
	if err != nil {
		return c, err
	}
	if v := schedule; v != "" {
		if !scheduleRe.MatchString(v) {
			return c, &ContextError{CtxSchedule, fmt.Sprintf("%q is not an EventBridge schedule expression", v), `use cron(...) or rate(...), e.g. "cron(0 4 * * ? *)" for 04:00 UTC daily`}
		}
		c.Schedule = v
	}
	ints := []struct {
		key      string
		dst      *int
		min, max int
		why      string
	}{
		{CtxDraftRetentionDays, &c.DraftRetentionDays, 1, 30, "drafts only need to outlive one pipeline execution and its retries"},
		{CtxDatedRetentionDays, &c.DatedRetentionDays, 1, 3650, "days a dated tag stays pullable"},
		{CtxLogRetentionDays, &c.LogRetentionDays, 1, 3653, "CloudWatch Logs retention in days"},
		// A CloudWatch alarm looks back at most 7 days.
		{CtxStaleAfterHours, &c.StaleAfterHours, 25, 168, "hours without a successful execution before the alarm fires; more than a day, since the pipeline runs daily"},
	}
	for _, in := range ints {
		v := get(in.key)
		if v == nil {
			continue
		}
		n, ok := toInt(v)
		if !ok || n < in.min || n > in.max {
			return c, &ContextError{in.key, fmt.Sprintf("%v is not a whole number from %d to %d", v, in.min, in.max), fmt.Sprintf("set a number from %d to %d (%s)", in.min, in.max, in.why)}
		}
		*in.dst = n
	}
	if c.DraftRetentionDays >= c.DatedRetentionDays {
		return c, &ContextError{CtxDraftRetentionDays, "must be shorter than " + CtxDatedRetentionDays, "keep drafts for a day or two; dated tags for weeks"}
	}
	email, err := ContextString(get, CtxAlarmEmail)
	if err != nil {
		return c, err
	}
	if v := email; v != "" {
		if !emailRe.MatchString(v) {
			return c, &ContextError{CtxAlarmEmail, fmt.Sprintf("%q is not an email address", v), "set the address that receives pipeline alerts, or remove the key"}
		}
		c.AlarmEmail = v
	}
	if v := get(CtxPullAccounts); v != nil {
		accounts, ok := toStrings(v)
		if !ok {
			return c, &ContextError{CtxPullAccounts, fmt.Sprintf("%v is not a list of account ids", v), `use a JSON list of 12-digit account ids, e.g. ["111122223333"]`}
		}
		for _, a := range accounts {
			if !accountRe.MatchString(a) {
				return c, &ContextError{CtxPullAccounts, fmt.Sprintf("%q is not a 12-digit AWS account id", a), `use a JSON list of 12-digit account ids, e.g. ["111122223333"]`}
			}
		}
		sort.Strings(accounts)
		c.PullAccounts = accounts
	}
	org, err := ContextString(get, CtxPullOrganization)
	if err != nil {
		return c, err
	}
	if v := org; v != "" {
		if !orgRe.MatchString(v) {
			return c, &ContextError{CtxPullOrganization, fmt.Sprintf("%q is not an AWS Organization id", v), "use the organization id, e.g. o-a1b2c3d4e5 (aws organizations describe-organization)"}
		}
		c.PullOrganization = v
	}
	return c, nil
}

// ContextString reads a context value that must be a string: a number or a
// list where a string belongs is an error, not a silent fallback to the default.
func ContextString(get func(key string) any, key string) (string, error) {
	v := get(key)
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &ContextError{key, fmt.Sprintf("%v is not a string", v), "write the value as a JSON string in cdk.json, or remove the key to use the default"}
	}
	return s, nil
}

func gitSource(v any) (*GitSource, error) {
	fix := `set {"connectionArn": "arn:aws:codeconnections:<region>:<account>:connection/<id>", "repository": "owner/name", "branch": "main"}, or remove the key to use the S3 source`
	var raw []byte
	switch t := v.(type) {
	case string: // -c evergreen:source='{"connectionArn": ...}'
		raw = []byte(t)
	default:
		raw, _ = json.Marshal(t)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var g GitSource
	if err := dec.Decode(&g); err != nil {
		return nil, &ContextError{CtxSource, fmt.Sprintf("cannot read it: %v", err), fix}
	}
	switch {
	case !connectionArnRe.MatchString(g.ConnectionArn):
		return nil, &ContextError{CtxSource, fmt.Sprintf("connectionArn %q is not a CodeConnections connection ARN", g.ConnectionArn), fix}
	case !repositoryRe.MatchString(g.Repository):
		return nil, &ContextError{CtxSource, fmt.Sprintf("repository %q is not owner/name", g.Repository), fix}
	case g.Branch == "" || strings.ContainsAny(g.Branch, " ~^:?*[\\"):
		return nil, &ContextError{CtxSource, fmt.Sprintf("branch %q is not a branch name", g.Branch), fix}
	}
	return &g, nil
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

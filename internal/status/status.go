// Package status prints where each runtime-version of the list stands
// (make status): what is published, since when, the last check, holds,
// pending drafts, whether the SSM parameters agree with the tags, and the
// last pipeline execution. It only reads.
package status

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	cptypes "github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Options of one status report.
type Options struct {
	Config config.Config
	List   *runtimes.List
	// Bucket is the records bucket and Pipeline the pipeline's name. When
	// Bucket is set, the stack's outputs are not read (an empty Pipeline
	// then leaves the pipeline out).
	Bucket, Pipeline string
	// Now is the instant ages are measured from; zero means the clock.
	Now time.Time
}

// label pads the first column, so that the values line up.
const labelWidth = 12

func line(w io.Writer, label, format string, args ...any) {
	fmt.Fprintf(w, "  %-*s%s\n", labelWidth, label, fmt.Sprintf(format, args...))
}

// more continues a value on the next line, under the value column.
func more(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "  %-*s%s\n", labelWidth, "", fmt.Sprintf(format, args...))
}

// repoState is read once per repository: several versions share it.
type repoState struct {
	uri  string
	tags []string
	err  error
}

type clients struct {
	ecr *ecr.Client
	s3  *s3.Client
	ssm *ssm.Client
}

// Run prints the report to w. Only missing credentials or a missing stack
// are errors; anything else it cannot read is printed as such.
func Run(ctx context.Context, cfg aws.Config, o Options, w io.Writer) error {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		return awsops.CallError(err)
	}
	bucket, pipeline := o.Bucket, o.Pipeline
	if bucket == "" {
		n, err := awsops.StackNames(ctx, cfg, o.Config.StackName)
		if err != nil {
			return err
		}
		bucket, pipeline = n.Bucket, n.Pipeline
	}
	c := clients{ecr: ecr.NewFromConfig(cfg), s3: awsops.NewS3(cfg), ssm: ssm.NewFromConfig(cfg)}
	fmt.Fprintf(w, "stack %s, region %s, records s3://%s, at %s\n", o.Config.StackName, cfg.Region, bucket, now.Format(records.TimeFormat))

	repos := map[string]*repoState{}
	for _, r := range o.List.Releases() {
		repo := o.Config.RepositoryName(r.Runtime.Name)
		st, ok := repos[repo]
		if !ok {
			st = &repoState{}
			st.uri, st.err = awsops.RepositoryURI(ctx, c.ecr, repo)
			if st.err == nil {
				st.tags, st.err = awsops.Tags(ctx, c.ecr, repo)
			}
			repos[repo] = st
		}
		fmt.Fprintf(w, "\n%s %s  (%s)\n", r.Runtime.Name, r.Version, repo)
		release(ctx, w, c, o.Config, bucket, repo, st, r, now)
	}

	fmt.Fprintln(w)
	if pipeline == "" {
		fmt.Fprintf(w, "pipeline: no name (no %s output): not reported\n", awsops.OutputPipelineName)
		return nil
	}
	pipelineState(ctx, w, codepipeline.NewFromConfig(cfg), pipeline)
	return nil
}

func release(ctx context.Context, w io.Writer, c clients, cfg config.Config, bucket, repo string, st *repoState, r runtimes.Release, now time.Time) {
	rt, v := r.Runtime, r.Version
	digests := map[string]string{} // tag -> digest, for the parameters
	if st.err != nil {
		line(w, "published", "cannot read: %v", st.err)
	} else {
		for _, tag := range runtimes.MovingTags(rt, v) {
			m, found, err := awsops.GetManifest(ctx, c.ecr, repo, ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)})
			if err != nil {
				digests[tag] = "?"
			} else if found {
				digests[tag] = m.Digest
			}
		}
		d, found, err := awsops.ImageOfTag(ctx, c.ecr, repo, v)
		switch {
		case err != nil:
			line(w, "published", "cannot read: %v", err)
		case !found:
			line(w, "published", "nothing yet (no tag %s)", v)
		default:
			dated := "no dated tag"
			for _, t := range d.ImageTags {
				if runtimes.IsDatedTagOf(v, t) {
					dated = t
				}
			}
			pushed := "push time unknown"
			if d.ImagePushedAt != nil {
				pushed = "pushed " + d.ImagePushedAt.UTC().Format(records.TimeFormat)
			}
			line(w, "published", "%s  %s, %s", aws.ToString(d.ImageDigest), dated, pushed)
		}
	}

	var rel records.Release
	found, err := (records.Store{S3: c.s3, Bucket: bucket}).GetJSON(ctx, records.ReleaseKey(rt.Name, v), &rel)
	switch {
	case err != nil:
		line(w, "content", "cannot read: %v", err)
		line(w, "last check", "cannot read: %v", err)
	case !found:
		line(w, "content", "no record yet (%s)", records.ReleaseKey(rt.Name, v))
		line(w, "last check", "no record yet")
	default:
		line(w, "content", "changed %s%s", orUnknown(rel.ChangedAt), age(rel.ChangedAt, now))
		by := ""
		if rel.ExecutionID != "" {
			by = " in execution " + rel.ExecutionID
		} else if rel.Result == records.ResultRolledBack {
			by = " by make rollback, to " + rel.DatedTag
		}
		line(w, "last check", "%s %s%s", orUnknown(rel.CheckedAt), orUnknown(rel.Result), by)
	}

	var h records.Hold
	found, err = (records.Store{S3: c.s3, Bucket: bucket}).GetJSON(ctx, records.HoldKey(rt.Name, v), &h)
	switch {
	case err != nil:
		line(w, "hold", "cannot read: %v", err)
	case !found:
		line(w, "hold", "none")
	default:
		line(w, "hold", "HELD at %s since %s by %s", orUnknown(h.To), orUnknown(h.At), orUnknown(h.By))
		more(w, "Publish leaves it as it is; lift with make resume RUNTIME=%s VERSION=%s", rt.Name, v)
	}

	if st.err != nil {
		line(w, "drafts", "not read: the repository cannot be read")
	} else {
		byExec := map[string][]string{}
		for _, t := range st.tags {
			if a, id, ok := runtimes.ParseDraftTag(t, v, rt.Architectures); ok {
				byExec[id] = append(byExec[id], string(a))
			}
		}
		if len(byExec) == 0 {
			line(w, "drafts", "none")
		}
		ids := make([]string, 0, len(byExec))
		for id := range byExec {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for i, id := range ids {
			archs := byExec[id]
			sort.Strings(archs)
			label := ""
			if i == 0 {
				label = "drafts"
			}
			line(w, label, "execution %s: %s", id, strings.Join(archs, ", "))
		}
	}

	parameters(ctx, w, c, cfg, st, r, digests)
}

// parameters compares each SSM parameter with the tag it stands for.
func parameters(ctx context.Context, w io.Writer, c clients, cfg config.Config, st *repoState, r runtimes.Release, digests map[string]string) {
	rt, v := r.Runtime, r.Version
	if st.err != nil {
		line(w, "parameters", "not compared: the repository cannot be read")
		return
	}
	prefix := cfg.ParameterPrefix() + "/" + rt.Name + "/" + v
	type pair struct{ name, tag string }
	pairs := []pair{{prefix, v}}
	for _, a := range rt.Architectures {
		pairs = append(pairs, pair{prefix + "/" + string(a), runtimes.ArchTag(v, a)})
	}
	var problems []string
	set := 0
	for _, p := range pairs {
		val := ""
		got, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.name)})
		switch {
		case err == nil:
			val = aws.ToString(got.Parameter.Value)
			set++
		case awsops.IsCode(err, "ParameterNotFound"):
		default:
			problems = append(problems, fmt.Sprintf("%s cannot be read: %s", p.name, awsops.Short(err)))
			continue
		}
		d := digests[p.tag]
		want := ""
		if d != "" {
			want = st.uri + "@" + d
		}
		switch {
		case d == "?":
			problems = append(problems, fmt.Sprintf("%s not compared: tag %s cannot be read", p.name, p.tag))
		case val == want:
		case val == "":
			problems = append(problems, fmt.Sprintf("%s is not set, tag %s is %s", p.name, p.tag, d))
		case want == "":
			problems = append(problems, fmt.Sprintf("%s = %s, but there is no tag %s", p.name, val, p.tag))
		default:
			problems = append(problems, fmt.Sprintf("%s = %s, tag %s is %s", p.name, val, p.tag, d))
		}
	}
	switch {
	case len(problems) > 0:
		line(w, "parameters", "DIFFER from the tags:")
		for _, p := range problems {
			more(w, "%s", p)
		}
	case set == 0:
		line(w, "parameters", "none, nothing published")
	default:
		line(w, "parameters", "agree with the tags (%s/...)", prefix)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// age of a record's instant: minutes under two hours, hours under two
// days, else days.
func age(at string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return ", in the future"
	case d < 2*time.Hour:
		return fmt.Sprintf(", %d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf(", %d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf(", %d days ago", int(d.Hours()/24))
}

// pipelineState prints the last execution and the state of each stage.
// GetPipelineState gives each stage's latest execution, which may be an
// earlier execution than the last one when the last stopped before it.
func pipelineState(ctx context.Context, w io.Writer, c *codepipeline.Client, name string) {
	fmt.Fprintf(w, "pipeline %s\n", name)
	ex, err := c.ListPipelineExecutions(ctx, &codepipeline.ListPipelineExecutionsInput{PipelineName: aws.String(name), MaxResults: aws.Int32(1)})
	if err != nil {
		line(w, "last run", "cannot read: %s", awsops.Short(err))
		return
	}
	if len(ex.PipelineExecutionSummaries) == 0 {
		line(w, "last run", "none yet")
		return
	}
	last := ex.PipelineExecutionSummaries[0]
	lastID := aws.ToString(last.PipelineExecutionId)
	started := ""
	if last.StartTime != nil {
		started = ", started " + last.StartTime.UTC().Format(records.TimeFormat)
	}
	trigger := ""
	if last.Trigger != nil && last.Trigger.TriggerType != "" {
		trigger = " (" + string(last.Trigger.TriggerType) + ")"
	}
	line(w, "last run", "%s %s%s%s", lastID, last.Status, started, trigger)

	st, err := c.GetPipelineState(ctx, &codepipeline.GetPipelineStateInput{Name: aws.String(name)})
	if err != nil {
		line(w, "stages", "cannot read: %s", awsops.Short(err))
		return
	}
	for _, s := range st.StageStates {
		stage := aws.ToString(s.StageName)
		le := s.LatestExecution
		switch {
		case le == nil:
			line(w, stage, "never run")
		case aws.ToString(le.PipelineExecutionId) != lastID:
			line(w, stage, "not run in %s (its latest: %s in %s)", lastID, le.Status, aws.ToString(le.PipelineExecutionId))
		default:
			line(w, stage, "%s%s", le.Status, failedActions(s))
		}
	}
}

func failedActions(s cptypes.StageState) string {
	var out []string
	for _, a := range s.ActionStates {
		if a.LatestExecution == nil || a.LatestExecution.Status != cptypes.ActionExecutionStatusFailed {
			continue
		}
		msg := ""
		if a.LatestExecution.ErrorDetails != nil {
			msg, _, _ = strings.Cut(aws.ToString(a.LatestExecution.ErrorDetails.Message), "\n")
			if len(msg) > 160 {
				msg = msg[:160] + "..."
			}
			msg = ": " + msg
		}
		out = append(out, aws.ToString(a.ActionName)+msg)
	}
	if len(out) == 0 {
		return ""
	}
	return " (action " + strings.Join(out, "; ") + ")"
}

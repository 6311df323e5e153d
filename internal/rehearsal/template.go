// Package rehearsal runs the pipeline's generated Build, Verify and Publish
// commands on one machine against local stand-ins for AWS (see
// docs/rehearsal.md). This file reads everything the rehearsal runs from the
// synthesized CloudFormation template: the inline buildspecs, the project
// environment, the pipeline actions' environment and the ECR repositories.
package rehearsal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Var is one environment variable, in the order its source declares it.
type Var struct {
	Name  string
	Value string
}

// Entry is one build-graph entry of a batch buildspec.
type Entry struct {
	ID            string
	Type          string // LINUX_CONTAINER or ARM_CONTAINER
	Image         string
	ComputeType   string
	Privileged    bool
	IgnoreFailure bool
	// DependOn are the entries that must finish before this one starts.
	DependOn []string
	Vars     []Var
}

// Get returns the entry variable name, or "".
func (e Entry) Get(name string) string {
	for _, v := range e.Vars {
		if v.Name == name {
			return v.Value
		}
	}
	return ""
}

// Buildspec is the part of an inline batch buildspec the rehearsal runs.
type Buildspec struct {
	Version  string
	FastFail bool
	Entries  []Entry
	// Phases in CodeBuild's order; a phase without commands is absent.
	Phases []Phase
	// Shell is env.shell ("" means CodeBuild's default, sh).
	Shell string
	// Vars are the buildspec's own env.variables.
	Vars []Var
	// HasBatch: the buildspec has a batch section (a batch build's).
	HasBatch bool
	// RuntimeVersions is phases.install.runtime-versions (golang: "1.26").
	RuntimeVersions map[string]string
	// Artifacts are artifacts.files: the output artifact's files.
	Artifacts []string
}

// Phase is one phase of a buildspec.
type Phase struct {
	Name     string
	Commands []string
}

// Action is one CodeBuild action of a pipeline stage with its project.
type Action struct {
	Stage   string // pipeline stage name (Build, Verify, Publish)
	Name    string // action name (Build, Build-2, ...)
	Project string // logical id of the AWS::CodeBuild::Project
	// ProjectEnv: the project's environment variables, values as raw template
	// JSON (strings or intrinsic functions).
	ProjectEnv []RawVar
	// ActionEnv: the pipeline action's EnvironmentVariables (values may hold
	// pipeline variables such as #{codepipeline.PipelineExecutionId}).
	ActionEnv []Var
	Batch     bool
	Spec      Buildspec
	// Inputs and Outputs are the action's input and output artifacts by
	// name; Primary is the input CodeBuild puts at CODEBUILD_SRC_DIR (the
	// only one, or PrimarySource), every other input is at
	// CODEBUILD_SRC_DIR_<name>.
	Inputs, Outputs []string
	Primary         string
	// TimeoutMinutes is the project's build timeout (0: CodeBuild's 60).
	TimeoutMinutes int
}

// RawVar is a template environment variable whose value may be an intrinsic.
type RawVar struct {
	Name  string
	Value any
}

// Repository is an AWS::ECR::Repository of the template.
type Repository struct {
	Name       string
	Mutability string // MUTABLE, IMMUTABLE, MUTABLE_WITH_EXCLUSION, IMMUTABLE_WITH_EXCLUSION
	Exclusions []string
}

// Pipeline is what the rehearsal reads from one template.
type Pipeline struct {
	Path         string
	Actions      []Action // pipeline order
	Repositories []Repository
	// Buckets are the template's AWS::S3::Bucket resources.
	Buckets []Bucket
	// Topics are the template's AWS::SNS::Topic resources.
	Topics []Topic
	// Alarms are the template's single-metric CloudWatch alarms, dimension
	// values unresolved (see ResolveProjectValue).
	Alarms []RawAlarm
	// StackName is the stack's name: the template file's name without
	// ".template.json" (how cdk synth names it), or "EvergreenImages".
	StackName string
}

// Bucket is an AWS::S3::Bucket of the template.
type Bucket struct {
	LogicalID string
	Name      string // a literal BucketName, or "" (CloudFormation names it)
}

// Topic is an AWS::SNS::Topic of the template.
type Topic struct {
	LogicalID string
	Name      string // a literal TopicName, or "" (CloudFormation names it)
}

// RawAlarm is an alarm as the template states it.
type RawAlarm struct {
	LogicalID  string
	Namespace  string
	MetricName string
	Dimensions []RawVar
	Statistic  string
	Comparison string
	Threshold  float64
}

// Stage returns the actions of a pipeline stage, in order.
func (p *Pipeline) Stage(name string) []Action {
	var out []Action
	for _, a := range p.Actions {
		if a.Stage == name {
			out = append(out, a)
		}
	}
	return out
}

type cfnTemplate struct {
	Resources map[string]struct {
		Type       string          `json:"Type"`
		Properties json.RawMessage `json:"Properties"`
	} `json:"Resources"`
}

// LoadTemplate reads a synthesized template.
func LoadTemplate(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := ParseTemplate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.Path = path
	if n, ok := strings.CutSuffix(filepath.Base(path), ".template.json"); ok && n != "" {
		p.StackName = n
	}
	return p, nil
}

// ParseTemplate reads a CloudFormation template (JSON).
func ParseTemplate(data []byte) (*Pipeline, error) {
	var t cfnTemplate
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(t.Resources))
	for id := range t.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	p := &Pipeline{StackName: "EvergreenImages"}
	var pipelines []string
	for _, id := range ids {
		r := t.Resources[id]
		switch r.Type {
		case "AWS::ECR::Repository":
			var props struct {
				RepositoryName     string
				ImageTagMutability string
				Filters            []struct {
					Type  string `json:"ImageTagMutabilityExclusionFilterType"`
					Value string `json:"ImageTagMutabilityExclusionFilterValue"`
				} `json:"ImageTagMutabilityExclusionFilters"`
			}
			if err := json.Unmarshal(r.Properties, &props); err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
			if props.RepositoryName == "" {
				return nil, fmt.Errorf("%s: the repository has no literal RepositoryName; the rehearsal needs the names the commands use", id)
			}
			repo := Repository{Name: props.RepositoryName, Mutability: props.ImageTagMutability}
			if repo.Mutability == "" {
				repo.Mutability = "MUTABLE"
			}
			for _, f := range props.Filters {
				if f.Type != "WILDCARD" {
					return nil, fmt.Errorf("%s: unknown tag mutability filter type %q", id, f.Type)
				}
				repo.Exclusions = append(repo.Exclusions, f.Value)
			}
			p.Repositories = append(p.Repositories, repo)
		case "AWS::CodePipeline::Pipeline":
			pipelines = append(pipelines, id)
		case "AWS::S3::Bucket":
			var props struct{ BucketName any }
			if len(r.Properties) > 0 {
				if err := json.Unmarshal(r.Properties, &props); err != nil {
					return nil, fmt.Errorf("%s: %w", id, err)
				}
			}
			b := Bucket{LogicalID: id}
			switch n := props.BucketName.(type) {
			case nil:
			case string:
				b.Name = n
			default:
				return nil, fmt.Errorf("%s: BucketName is not a literal; the rehearsal cannot name the bucket", id)
			}
			p.Buckets = append(p.Buckets, b)
		case "AWS::SNS::Topic":
			var props struct{ TopicName any }
			if len(r.Properties) > 0 {
				if err := json.Unmarshal(r.Properties, &props); err != nil {
					return nil, fmt.Errorf("%s: %w", id, err)
				}
			}
			tp := Topic{LogicalID: id}
			switch n := props.TopicName.(type) {
			case nil:
			case string:
				tp.Name = n
			default:
				return nil, fmt.Errorf("%s: TopicName is not a literal; the rehearsal cannot name the topic", id)
			}
			p.Topics = append(p.Topics, tp)
		case "AWS::CloudWatch::Alarm":
			var props struct {
				Namespace, MetricName, Statistic, ComparisonOperator string
				Threshold                                            float64
				Dimensions                                           []struct {
					Name  string
					Value any
				}
			}
			if err := json.Unmarshal(r.Properties, &props); err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
			if props.MetricName == "" {
				continue // a metric-math or composite alarm: not on a metric the commands put
			}
			a := RawAlarm{LogicalID: id, Namespace: props.Namespace, MetricName: props.MetricName,
				Statistic: props.Statistic, Comparison: props.ComparisonOperator, Threshold: props.Threshold}
			for _, d := range props.Dimensions {
				a.Dimensions = append(a.Dimensions, RawVar{d.Name, d.Value})
			}
			p.Alarms = append(p.Alarms, a)
		}
	}
	if len(pipelines) != 1 {
		return nil, fmt.Errorf("want exactly one AWS::CodePipeline::Pipeline, found %d", len(pipelines))
	}
	var pl struct {
		Stages []struct {
			Name    string
			Actions []struct {
				Name            string
				ActionTypeId    struct{ Category, Owner, Provider string }
				Configuration   map[string]any
				InputArtifacts  []struct{ Name string }
				OutputArtifacts []struct{ Name string }
			}
		}
	}
	if err := json.Unmarshal(t.Resources[pipelines[0]].Properties, &pl); err != nil {
		return nil, fmt.Errorf("%s: %w", pipelines[0], err)
	}
	for _, st := range pl.Stages {
		for _, a := range st.Actions {
			if a.ActionTypeId.Provider != "CodeBuild" {
				continue
			}
			act := Action{Stage: st.Name, Name: a.Name}
			ref, ok := a.Configuration["ProjectName"].(map[string]any)
			if !ok || ref["Ref"] == nil {
				return nil, fmt.Errorf("pipeline action %s/%s: ProjectName is not a Ref to a project of this template", st.Name, a.Name)
			}
			act.Project, _ = ref["Ref"].(string)
			for _, in := range a.InputArtifacts {
				act.Inputs = append(act.Inputs, in.Name)
			}
			for _, o := range a.OutputArtifacts {
				act.Outputs = append(act.Outputs, o.Name)
			}
			switch ps, _ := a.Configuration["PrimarySource"].(string); {
			case len(act.Inputs) == 1:
				act.Primary = act.Inputs[0]
			case len(act.Inputs) > 1 && slices.Contains(act.Inputs, ps):
				act.Primary = ps
			case len(act.Inputs) > 1:
				return nil, fmt.Errorf("pipeline action %s/%s has the inputs %v and no PrimarySource among them: CodeBuild refuses it", st.Name, a.Name, act.Inputs)
			}
			if s, ok := a.Configuration["BatchEnabled"].(string); ok {
				act.Batch = s == "true"
			}
			if s, ok := a.Configuration["EnvironmentVariables"].(string); ok {
				var env []struct{ Name, Type, Value string }
				if err := json.Unmarshal([]byte(s), &env); err != nil {
					return nil, fmt.Errorf("pipeline action %s/%s: EnvironmentVariables: %w", st.Name, a.Name, err)
				}
				for _, e := range env {
					if e.Type != "" && e.Type != "PLAINTEXT" {
						return nil, fmt.Errorf("pipeline action %s/%s: variable %s is of type %s; the rehearsal only has PLAINTEXT", st.Name, a.Name, e.Name, e.Type)
					}
					act.ActionEnv = append(act.ActionEnv, Var{e.Name, e.Value})
				}
			}
			proj, ok := t.Resources[act.Project]
			if !ok || proj.Type != "AWS::CodeBuild::Project" {
				return nil, fmt.Errorf("pipeline action %s/%s: %s is not an AWS::CodeBuild::Project", st.Name, a.Name, act.Project)
			}
			var props struct {
				TimeoutInMinutes int
				Source           struct {
					BuildSpec any
					Type      string
				}
				Environment struct {
					EnvironmentVariables []struct {
						Name  string
						Type  string
						Value any
					}
				}
			}
			if err := json.Unmarshal(proj.Properties, &props); err != nil {
				return nil, fmt.Errorf("%s: %w", act.Project, err)
			}
			spec, ok := props.Source.BuildSpec.(string)
			if !ok {
				return nil, fmt.Errorf("%s: Source.BuildSpec is not an inline buildspec string", act.Project)
			}
			for _, e := range props.Environment.EnvironmentVariables {
				if e.Type != "" && e.Type != "PLAINTEXT" {
					return nil, fmt.Errorf("%s: variable %s is of type %s; the rehearsal only has PLAINTEXT", act.Project, e.Name, e.Type)
				}
				act.ProjectEnv = append(act.ProjectEnv, RawVar{e.Name, e.Value})
			}
			bs, err := ParseBuildspec([]byte(spec))
			if err != nil {
				return nil, fmt.Errorf("%s (%s/%s) inline buildspec: %w", act.Project, st.Name, a.Name, err)
			}
			// A batch action runs the buildspec's batch; a plain action
			// (the Report stage) runs the buildspec once. Whatever else
			// CodeBuild does with a mismatch, the rehearsal does not guess.
			if act.Batch && !bs.HasBatch {
				return nil, fmt.Errorf("pipeline action %s/%s starts a batch build, but %s's buildspec has no batch section", st.Name, a.Name, act.Project)
			}
			if !act.Batch && bs.HasBatch {
				return nil, fmt.Errorf("pipeline action %s/%s starts a plain build, but %s's buildspec has a batch section: not rehearsed", st.Name, a.Name, act.Project)
			}
			act.Spec = *bs
			act.TimeoutMinutes = props.TimeoutInMinutes
			p.Actions = append(p.Actions, act)
		}
	}
	if len(p.Actions) == 0 {
		return nil, fmt.Errorf("the pipeline has no CodeBuild action")
	}
	return p, nil
}

// phaseOrder is CodeBuild's phase order for the phases a buildspec declares.
var phaseOrder = []string{"install", "pre_build", "build", "post_build"}

// ParseBuildspec reads a batch buildspec. It refuses keys it does not know
// how to rehearse, so nothing in a buildspec is skipped silently.
func ParseBuildspec(data []byte) (*Buildspec, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the buildspec is not a YAML mapping")
	}
	bs := &Buildspec{}
	top := root.Content[0]
	for i := 0; i < len(top.Content); i += 2 {
		k, v := top.Content[i].Value, top.Content[i+1]
		switch k {
		case "version":
			if v.Tag != "!!float" || v.Value != "0.2" {
				return nil, fmt.Errorf("version is %s %q; the rehearsal runs buildspecs of version 0.2 (the YAML number)", v.Tag, v.Value)
			}
			bs.Version = v.Value
		case "batch":
			bs.HasBatch = true
			if err := parseBatch(v, bs); err != nil {
				return nil, fmt.Errorf("batch: %w", err)
			}
		case "env":
			for j := 0; j < len(v.Content); j += 2 {
				switch ek := v.Content[j].Value; ek {
				case "shell":
					bs.Shell = v.Content[j+1].Value
				case "variables":
					vars, err := parseVars(v.Content[j+1])
					if err != nil {
						return nil, fmt.Errorf("env.variables: %w", err)
					}
					bs.Vars = vars
				default:
					return nil, fmt.Errorf("env.%s is not rehearsed (only shell and variables are)", ek)
				}
			}
		case "phases":
			byName := map[string][]string{}
			for j := 0; j < len(v.Content); j += 2 {
				name, ph := v.Content[j].Value, v.Content[j+1]
				known := false
				for _, n := range phaseOrder {
					known = known || n == name
				}
				if !known {
					return nil, fmt.Errorf("unknown phase %q", name)
				}
				for m := 0; m < len(ph.Content); m += 2 {
					pk := ph.Content[m].Value
					if name == "install" && pk == "runtime-versions" {
						if err := ph.Content[m+1].Decode(&bs.RuntimeVersions); err != nil {
							return nil, fmt.Errorf("phases.install.runtime-versions: %w", err)
						}
						continue
					}
					if pk != "commands" {
						return nil, fmt.Errorf("phases.%s.%s is not rehearsed (only commands are)", name, pk)
					}
					var cmds []string
					if err := ph.Content[m+1].Decode(&cmds); err != nil {
						return nil, fmt.Errorf("phases.%s.commands: %w", name, err)
					}
					byName[name] = cmds
				}
			}
			for _, n := range phaseOrder {
				if c, ok := byName[n]; ok {
					bs.Phases = append(bs.Phases, Phase{n, c})
				}
			}
		case "artifacts":
			if v.Kind == yaml.ScalarNode && v.Value == "" {
				continue
			}
			for j := 0; j < len(v.Content); j += 2 {
				if ak := v.Content[j].Value; ak != "files" {
					return nil, fmt.Errorf("artifacts.%s is not rehearsed (only files is)", ak)
				}
				if err := v.Content[j+1].Decode(&bs.Artifacts); err != nil {
					return nil, fmt.Errorf("artifacts.files: %w", err)
				}
			}
		case "reports", "cache":
			if v.Kind != yaml.ScalarNode || v.Value != "" {
				return nil, fmt.Errorf("%s is not rehearsed", k)
			}
		default:
			return nil, fmt.Errorf("unknown top-level key %q", k)
		}
	}
	if bs.Version == "" {
		return nil, fmt.Errorf("no version")
	}
	return bs, nil
}

func parseBatch(n *yaml.Node, bs *Buildspec) error {
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		switch k {
		case "fast-fail":
			if err := v.Decode(&bs.FastFail); err != nil {
				return err
			}
		case "build-graph":
			for _, e := range v.Content {
				entry, err := parseEntry(e)
				if err != nil {
					return err
				}
				bs.Entries = append(bs.Entries, entry)
			}
		default:
			return fmt.Errorf("batch.%s is not rehearsed (only build-graph is)", k)
		}
	}
	return nil
}

func parseEntry(n *yaml.Node) (Entry, error) {
	var e Entry
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		switch k {
		case "identifier":
			e.ID = v.Value
		case "ignore-failure":
			if err := v.Decode(&e.IgnoreFailure); err != nil {
				return e, err
			}
		case "depend-on":
			if err := v.Decode(&e.DependOn); err != nil {
				return e, fmt.Errorf("entry %s: depend-on: %w", e.ID, err)
			}
		case "env":
			for j := 0; j < len(v.Content); j += 2 {
				ek, ev := v.Content[j].Value, v.Content[j+1]
				switch ek {
				case "type":
					e.Type = ev.Value
				case "image":
					e.Image = ev.Value
				case "compute-type":
					e.ComputeType = ev.Value
				case "privileged-mode":
					if err := ev.Decode(&e.Privileged); err != nil {
						return e, err
					}
				case "variables":
					vars, err := parseVars(ev)
					if err != nil {
						return e, fmt.Errorf("entry %s: %w", e.ID, err)
					}
					e.Vars = vars
				default:
					return e, fmt.Errorf("entry %s: env.%s is not a build-graph env key the rehearsal knows", e.ID, ek)
				}
			}
		default:
			return e, fmt.Errorf("entry %s: %s is not a build-graph key the rehearsal knows", e.ID, k)
		}
	}
	if e.ID == "" {
		return e, fmt.Errorf("a build-graph entry has no identifier")
	}
	return e, nil
}

func parseVars(n *yaml.Node) ([]Var, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("variables is not a mapping")
	}
	var out []Var
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("variable %s is not a scalar", k.Value)
		}
		out = append(out, Var{k.Value, v.Value})
	}
	return out, nil
}

// ResolveProjectValue turns a project variable's template value into its
// deployed value: a literal string as is; Ref and Fn::Sub with refs, which
// maps what a Ref may name (pseudo parameters such as AWS::StackName, and
// the logical ids the rehearsal stands in for, such as the records bucket)
// to the value the rehearsal gives it. Anything else is an error: the
// rehearsal does not guess a value.
func ResolveProjectValue(v any, refs map[string]string) (string, error) {
	pseudo := refs
	switch x := v.(type) {
	case string:
		return x, nil
	case map[string]any:
		if r, ok := x["Ref"].(string); ok && len(x) == 1 {
			val, ok := refs[r]
			if !ok {
				return "", fmt.Errorf("Ref %s names something the rehearsal does not stand in for", r)
			}
			return val, nil
		}
		if s, ok := x["Fn::Sub"].(string); ok {
			out := s
			for k, val := range pseudo {
				out = strings.ReplaceAll(out, "${"+k+"}", val)
			}
			if strings.Contains(out, "${") {
				return "", fmt.Errorf("Fn::Sub %q refers to something the rehearsal cannot resolve", s)
			}
			return out, nil
		}
	}
	b, _ := json.Marshal(v)
	return "", fmt.Errorf("cannot resolve %s", b)
}

// ResolvePipelineValue replaces the pipeline variables (#{namespace.name}) of
// an action's environment value from vars; an unknown variable is an error.
func ResolvePipelineValue(v string, vars map[string]string) (string, error) {
	out := v
	for {
		i := strings.Index(out, "#{")
		if i < 0 {
			return out, nil
		}
		j := strings.Index(out[i:], "}")
		if j < 0 {
			return "", fmt.Errorf("unterminated pipeline variable in %q", v)
		}
		name := out[i+2 : i+j]
		val, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("pipeline variable #{%s} has no rehearsal value", name)
		}
		out = out[:i] + val + out[i+j+1:]
	}
}

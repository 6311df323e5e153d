// Package buildspecs renders the pipeline's buildspecs from the runtime
// list: the three batch buildspecs (build, verify, publish), whose build
// graphs hold one entry per image or runtime-version and whose phases only
// start the evergreen binary, and the plain builds of Report and Tool. The rendered files are committed under
// buildspecs/ and the CDK app inlines exactly the same bytes into the CodeBuild
// projects.
//
// Regenerate after editing runtimes/runtimes.yaml or cdk.json:
//
//	make generate
package buildspecs

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Stage is one of the pipeline's three CodeBuild stages.
type Stage string

const (
	Build   Stage = "build"
	Verify  Stage = "verify"
	Publish Stage = "publish"
)

// Report is the stage after Publish: one plain build (no batch) that
// writes and sends the execution's changelog.
const Report Stage = "report"

// Tool is the stage after Source, before Build: one plain build that
// compiles cmd/evergreen from the deployed commit for both architectures
// into the artifact ToolArtifact, which every later stage starts (see
// commands.go). Its buildspec is ToolSpec.
const Tool Stage = "tool"

// Stages are the batch stages, in pipeline order; Tool comes before them,
// Report after.
var Stages = []Stage{Build, Verify, Publish}

// MaxInlineLen is CodeBuild's limit on an inline buildspec (reported in
// aws/aws-cdk#14974). A stage whose graph does not fit is split into parts,
// each its own project and its own parallel pipeline action.
const MaxInlineLen = 25600

// Spec is one rendered batch buildspec: a stage, or one part of a stage.
type Spec struct {
	Stage Stage
	// Part counts from 1; Parts is how many the stage was split into.
	Part, Parts int
	// Identifiers of the build-graph entries, in order.
	Identifiers []string
	// ComputeTypes the entries use, sorted: the project's batch restriction.
	ComputeTypes []string
	// Privileged is true when the stage runs Docker.
	Privileged bool
	// LongestChain is the most entries that run one after another through
	// depend-on, with a concurrency cap; 0 without one (then how many run at
	// once is up to the account's quota). It sizes the batch timeout.
	LongestChain int
	// Load counts the entries per environment type and compute type.
	Load    []EnvLoad
	Content []byte
}

// EnvLoad is how many entries of one environment type and compute type a
// batch holds, and how many of them start at once. CodeBuild's concurrency
// quotas are per environment type and compute type.
type EnvLoad struct {
	Type, ComputeType string
	Entries, AtOnce   int
}

// Peak is, per environment type and compute type, the most builds of the
// whole pipeline that run at once. Stages run one after another; a stage's
// parts run side by side, or one after another with a concurrency cap
// (stacks.NewPipeline sets their run order).
func Peak(specs []Spec, capped bool) []EnvLoad {
	type key struct{ typ, compute string }
	stage := map[Stage]map[key]int{}
	for _, s := range specs {
		if stage[s.Stage] == nil {
			stage[s.Stage] = map[key]int{}
		}
		for _, l := range s.Load {
			k := key{l.Type, l.ComputeType}
			if capped {
				stage[s.Stage][k] = max(stage[s.Stage][k], l.AtOnce)
			} else {
				stage[s.Stage][k] += l.AtOnce
			}
		}
	}
	peak := map[key]EnvLoad{}
	for _, loads := range stage {
		for k, n := range loads {
			p := peak[k]
			p.Type, p.ComputeType, p.AtOnce = k.typ, k.compute, max(p.AtOnce, n)
			peak[k] = p
		}
	}
	for _, s := range specs {
		for _, l := range s.Load {
			k := key{l.Type, l.ComputeType}
			p := peak[k]
			p.Entries = max(p.Entries, l.Entries)
			peak[k] = p
		}
	}
	out := make([]EnvLoad, 0, len(peak))
	for _, p := range peak {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b EnvLoad) int {
		return strings.Compare(a.Type+"/"+a.ComputeType, b.Type+"/"+b.ComputeType)
	})
	return out
}

func load(entries []entry, limit int) []EnvLoad {
	var out []EnvLoad
	for _, e := range entries {
		i := slices.IndexFunc(out, func(l EnvLoad) bool { return l.Type == e.Env.Type && l.ComputeType == e.Env.ComputeType })
		if i < 0 {
			out = append(out, EnvLoad{Type: e.Env.Type, ComputeType: e.Env.ComputeType})
			i = len(out) - 1
		}
		out[i].Entries++
	}
	for i := range out {
		out[i].AtOnce = out[i].Entries
		if limit > 0 {
			out[i].AtOnce = min(limit, out[i].Entries)
		}
	}
	slices.SortFunc(out, func(a, b EnvLoad) int {
		return strings.Compare(a.Type+"/"+a.ComputeType, b.Type+"/"+b.ComputeType)
	})
	return out
}

// Batch is false for the stages that are one plain build (Tool, Report).
func (s Spec) Batch() bool { return s.Stage != Report && s.Stage != Tool }

// FileName is the committed file: build.yml, or build-2.yml for a second part.
func (s Spec) FileName() string {
	if s.Part == 1 {
		return string(s.Stage) + ".yml"
	}
	return fmt.Sprintf("%s-%d.yml", s.Stage, s.Part)
}

// Name is what the pipeline and CodeBuild call this part, e.g. Build or Build-2.
func (s Spec) Name() string {
	n := strings.ToUpper(string(s.Stage[:1])) + string(s.Stage[1:])
	if s.Part == 1 {
		return n
	}
	return fmt.Sprintf("%s-%d", n, s.Part)
}

// Images are the CodeBuild curated images, taken from aws-cdk-go so that an
// upgrade of the CDK is the one place where they change.
type Images struct {
	ARM64, AMD64 string
}

// DefaultImages: Amazon Linux 2023 standard images (Amazon Linux 2 reached end
// of life on 2026-06-30). Both ship Docker with buildx, the AWS CLI v2 and jq.
//
// They are aws-cdk-go's constants (awscodebuild.LinuxArmBuildImage_
// AMAZON_LINUX_2023_STANDARD_4_0 and LinuxBuildImage_AMAZON_LINUX_2023_6),
// spelled out so that generating buildspecs and the workflow needs no CDK
// (jsii starts a Node.js process); images_test.go fails when an upgrade of
// aws-cdk-go changes them.
func DefaultImages() Images {
	return Images{
		ARM64: "aws/codebuild/amazonlinux-aarch64-standard:4.0",
		AMD64: "aws/codebuild/amazonlinux-x86_64-standard:6.0",
	}
}

// Options are the inputs of Generate besides the list.
type Options struct {
	Images Images
	// RepositoryPrefix starts every repository name (evergreen:repositoryPrefix).
	RepositoryPrefix string
	// MaxConcurrentBuilds caps the entries of one environment type and
	// compute type that run at once (evergreen:maxConcurrentBuilds); 0 is
	// no cap.
	MaxConcurrentBuilds int
}

// OptionsFrom takes the options from the app's configuration.
func OptionsFrom(c config.Config) Options {
	return Options{Images: DefaultImages(), RepositoryPrefix: c.RepositoryPrefix, MaxConcurrentBuilds: c.MaxConcurrentBuilds}
}

// Generate renders every stage of the list: the batch stages in pipeline
// order, then Report, then Tool. Tool runs first in the pipeline but comes
// last here, so that the batch stages keep their positions for callers that
// index them. It is a pure function of the list and the options: the same
// input gives the same bytes.
func Generate(l *runtimes.List, o Options) ([]Spec, error) {
	var out []Spec
	for _, st := range Stages {
		entries := graph(l, st, o)
		specs, err := split(l, st, entries, o.MaxConcurrentBuilds)
		if err != nil {
			return nil, err
		}
		out = append(out, specs...)
	}
	return append(out,
		Spec{Stage: Report, Part: 1, Parts: 1, Content: renderReport(l)},
		ToolSpec(l)), nil
}

// ToolSpec is the Tool stage's buildspec: a plain build on the amd64
// image (DefaultImages().AMD64) that compiles both binaries (toolBuild in
// commands.go) and outputs them as its artifact, ToolFiles.
//
// CodeBuild's golang runtime is asked for as the string "1.26": YAML reads
// an unquoted 1.20 as the number 1.2.
func ToolSpec(l *runtimes.List) Spec {
	_, cmds := Commands(Tool)
	doc := toolBuildspec{
		Version: 0.2,
		Phases: toolPhases{
			Install: installPhase{RuntimeVersions: runtimeVersions{Golang: ToolGo}},
			Build:   phase{cmds},
		},
		Artifacts: artifacts{Files: ToolFiles},
	}
	return Spec{Stage: Tool, Part: 1, Parts: 1, Content: encode(l, Tool, 1, 1, doc)}
}

type toolBuildspec struct {
	Version   float64    `yaml:"version"`
	Phases    toolPhases `yaml:"phases"`
	Artifacts artifacts  `yaml:"artifacts"`
}

type toolPhases struct {
	Install installPhase `yaml:"install"`
	Build   phase        `yaml:"build"`
}

type installPhase struct {
	RuntimeVersions runtimeVersions `yaml:"runtime-versions"`
}

type runtimeVersions struct {
	Golang string `yaml:"golang"`
}

type artifacts struct {
	Files []string `yaml:"files"`
}

// renderReport renders the Report stage's buildspec: no batch, and the
// runtime-versions whose outcomes it reports as RELEASES, from the list.
func renderReport(l *runtimes.List) []byte {
	_, cmds := Commands(Report)
	doc := reportBuildspec{
		Version: 0.2,
		Env:     reportEnv{Variables: variables{{"RELEASES", Releases(l)}}},
		Phases:  phases{Build: phase{cmds}},
	}
	return encode(l, Report, 1, 1, doc)
}

// Releases is the Report's RELEASES: every runtime-version of the list, as
// <runtime>/<version>, the key of its Publish record.
func Releases(l *runtimes.List) string {
	var out []string
	for _, r := range l.Releases() {
		out = append(out, r.Runtime.Name+"/"+r.Version)
	}
	return strings.Join(out, " ")
}

type reportBuildspec struct {
	Version float64   `yaml:"version"`
	Env     reportEnv `yaml:"env"`
	Phases  phases    `yaml:"phases"`
}

type reportEnv struct {
	Variables variables `yaml:"variables"`
}

func graph(l *runtimes.List, st Stage, o Options) []entry {
	img := o.Images
	var out []entry
	if st == Publish {
		for _, r := range l.Releases() {
			arches := make([]string, len(r.Runtime.Architectures))
			for i, a := range r.Runtime.Architectures {
				arches[i] = string(a)
			}
			out = append(out, entry{
				Identifier: r.Identifier(),
				Env: entryEnv{
					Type:        "LINUX_CONTAINER",
					Image:       img.AMD64,
					ComputeType: runtimes.DefaultComputeType,
					Variables: variables{
						{"RUNTIME", r.Runtime.Name},
						{"REPOSITORY", o.RepositoryPrefix + r.Runtime.Name},
						{"VERSION", r.Version},
						{"ARCHITECTURES", strings.Join(arches, " ")},
					},
				},
			})
		}
		return out
	}
	for _, im := range l.Images() {
		e := entry{
			Identifier: im.Identifier(),
			Env: entryEnv{
				Type:           "LINUX_CONTAINER",
				Image:          img.AMD64,
				ComputeType:    im.Runtime.ComputeType,
				PrivilegedMode: true,
				Variables: variables{
					{"RUNTIME", im.Runtime.Name},
					{"REPOSITORY", o.RepositoryPrefix + im.Runtime.Name},
					{"VERSION", im.Version},
					{"ARCH", string(im.Arch)},
				},
			},
		}
		if im.Arch == runtimes.ARM64 {
			e.Env.Type, e.Env.Image = "ARM_CONTAINER", img.ARM64
		}
		if st == Build {
			e.Env.Variables = append(e.Env.Variables,
				variable{"BASE_IMAGE", im.Runtime.BaseImage},
				variable{"BASE_REGISTRY", im.Runtime.BaseRegistry})
		}
		out = append(out, e)
	}
	return out
}

// chain makes at most limit entries of each environment type and compute
// type run at once: CodeBuild's concurrency quotas are per environment type
// and compute size, and past five times the quota it refuses StartBuild and
// the batch fails. The k-th entry of a kind depends on the (k-limit)-th, so
// the entries of a kind form limit chains that run side by side. It returns
// the longest chain. With limit 0 nothing waits, and it returns 0.
//
// Whether CodeBuild starts a build whose dependency failed is not
// documented; either way the failed entry fails the batch, and a retry
// runs the chain again.
func chain(entries []entry, limit int) int {
	for i := range entries {
		entries[i].DependOn = nil
	}
	if limit <= 0 {
		return 0
	}
	longest := 1
	byKind := map[string][]int{}
	depth := make([]int, len(entries))
	for i, e := range entries {
		kind := e.Env.Type + "/" + e.Env.ComputeType
		prev := byKind[kind]
		depth[i] = 1
		if k := len(prev); k >= limit {
			dep := prev[k-limit]
			entries[i].DependOn = []string{entries[dep].Identifier}
			depth[i] = depth[dep] + 1
		}
		longest = max(longest, depth[i])
		byKind[kind] = append(prev, i)
	}
	return longest
}

// split renders the stage in as few parts as fit MaxInlineLen, keeping entries
// in list order. With a concurrency limit, each part is chained on its own
// (the pipeline then runs a stage's parts one after another).
func split(l *runtimes.List, st Stage, entries []entry, limit int) ([]Spec, error) {
	var parts [][]entry
	var cur []entry
	for _, e := range entries {
		next := append(slices.Clone(cur), e)
		chain(next, limit)
		// Measured with the longest part header ("part 99 of 99"), which a
		// split buildspec carries.
		if len(render(l, st, 99, 99, next)) <= MaxInlineLen {
			cur = next
			continue
		}
		if len(cur) == 0 {
			return nil, fmt.Errorf("%s: the %s entry %s alone renders a buildspec over CodeBuild's %d-character limit for inline buildspecs; shorten the runtime's name or version", l.Path, st, e.Identifier, MaxInlineLen)
		}
		parts = append(parts, cur)
		cur = []entry{e}
	}
	parts = append(parts, cur)

	specs := make([]Spec, len(parts))
	for i, p := range parts {
		s := Spec{Stage: st, Part: i + 1, Parts: len(parts), Privileged: st != Publish, LongestChain: chain(p, limit), Load: load(p, limit)}
		for _, e := range p {
			s.Identifiers = append(s.Identifiers, e.Identifier)
			if !slices.Contains(s.ComputeTypes, e.Env.ComputeType) {
				s.ComputeTypes = append(s.ComputeTypes, e.Env.ComputeType)
			}
		}
		slices.Sort(s.ComputeTypes)
		s.Content = render(l, st, i+1, len(parts), p)
		if len(s.Content) > MaxInlineLen || len(parts) > 99 {
			return nil, fmt.Errorf("%s: the %s stage needs %d parts of at most %d characters (CodeBuild's limit for an inline buildspec); list fewer versions", l.Path, st, len(parts), MaxInlineLen)
		}
		specs[i] = s
	}
	return specs, nil
}

func render(l *runtimes.List, st Stage, part, parts int, entries []entry) []byte {
	doc := buildspec{
		Version: 0.2, // a number: batch builds fail on the string "0.2"
		Batch:   batch{FastFail: false, BuildGraph: entries},
	}
	_, cmds := Commands(st)
	doc.Phases = phases{Build: phase{cmds}}

	return encode(l, st, part, parts, doc)
}

func encode(l *runtimes.List, st Stage, part, parts int, doc any) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Code generated by make generate from %s; DO NOT EDIT.\n", filepath.ToSlash(l.Path))
	if parts > 1 {
		fmt.Fprintf(&b, "# %s stage, part %d of %d.\n", st, part, parts)
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		// Only plain structs and strings are encoded: an error is a bug here.
		panic(fmt.Sprintf("encoding the %s buildspec: %v", st, err))
	}
	if err := enc.Close(); err != nil {
		panic(fmt.Sprintf("encoding the %s buildspec: %v", st, err))
	}
	return b.Bytes()
}

// The buildspec document. Struct field order is the output order: version,
// batch, phases, as AWS's reference writes them.
type buildspec struct {
	Version float64 `yaml:"version"`
	Batch   batch   `yaml:"batch"`
	Phases  phases  `yaml:"phases"`
}

type batch struct {
	// fast-fail false lets every entry finish, so one failed runtime does not
	// hide the state of the others in the console.
	FastFail   bool    `yaml:"fast-fail"`
	BuildGraph []entry `yaml:"build-graph"`
}

type entry struct {
	Identifier    string   `yaml:"identifier"`
	Env           entryEnv `yaml:"env"`
	DependOn      []string `yaml:"depend-on,omitempty"`
	IgnoreFailure bool     `yaml:"ignore-failure"`
}

type entryEnv struct {
	Type           string    `yaml:"type"`
	Image          string    `yaml:"image"`
	ComputeType    string    `yaml:"compute-type"`
	PrivilegedMode bool      `yaml:"privileged-mode,omitempty"`
	Variables      variables `yaml:"variables"`
}

type variable struct{ Name, Value string }

// variables keeps its order in the output (a Go map would be sorted).
type variables []variable

func (vs variables) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, v := range vs {
		n.Content = append(n.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: v.Name},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.Value})
	}
	return n, nil
}

type phases struct {
	Build phase `yaml:"build"`
}

type phase struct {
	Commands []string `yaml:"commands"`
}

// Package buildspecs renders the three batch buildspecs (build, verify,
// publish) from the runtime list. The rendered files are committed under
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

	"github.com/evergreen-images/evergreen/runtimes"
)

// Stage is one of the pipeline's three CodeBuild stages.
type Stage string

const (
	Build   Stage = "build"
	Verify  Stage = "verify"
	Publish Stage = "publish"
)

// Stages in pipeline order.
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
	Content    []byte
}

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

// Generate renders every stage of the list, in pipeline order. It is a pure
// function of the list and the images: the same input gives the same bytes.
func Generate(l *runtimes.List, img Images) ([]Spec, error) {
	var out []Spec
	for _, st := range Stages {
		entries := graph(l, st, img)
		specs, err := split(l, st, entries)
		if err != nil {
			return nil, err
		}
		out = append(out, specs...)
	}
	return out, nil
}

func graph(l *runtimes.List, st Stage, img Images) []entry {
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

// split renders the stage in as few parts as fit MaxInlineLen, keeping entries
// in list order.
func split(l *runtimes.List, st Stage, entries []entry) ([]Spec, error) {
	var parts [][]entry
	var cur []entry
	for _, e := range entries {
		next := append(slices.Clone(cur), e)
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
		s := Spec{Stage: st, Part: i + 1, Parts: len(parts), Privileged: st != Publish}
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
	pre, cmds := Commands(st)
	doc.Phases = phases{Build: phase{cmds}}
	if len(pre) > 0 {
		doc.Phases.PreBuild = &phase{pre}
	}

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
	PreBuild *phase `yaml:"pre_build,omitempty"`
	Build    phase  `yaml:"build"`
}

type phase struct {
	Commands []string `yaml:"commands"`
}

package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// PredicateSLSAProvenance is SLSA provenance v1's predicate type.
const PredicateSLSAProvenance = "https://slsa.dev/provenance/v1"

// Annotations of the provenance's resolved dependencies: which is the
// source and which the base image, for `evergreen verify` to cross-check
// with the SBOM. The recipe hash and a non-git revision (an S3 object's
// version) travel as annotations too: the in-toto digest set holds only
// hex digests of known algorithms or custom ones, and neither is a digest
// of the dependency's bytes.
const (
	AnnotationRole     = "evergreen:role"
	AnnotationRevision = "evergreen:revision"
	AnnotationRecipe   = "evergreen:recipe"
	RoleSource         = "source"
	RoleBase           = "base"
)

var gitCommitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Provenance is the image's SLSA provenance v1: an in-toto Statement v1
// whose subject is the image digest, made with the in-toto attestation Go
// types.
func Provenance(img Image, b Build) ([]byte, error) {
	if err := img.check(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	if b.BuilderID == "" || b.BuildType == "" {
		return nil, fmt.Errorf("provenance of %s@%s: the builder id %q and build type %q must both be set (the CodeBuild project's ARN or the workflow's URL, and BuildTypeCodeBuild or BuildTypeGitHubActions)", img.Repository, img.Digest, b.BuilderID, b.BuildType)
	}
	external, err := structpb.NewStruct(map[string]any{
		"runtime":      img.Runtime,
		"version":      img.Version,
		"architecture": img.Arch,
		"dockerfile":   b.Dockerfile,
		"repository":   b.SourceRepository,
	})
	if err != nil {
		return nil, err
	}
	def := &slsa.BuildDefinition{BuildType: b.BuildType, ExternalParameters: external}
	if b.ExecutionID != "" {
		if def.InternalParameters, err = structpb.NewStruct(map[string]any{"executionId": b.ExecutionID}); err != nil {
			return nil, err
		}
	}
	source := &intoto.ResourceDescriptor{Uri: b.SourceRepository}
	sourceNotes := map[string]any{AnnotationRole: RoleSource, AnnotationRecipe: img.Inventory.Recipe}
	if gitCommitPattern.MatchString(b.SourceRevision) {
		source.Digest = map[string]string{string(intoto.AlgorithmGitCommit): b.SourceRevision}
	} else {
		sourceNotes[AnnotationRevision] = b.SourceRevision
	}
	if source.Annotations, err = structpb.NewStruct(sourceNotes); err != nil {
		return nil, err
	}
	if source.Uri == "" {
		source.Name = RoleSource
	}
	def.ResolvedDependencies = append(def.ResolvedDependencies, source)
	if base := img.Inventory.Base; base.Name != "" {
		d := &intoto.ResourceDescriptor{Name: base.Name}
		if base.Digest != "" {
			if d.Uri, err = ociPurl(base.Name, base.Digest, img.Arch); err != nil {
				return nil, err
			}
			d.Digest = map[string]string{string(intoto.AlgorithmSHA256): strings.TrimPrefix(base.Digest, "sha256:")}
		}
		if d.Annotations, err = structpb.NewStruct(map[string]any{AnnotationRole: RoleBase}); err != nil {
			return nil, err
		}
		def.ResolvedDependencies = append(def.ResolvedDependencies, d)
	}
	run := &slsa.RunDetails{Builder: &slsa.Builder{Id: b.BuilderID}, Metadata: &slsa.BuildMetadata{InvocationId: b.BuildID}}
	if !b.StartedOn.IsZero() {
		run.Metadata.StartedOn = timestamppb.New(b.StartedOn.UTC().Truncate(time.Second))
	}
	if !b.FinishedOn.IsZero() {
		run.Metadata.FinishedOn = timestamppb.New(b.FinishedOn.UTC().Truncate(time.Second))
	}
	pred := &slsa.Provenance{BuildDefinition: def, RunDetails: run}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("provenance of %s@%s: %w", img.Repository, img.Digest, err)
	}
	predStruct, err := toStruct(pred)
	if err != nil {
		return nil, err
	}
	st := &intoto.Statement{
		Type:          intoto.StatementTypeUri,
		Subject:       []*intoto.ResourceDescriptor{{Name: img.Repository, Digest: map[string]string{string(intoto.AlgorithmSHA256): strings.TrimPrefix(img.Digest, "sha256:")}}},
		PredicateType: PredicateSLSAProvenance,
		Predicate:     predStruct,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("provenance of %s@%s: %w", img.Repository, img.Digest, err)
	}
	return stableJSON(st)
}

// toStruct is a message as the JSON object a Statement's predicate holds.
func toStruct(m proto.Message) (*structpb.Struct, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	return s, protojson.Unmarshal(b, s)
}

// stableJSON is protojson's output with stable whitespace: protojson
// varies its spacing on purpose so that no one depends on its bytes, and
// the samples are compared byte for byte. Map entries protojson already
// writes sorted by key.
func stableJSON(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return nil, err
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// readProvenance reads a Statement with the in-toto types and checks it
// and its SLSA predicate with their own Validate.
func readProvenance(doc []byte) (Summary, error) {
	st := &intoto.Statement{}
	if err := protojson.Unmarshal(doc, st); err != nil {
		return Summary{}, fmt.Errorf("the provenance is not an in-toto Statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return Summary{}, fmt.Errorf("the provenance Statement: %w", err)
	}
	if st.GetPredicateType() != PredicateSLSAProvenance {
		return Summary{}, fmt.Errorf("the provenance's predicate type is %q, not %s", st.GetPredicateType(), PredicateSLSAProvenance)
	}
	if len(st.GetSubject()) != 1 {
		return Summary{}, fmt.Errorf("the provenance has %d subjects; an image's has one, the image", len(st.GetSubject()))
	}
	s := Summary{Kind: KindProvenance, Subject: "sha256:" + st.GetSubject()[0].GetDigest()[string(intoto.AlgorithmSHA256)]}
	if err := checkDigest("the provenance's subject", s.Subject); err != nil {
		return Summary{}, err
	}
	b, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return Summary{}, err
	}
	pred := &slsa.Provenance{}
	if err := protojson.Unmarshal(b, pred); err != nil {
		return Summary{}, fmt.Errorf("the provenance's predicate is not SLSA provenance v1: %w", err)
	}
	if err := pred.Validate(); err != nil {
		return Summary{}, fmt.Errorf("the provenance's predicate: %w", err)
	}
	s.Builder = pred.GetRunDetails().GetBuilder().GetId()
	for _, d := range pred.GetBuildDefinition().GetResolvedDependencies() {
		notes := d.GetAnnotations().GetFields()
		switch notes[AnnotationRole].GetStringValue() {
		case RoleSource:
			s.SourceRevision = d.GetDigest()[string(intoto.AlgorithmGitCommit)]
			if s.SourceRevision == "" {
				s.SourceRevision = notes[AnnotationRevision].GetStringValue()
			}
		case RoleBase:
			s.BaseName = d.GetName()
			if h := d.GetDigest()[string(intoto.AlgorithmSHA256)]; h != "" {
				s.BaseDigest = "sha256:" + h
			}
		}
	}
	return s, nil
}

package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// SampleInput is what the committed samples are made from
// (testdata/evidence/input.json): one image, its build, and the verdict
// of the runtime-version it was published in.
type SampleInput struct {
	Image   Image   `json:"image"`
	Build   Build   `json:"build"`
	Verdict Verdict `json:"verdict"`
}

// SampleFile is one sample document.
type SampleFile struct {
	Name    string
	Content []byte
}

// Sample file names, in the order Samples returns them.
const (
	SampleSBOM       = "sbom.cdx.json"
	SampleProvenance = "provenance.intoto.json"
	SampleVerdict    = "verdict.json"
)

// Samples makes the three documents from a sample input with the same
// functions Publish calls.
func Samples(input []byte) ([]SampleFile, error) {
	var in SampleInput
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("reading the evidence sample input: %w; it holds image, build and verdict as the evidence package's types", err)
	}
	sbom, err := SBOM(in.Image, in.Build)
	if err != nil {
		return nil, err
	}
	prov, err := Provenance(in.Image, in.Build)
	if err != nil {
		return nil, err
	}
	verdict, err := VerdictDocument(in.Verdict)
	if err != nil {
		return nil, err
	}
	return []SampleFile{{SampleSBOM, sbom}, {SampleProvenance, prov}, {SampleVerdict, verdict}}, nil
}

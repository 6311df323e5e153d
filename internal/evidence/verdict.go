package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/records"
)

// Verdict is the publish verdict of one runtime-version: what Publish
// compared and what it decided, attached to the index it published. Its
// JSON is the document (VerdictDocument adds the type).
type Verdict struct {
	// Repository is <registry host>/<repository>; Index the image index's
	// digest, the document's subject.
	Repository string `json:"repository"`
	Index      string `json:"index"`
	DatedTag   string `json:"datedTag,omitempty"`
	Runtime    string `json:"runtime"`
	Version    string `json:"version"`
	// Result is Publish's outcome (records.ResultPublished, ...).
	Result         string `json:"result"`
	ExecutionID    string `json:"executionId"`
	SourceRevision string `json:"sourceRevision"`
	CheckedAt      string `json:"checkedAt"`
	Gate           Gate   `json:"gate"`
	// PreviousIndex is the index the tags named before; empty on a first
	// publish.
	PreviousIndex string `json:"previousIndex,omitempty"`
	// Images are the per-architecture images, sorted by architecture.
	Images []VerdictImage `json:"images"`
}

// Gate is the vulnerability gate as Publish applied it.
type Gate struct {
	// Setting is config.VulnerabilityGate.Env(): never-worse, off, or
	// maximum counts ("CRITICAL=0 HIGH=5").
	Setting string `json:"setting"`
	// Result is GatePassed, GateBlocked or GateOff.
	Result string `json:"result"`
	// BlockedBy is the gate's reasons, one per architecture and severity.
	BlockedBy []string `json:"blockedBy"`
}

// Gate results.
const (
	GatePassed  = "passed"
	GateBlocked = "blocked"
	GateOff     = "off"
)

// VerdictImage is one architecture: the image published (or, for a
// blocked outcome, the one that was not) and the one it replaces, what
// changed between their inventories and their scans.
type VerdictImage struct {
	Arch string `json:"arch"`
	// Digest is the new image; Previous the one it replaces (empty on a
	// first publish).
	Digest          string                   `json:"digest"`
	Previous        string                   `json:"previous,omitempty"`
	Changes         *records.Changes         `json:"changes"`
	Vulnerabilities *records.Vulnerabilities `json:"vulnerabilities"`
}

// VerdictFrom is the verdict of a Publish record, under the gate Publish
// ran with, for the source revision the execution built.
func VerdictFrom(p *records.Publish, gate config.VulnerabilityGate, sourceRevision string) Verdict {
	v := Verdict{Repository: p.Registry + "/" + p.Repository, Index: p.Index, DatedTag: p.DatedTag, Runtime: p.Runtime, Version: p.Version,
		Result: p.Result, ExecutionID: p.ExecutionID, SourceRevision: sourceRevision, CheckedAt: p.CheckedAt,
		Gate: Gate{Setting: gate.Env(), Result: GatePassed, BlockedBy: slices.Clone(p.BlockedBy)}}
	if v.Gate.BlockedBy == nil {
		v.Gate.BlockedBy = []string{}
	}
	switch {
	case gate.Mode == "off":
		v.Gate.Result = GateOff
	case p.Result == records.ResultBlocked:
		v.Gate.Result = GateBlocked
	}
	current, previous := p.Images, map[string]string{}
	if p.Previous != nil {
		v.PreviousIndex, previous = p.Previous.Index, p.Previous.Images
	}
	if p.Result == records.ResultBlocked {
		// Blocked: the tags still name what they named; the verdict is
		// about the verified images that were not published.
		current, previous = p.BlockedImages, p.Images
		v.PreviousIndex = ""
	}
	for _, arch := range slices.Sorted(maps.Keys(current)) {
		v.Images = append(v.Images, VerdictImage{Arch: arch, Digest: current[arch], Previous: previous[arch],
			Changes: p.Changes[arch], Vulnerabilities: p.Vulnerabilities[arch]})
	}
	return v
}

// verdictDocument is the verdict as published: its type first, so that a
// reader that has only the bytes knows what it holds.
type verdictDocument struct {
	Type string `json:"type"`
	Verdict
}

// VerdictDocument is the verdict as the JSON document attached to the
// index (ArtifactVerdict).
func VerdictDocument(v Verdict) ([]byte, error) {
	if err := checkDigest("verdict of "+v.Repository+" "+v.Version+": index", v.Index); err != nil {
		return nil, err
	}
	if v.Runtime == "" || v.Version == "" || v.Result == "" {
		return nil, fmt.Errorf("verdict of %s@%s: runtime %q, version %q and result %q must all be set", v.Repository, v.Index, v.Runtime, v.Version, v.Result)
	}
	v.Images = slices.Clone(v.Images)
	slices.SortFunc(v.Images, func(a, b VerdictImage) int { return strings.Compare(a.Arch, b.Arch) })
	for i, im := range v.Images {
		if i > 0 && v.Images[i-1].Arch == im.Arch {
			return nil, fmt.Errorf("verdict of %s@%s lists %s twice", v.Repository, v.Index, im.Arch)
		}
		if err := checkDigest("verdict of "+v.Repository+"@"+v.Index+": "+im.Arch+" image", im.Digest); err != nil {
			return nil, err
		}
	}
	if v.Gate.BlockedBy == nil {
		v.Gate.BlockedBy = []string{}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	// Maps (scan counts by severity) encoding/json writes sorted by key.
	if err := enc.Encode(verdictDocument{Type: ArtifactVerdict, Verdict: v}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func readVerdict(doc []byte) (Summary, error) {
	var d verdictDocument
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Summary{}, fmt.Errorf("the publish verdict is not this code's verdict JSON: %w", err)
	}
	if d.Type != ArtifactVerdict {
		return Summary{}, fmt.Errorf("the publish verdict's type is %q, not %s", d.Type, ArtifactVerdict)
	}
	if err := checkDigest("the publish verdict's index", d.Index); err != nil {
		return Summary{}, err
	}
	s := Summary{Kind: KindVerdict, Subject: d.Index, SourceRevision: d.SourceRevision, Result: d.Result,
		Gate: d.Gate.Setting + ": " + d.Gate.Result, Images: map[string]string{}, Fixed: []string{}, Introduced: []string{}}
	for _, im := range d.Images {
		s.Images[im.Arch] = im.Digest
		if im.Vulnerabilities == nil {
			continue
		}
		for _, c := range im.Vulnerabilities.Fixed {
			s.Fixed = append(s.Fixed, c.ID)
		}
		for _, c := range im.Vulnerabilities.Introduced {
			s.Introduced = append(s.Introduced, c.ID)
		}
	}
	slices.Sort(s.Fixed)
	slices.Sort(s.Introduced)
	s.Fixed, s.Introduced = slices.Compact(s.Fixed), slices.Compact(s.Introduced)
	return s, nil
}

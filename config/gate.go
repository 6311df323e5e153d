package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/evergreen-images/evergreen/internal/records"
)

// ParseGateEnv reads the gate as the stages receive it (VULNERABILITY_GATE):
// the inverse of VulnerabilityGate.Env.
func ParseGateEnv(s string) (VulnerabilityGate, error) {
	const fix = `VULNERABILITY_GATE is never-worse, off, or maximum counts such as "CRITICAL=0 HIGH=5" (the stack sets it from evergreen:vulnerabilityGate: redeploy it)`
	switch s {
	case "never-worse", "off":
		return VulnerabilityGate{Mode: s}, nil
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return VulnerabilityGate{}, fmt.Errorf("VULNERABILITY_GATE is empty: %s", fix)
	}
	g := VulnerabilityGate{Mode: "max", Max: map[string]int{}}
	for _, f := range fields {
		sev, n, ok := strings.Cut(f, "=")
		if !ok || !slices.Contains(Severities, sev) {
			return VulnerabilityGate{}, fmt.Errorf("VULNERABILITY_GATE %q: %q is not SEVERITY=N with an ECR severity (%s): %s", s, f, strings.Join(Severities, ", "), fix)
		}
		count, err := strconv.Atoi(n)
		if err != nil || count < 0 {
			return VulnerabilityGate{}, fmt.Errorf("VULNERABILITY_GATE %q: the maximum for %s, %q, is not a whole number of findings: %s", s, sev, n, fix)
		}
		if _, dup := g.Max[sev]; dup {
			return VulnerabilityGate{}, fmt.Errorf("VULNERABILITY_GATE %q names %s twice: %s", s, sev, fix)
		}
		g.Max[sev] = count
	}
	return g, nil
}

// GateImages is what the gate judges for one architecture: ECR's scan of
// the new image and of the published one it would replace (nil: nothing
// is published, or it was never scanned), and both images' inventories
// (nil: unknown, such as an image published before inventories were kept).
type GateImages struct {
	Scan, PublishedScan           *records.Scan
	Inventory, PublishedInventory *records.Inventory
}

// neverWorseSeverities are what never-worse compares.
var neverWorseSeverities = []string{"CRITICAL", "HIGH"}

// Judge judges one architecture's new image and returns why it is
// blocked, one human-readable reason per severity ("amd64: HIGH 1 -> 3;
// new: CVE-..."), or nothing.
//
// The gate judges the build, not the scanner's calendar. The published
// image was scanned earlier, against an older vulnerability database: a
// CVE disclosed since then in a package both images carry shows up in the
// new scan only. So when both inventories are known, never-worse leaves
// out of each side's count the findings in packages both images carry at
// the same version, and compares what differs: a finding counts against
// the new image only when the published image does not carry that package
// at that version. The maxima of max mode are absolute, and count every
// finding of the new scan.
func (g VulnerabilityGate) Judge(arch string, im GateImages) []string {
	switch g.Mode {
	case "off":
		return nil
	case "never-worse", "max":
	default:
		return []string{fmt.Sprintf("%s: the vulnerability gate %q is not one this code knows (never-worse, off, max)", arch, g.Mode)}
	}
	if !im.Scan.Complete() {
		status := "none"
		if im.Scan != nil && im.Scan.Status != "" {
			status = im.Scan.Status
		}
		return []string{fmt.Sprintf("%s: no complete scan of the new image to judge (status %s): retry the Verify stage once ECR's scan is complete", arch, status)}
	}
	if g.Mode == "max" {
		var reasons []string
		for _, sev := range Severities {
			limit, ok := g.Max[sev]
			if !ok {
				continue
			}
			if n := im.Scan.Counts[sev]; n > limit {
				reasons = append(reasons, fmt.Sprintf("%s: %s %d, more than %d: %s", arch, sev, n, limit, strings.Join(ids(im.Scan.Findings, sev, nil), ", ")))
			}
		}
		return reasons
	}
	old := im.PublishedScan
	if !old.Complete() {
		// Nothing published (or never scanned): nothing to be worse than.
		return nil
	}
	both := im.Inventory != nil && im.PublishedInventory != nil
	var reasons []string
	for _, sev := range neverWorseSeverities {
		newN, oldN := im.Scan.Counts[sev], old.Counts[sev]
		var newShared, oldShared int
		if both {
			newShared = carried(im.Scan.Findings, sev, im.PublishedInventory)
			oldShared = carried(old.Findings, sev, im.Inventory)
		}
		newN, oldN = max(newN-newShared, 0), max(oldN-oldShared, 0)
		if newN <= oldN {
			continue
		}
		r := fmt.Sprintf("%s: %s %d -> %d; new: %s", arch, sev, oldN, newN, strings.Join(ids(im.Scan.Findings, sev, func(f records.Finding) bool {
			return !hasFinding(old.Findings, f) && !(both && carries(im.PublishedInventory, f))
		}), ", "))
		if newShared+oldShared > 0 {
			r += fmt.Sprintf(" (not counted: %d findings in packages both images carry)", newShared+oldShared)
		}
		reasons = append(reasons, r)
	}
	return reasons
}

// carries tells whether inv lists the finding's package at the finding's
// version, under any kind (OS package, runtime, npm, pip). A finding
// without a version is never carried: it cannot be told apart.
func carries(inv *records.Inventory, f records.Finding) bool {
	if inv == nil || f.Package == "" || f.Version == "" {
		return false
	}
	for _, k := range records.Kinds {
		if v, ok := inv.Items(k)[f.Package]; ok && v == f.Version {
			return true
		}
	}
	return false
}

// carried counts the findings of sev in packages inv carries.
func carried(fs []records.Finding, sev string, inv *records.Inventory) int {
	n := 0
	for _, f := range fs {
		if f.Severity == sev && carries(inv, f) {
			n++
		}
	}
	return n
}

func hasFinding(fs []records.Finding, f records.Finding) bool {
	return slices.ContainsFunc(fs, func(o records.Finding) bool { return o.Key() == f.Key() })
}

// ids lists the distinct finding ids of sev that keep (nil: all) keeps, sorted.
func ids(fs []records.Finding, sev string, keep func(records.Finding) bool) []string {
	var out []string
	for _, f := range fs {
		if f.Severity == sev && (keep == nil || keep(f)) && !slices.Contains(out, f.ID) {
			out = append(out, f.ID)
		}
	}
	slices.Sort(out)
	return out
}

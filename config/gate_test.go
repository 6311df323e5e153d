package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/internal/records"
)

// What cdk.json says reaches Publish unchanged: VULNERABILITY_GATE parses
// back to the gate it was written from.
func TestGateEnvRoundTrips(t *testing.T) {
	for _, g := range []VulnerabilityGate{
		{Mode: "never-worse"},
		{Mode: "off"},
		{Mode: "max", Max: map[string]int{"CRITICAL": 0, "HIGH": 5}},
		{Mode: "max", Max: map[string]int{"LOW": 100}},
		{Mode: "max", Max: func() map[string]int {
			m := map[string]int{}
			for i, s := range Severities {
				m[s] = i
			}
			return m
		}()},
	} {
		back, err := ParseGateEnv(g.Env())
		if err != nil || !reflect.DeepEqual(back, g) {
			t.Errorf("ParseGateEnv(%q) = %+v, %v; want %+v", g.Env(), back, err, g)
		}
	}
}

// The gate's context value and its environment form agree: the gate the
// stack reads from cdk.json is the gate Publish evaluates.
func TestGateFromContextIsTheGatePublishReads(t *testing.T) {
	for _, v := range []any{"never-worse", "off", map[string]any{"CRITICAL": 0, "HIGH": 5}, `{"MEDIUM": 3}`} {
		c, err := FromContext(map[string]any{KeyVulnerabilityGate: v})
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		back, err := ParseGateEnv(c.VulnerabilityGate.Env())
		if err != nil || !reflect.DeepEqual(back, c.VulnerabilityGate) {
			t.Errorf("%v: Env %q parses to %+v, %v; want %+v", v, c.VulnerabilityGate.Env(), back, err, c.VulnerabilityGate)
		}
	}
}

func TestGateEnvRefusesWhatItCannotRead(t *testing.T) {
	for _, s := range []string{"", "  ", "never_worse", "HIGH", "HIGH=x", "HIGH=-1", "SEVERE=1", "HIGH=1 HIGH=2", "high=1"} {
		if g, err := ParseGateEnv(s); err == nil {
			t.Errorf("ParseGateEnv(%q) = %+v, want an error", s, g)
		} else if !strings.Contains(err.Error(), "VULNERABILITY_GATE") {
			t.Errorf("ParseGateEnv(%q): %v does not name the variable", s, err)
		}
	}
}

func finding(id, sev, pkg, version string) records.Finding {
	return records.Finding{ID: id, Severity: sev, Package: pkg, Version: version}
}

func scanOf(fs ...records.Finding) *records.Scan {
	s := &records.Scan{Status: "COMPLETE", Counts: map[string]int{}, Findings: fs}
	for _, f := range fs {
		s.Counts[f.Severity]++
	}
	return s
}

func inventory(os map[string]string) *records.Inventory {
	return &records.Inventory{OS: os, Runtime: map[string]string{}, Npm: map[string]string{}, Pip: map[string]string{}}
}

// never-worse blocks a new image with more CRITICAL or HIGH findings than
// the published one, and says which CVEs are new.
func TestNeverWorseBlocksMoreCriticalOrHigh(t *testing.T) {
	g := VulnerabilityGate{Mode: "never-worse"}
	old := scanOf(finding("CVE-1", "HIGH", "a", "1"))
	for _, sev := range neverWorseSeverities {
		newScan := scanOf(finding("CVE-1", "HIGH", "a", "1"), finding("CVE-2", sev, "b", "1"), finding("CVE-3", sev, "c", "1"))
		got := g.Judge("amd64", GateImages{Scan: newScan, PublishedScan: old})
		oldN := old.Counts[sev]
		want := fmt.Sprintf("amd64: %s %d -> %d; new: CVE-2, CVE-3", sev, oldN, newScan.Counts[sev])
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, want [%q]", sev, got, want)
		}
	}
	// MEDIUM and LOW findings, or as many HIGH ones, do not block.
	same := scanOf(finding("CVE-9", "HIGH", "z", "1"), finding("CVE-4", "MEDIUM", "b", "1"), finding("CVE-5", "LOW", "b", "1"))
	if got := g.Judge("arm64", GateImages{Scan: same, PublishedScan: old}); len(got) != 0 {
		t.Errorf("no worse in CRITICAL or HIGH, blocked: %q", got)
	}
}

// A CVE disclosed overnight in a package both images carry at the same
// version shows in the new scan only (the published one is older): it
// cannot block. The same CVE in a package the new image upgraded to does.
func TestNeverWorseJudgesTheBuildNotTheScannersCalendar(t *testing.T) {
	g := VulnerabilityGate{Mode: "never-worse"}
	published := inventory(map[string]string{"openssl": "3.0.1", "zlib": "1.2"})
	old := scanOf()
	overnight := finding("CVE-2026-0001", "CRITICAL", "openssl", "3.0.1")
	if got := g.Judge("amd64", GateImages{Scan: scanOf(overnight), PublishedScan: old,
		Inventory: inventory(map[string]string{"openssl": "3.0.1", "zlib": "1.3"}), PublishedInventory: published}); len(got) != 0 {
		t.Errorf("a CVE in a package both images carry blocked: %q", got)
	}
	upgraded := finding("CVE-2026-0002", "CRITICAL", "openssl", "3.0.2")
	got := g.Judge("amd64", GateImages{Scan: scanOf(upgraded), PublishedScan: old,
		Inventory: inventory(map[string]string{"openssl": "3.0.2", "zlib": "1.2"}), PublishedInventory: published})
	if len(got) != 1 || !strings.HasPrefix(got[0], "amd64: CRITICAL 0 -> 1; new: CVE-2026-0002") {
		t.Errorf("a CVE in a package the build changed: %q", got)
	}
	// Without the published image's inventory, every finding counts.
	got = g.Judge("amd64", GateImages{Scan: scanOf(overnight), PublishedScan: old, Inventory: published})
	if len(got) != 1 || !strings.HasPrefix(got[0], "amd64: CRITICAL 0 -> 1; new: CVE-2026-0001") {
		t.Errorf("without the published inventory: %q", got)
	}
}

// Nothing published, or a published image never scanned: nothing to be
// worse than. A new image without a complete scan is never judged clean.
func TestNeverWorseNeedsScansToCompare(t *testing.T) {
	g := VulnerabilityGate{Mode: "never-worse"}
	bad := scanOf(finding("CVE-1", "CRITICAL", "a", "1"))
	if got := g.Judge("amd64", GateImages{Scan: bad}); len(got) != 0 {
		t.Errorf("first publish blocked: %q", got)
	}
	if got := g.Judge("amd64", GateImages{Scan: bad, PublishedScan: &records.Scan{Status: "FAILED"}}); len(got) != 0 {
		t.Errorf("published image without a scan blocked: %q", got)
	}
	for _, s := range []*records.Scan{nil, {Status: records.ScanTimeout}} {
		if got := g.Judge("arm64", GateImages{Scan: s, PublishedScan: scanOf()}); len(got) != 1 || !strings.Contains(got[0], "retry the Verify stage") {
			t.Errorf("scan %+v: %q", s, got)
		}
	}
	if got := (VulnerabilityGate{Mode: "off"}).Judge("arm64", GateImages{}); len(got) != 0 {
		t.Errorf("off blocked: %q", got)
	}
}

// Max mode compares the new scan's counts with the maxima it names, and
// only those.
func TestMaxGateBlocksPastItsMaxima(t *testing.T) {
	g := VulnerabilityGate{Mode: "max", Max: map[string]int{"CRITICAL": 0, "HIGH": 1}}
	s := scanOf(finding("CVE-1", "HIGH", "a", "1"), finding("CVE-2", "HIGH", "b", "1"), finding("CVE-3", "LOW", "b", "1"))
	got := g.Judge("arm64", GateImages{Scan: s, PublishedScan: s})
	want := []string{"arm64: HIGH 2, more than 1: CVE-1, CVE-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
	if got := g.Judge("arm64", GateImages{Scan: scanOf(finding("CVE-1", "HIGH", "a", "1"), finding("CVE-3", "MEDIUM", "b", "1"))}); len(got) != 0 {
		t.Errorf("within the maxima, blocked: %q", got)
	}
}

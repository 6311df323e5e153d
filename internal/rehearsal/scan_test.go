package rehearsal

import (
	"encoding/json"
	"strings"
	"testing"
)

// The scan stand-in answers what a scenario declared, as ECR's basic
// scanning shapes it; an undeclared image has a clean, complete scan.
func TestScanStandIn(t *testing.T) {
	f := newFixture(t)
	clean := f.push("node", "22-amd64")
	worse := f.push("node", "draft-22-amd64-x")
	if err := f.ecr.Cfg.DeclareScan("node", worse, Scan{Status: "COMPLETE", Findings: []Finding{
		{"CVE-2026-0001", "CRITICAL", "libssl3t64", "3.5.1-1"}, {"CVE-2026-0002", "HIGH", "zlib1g", "1:1.3"}, {"CVE-2026-0003", "HIGH", "zlib1g", "1:1.3"},
	}}); err != nil {
		t.Fatal(err)
	}
	out, st, msg := f.aws("ecr", "describe-image-scan-findings", "--repository-name", "node", "--image-id", "imageDigest="+worse, "--output", "json")
	if st != 0 {
		t.Fatalf("exit %d: %s", st, msg)
	}
	var got struct {
		ImageID struct{ ImageDigest string } `json:"imageId"`
		Status  struct{ Status string }      `json:"imageScanStatus"`
		F       struct {
			Counts   map[string]int `json:"findingSeverityCounts"`
			Findings []struct {
				Name, Severity string
				Attributes     []struct{ Key, Value string }
			}
		} `json:"imageScanFindings"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.ImageID.ImageDigest != worse || got.Status.Status != "COMPLETE" || got.F.Counts["CRITICAL"] != 1 || got.F.Counts["HIGH"] != 2 || len(got.F.Findings) != 3 ||
		got.F.Findings[0].Name != "CVE-2026-0001" || got.F.Findings[0].Attributes[1].Value != "libssl3t64" {
		t.Errorf("declared scan: %s", out)
	}
	// By tag, undeclared: complete, no findings.
	out, st, _ = f.aws("ecr", "describe-image-scan-findings", "--repository-name", "node", "--image-id", "imageTag=22-amd64",
		"--query", "[imageId.imageDigest, imageScanStatus.status, length(imageScanFindings.findings || `[]`)]", "--output", "text")
	if st != 0 || strings.Fields(out)[0] != clean || strings.Fields(out)[1] != "COMPLETE" {
		t.Errorf("undeclared scan: %q", out)
	}
	// A scan that never ends.
	if err := f.ecr.Cfg.DeclareScan("node", clean, Scan{Status: "IN_PROGRESS"}); err != nil {
		t.Fatal(err)
	}
	out, _, _ = f.aws("ecr", "describe-image-scan-findings", "--repository-name", "node", "--image-id", "imageDigest="+clean, "--query", "imageScanStatus.status", "--output", "text")
	if strings.TrimSpace(out) != "IN_PROGRESS" {
		t.Errorf("in progress: %q", out)
	}
	// Missing image, unknown option.
	if _, st, msg := f.aws("ecr", "describe-image-scan-findings", "--repository-name", "node", "--image-id", "imageTag=24-amd64"); st != 254 || !strings.Contains(msg, "ImageNotFoundException") {
		t.Errorf("missing image: exit %d %s", st, msg)
	}
	if _, st, _ := f.aws("ecr", "start-image-scan", "--repository-name", "node", "--image-id", "imageDigest="+clean, "--force"); st != 252 {
		t.Errorf("unknown option: exit %d", st)
	}
	if _, st, msg := f.aws("ecr", "start-image-scan", "--repository-name", "node", "--image-id", "imageDigest="+clean); st != 0 {
		t.Fatalf("start-image-scan: %d %s", st, msg)
	}
	starts, err := f.ecr.Cfg.ScanStarts()
	if err != nil || len(starts) != 1 || starts[0].Digest != clean {
		t.Errorf("scan starts %v %v", starts, err)
	}
}

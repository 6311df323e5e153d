package rehearsal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ECR's image scanning, as the scenarios declare it. ECR scans every pushed
// image (scan on push) with its own database; the rehearsal has no scanner,
// so the scan result of each image is what a scenario says it is, per
// repository and digest, in StateDir/scans.json. An image no scenario
// declared has a complete scan without findings (a clean image). Not
// emulated: the scanner itself, the 24-hour limit on start-image-scan
// (every call succeeds and is logged), paging of findings, enhanced
// (Inspector) findings.

// Finding is one finding of a declared scan.
type Finding struct {
	ID, Severity, Package, Version string
}

// Scan is a declared scan result. Status IN_PROGRESS stays in progress (a
// scan that never ends).
type Scan struct {
	Status   string    `json:"status"`
	Findings []Finding `json:"findings"`
}

func (c *StandInConfig) scansPath() string { return filepath.Join(c.StateDir, "scans.json") }

// DeclareScan sets the scan result of repo@digest.
func (c *StandInConfig) DeclareScan(repo, digest string, s Scan) error {
	unlock, err := c.lockFile("scans")
	if err != nil {
		return err
	}
	defer unlock()
	scans, err := c.scans()
	if err != nil {
		return err
	}
	scans[repo+"@"+digest] = s
	b, err := json.MarshalIndent(scans, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.scansPath(), b, 0o644)
}

func (c *StandInConfig) scans() (map[string]Scan, error) {
	out := map[string]Scan{}
	b, err := os.ReadFile(c.scansPath())
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	return out, json.Unmarshal(b, &out)
}

// ScanStarts are the start-image-scan calls, in order.
type ScanStart struct {
	Repository, Digest string
	At                 time.Time
}

func (c *StandInConfig) ScanStarts() ([]ScanStart, error) {
	return readJSONLines[ScanStart](c, "scan-starts.jsonl")
}

// resolveImageID reads `--image-id imageDigest=...|imageTag=...` and
// returns the digest it names in the repository, or ImageNotFoundException.
func (e *ECR) resolveImageID(op string, ca cliArgs) (repoName, digest string, err error) {
	repoName, err = ca.one("repository-name", true)
	if err != nil {
		return "", "", err
	}
	repo, _, err := e.repoRef(op, repoName)
	if err != nil {
		return "", "", err
	}
	raw, err := ca.one("image-id", true)
	if err != nil {
		return "", "", err
	}
	var dg, tag string
	for _, kv := range strings.Split(raw, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "imageDigest":
			dg = v
		case "imageTag":
			tag = v
		default:
			return "", "", usageError("Parameter validation failed:\nUnknown parameter in imageId: %q, must be one of: imageDigest, imageTag", k)
		}
	}
	ref := dg
	if ref == "" {
		ref = tag
	}
	m, err := e.get(repo, ref)
	if err != nil {
		return "", "", err
	}
	if m == nil {
		return "", "", serviceError(op, "ImageNotFoundException",
			"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
			nullIfEmpty(dg), nullIfEmpty(tag), repoName, e.Cfg.Account)
	}
	return repoName, m.Digest, nil
}

// describeImageScanFindings answers as ECR does for basic scanning: the
// status, and when complete the findings (name, severity, package_name and
// package_version attributes) with their counts per severity.
func (e *ECR) describeImageScanFindings(ca cliArgs) (any, error) {
	const op = "DescribeImageScanFindings"
	repo, digest, err := e.resolveImageID(op, ca)
	if err != nil {
		return nil, err
	}
	scans, err := e.Cfg.scans()
	if err != nil {
		return nil, err
	}
	s, ok := scans[repo+"@"+digest]
	if !ok {
		s = Scan{Status: "COMPLETE"}
	}
	out := map[string]any{
		"registryId": e.Cfg.Account, "repositoryName": repo,
		"imageId":         map[string]string{"imageDigest": digest},
		"imageScanStatus": map[string]string{"status": s.Status, "description": map[bool]string{true: "The scan was completed successfully.", false: "The scan is in progress."}[s.Status == "COMPLETE"]},
	}
	if s.Status != "COMPLETE" {
		return out, nil
	}
	counts := map[string]int{}
	var findings []map[string]any
	for _, f := range s.Findings {
		counts[f.Severity]++
		findings = append(findings, map[string]any{
			"name": f.ID, "severity": f.Severity, "uri": "https://security-tracker.debian.org/tracker/" + f.ID,
			"attributes": []map[string]string{{"key": "package_version", "value": f.Version}, {"key": "package_name", "value": f.Package}},
		})
	}
	sort.Slice(findings, func(i, j int) bool { return fmt.Sprint(findings[i]["name"]) < fmt.Sprint(findings[j]["name"]) })
	out["imageScanFindings"] = map[string]any{
		// The AWS CLI v2 prints timestamps in ISO 8601, local time.
		"imageScanCompletedAt":         time.Now().Local().Format("2006-01-02T15:04:05.000000-07:00"),
		"vulnerabilitySourceUpdatedAt": time.Now().Local().Format("2006-01-02T15:04:05.000000-07:00"),
		"findingSeverityCounts":        counts,
		"findings":                     findings,
	}
	return out, nil
}

// startImageScan logs the call and answers IN_PROGRESS; the declared result
// stands (the rehearsal's scans do not change by being started again).
func (e *ECR) startImageScan(ca cliArgs) (any, error) {
	const op = "StartImageScan"
	repo, digest, err := e.resolveImageID(op, ca)
	if err != nil {
		return nil, err
	}
	if err := e.Cfg.appendJSONLine("scan-starts.jsonl", ScanStart{repo, digest, time.Now()}); err != nil {
		return nil, err
	}
	return map[string]any{"registryId": e.Cfg.Account, "repositoryName": repo,
		"imageId": map[string]string{"imageDigest": digest}, "imageScanStatus": map[string]string{"status": "IN_PROGRESS"}}, nil
}

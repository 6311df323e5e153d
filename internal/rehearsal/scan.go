package rehearsal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

// ScanStarts are the StartImageScan calls, in order.
type ScanStart struct {
	Repository, Digest string
	At                 time.Time
}

func (c *StandInConfig) ScanStarts() ([]ScanStart, error) {
	return readJSONLines[ScanStart](c, "scan-starts.jsonl")
}

// resolveImageID returns the digest an imageId names in the repository,
// or ImageNotFoundException.
func (e *ECR) resolveImageID(in ecrRequest) (digest string, err error) {
	repo, _, err := e.repoRef(in.RepositoryName)
	if err != nil {
		return "", err
	}
	if in.ImageID == nil || in.ImageID.ImageDigest == "" && in.ImageID.ImageTag == "" {
		return "", apiError("InvalidParameterException", "Invalid parameter at 'imageId': an imageDigest or an imageTag is required")
	}
	ref := in.ImageID.ImageDigest
	if ref == "" {
		ref = in.ImageID.ImageTag
	}
	m, err := e.get(repo, ref)
	if err != nil {
		return "", err
	}
	if m == nil {
		return "", apiError("ImageNotFoundException",
			"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
			nullIfEmpty(in.ImageID.ImageDigest), nullIfEmpty(in.ImageID.ImageTag), in.RepositoryName, e.Cfg.Account)
	}
	return m.Digest, nil
}

// describeImageScanFindings answers as ECR does for basic scanning: the
// status, and when complete the findings (name, severity, package_name and
// package_version attributes) with their counts per severity.
func (e *ECR) describeImageScanFindings(in ecrRequest) (any, error) {
	digest, err := e.resolveImageID(in)
	if err != nil {
		return nil, err
	}
	scans, err := e.Cfg.scans()
	if err != nil {
		return nil, err
	}
	s, ok := scans[in.RepositoryName+"@"+digest]
	if !ok {
		s = Scan{Status: "COMPLETE"}
	}
	out := map[string]any{
		"registryId": e.Cfg.Account, "repositoryName": in.RepositoryName,
		"imageId":         map[string]string{"imageDigest": digest},
		"imageScanStatus": map[string]string{"status": s.Status, "description": map[bool]string{true: "The scan was completed successfully.", false: "The scan is in progress."}[s.Status == "COMPLETE"]},
	}
	if s.Status != "COMPLETE" {
		return out, nil
	}
	counts := map[string]int{}
	findings := []map[string]any{}
	for _, f := range s.Findings {
		counts[f.Severity]++
		findings = append(findings, map[string]any{
			"name": f.ID, "severity": f.Severity, "uri": "https://security-tracker.debian.org/tracker/" + f.ID,
			"attributes": []map[string]string{{"key": "package_version", "value": f.Version}, {"key": "package_name", "value": f.Package}},
		})
	}
	sort.Slice(findings, func(i, j int) bool { return fmt.Sprint(findings[i]["name"]) < fmt.Sprint(findings[j]["name"]) })
	now := epoch(e.Now())
	out["imageScanFindings"] = map[string]any{
		"imageScanCompletedAt":         now,
		"vulnerabilitySourceUpdatedAt": now,
		"findingSeverityCounts":        counts,
		"findings":                     findings,
	}
	return out, nil
}

// startImageScan logs the call and refuses it as basic scanning does
// within 24 hours of the image's push (its scan on push); an image
// without a recorded push (none in the rehearsal) starts IN_PROGRESS. The
// declared result stands either way.
func (e *ECR) startImageScan(in ecrRequest) (any, error) {
	digest, err := e.resolveImageID(in)
	if err != nil {
		return nil, err
	}
	now := e.Now()
	if err := e.Cfg.appendJSONLine("scan-starts.jsonl", ScanStart{in.RepositoryName, digest, now}); err != nil {
		return nil, err
	}
	if at, ok, err := e.Cfg.PushedAt(in.RepositoryName, digest); err != nil {
		return nil, err
	} else if ok && now.Sub(at) < 24*time.Hour {
		return nil, apiError("LimitExceededException", "The scan quota per image has been exceeded. Wait and try again.")
	}
	return map[string]any{"registryId": e.Cfg.Account, "repositoryName": in.RepositoryName,
		"imageId": map[string]string{"imageDigest": digest}, "imageScanStatus": map[string]string{"status": "IN_PROGRESS"}}, nil
}

// Signing is a declared signing status of an image (ECR managed signing).
type Signing struct {
	Status        string `json:"status"` // IN_PROGRESS, COMPLETE, FAILED
	FailureCode   string `json:"failureCode,omitempty"`
	FailureReason string `json:"failureReason,omitempty"`
}

func (c *StandInConfig) signingPath() string { return filepath.Join(c.StateDir, "signing.json") }

// DeclareSigning sets the signing status of repo@digest. Without one, an
// image has no signing status: the registry has no signing rule.
func (c *StandInConfig) DeclareSigning(repo, digest string, s Signing) error {
	unlock, err := c.lockFile("signing")
	if err != nil {
		return err
	}
	defer unlock()
	all := map[string]Signing{}
	if b, err := os.ReadFile(c.signingPath()); err == nil {
		if err := json.Unmarshal(b, &all); err != nil {
			return err
		}
	}
	all[repo+"@"+digest] = s
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.signingPath(), b, 0o644)
}

func (e *ECR) describeImageSigningStatus(in ecrRequest) (any, error) {
	digest, err := e.resolveImageID(in)
	if err != nil {
		return nil, err
	}
	all := map[string]Signing{}
	if b, err := os.ReadFile(e.Cfg.signingPath()); err == nil {
		if err := json.Unmarshal(b, &all); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	statuses := []map[string]string{}
	if s, ok := all[in.RepositoryName+"@"+digest]; ok {
		st := map[string]string{"status": s.Status, "signingProfileArn": "arn:aws:signer:" + e.Cfg.Region + ":" + e.Cfg.Account + ":/signing-profiles/rehearsal"}
		if s.FailureCode != "" {
			st["failureCode"], st["failureReason"] = s.FailureCode, s.FailureReason
		}
		statuses = append(statuses, st)
	}
	return map[string]any{"registryId": e.Cfg.Account, "repositoryName": in.RepositoryName,
		"imageId": map[string]string{"imageDigest": digest}, "signingStatuses": statuses}, nil
}

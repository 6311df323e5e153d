package stage

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// rescanAge is how old the published image's basic scan may be before
// Verify asks for a new one: a basic scan uses the vulnerability database
// of its day, so a CVE published since would make today's draft look worse
// than the published image although both carry it. 20 hours keeps a daily
// schedule inside ECR's allowance of one StartImageScan per image per 24
// hours (LimitExceededException past it).
const rescanAge = 20 * time.Hour

// defaultScanPoll is the shell's SCAN_POLL_SECONDS default.
const defaultScanPoll = 15 * time.Second

// Scan statuses ECR answers while a scan has not ended.
const (
	scanInProgress = string(ecrtypes.ScanStatusInProgress)
	scanPending    = string(ecrtypes.ScanStatusPending)
)

// scanner reads one entry's scans and signature. Every wait of the entry
// shares one deadline (SCAN_WAIT_SECONDS, evergreen:scanWaitMinutes), so
// that Verify's build timeout holds whatever the scans and the signature do.
type scanner struct {
	e        Env
	c        Clients
	out      io.Writer
	deadline time.Time
}

func newScanner(e Env, c Clients, out io.Writer) *scanner {
	return &scanner{e: e, c: c, out: out, deadline: c.now().Add(e.ScanWait)}
}

// wait sleeps one poll, or until the deadline when that is sooner.
func (s *scanner) wait(ctx context.Context) error {
	d := s.e.ScanPoll
	if d <= 0 {
		d = defaultScanPoll
	}
	if left := s.deadline.Sub(s.c.now()); left < d {
		d = max(left, time.Millisecond)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *scanner) expired() bool { return !s.c.now().Before(s.deadline) }

// draftScan is ECR's scan of the draft, waited for until it ends or the
// deadline passes (status TIMEOUT). With the gate on, a scan that did not
// end COMPLETE or ACTIVE ends the entry: the gate could not judge it.
//
// Under basic scanning, a draft with no scan at all is one that scan on
// push skipped: a registry scanning configuration whose rules do not match
// the repository turns scan on push off for it, and its scan never appears
// (ScanNotFoundException). Verify then starts the scan itself rather than
// wait for one that will not come; under enhanced scanning Inspector
// decides when it scans, and StartImageScan is refused anyway.
func (s *scanner) draftScan(ctx context.Context, digest, image string) (*records.Scan, error) {
	scan, err := s.scanOf(ctx, digest, image, !s.e.Enhanced)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(s.out, "scan of %s: %s: %s\n", image, scan.Status, countsText(scan.Counts))
	if scan.Complete() {
		return scan, nil
	}
	if s.e.Gate == "off" {
		fmt.Fprintf(s.out, "the vulnerability gate is off: the scan's outcome %s is recorded and %s passes without it\n", scan.Status, image)
		return scan, nil
	}
	if scan.Status == records.ScanTimeout {
		return nil, fmt.Errorf("scan-timeout: ECR's scan of %s did not end within %d s (evergreen:scanWaitMinutes); the vulnerability gate cannot judge it: retry the stage once the scan is complete", image, int(s.e.ScanWait/time.Second))
	}
	return nil, fmt.Errorf("scan-failed: ECR's scan of %s ended %s %s; the vulnerability gate cannot judge it: retry the stage once ECR can scan the image", image, scan.Status, scan.Description)
}

// publishedScan is ECR's scan of the published image the draft would
// replace (<version>-<arch>), for the gate and the changelog, as fresh as
// the draft's: an old basic scan is started again. ECR may refuse that
// (one basic scan per image per 24 hours, LimitExceededException); the
// refusal is said in the log with the age of the scan the gate will
// compare with, and that scan is recorded as it is. Under enhanced
// scanning Inspector rescans continuously and refuses StartImageScan, so
// it is not called. No published image, or one never scanned, is nil.
func (s *scanner) publishedScan(ctx context.Context) (*records.Scan, error) {
	tag := runtimes.ArchTag(s.e.Version, runtimes.Arch(s.e.Arch))
	name := s.e.Repository + ":" + tag
	first, err := s.c.ECR.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{
		RepositoryName: aws.String(s.e.Repository), ImageId: &ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)}})
	if awsops.IsCode(err, "ImageNotFoundException", "ScanNotFoundException") {
		fmt.Fprintf(s.out, "%s has no scan to compare with (not published yet, or never scanned)\n", name)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ECR's scan of the published image %s: %s: retry the Verify stage", name, awsops.Short(err))
	}
	digest := ""
	if first.ImageId != nil {
		digest = aws.ToString(first.ImageId.ImageDigest)
	}
	if digest == "" {
		return nil, fmt.Errorf("ECR's scan of the published image %s names no digest: retry the Verify stage", name)
	}
	var completed *time.Time
	if first.ImageScanFindings != nil {
		completed = first.ImageScanFindings.ImageScanCompletedAt
	}
	if !s.e.Enhanced && (completed == nil || s.c.now().Sub(*completed) > rescanAge) {
		from := "it has no completed scan"
		if completed != nil {
			from = fmt.Sprintf("its scan is from %s, over %d h ago", records.Time(*completed), int(rescanAge/time.Hour))
		}
		_, err := s.c.ECR.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String(s.e.Repository), ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest)}})
		switch {
		case err == nil:
			fmt.Fprintf(s.out, "the published image %s (%s): %s: scanning it again with today's vulnerability database\n", name, digest, from)
		case awsops.IsCode(err, "LimitExceededException"):
			fmt.Fprintf(s.out, "ECR refused to scan the published image %s (%s) again (LimitExceededException: one basic scan per image per 24 hours): %s, and the gate compares the draft with that scan; enhanced scanning (evergreen:enhancedScanning) rescans continuously\n", name, digest, from)
		default:
			return nil, fmt.Errorf("starting a new scan of the published image %s (%s): %s: retry the Verify stage (the build role needs ecr:StartImageScan)", name, digest, awsops.Short(err))
		}
	}
	scan, err := s.scanOf(ctx, digest, name, false)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(s.out, "scan of the published image %s (%s): %s: %s\n", name, digest, scan.Status, countsText(scan.Counts))
	return scan, nil
}

// scanOf reads ECR's scan of one image, waiting while it is PENDING or
// IN_PROGRESS (or not there yet) until the deadline, then every page of its
// findings. startIfMissing starts a scan the first time ECR has none.
func (s *scanner) scanOf(ctx context.Context, digest, name string, startIfMissing bool) (*records.Scan, error) {
	id := &ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest)}
	started := false
	var first *ecr.DescribeImageScanFindingsOutput
	status := scanPending
	for {
		status = scanPending
		out, err := s.c.ECR.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String(s.e.Repository), ImageId: id})
		switch {
		case err == nil:
			first = out
			if out.ImageScanStatus != nil && out.ImageScanStatus.Status != "" {
				status = string(out.ImageScanStatus.Status)
			}
		case awsops.IsCode(err, "ScanNotFoundException"):
			// The scan of a just-pushed image may not exist yet.
			first = nil
			if startIfMissing && !started {
				started = true
				if err := s.startMissing(ctx, id, name); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("reading ECR's scan of %s: %s: retry the Verify stage", name, awsops.Short(err))
		}
		if status != scanInProgress && status != scanPending {
			break
		}
		if s.expired() {
			status = records.ScanTimeout
			break
		}
		if err := s.wait(ctx); err != nil {
			return nil, err
		}
	}
	scan := &records.Scan{Status: status, Counts: map[string]int{}, Findings: []records.Finding{}}
	if first == nil {
		return scan, nil
	}
	if first.ImageScanStatus != nil {
		scan.Description = aws.ToString(first.ImageScanStatus.Description)
	}
	if first.ImageId != nil {
		scan.Digest = aws.ToString(first.ImageId.ImageDigest)
	}
	if f := first.ImageScanFindings; f != nil {
		if f.ImageScanCompletedAt != nil {
			scan.CompletedAt = records.Time(*f.ImageScanCompletedAt)
		}
		for k, v := range f.FindingSeverityCounts {
			scan.Counts[k] = int(v)
		}
	}
	// DescribeImageScanFindings is paginated; findingSeverityCounts come
	// with the first page only.
	pages := []*ecr.DescribeImageScanFindingsOutput{first}
	for token := first.NextToken; aws.ToString(token) != ""; {
		page, err := s.c.ECR.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String(s.e.Repository), ImageId: id, NextToken: token})
		if err != nil {
			return nil, fmt.Errorf("reading the findings of ECR's scan of %s (a page after the first): %s: retry the Verify stage", name, awsops.Short(err))
		}
		pages = append(pages, page)
		token = page.NextToken
	}
	scan.Findings = parseFindings(pages)
	return scan, nil
}

// startMissing starts the scan that scan on push did not run.
func (s *scanner) startMissing(ctx context.Context, id *ecrtypes.ImageIdentifier, name string) error {
	_, err := s.c.ECR.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String(s.e.Repository), ImageId: id})
	switch {
	case err == nil:
		fmt.Fprintf(s.out, "ECR has no scan of %s: scan on push did not run for %s. Started a scan now; to have images scanned on push, check the registry's scanning configuration (aws ecr get-registry-scanning-configuration: a rule with scan frequency SCAN_ON_PUSH must match the repository; `evergreen preflight` warns when none does)\n", name, s.e.Repository)
	case awsops.IsCode(err, "LimitExceededException"):
		// A scan ran or runs already (the allowance counts scan on push):
		// its result is on its way.
		fmt.Fprintf(s.out, "ECR has no scan of %s yet, and refused to start one (LimitExceededException: one is running): waiting for it\n", name)
	default:
		return fmt.Errorf("ECR has no scan of %s (scan on push did not run: check the registry's scanning configuration; `evergreen preflight` warns), and starting one failed: %s: retry the Verify stage (the build role needs ecr:StartImageScan)", name, awsops.Short(err))
	}
	return nil
}

// parseFindings turns the pages' basic and enhanced findings into one list,
// unique by CVE and package and sorted by them (jq's unique_by, as the
// shell wrote it). Basic findings carry no fix information (Fix nil);
// enhanced (Inspector) findings say fixAvailable YES, NO or PARTIAL.
func parseFindings(pages []*ecr.DescribeImageScanFindingsOutput) []records.Finding {
	var all []records.Finding
	for _, p := range pages {
		if p == nil || p.ImageScanFindings == nil {
			continue
		}
		for _, f := range p.ImageScanFindings.Findings {
			rf := records.Finding{ID: aws.ToString(f.Name), Severity: string(f.Severity)}
			for _, a := range f.Attributes {
				switch aws.ToString(a.Key) {
				case "package_name":
					if rf.Package == "" {
						rf.Package = aws.ToString(a.Value)
					}
				case "package_version":
					if rf.Version == "" {
						rf.Version = aws.ToString(a.Value)
					}
				}
			}
			all = append(all, rf)
		}
	}
	for _, p := range pages {
		if p == nil || p.ImageScanFindings == nil {
			continue
		}
		for _, f := range p.ImageScanFindings.EnhancedFindings {
			rf := records.Finding{ID: aws.ToString(f.Title), Severity: aws.ToString(f.Severity), Fix: f.FixAvailable}
			if d := f.PackageVulnerabilityDetails; d != nil {
				if d.VulnerabilityId != nil {
					rf.ID = *d.VulnerabilityId
				}
				if len(d.VulnerablePackages) > 0 {
					rf.Package = aws.ToString(d.VulnerablePackages[0].Name)
					rf.Version = aws.ToString(d.VulnerablePackages[0].Version)
				}
			}
			all = append(all, rf)
		}
	}
	slices.SortStableFunc(all, func(a, b records.Finding) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Package, b.Package))
	})
	out := []records.Finding{}
	for i, f := range all {
		if i > 0 && f.ID == all[i-1].ID && f.Package == all[i-1].Package {
			continue
		}
		out = append(out, f)
	}
	return out
}

// signing waits, within the entry's deadline, for ECR managed signing to
// sign the draft with every profile that applies.
func (s *scanner) signing(ctx context.Context, digest, image string) (*records.Signing, error) {
	for {
		out, err := s.c.ECR.DescribeImageSigningStatus(ctx, &ecr.DescribeImageSigningStatusInput{RepositoryName: aws.String(s.e.Repository), ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest)}})
		if err != nil {
			return nil, fmt.Errorf("reading the signing status of %s: %s: retry the Verify stage (the build role needs ecr:DescribeImageSigningStatus)", image, awsops.Short(err))
		}
		var failed, profiles []string
		complete := len(out.SigningStatuses) > 0
		for _, st := range out.SigningStatuses {
			profiles = append(profiles, aws.ToString(st.SigningProfileArn))
			switch st.Status {
			case ecrtypes.SigningStatusFailed:
				failed = append(failed, fmt.Sprintf("%s: %s %s", aws.ToString(st.SigningProfileArn), aws.ToString(st.FailureCode), aws.ToString(st.FailureReason)))
			case ecrtypes.SigningStatusComplete:
			default:
				complete = false
			}
		}
		if len(failed) > 0 {
			return nil, fmt.Errorf("signing-failed: ECR could not sign %s: %s", image, strings.Join(failed, "; "))
		}
		if complete {
			fmt.Fprintf(s.out, "signed: %s\n", image)
			return &records.Signing{Status: string(ecrtypes.SigningStatusComplete), Profiles: profiles}, nil
		}
		if s.expired() {
			return nil, fmt.Errorf("signing-timeout: ECR did not sign %s within %d s (evergreen:scanWaitMinutes): retry the stage once it is signed (aws ecr describe-image-signing-status)", image, int(s.e.ScanWait/time.Second))
		}
		if err := s.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// severityOrder is how the log lists a scan's counts.
var severityOrder = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}

func countsText(counts map[string]int) string {
	var parts []string
	for _, k := range severityOrder {
		if n, ok := counts[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(severityOrder, k) {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	if len(parts) == 0 {
		return "no findings"
	}
	return strings.Join(parts, ", ")
}

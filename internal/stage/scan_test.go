package stage

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/evergreen-images/evergreen/internal/records"
)

// The scans are read through bvScans (verify_test.go): moto's scan API is
// a static answer, not ECR's.

func TestScanFindingsReadEveryPage(t *testing.T) {
	v := bvVerify(t, "amd64")
	var findings []ecrtypes.ImageScanFinding
	for i := range 7 {
		findings = append(findings, basicFinding("CVE-2025-"+string(rune('a'+i)), "MEDIUM", "pkg"+string(rune('a'+i)), "1."+string(rune('0'+i))))
	}
	v.sc.scans[v.built.Digest] = completeScan(time.Now(), findings...)
	v.sc.pageSize = 3
	if err := v.verify(); err != nil {
		t.Fatalf("Verify: %v\n%s", err, v.log.String())
	}
	r, _ := v.record()
	if len(r.Scan.Findings) != len(findings) {
		t.Fatalf("%d findings recorded, want all %d of the pages", len(r.Scan.Findings), len(findings))
	}
	// The counts come with the first page only.
	if r.Scan.Counts["MEDIUM"] != len(findings) {
		t.Errorf("counts %v, want MEDIUM %d", r.Scan.Counts, len(findings))
	}
	for i, f := range r.Scan.Findings {
		w := findings[i]
		if f.ID != aws.ToString(w.Name) || f.Package != aws.ToString(w.Attributes[1].Value) || f.Version != aws.ToString(w.Attributes[0].Value) || f.Severity != "MEDIUM" || f.Fix != nil {
			t.Errorf("finding %d: %+v, want %s in %s %s, no fix information", i, f, aws.ToString(w.Name), aws.ToString(w.Attributes[1].Value), aws.ToString(w.Attributes[0].Value))
		}
	}
}

// Enhanced (Inspector) findings: the CVE, the first vulnerable package,
// whether a fix is available; unique by CVE and package, across the basic
// and enhanced lists, sorted by them.
func TestEnhancedFindingsParsed(t *testing.T) {
	v := bvVerify(t, "amd64")
	v.e.Enhanced = true
	enh := func(id, title, sev, pkg, ver, fix string) ecrtypes.EnhancedImageScanFinding {
		f := ecrtypes.EnhancedImageScanFinding{Title: aws.String(title), Severity: aws.String(sev), FixAvailable: aws.String(fix)}
		d := &ecrtypes.PackageVulnerabilityDetails{VulnerablePackages: []ecrtypes.VulnerablePackage{{Name: aws.String(pkg), Version: aws.String(ver)}, {Name: aws.String("other"), Version: aws.String("0")}}}
		if id != "" {
			d.VulnerabilityId = aws.String(id)
		}
		f.PackageVulnerabilityDetails = d
		return f
	}
	v.sc.scans[v.built.Digest] = &bvScan{statuses: []string{"PENDING", "ACTIVE"}, completedAt: time.Now(), counts: map[string]int32{"CRITICAL": 1, "HIGH": 2},
		enhanced: []ecrtypes.EnhancedImageScanFinding{
			enh("CVE-2025-9", "t9", "HIGH", "zlib1g", "1:1.3", "NO"),
			enh("CVE-2025-2", "t2", "CRITICAL", "openssl", "3.5.1-1", "YES"),
			enh("", "GHSA-xxxx", "HIGH", "lodash", "4.17.20", "PARTIAL"),
			enh("CVE-2025-2", "t2 again", "CRITICAL", "openssl", "3.5.1-1", "YES"),
		}}
	v.sc.pageSize = 1
	if err := v.verify(); err != nil {
		t.Fatalf("Verify: %v\n%s", err, v.log.String())
	}
	r, _ := v.record()
	yes, no, partial := "YES", "NO", "PARTIAL"
	want := []records.Finding{
		{ID: "CVE-2025-2", Severity: "CRITICAL", Package: "openssl", Version: "3.5.1-1", Fix: &yes},
		{ID: "CVE-2025-9", Severity: "HIGH", Package: "zlib1g", Version: "1:1.3", Fix: &no},
		{ID: "GHSA-xxxx", Severity: "HIGH", Package: "lodash", Version: "4.17.20", Fix: &partial},
	}
	if r.Scan.Status != "ACTIVE" || len(r.Scan.Findings) != len(want) {
		t.Fatalf("scan %+v, want ACTIVE with %d findings", r.Scan, len(want))
	}
	for i, f := range r.Scan.Findings {
		w := want[i]
		if f.ID != w.ID || f.Severity != w.Severity || f.Package != w.Package || f.Version != w.Version || f.Fix == nil || *f.Fix != *w.Fix {
			t.Errorf("finding %d: %+v (fix %v), want %+v (fix %s)", i, f, f.Fix, w, *w.Fix)
		}
	}
	if len(v.sc.startCalls()) != 0 {
		t.Errorf("StartImageScan under enhanced scanning: %v", v.sc.startCalls())
	}
}

// Finding 12: with scan on push off for the repository (a registry
// scanning configuration whose rules do not match it), the draft's scan
// never appears. Under basic scanning Verify starts it, says why and what
// to fix, and waits for it, instead of ending with scan-timeout.
func TestScanOnPushOffStartsTheScan(t *testing.T) {
	w := startMoto(t)
	v := bvVerifyIn(t, w, "node1", "amd64")
	delete(v.sc.scans, v.built.Digest)
	started := completeScan(time.Now(), basicFinding("CVE-2025-3", "LOW", "tar", "1.35"))
	started.statuses = []string{"IN_PROGRESS", "IN_PROGRESS", "COMPLETE"}
	v.sc.onStart = map[string]*bvScan{v.built.Digest: started}
	if err := v.verify(); err != nil {
		t.Fatalf("Verify: %v\n%s", err, v.log.String())
	}
	if got := v.sc.startCalls(); len(got) != 1 || got[0] != v.built.Digest {
		t.Errorf("StartImageScan calls %v, want one for the draft %s", got, v.built.Digest)
	}
	log := v.log.String()
	if !strings.Contains(log, "scan on push did not run") || !strings.Contains(log, "registry's scanning configuration") || !strings.Contains(log, "evergreen preflight") {
		t.Errorf("the log does not say scan on push did not run and what to check:\n%s", log)
	}
	if r, _ := v.record(); r.Scan == nil || r.Scan.Status != "COMPLETE" || len(r.Scan.Findings) != 1 {
		t.Errorf("scan %+v, want the started scan's result", r.Scan)
	}

	// Under enhanced scanning Inspector scans when it does: no start.
	x := bvVerifyIn(t, w, "node2", "amd64")
	x.e.Enhanced = true
	x.e.ScanWait = 50 * time.Millisecond
	delete(x.sc.scans, x.built.Digest)
	if err := x.verify(); err == nil || !strings.Contains(err.Error(), "scan-timeout") {
		t.Errorf("Verify under enhanced scanning without a scan: %v", err)
	}
	if got := x.sc.startCalls(); len(got) != 0 {
		t.Errorf("StartImageScan under enhanced scanning: %v", got)
	}
}

// Finding 8: ECR allows one basic scan per image per 24 hours, so the
// published image's rescan may be refused. The refusal is neither
// swallowed (the log says the scan the gate compares with is from when)
// nor fatal (that scan is recorded as read); any other error fails the
// entry.
func TestRescanLimitIsNotSwallowedNorFatal(t *testing.T) {
	old := time.Now().Add(-30 * time.Hour).UTC().Truncate(time.Second)

	t.Run("refused", func(t *testing.T) {
		v := bvVerify(t, "amd64")
		pub := v.publish(completeScan(old, basicFinding("CVE-2024-1", "HIGH", "openssl", "3.0")))
		v.sc.startErr = map[string]string{pub: "LimitExceededException"}
		if err := v.verify(); err != nil {
			t.Fatalf("Verify: %v\n%s", err, v.log.String())
		}
		if got := v.sc.startCalls(); len(got) != 1 || got[0] != pub {
			t.Errorf("StartImageScan calls %v, want one for the published %s", got, pub)
		}
		log := v.log.String()
		if !strings.Contains(log, "LimitExceededException") || !strings.Contains(log, records.Time(old)) {
			t.Errorf("the log does not say the rescan was refused and when the published scan is from (%s):\n%s", records.Time(old), log)
		}
		r, _ := v.record()
		if r.PublishedScan == nil || r.PublishedScan.Digest != pub || r.PublishedScan.CompletedAt != records.Time(old) || len(r.PublishedScan.Findings) != 1 {
			t.Errorf("published scan %+v, want the old scan of %s as read", r.PublishedScan, pub)
		}
	})

	t.Run("rescanned", func(t *testing.T) {
		v := bvVerify(t, "amd64")
		pub := v.publish(completeScan(old, basicFinding("CVE-2024-1", "HIGH", "openssl", "3.0")))
		fresh := completeScan(time.Now().UTC().Truncate(time.Second))
		fresh.statuses = []string{"IN_PROGRESS", "COMPLETE"}
		v.sc.onStart = map[string]*bvScan{pub: fresh}
		if err := v.verify(); err != nil {
			t.Fatalf("Verify: %v\n%s", err, v.log.String())
		}
		r, _ := v.record()
		if r.PublishedScan == nil || r.PublishedScan.CompletedAt != records.Time(fresh.completedAt) || len(r.PublishedScan.Findings) != 0 {
			t.Errorf("published scan %+v, want the new scan", r.PublishedScan)
		}
	})

	t.Run("recent scan is not restarted", func(t *testing.T) {
		v := bvVerify(t, "amd64")
		v.publish(completeScan(time.Now().Add(-time.Hour)))
		if err := v.verify(); err != nil {
			t.Fatal(err)
		}
		if got := v.sc.startCalls(); len(got) != 0 {
			t.Errorf("StartImageScan for a scan an hour old: %v", got)
		}
	})

	t.Run("enhanced: not called", func(t *testing.T) {
		v := bvVerify(t, "amd64")
		v.e.Enhanced = true
		v.publish(completeScan(old))
		v.sc.startErr = map[string]string{}
		if err := v.verify(); err != nil {
			t.Fatal(err)
		}
		if got := v.sc.startCalls(); len(got) != 0 {
			t.Errorf("StartImageScan under enhanced scanning: %v", got)
		}
	})

	t.Run("other error fails", func(t *testing.T) {
		v := bvVerify(t, "amd64")
		pub := v.publish(completeScan(old))
		v.sc.startErr = map[string]string{pub: "AccessDeniedException"}
		err := v.verify()
		if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), v.e.entry()) {
			t.Fatalf("Verify with StartImageScan denied: %v", err)
		}
		if _, found := v.record(); found {
			t.Error("a Verify record was written")
		}
	})

	t.Run("published but never scanned", func(t *testing.T) {
		v := bvVerify(t, "amd64")
		v.publish(nil)
		if err := v.verify(); err != nil {
			t.Fatal(err)
		}
		if r, _ := v.record(); r.PublishedScan != nil || !strings.Contains(v.log.String(), "has no scan to compare with") {
			t.Errorf("published scan %+v; log:\n%s", r.PublishedScan, v.log.String())
		}
	})
}

// A draft scan that does not end within SCAN_WAIT_SECONDS ends the entry
// with scan-timeout when the gate is on, soon after the bound, and writes
// no record; with the gate off the outcome is recorded and the entry
// passes. A scan that ended otherwise is scan-failed.
func TestScanTimeoutEndsEntryOnlyWithGateOn(t *testing.T) {
	w := startMoto(t)
	const wait = 300 * time.Millisecond
	forever := func() *bvScan { return &bvScan{statuses: []string{"IN_PROGRESS"}} }

	v := bvVerifyIn(t, w, "node1", "amd64")
	v.e.ScanWait = wait
	v.e.ScanPoll = 20 * time.Millisecond
	v.sc.scans[v.built.Digest] = forever()
	start := time.Now()
	err := v.verify()
	took := time.Since(start)
	if err == nil || !strings.HasPrefix(err.Error(), "scan-timeout: ECR's scan of "+v.image()) {
		t.Fatalf("Verify of a scan that never ends: %v", err)
	}
	if took < wait || took > wait+2*time.Second {
		t.Errorf("Verify ended after %v, want soon after the %v bound", took, wait)
	}
	if _, found := v.record(); found {
		t.Error("a Verify record was written")
	}

	// One deadline for every wait: the published image's scan that never
	// ends either does not add a second bound.
	o := bvVerifyIn(t, w, "node2", "amd64")
	o.e.Gate = "off"
	o.e.ScanWait = wait
	o.sc.scans[o.built.Digest] = forever()
	o.publish(forever())
	start = time.Now()
	if err := o.verify(); err != nil {
		t.Fatalf("Verify with the gate off: %v", err)
	}
	if took := time.Since(start); took > wait+2*time.Second {
		t.Errorf("two scans that never end took %v, want one bound of %v", took, wait)
	}
	r, found := o.record()
	if !found || r.Scan.Status != records.ScanTimeout || r.PublishedScan == nil || r.PublishedScan.Status != records.ScanTimeout {
		t.Errorf("record %+v (found %v), want both scans recorded as %s", r, found, records.ScanTimeout)
	}

	f := bvVerifyIn(t, w, "node3", "amd64")
	f.sc.scans[f.built.Digest] = &bvScan{statuses: []string{"UNSUPPORTED_IMAGE"}, description: "The operating system is not supported"}
	if err := f.verify(); err == nil || !strings.HasPrefix(err.Error(), "scan-failed: ") || !strings.Contains(err.Error(), "UNSUPPORTED_IMAGE The operating system") {
		t.Errorf("Verify of an unsupported image: %v", err)
	}
}

// The signature is waited for within the entry's one deadline: a
// signature that does not come is signing-timeout, a failed one
// signing-failed with the profile's reason, a complete one is recorded.
func TestSigningWaitIsBounded(t *testing.T) {
	w := startMoto(t)
	const profile = "arn:aws:signer:eu-west-1:123456789012:/signing-profiles/evergreen"
	status := func(s ecrtypes.SigningStatus) []ecrtypes.ImageSigningStatus {
		st := ecrtypes.ImageSigningStatus{SigningProfileArn: aws.String(profile), Status: s}
		if s == ecrtypes.SigningStatusFailed {
			st.FailureCode, st.FailureReason = aws.String("KMS_ERROR"), aws.String("key disabled")
		}
		return []ecrtypes.ImageSigningStatus{st}
	}

	v := bvVerifyIn(t, w, "node1", "amd64")
	v.e.Signing = true
	v.e.ScanWait = 200 * time.Millisecond
	v.e.ScanPoll = 10 * time.Millisecond
	v.sc.signing = [][]ecrtypes.ImageSigningStatus{nil, status(ecrtypes.SigningStatusInProgress)}
	start := time.Now()
	err := v.verify()
	if err == nil || !strings.HasPrefix(err.Error(), "signing-timeout: ECR did not sign "+v.image()) {
		t.Fatalf("Verify of an image never signed: %v", err)
	}
	if took := time.Since(start); took > v.e.ScanWait+2*time.Second {
		t.Errorf("the signing wait took %v, bound %v", took, v.e.ScanWait)
	}
	if _, found := v.record(); found {
		t.Error("a Verify record was written")
	}

	f := bvVerifyIn(t, w, "node2", "amd64")
	f.e.Signing = true
	f.sc.signing = [][]ecrtypes.ImageSigningStatus{status(ecrtypes.SigningStatusInProgress), status(ecrtypes.SigningStatusFailed)}
	if err := f.verify(); err == nil || !strings.HasPrefix(err.Error(), "signing-failed: ") || !strings.Contains(err.Error(), profile+": KMS_ERROR key disabled") {
		t.Errorf("Verify of a failed signature: %v", err)
	}

	c := bvVerifyIn(t, w, "node3", "amd64")
	c.e.Signing = true
	c.sc.signing = [][]ecrtypes.ImageSigningStatus{nil, status(ecrtypes.SigningStatusInProgress), status(ecrtypes.SigningStatusComplete)}
	if err := c.verify(); err != nil {
		t.Fatalf("Verify of a signed image: %v", err)
	}
	if r, _ := c.record(); r.Signing == nil || r.Signing.Status != "COMPLETE" || len(r.Signing.Profiles) != 1 || r.Signing.Profiles[0] != profile {
		t.Errorf("signing %+v, want COMPLETE by %s", r.Signing, profile)
	}
}

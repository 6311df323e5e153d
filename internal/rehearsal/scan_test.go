package rehearsal

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// The scan stand-in answers what a scenario declared, as ECR's basic
// scanning shapes it, to the SDK; an undeclared image has a clean,
// complete scan.
func TestDeclaredScansAsTheSDKReadsThem(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	clean := f.push("node", "22-amd64")
	worse := f.push("node", "draft-22-amd64-x")
	if err := f.ecr.Cfg.DeclareScan("node", worse, Scan{Status: "COMPLETE", Findings: []Finding{
		{"CVE-2026-0001", "CRITICAL", "libssl3t64", "3.5.1-1"}, {"CVE-2026-0002", "HIGH", "zlib1g", "1:1.3"}, {"CVE-2026-0003", "HIGH", "zlib1g", "1:1.3"},
	}}); err != nil {
		t.Fatal(err)
	}
	scan := func(id ecrtypes.ImageIdentifier) (*ecr.DescribeImageScanFindingsOutput, error) {
		return c.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("node"), ImageId: &id})
	}
	got, err := scan(ecrtypes.ImageIdentifier{ImageDigest: aws.String(worse)})
	if err != nil {
		t.Fatal(err)
	}
	fs := got.ImageScanFindings
	if aws.ToString(got.ImageId.ImageDigest) != worse || got.ImageScanStatus.Status != ecrtypes.ScanStatusComplete || fs.FindingSeverityCounts["CRITICAL"] != 1 ||
		fs.FindingSeverityCounts["HIGH"] != 2 || len(fs.Findings) != 3 || aws.ToString(fs.Findings[0].Name) != "CVE-2026-0001" ||
		aws.ToString(fs.Findings[0].Attributes[1].Value) != "libssl3t64" || fs.ImageScanCompletedAt == nil {
		t.Errorf("declared scan: %+v", got)
	}
	// By tag, undeclared: complete, no findings.
	got, err = scan(ecrtypes.ImageIdentifier{ImageTag: aws.String("22-amd64")})
	if err != nil || aws.ToString(got.ImageId.ImageDigest) != clean || got.ImageScanStatus.Status != ecrtypes.ScanStatusComplete || len(got.ImageScanFindings.Findings) != 0 {
		t.Errorf("undeclared scan: %+v %v", got, err)
	}
	// A scan that never ends.
	f.ecr.Cfg.DeclareScan("node", clean, Scan{Status: "IN_PROGRESS"})
	if got, err = scan(ecrtypes.ImageIdentifier{ImageDigest: aws.String(clean)}); err != nil || got.ImageScanStatus.Status != ecrtypes.ScanStatusInProgress || got.ImageScanFindings != nil {
		t.Errorf("in progress: %+v %v", got, err)
	}
	if _, err := scan(ecrtypes.ImageIdentifier{ImageTag: aws.String("24-amd64")}); code(err) != "ImageNotFoundException" {
		t.Errorf("missing image: %v", err)
	}
}

// Basic scanning scans an image once per 24 hours, the scan on push
// included: StartImageScan on the day of the push is refused.
func TestStartImageScanIsRefusedWithin24HoursOfThePush(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	d := f.push("node", "22-amd64") // pushed 2026-11-25 22:00, "now" is 2026-11-26 23:59
	start := func() error {
		_, err := c.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String("node"), ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(d)}})
		return err
	}
	if err := start(); err != nil {
		t.Fatalf("more than 24 hours after the push: %v", err)
	}
	f.ecr.Now = func() time.Time { return time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC) }
	if err := start(); code(err) != "LimitExceededException" {
		t.Fatalf("an hour after the push: %v", err)
	}
	starts, err := f.ecr.Cfg.ScanStarts()
	if err != nil || len(starts) != 2 || starts[0].Digest != d {
		t.Errorf("scan starts %v %v", starts, err)
	}
}

func TestSigningStatusIsWhatWasDeclared(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	d := f.push("node", "22-amd64")
	status := func() []ecrtypes.ImageSigningStatus {
		out, err := c.DescribeImageSigningStatus(ctx, &ecr.DescribeImageSigningStatusInput{RepositoryName: aws.String("node"), ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(d)}})
		if err != nil {
			t.Fatal(err)
		}
		return out.SigningStatuses
	}
	if s := status(); len(s) != 0 {
		t.Fatalf("no signing rule, yet %+v", s)
	}
	f.ecr.Cfg.DeclareSigning("node", d, Signing{Status: "COMPLETE"})
	if s := status(); len(s) != 1 || s[0].Status != ecrtypes.SigningStatusComplete {
		t.Fatalf("declared COMPLETE: %+v", s)
	}
}

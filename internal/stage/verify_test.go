package stage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/mototest"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// bvScans stands in for ECR's scanning and signing APIs, over moto's ECR
// for everything else (images, tags, login tokens). The gaps it fills:
// moto's DescribeImageScanFindings answers one static result (no scan
// states, no paging, no per-image findings), its StartImageScan never
// refuses (no LimitExceededException, ECR's one scan per image per 24 h),
// and it has no DescribeImageSigningStatus. Scans are per digest; a tag is
// resolved through moto, so a missing tag is moto's ImageNotFoundException.
type bvScans struct {
	ECR
	mu sync.Mutex

	scans    map[string]*bvScan // by digest; none: ScanNotFoundException
	onStart  map[string]*bvScan // the scan a successful StartImageScan starts
	startErr map[string]string  // the error code StartImageScan answers
	starts   []string           // StartImageScan's digests, in order
	pageSize int                // findings per page; 0: all on one

	signing      [][]ecrtypes.ImageSigningStatus // answered in turn, the last for good
	signingCalls int

	// afterFirstScan runs once, after the first page of the first scan.
	afterFirstScan func()
}

// bvScan is one image's scan: statuses are answered in turn, the last
// for good.
type bvScan struct {
	statuses    []string
	calls       int
	description string
	completedAt time.Time
	counts      map[string]int32
	basic       []ecrtypes.ImageScanFinding
	enhanced    []ecrtypes.EnhancedImageScanFinding
}

func apiError(code, msg string) error { return &smithy.GenericAPIError{Code: code, Message: msg} }

func (s *bvScans) digestOf(ctx context.Context, repo string, id *ecrtypes.ImageIdentifier) (string, error) {
	if d := aws.ToString(id.ImageDigest); d != "" {
		return d, nil
	}
	out, err := s.ECR.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: []ecrtypes.ImageIdentifier{*id}})
	if err != nil {
		return "", err
	}
	if len(out.ImageDetails) == 0 {
		return "", apiError("ImageNotFoundException", "no image")
	}
	return aws.ToString(out.ImageDetails[0].ImageDigest), nil
}

func (s *bvScans) DescribeImageScanFindings(ctx context.Context, in *ecr.DescribeImageScanFindingsInput, opts ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error) {
	digest, err := s.digestOf(ctx, aws.ToString(in.RepositoryName), in.ImageId)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	sc := s.scans[digest]
	if sc == nil {
		s.mu.Unlock()
		return nil, apiError("ScanNotFoundException", "Image scan does not exist for the image")
	}
	start := 0
	if t := aws.ToString(in.NextToken); t != "" {
		start, _ = strconv.Atoi(t)
	}
	status := sc.statuses[min(sc.calls, len(sc.statuses)-1)]
	if start == 0 {
		sc.calls++
	}
	out := &ecr.DescribeImageScanFindingsOutput{
		ImageId:         &ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest)},
		ImageScanStatus: &ecrtypes.ImageScanStatus{Status: ecrtypes.ScanStatus(status), Description: aws.String(sc.description)},
		RepositoryName:  in.RepositoryName,
	}
	if status == "COMPLETE" || status == "ACTIVE" {
		f := &ecrtypes.ImageScanFindings{}
		if start == 0 {
			f.FindingSeverityCounts = sc.counts
			f.ImageScanCompletedAt = aws.Time(sc.completedAt)
		}
		total := len(sc.basic) + len(sc.enhanced)
		end := total
		if s.pageSize > 0 {
			end = min(start+s.pageSize, total)
		}
		for i := start; i < end; i++ {
			if i < len(sc.basic) {
				f.Findings = append(f.Findings, sc.basic[i])
			} else {
				f.EnhancedFindings = append(f.EnhancedFindings, sc.enhanced[i-len(sc.basic)])
			}
		}
		if end < total {
			out.NextToken = aws.String(strconv.Itoa(end))
		}
		out.ImageScanFindings = f
	}
	hook := s.afterFirstScan
	s.afterFirstScan = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return out, nil
}

func (s *bvScans) StartImageScan(ctx context.Context, in *ecr.StartImageScanInput, opts ...func(*ecr.Options)) (*ecr.StartImageScanOutput, error) {
	digest, err := s.digestOf(ctx, aws.ToString(in.RepositoryName), in.ImageId)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts = append(s.starts, digest)
	if code := s.startErr[digest]; code != "" {
		return nil, apiError(code, "refused by the stand-in")
	}
	if next := s.onStart[digest]; next != nil {
		if s.scans == nil {
			s.scans = map[string]*bvScan{}
		}
		s.scans[digest] = next
	}
	return &ecr.StartImageScanOutput{ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(digest)},
		ImageScanStatus: &ecrtypes.ImageScanStatus{Status: ecrtypes.ScanStatusInProgress}}, nil
}

func (s *bvScans) DescribeImageSigningStatus(ctx context.Context, in *ecr.DescribeImageSigningStatusInput, opts ...func(*ecr.Options)) (*ecr.DescribeImageSigningStatusOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st []ecrtypes.ImageSigningStatus
	if len(s.signing) > 0 {
		st = s.signing[min(s.signingCalls, len(s.signing)-1)]
	}
	s.signingCalls++
	return &ecr.DescribeImageSigningStatusOutput{ImageId: in.ImageId, RepositoryName: in.RepositoryName, SigningStatuses: st}, nil
}

func (s *bvScans) startCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.starts...)
}

// completeScan is a scan that ended, with counts that derive from the
// findings.
func completeScan(at time.Time, basic ...ecrtypes.ImageScanFinding) *bvScan {
	counts := map[string]int32{}
	for _, f := range basic {
		counts[string(f.Severity)]++
	}
	return &bvScan{statuses: []string{"COMPLETE"}, completedAt: at, counts: counts, basic: basic}
}

func basicFinding(id, severity, pkg, version string) ecrtypes.ImageScanFinding {
	return ecrtypes.ImageScanFinding{Name: aws.String(id), Severity: ecrtypes.FindingSeverity(severity), Attributes: []ecrtypes.Attribute{
		{Key: aws.String("package_version"), Value: aws.String(version)}, {Key: aws.String("package_name"), Value: aws.String(pkg)}}}
}

// bvV is one Verify entry's world: a draft and its Build record, a
// Docker, the scans.
type bvV struct {
	f     *fixture
	e     Env
	c     Clients
	d     *bvDocker
	sc    *bvScans
	built records.Build
	// index is the base image's index in its registry.
	index    awsops.Manifest
	baseName string
	log      bytes.Buffer
}

// inventoryTSV is inventory.sh's output for the tests: the os-release and
// dpkg's status it frames (a removed package among them), the runtime
// lines, and lines the parser must leave out (an os line of the earlier
// script's shape among them).
const inventoryTSV = "%evergreen-inventory\tfile\t/etc/os-release\n" +
	"PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n" +
	"\n%evergreen-inventory\tend\t/etc/os-release\n" +
	"%evergreen-inventory\tfile\t/var/lib/dpkg/status\n" +
	"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.41-12\nDescription: GNU C Library\n shared libraries\n\n" +
	"Package: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.5.1-1\n\n" +
	"Package: nano\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 8.4-1\n" +
	"\n%evergreen-inventory\tend\t/var/lib/dpkg/status\n" +
	"runtime\tnode\t22.18.0\nruntime\tnpm\t10.9.3\nnpm\tnpm\t10.9.3\nnpm\tcorepack\t0.33.0\n" +
	"warning: something\nbogus\tx\ty\nos\ttoo\tmany\tfields\nos\tnano\t8.4-1\n"

// mustParseInventory is ParseInventory of output the test wrote.
func mustParseInventory(t *testing.T, out string) *records.Inventory {
	t.Helper()
	inv, err := ParseInventory(out)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func bvVerify(t *testing.T, arch string) *bvV {
	t.Helper()
	return bvVerifyIn(t, startMoto(t), "node", arch)
}

// bvVerifyIn is bvVerify in a moto the test started, for a runtime name of
// its own (one moto per test; each fixture its own repository).
func bvVerifyIn(t *testing.T, w *motoWorld, name, arch string) *bvV {
	t.Helper()
	f := w.fixture(t, name, "22")
	v := &bvV{f: f, e: f.envArch(executionID("7e7e7e7e", 1), arch)}
	v.e.SourceDir = bvSource(t, v.e.Runtime)
	v.e.BuildID = "verify-project:7"
	v.e.ScanWait = 5 * time.Second
	v.built = f.pushDraft(v.e.ExecutionID, arch, imageOf(v.e.ExecutionID, "v1", arch))
	v.baseName = "public.ecr.aws/docker/library/node:22-trixie"
	base := map[string]awsops.Manifest{}
	for _, a := range []string{"amd64", "arm64"} {
		base[a] = mototest.ImageManifest("base", a)
	}
	v.index = mototest.IndexOf(base, []string{"amd64", "arm64"})
	v.d = &bvDocker{arch: arch, baseName: v.baseName, inventory: inventoryTSV, bases: map[string][]byte{v.baseName: v.index.Bytes}}
	v.sc = &bvScans{ECR: f.w.ECR, scans: map[string]*bvScan{v.built.Digest: completeScan(time.Now(), basicFinding("CVE-2025-1", "HIGH", "openssl", "3.5.1-1"))}}
	v.c = f.Clients
	v.c.ECR = v.sc
	v.c.Docker = v.d
	return v
}

func (v *bvV) verify() error { return Verify(context.Background(), v.e, v.c, &v.log) }

// record is the entry's Verify record; found is false without one.
func (v *bvV) record() (records.Verify, bool) {
	var r records.Verify
	found := v.f.getJSON(records.VerifyKey(v.e.ExecutionID, v.e.Runtime, v.e.Version, v.e.Arch), &r)
	return r, found
}

func (v *bvV) image() string { return v.e.Registry + "/" + v.e.Repository + "@" + v.built.Digest }

// publish puts an image under <version>-<arch> and gives it scan.
func (v *bvV) publish(scan *bvScan) string {
	m := mototest.ImageManifest("published", v.e.Arch)
	mototest.Put(v.f.t, v.f.w.ECR, v.f.Repo, runtimes.ArchTag(v.e.Version, runtimes.Arch(v.e.Arch)), m)
	if scan != nil {
		v.sc.scans[m.Digest] = scan
	}
	return m.Digest
}

func TestVerifyWithoutBuildRecordSaysRetryBuild(t *testing.T) {
	f := newFixture(t)
	e := f.envArch(executionID("7e7e7e7e", 2), "amd64")
	d := &bvDocker{}
	c := f.Clients
	c.Docker = d
	err := Verify(context.Background(), e, c, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "retry the Build stage first") || !strings.Contains(err.Error(), e.entry()) {
		t.Fatalf("Verify without a Build record: %v", err)
	}
	if len(d.calls) != 0 {
		t.Errorf("docker ran without a Build record: %q", d.calls)
	}
}

// Verify checks the image Build recorded, by digest, and records what it
// found: the Build record's facts, the inventory, the base digest for its
// architecture, the recipe, the scans.
func TestVerifyPullsTheRecordedDigestNotTheTag(t *testing.T) {
	v := bvVerify(t, "arm64")
	// The draft tag moves to another image after Build recorded its
	// digest (a concurrent Build of the same execution, say). moto D2:
	// moving the tag deletes the recorded image there; ECR would leave it
	// untagged. Verify reads it by digest either way.
	other := imageOf(v.e.ExecutionID, "v2", v.e.Arch)
	mototest.Put(t, v.f.w.ECR, v.f.Repo, v.e.DraftTag(v.e.Arch), other)
	v.sc.scans[other.Digest] = completeScan(time.Now())
	if err := v.verify(); err != nil {
		t.Fatalf("Verify: %v\n%s", err, v.log.String())
	}
	img := v.image()
	for _, c := range v.d.calls {
		if c[0] == "pull" || c[0] == "run" || c[0] == "image" {
			if !strings.Contains(strings.Join(c, " "), img) || strings.Contains(strings.Join(c, " "), ":"+v.e.DraftTag(v.e.Arch)) {
				t.Errorf("docker %q does not name the recorded digest %s", c, img)
			}
		}
	}
	if p := v.d.called("pull"); len(p) != 1 || flagValue(p[0], "--platform") != "linux/"+v.e.Arch {
		t.Errorf("pulls %q, want one for linux/%s", p, v.e.Arch)
	}
	st := v.d.called("run", "--rm", "--platform", "linux/"+v.e.Arch, "--env", "EXPECTED_VERSION="+v.e.Version, "--env", "EXPECTED_ARCH="+v.e.Arch, "--entrypoint", "self-test", img)
	if len(st) != 1 {
		t.Errorf("the self-test was not run with the pipeline's version and architecture: %q", v.d.calls)
	}
	script, _ := os.ReadFile(filepath.Join(v.e.SourceDir, InventoryScript))
	if inv := v.d.called("run", "--rm", "--platform", "linux/"+v.e.Arch, "--entrypoint", "sh", img, "-c", string(script)); len(inv) != 1 {
		t.Errorf("the inventory was not taken with buildspecs/inventory.sh inside the image: %q", v.d.calls)
	}

	r, found := v.record()
	if !found {
		t.Fatal("no Verify record")
	}
	if r.Digest != v.built.Digest || r.Result != records.ResultPassed || r.SelfTest != records.ResultPassed || r.Stage != "verify" ||
		r.SchemaVersion != records.SchemaVersion || r.BuildID != v.built.BuildID || r.VerifyBuildID != v.e.BuildID ||
		r.PushedAt != v.built.PushedAt || r.SourceRevision != v.built.SourceRevision || r.VerifiedAt == "" {
		t.Errorf("Verify record %+v, want the Build record %+v passed", r, v.built)
	}
	want := mustParseInventory(t, inventoryTSV)
	recipe, err := RecipeHash(filepath.Join(v.e.SourceDir, "runtimes", v.e.Runtime))
	if err != nil {
		t.Fatal(err)
	}
	children, _ := awsops.IndexChildren(v.index)
	var baseDigest string
	for _, ch := range children {
		if ch.Arch == v.e.Arch {
			baseDigest = ch.Digest
		}
	}
	inv := r.Inventory
	if inv == nil || inv.Base.Name != v.baseName || inv.Base.Digest != baseDigest || inv.Recipe != recipe ||
		len(inv.OS) != len(want.OS) || inv.Runtime["node"] != want.Runtime["node"] || len(inv.Npm) != len(want.Npm) || inv.Pip == nil {
		t.Errorf("inventory %+v, want base %s@%s, recipe %s, the TSV's items %+v", inv, v.baseName, baseDigest, recipe, want)
	}
	if r.Scan == nil || r.Scan.Status != "COMPLETE" || r.Scan.Digest != v.built.Digest || len(r.Scan.Findings) != 1 || r.Scan.Counts["HIGH"] != 1 {
		t.Errorf("scan %+v, want the draft's complete scan with its finding", r.Scan)
	}
	if r.PublishedScan != nil || !strings.Contains(v.log.String(), "has no scan to compare with") {
		t.Errorf("published scan %+v with nothing published; log:\n%s", r.PublishedScan, v.log.String())
	}
	if r.Signing != nil {
		t.Errorf("signing %+v with signing off", r.Signing)
	}
}

func TestRetriedVerifySkipsPassedImages(t *testing.T) {
	v := bvVerify(t, "amd64")
	if err := v.verify(); err != nil {
		t.Fatal(err)
	}
	first, _ := v.record()
	v.d.calls = nil
	v.log.Reset()
	if err := v.verify(); err != nil {
		t.Fatal(err)
	}
	if len(v.d.calls) != 0 {
		t.Errorf("a retried Verify of a passed image ran docker: %q", v.d.calls)
	}
	if !strings.Contains(v.log.String(), "already passed its self-test in execution "+v.e.ExecutionID+": not run again") {
		t.Errorf("the log does not say it was not run again:\n%s", v.log.String())
	}
	if again, _ := v.record(); again.VerifiedAt != first.VerifiedAt || again.VerifyBuildID != first.VerifyBuildID {
		t.Errorf("the record was rewritten: %+v, was %+v", again, first)
	}

	// A record that passed another digest (Build was retried with a new
	// push) is no reason to skip.
	rebuilt := v.f.pushDraft(v.e.ExecutionID, v.e.Arch, imageOf(v.e.ExecutionID, "v2", v.e.Arch))
	v.sc.scans[rebuilt.Digest] = completeScan(time.Now())
	v.d.calls = nil
	if err := v.verify(); err != nil {
		t.Fatal(err)
	}
	if len(v.d.called("pull")) != 1 {
		t.Errorf("a new Build's image was not verified: %q", v.d.calls)
	}
	if r, _ := v.record(); r.Digest != rebuilt.Digest {
		t.Errorf("the record names %s, want the rebuilt %s", r.Digest, rebuilt.Digest)
	}
}

func TestWrongArchitectureFailsVerify(t *testing.T) {
	v := bvVerify(t, "arm64")
	v.d.arch = "amd64"
	err := v.verify()
	if err == nil || !strings.Contains(err.Error(), "is built for amd64, expected arm64") {
		t.Fatalf("Verify of an amd64 image on arm64: %v", err)
	}
	if len(v.d.called("run")) != 0 {
		t.Errorf("the self-test ran on the wrong architecture: %q", v.d.calls)
	}
	if _, found := v.record(); found {
		t.Error("a Verify record was written")
	}
}

func TestFailedSelfTestFailsVerify(t *testing.T) {
	v := bvVerify(t, "amd64")
	v.d.selfTestErr = errors.New("docker run exited with status 1")
	if err := v.verify(); err == nil || !strings.Contains(err.Error(), "self-test") {
		t.Fatalf("Verify with a failing self-test: %v", err)
	}
	if _, found := v.record(); found {
		t.Error("a Verify record was written")
	}
}

// The base digest is the architecture's child of the base's index, or the
// digest of a single manifest's bytes; no label, no lookup.
func TestBaseDigestIsTheArchChildOrTheManifestDigest(t *testing.T) {
	w := startMoto(t)
	v := bvVerifyIn(t, w, "node1", "amd64")
	single := mototest.ImageManifest("single-base", "amd64")
	v.d.bases[v.baseName] = single.Bytes
	if err := v.verify(); err != nil {
		t.Fatal(err)
	}
	if r, _ := v.record(); r.Inventory.Base.Digest != single.Digest {
		t.Errorf("base digest %s, want the manifest's %s", r.Inventory.Base.Digest, single.Digest)
	}

	x := bvVerifyIn(t, w, "node2", "amd64")
	x.d.baseName = ""
	if err := x.verify(); err != nil {
		t.Fatal(err)
	}
	if r, _ := x.record(); r.Inventory.Base != (records.Base{}) || len(x.d.called("buildx", "imagetools")) != 0 {
		t.Errorf("an image without the base label: base %+v, lookups %q", r.Inventory.Base, x.d.called("buildx"))
	}
}

// A base lookup that fails or answers nothing fails the entry: the digest
// of an empty answer would pass for a change.
func TestFailedBaseLookupFailsVerify(t *testing.T) {
	for name, raw := range map[string][]byte{"failed": nil, "empty": {}} {
		t.Run(name, func(t *testing.T) {
			v := bvVerify(t, "amd64")
			if raw == nil {
				delete(v.d.bases, v.baseName)
			} else {
				v.d.bases[v.baseName] = raw
			}
			err := v.verify()
			if err == nil || !strings.Contains(err.Error(), "could not read the base image "+v.baseName) {
				t.Fatalf("Verify with a %s base lookup: %v", name, err)
			}
			if _, found := v.record(); found {
				t.Error("a Verify record was written")
			}
		})
	}
}

// A Build retried while Verify ran (a new digest in the Build record)
// means what was verified is not what Publish would publish.
func TestVerifyRefusesWhenTheBuildRecordChanged(t *testing.T) {
	v := bvVerify(t, "amd64")
	v.sc.afterFirstScan = func() { v.f.pushDraft(v.e.ExecutionID, v.e.Arch, imageOf(v.e.ExecutionID, "v2", v.e.Arch)) }
	err := v.verify()
	if err == nil || !strings.Contains(err.Error(), "changed while it was verified: retry the stage") {
		t.Fatalf("Verify across a rebuild: %v", err)
	}
	if _, found := v.record(); found {
		t.Error("a Verify record was written")
	}
}

func TestInventoryParsesTheScriptOutput(t *testing.T) {
	inv := mustParseInventory(t, inventoryTSV+"pip\trequests\t2.32\nruntime\tnode\t22.19.0\n")
	want := map[string]map[string]string{
		"os":      {"libc6": "2.41-12", "openssl": "3.5.1-1"},
		"runtime": {"node": "22.19.0", "npm": "10.9.3"},
		"npm":     {"npm": "10.9.3", "corepack": "0.33.0"},
		"pip":     {"requests": "2.32"},
	}
	for _, k := range records.Kinds {
		got, _ := json.Marshal(inv.Items(k))
		exp, _ := json.Marshal(want[k])
		if string(got) != string(exp) {
			t.Errorf("%s: %s, want %s", k, got, exp)
		}
	}
	if inv.PackageManager != "dpkg" || inv.OSArch["libc6"] != "amd64" || len(inv.OSArch) != len(inv.OS) {
		t.Errorf("package manager %q, architectures %v: want dpkg, one per OS package", inv.PackageManager, inv.OSArch)
	}
	if d := inv.Distro; d == nil || *d != (records.Distro{ID: "debian", VersionID: "13", Codename: "trixie", Name: "Debian GNU/Linux 13 (trixie)"}) {
		t.Errorf("distro %+v, want the os-release's", d)
	}
	empty := mustParseInventory(t, "")
	b, _ := json.Marshal(empty)
	if !strings.Contains(string(b), `"os":{}`) || !strings.Contains(string(b), `"pip":{}`) || strings.Contains(string(b), "distro") || strings.Contains(string(b), "osArch") {
		t.Errorf("an empty inventory is %s, want empty objects, as the shell wrote, and no distro", b)
	}
}

// The recipe hash is the shell's, byte for byte, so that inventories the
// shell recorded compare equal: on a folder with nested, hidden, spaced and
// sort-sensitive names and a symbolic link, and on the repository's own
// runtimes.
func TestRecipeHashEqualsTheShellFormula(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("no sha256sum")
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Dockerfile": "FROM x\n", "self-test": "#!/bin/sh\n", ".hidden": "h", "a b/c d": "space", "a-b": "dash", "a/b": "slash",
		"A": "upper", "z/deep/er/file": "deep", "empty": "", "back\\slash": "escaped by sha256sum",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("Dockerfile", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	dirs := []string{dir}
	entries, _ := os.ReadDir(filepath.Join("..", "..", "runtimes"))
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("..", "..", "runtimes", e.Name()))
		}
	}
	for _, d := range dirs {
		cmd := exec.Command("sh", "-c", `cd "$1" && find . -type f -exec sha256sum {} + | LC_ALL=C sort -k 2 | sha256sum | cut -d ' ' -f 1`, "sh", d)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		want := "sha256:" + strings.TrimSpace(string(out))
		got, err := RecipeHash(d)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: RecipeHash %s, the shell %s", d, got, want)
		}
	}
	if _, err := RecipeHash(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing runtime folder has a recipe hash")
	}
}

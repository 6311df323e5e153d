// Package records is the records bucket's layout: one Go type per record,
// one function for each record's key. The stages hand each other what they
// established through these records (Build -> Verify -> Publish -> Report),
// and the operator commands (status, rollback, resume) read and write the
// same types, so no stage re-derives a path or a field name.
//
//	executions/<execution id>/build/<runtime>/<version>/<arch>.json    Build
//	executions/<execution id>/verify/<runtime>/<version>/<arch>.json   Verify
//	executions/<execution id>/publish/<runtime>/<version>.json         Publish
//	executions/<execution id>/publish/<runtime>/<version>.previous.json Publish, before its commit point
//	executions/<execution id>/changelog.txt, report/<what>             Report
//	inventories/<runtime>/<version>/<arch>/<hex digest>.json           Publish: what each published image holds
//	releases/<runtime>/<version>.json                                  Publish, rollback: the latest outcome
//	holds/<runtime>/<version>.json                                     rollback, resume
//	rollbacks/<runtime>/<version>/<UTC second>.txt                     rollback
//
// Every record carries SchemaVersion; a reader refuses a version it does
// not know rather than misreading it. Records written before the field
// existed (version 0) have the same shape as version 1.
package records

import (
	"fmt"
	"strings"
	"time"
)

// SchemaVersion is the version of every record this code writes.
const SchemaVersion = 1

// TimeFormat is how records write instants: ISO 8601, UTC, seconds.
const TimeFormat = "2006-01-02T15:04:05Z"

// Time formats t for a record.
func Time(t time.Time) string { return t.UTC().Format(TimeFormat) }

// CheckSchema refuses a record written by a newer version of this code.
func CheckSchema(key string, v int) error {
	if v > SchemaVersion {
		return fmt.Errorf("%s has schema version %d; this code reads up to %d: deploy the newer code first", key, v, SchemaVersion)
	}
	return nil
}

// Stage results.
const (
	ResultPassed     = "passed"
	ResultPublished  = "published"
	ResultUnchanged  = "unchanged"
	ResultHeld       = "held"
	ResultBlocked    = "blocked"
	ResultRolledBack = "rolled-back"
	// ResultSuperseded: a newer execution published the runtime-version
	// while this one waited (a retried Publish of an older execution); the
	// tags stay on the newer content.
	ResultSuperseded = "superseded"
	// ResultNone is the Report's word for a runtime-version without a
	// Publish record in the execution.
	ResultNone = "none"
)

func executionPrefix(executionID string) string { return "executions/" + executionID + "/" }

// BuildKey is Build's record of one image.
func BuildKey(executionID, rt, v, arch string) string {
	return executionPrefix(executionID) + "build/" + rt + "/" + v + "/" + arch + ".json"
}

// VerifyKey is Verify's record of one image.
func VerifyKey(executionID, rt, v, arch string) string {
	return executionPrefix(executionID) + "verify/" + rt + "/" + v + "/" + arch + ".json"
}

// PublishKey is Publish's record of one runtime-version in one execution.
func PublishKey(executionID, rt, v string) string {
	return executionPrefix(executionID) + "publish/" + rt + "/" + v + ".json"
}

// PreviousKey is what the tags named before Publish's commit point, kept
// for the changelog of a retried Publish (by then the tags have moved).
func PreviousKey(executionID, rt, v string) string {
	return executionPrefix(executionID) + "publish/" + rt + "/" + v + ".previous.json"
}

// ChangelogKey is the execution's changelog (plain text).
func ChangelogKey(executionID string) string { return executionPrefix(executionID) + "changelog.txt" }

// ReportSentKey marks that the Report sent one message (changelog, alert)
// for the execution, so a retried Report does not send it again.
func ReportSentKey(executionID, what string) string {
	return executionPrefix(executionID) + "report/" + what
}

// InventoryKey is the inventory of a published image, by its digest.
func InventoryKey(rt, v, arch, digest string) string {
	return "inventories/" + rt + "/" + v + "/" + arch + "/" + strings.TrimPrefix(digest, "sha256:") + ".json"
}

// ReleaseKey is a runtime-version's latest outcome.
func ReleaseKey(rt, v string) string { return "releases/" + rt + "/" + v + ".json" }

// HoldKey is a rollback's hold on a runtime-version.
func HoldKey(rt, v string) string { return "holds/" + rt + "/" + v + ".json" }

// RollbackKey is the changelog entry of one rollback; the UTC second keeps
// every rollback's entry.
func RollbackKey(rt, v string, at time.Time) string {
	return "rollbacks/" + rt + "/" + v + "/" + at.UTC().Format("20060102T150405Z") + ".txt"
}

// Build is what Build pushed: one single-platform image manifest.
type Build struct {
	SchemaVersion  int    `json:"schemaVersion"`
	Stage          string `json:"stage"`
	ExecutionID    string `json:"executionId"`
	SourceRevision string `json:"sourceRevision"`
	Runtime        string `json:"runtime"`
	Version        string `json:"version"`
	Arch           string `json:"arch"`
	Repository     string `json:"repository"`
	Digest         string `json:"digest"`
	MediaType      string `json:"mediaType"`
	PushedAt       string `json:"pushedAt"`
	BuildID        string `json:"buildId"`
	// StartedAt, Builder and SourceRepository are for the provenance:
	// when the build began, who built (the CodeBuild project's ARN or the
	// GitHub workflow) and where the source came from. Absent from
	// records written before provenance existed.
	StartedAt        string `json:"startedAt,omitempty"`
	Builder          string `json:"builder,omitempty"`
	SourceRepository string `json:"sourceRepository,omitempty"`
}

// Verify is Build's record with what Verify established: the self-test
// passed, what the image holds, ECR's scans of it and of the published
// image it would replace, and its signature.
type Verify struct {
	Build
	Result        string     `json:"result"`
	SelfTest      string     `json:"selfTest"`
	VerifiedAt    string     `json:"verifiedAt"`
	VerifyBuildID string     `json:"verifyBuildId"`
	Inventory     *Inventory `json:"inventory"`
	Scan          *Scan      `json:"scan"`
	// PublishedScan is ECR's scan of the image <version>-<arch> named when
	// Verify ran; nil when there was none. PublishedDigest is that image.
	PublishedScan *Scan    `json:"publishedScan"`
	Signing       *Signing `json:"signing"`
}

// Inventory is what one image holds, as buildspecs/inventory.sh lists it
// inside the image, with the base image and the recipe.
type Inventory struct {
	Base    Base              `json:"base"`
	Recipe  string            `json:"recipe"`
	OS      map[string]string `json:"os"`
	Runtime map[string]string `json:"runtime"`
	Npm     map[string]string `json:"npm"`
	Pip     map[string]string `json:"pip"`
	Seconds int               `json:"seconds"`
	// Distro is the distribution the image runs, from its os-release; nil
	// in records from before it was kept, and for an image without one.
	Distro *Distro `json:"distro,omitempty"`
	// OSArch is each OS package's architecture as its package manager
	// names it (dpkg: amd64, arm64, all; apk: x86_64, aarch64, noarch), for
	// package URLs; OS stays name -> version, as dpkg-query gave it.
	OSArch map[string]string `json:"osArch,omitempty"`
	// PackageManager is "dpkg" or "apk": whose database OS was read from.
	PackageManager string `json:"packageManager,omitempty"`
}

// Distro is a distribution release, by its os-release(5) fields.
type Distro struct {
	ID        string `json:"id"`                 // ID: debian, ubuntu, alpine
	VersionID string `json:"versionId"`          // VERSION_ID: 13, 24.04, 3.22.1
	Codename  string `json:"codename,omitempty"` // VERSION_CODENAME: trixie, noble
	Name      string `json:"name,omitempty"`     // PRETTY_NAME
}

// String names the release as a changelog line does: "debian 13 (trixie)".
func (d *Distro) String() string {
	if d == nil {
		return "unknown"
	}
	s := d.ID + " " + d.VersionID
	if d.Codename != "" {
		s += " (" + d.Codename + ")"
	}
	return s
}

// Base is the image a runtime's Dockerfile starts from, and its digest for
// the image's architecture.
type Base struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Kinds are the inventory's kinds of item, in the order changelogs list them.
var Kinds = []string{"os", "runtime", "npm", "pip"}

// Items returns the inventory's items of one kind.
func (i *Inventory) Items(kind string) map[string]string {
	switch kind {
	case "os":
		return i.OS
	case "runtime":
		return i.Runtime
	case "npm":
		return i.Npm
	case "pip":
		return i.Pip
	}
	return nil
}

// Count is how many items the inventory lists.
func (i *Inventory) Count() int { return len(i.OS) + len(i.Runtime) + len(i.Npm) + len(i.Pip) }

// Scan statuses besides ECR's own (COMPLETE, ACTIVE, FAILED, ...).
const (
	// ScanTimeout: the scan did not end before the entry's deadline.
	ScanTimeout = "TIMEOUT"
)

// Scan is ECR's scan of one image, as Verify read it.
type Scan struct {
	Status      string         `json:"status"`
	Description string         `json:"description"`
	Digest      string         `json:"digest"`
	CompletedAt string         `json:"completedAt"`
	Counts      map[string]int `json:"counts"`
	Findings    []Finding      `json:"findings"`
}

// Complete is true when the scan has findings to judge: COMPLETE (basic)
// or ACTIVE (enhanced, continuous).
func (s *Scan) Complete() bool { return s != nil && (s.Status == "COMPLETE" || s.Status == "ACTIVE") }

// Finding is one vulnerability in one package. Fix is nil for basic
// scanning (no fix information), else YES, NO or PARTIAL.
type Finding struct {
	ID       string  `json:"id"`
	Severity string  `json:"severity"`
	Package  string  `json:"package"`
	Version  string  `json:"version"`
	Fix      *string `json:"fix"`
}

// Key identifies a finding across two scans.
func (f Finding) Key() string { return f.ID + " " + f.Package }

// Signing is the draft's signature, with ECR managed signing on.
type Signing struct {
	Status   string   `json:"status"`
	Profiles []string `json:"profiles"`
}

// Set is one published set: the index, its dated tag, when the index was
// pushed, and the per-architecture images by architecture.
type Set struct {
	Index    string            `json:"index"`
	DatedTag string            `json:"datedTag"`
	PushedAt string            `json:"pushedAt"`
	Images   map[string]string `json:"images"`
}

// Publish is Publish's record of one runtime-version in one execution.
type Publish struct {
	SchemaVersion int    `json:"schemaVersion"`
	Stage         string `json:"stage"`
	Result        string `json:"result"`
	ExecutionID   string `json:"executionId"`
	Runtime       string `json:"runtime"`
	Version       string `json:"version"`
	Repository    string `json:"repository"`
	Registry      string `json:"registry"`
	// Index, DatedTag and Images: what the tags name after this Publish
	// (for blocked and held, what they named and still name).
	Index    string            `json:"index"`
	DatedTag string            `json:"datedTag"`
	Images   map[string]string `json:"images"`
	// Previous is what the tags named before; nil on a first publish.
	Previous        *Set                        `json:"previous"`
	Changes         map[string]*Changes         `json:"changes,omitempty"`
	Vulnerabilities map[string]*Vulnerabilities `json:"vulnerabilities,omitempty"`
	// Gate, BlockedBy and BlockedImages: a blocked outcome's reasons and
	// the verified images it did not publish.
	Gate          string            `json:"gate,omitempty"`
	BlockedBy     []string          `json:"blockedBy,omitempty"`
	BlockedImages map[string]string `json:"blockedImages,omitempty"`
	PublishedAt   string            `json:"publishedAt,omitempty"`
	CheckedAt     string            `json:"checkedAt"`
	// ChangedAt is when the content the tags name was first pushed as an
	// index (the commit point), so a retried Publish says the same.
	ChangedAt string `json:"changedAt"`
}

// Ref is the published index by digest, as consumers pull it.
func (p *Publish) Ref() string { return p.Registry + "/" + p.Repository + "@" + p.Index }

// Changes is what changed in one architecture's image, by the inventories.
type Changes struct {
	// PreviousKnown is false when the image replaced has no inventory (a
	// first publish, or one from before inventories were kept); Packages
	// then counts what the new image holds.
	PreviousKnown bool      `json:"previousKnown"`
	Base          *Move     `json:"base"`
	RecipeChanged bool      `json:"recipeChanged"`
	Added         []Item    `json:"added"`
	Removed       []Item    `json:"removed"`
	Upgraded      []Upgrade `json:"upgraded"`
	Packages      int       `json:"packages,omitempty"`
	// Distro is the distribution release's move (Distro.String of each),
	// when both inventories name one and they differ.
	Distro *Move `json:"distro,omitempty"`
}

// Move is a value that changed.
type Move struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Item is one inventory item.
type Item struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Upgrade is an item whose version changed (any change: Debian version
// order is dpkg's to judge).
type Upgrade struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Vulnerabilities compares one architecture's new image's scan with the
// scan of the image it replaces.
type Vulnerabilities struct {
	Counts         map[string]int `json:"counts"`
	PreviousCounts map[string]int `json:"previousCounts"`
	Fixed          []CVE          `json:"fixed"`
	Introduced     []CVE          `json:"introduced"`
}

// CVE is a finding as the changelog lists it.
type CVE struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Package  string `json:"package"`
}

// Release is releases/<rt>/<v>.json: the latest outcome of a
// runtime-version, written by Publish and by rollback.
type Release struct {
	SchemaVersion int               `json:"schemaVersion"`
	Runtime       string            `json:"runtime"`
	Version       string            `json:"version"`
	Repository    string            `json:"repository"`
	Result        string            `json:"result"`
	ExecutionID   string            `json:"executionId"`
	CheckedAt     string            `json:"checkedAt"`
	ChangedAt     string            `json:"changedAt"`
	Index         string            `json:"index"`
	DatedTag      string            `json:"datedTag"`
	Images        map[string]string `json:"images"`
}

// Hold is holds/<rt>/<v>.json: while it exists, Publish leaves the
// runtime-version's tags where a rollback put them.
type Hold struct {
	SchemaVersion int    `json:"schemaVersion"`
	To            string `json:"to"`
	Index         string `json:"index"`
	At            string `json:"at"`
	By            string `json:"by"`
}

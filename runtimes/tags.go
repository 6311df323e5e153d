package runtimes

import (
	"strings"
	"time"
)

// The tag scheme, the one statement of it: the stages (internal/stage), the
// lifecycle rules, the tag immutability filters, status and rollback all
// derive their tags from these functions and the variables each build-graph
// entry carries.
//
//	draft-<version>-<arch>-<execution id>  pushed by Build, read by Verify and
//	                                       Publish, deleted by Publish; mutable,
//	                                       so a retried Build overwrites it
//	<version>-<arch>                       published per-architecture image; moves
//	<version>                              published multi-architecture index; moves
//	<version>-r<yyyymmdd>-<execution id>   published index, dated; immutable
//
// The execution id ties the stages of one pipeline execution together and stays
// the same when a stage is retried, so retries find their drafts.

// DraftPrefix starts every draft tag. The lifecycle rule for drafts and the
// mutability exclusion both match it.
const DraftPrefix = "draft-"

// DatedTagMarker sits between the version and the date of a dated tag. It is
// what a wildcard can tell apart from every other tag: versions may not contain
// it, and execution ids (hexadecimal UUIDs) cannot.
const DatedTagMarker = "-r20"

// DatedTagPattern matches every dated tag and no other tag (ECR wildcard).
const DatedTagPattern = "*" + DatedTagMarker + "*"

// DraftTag is the tag Build pushes and Publish deletes.
func DraftTag(version string, arch Arch, executionID string) string {
	return DraftPrefix + version + "-" + string(arch) + "-" + executionID
}

// MovingTags are the published tags of a runtime-version that move with
// each publish: <version>-<arch> for each architecture, then <version>, in
// the order Publish and a rollback move them (the index last, once the
// images it names carry their tags).
func MovingTags(rt *Runtime, version string) []string {
	var tags []string
	for _, a := range rt.Architectures {
		tags = append(tags, ArchTag(version, a))
	}
	return append(tags, version)
}

// ArchTag is the published per-architecture tag.
func ArchTag(version string, arch Arch) string {
	return version + "-" + string(arch)
}

// DatedTag is the immutable tag of one publish: yyyymmdd is the day the
// drafts were pushed, so a retried Publish writes the same tag again, and
// executionID is the whole execution id: two executions whose ids share a
// prefix must not find each other's commit point.
func DatedTag(version, yyyymmdd, executionID string) string {
	return version + "-r" + yyyymmdd + "-" + executionID
}

// ParseDatedTag reads a dated tag of version:
// <version>-r<yyyymmdd>-<execution id>, with a real date and a CodePipeline
// execution id (a lowercase UUID). Tags written before the whole id was
// used carry its first 8 characters (8 lowercase hex): they stay valid for
// rollback and status, and their id is those 8 characters.
func ParseDatedTag(version, tag string) (yyyymmdd, executionID string, ok bool) {
	rest, found := strings.CutPrefix(tag, version+"-r")
	if !found || len(rest) < len("yyyymmdd-") || rest[8] != '-' {
		return "", "", false
	}
	if _, err := time.Parse("20060102", rest[:8]); err != nil {
		return "", "", false
	}
	id := rest[9:]
	if !isLowerHex(id, 8) && !isExecutionID(id) {
		return "", "", false
	}
	return rest[:8], id, true
}

// IsDatedTagOf tells whether tag is a dated tag of version (ParseDatedTag).
func IsDatedTagOf(version, tag string) bool {
	_, _, ok := ParseDatedTag(version, tag)
	return ok
}

// isExecutionID: 8-4-4-4-12 lowercase hex, as CodePipeline writes them.
func isExecutionID(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) != 5 {
		return false
	}
	for i, n := range []int{8, 4, 4, 4, 12} {
		if !isLowerHex(parts[i], n) {
			return false
		}
	}
	return true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ParseDraftTag reads draft-<version>-<arch>-<execution id> for one version
// and its architectures. A version that another version starts with
// ("22" and "22-slim") cannot be confused: the architecture must follow.
func ParseDraftTag(tag, version string, archs []Arch) (arch Arch, executionID string, ok bool) {
	rest, found := strings.CutPrefix(tag, DraftPrefix+version+"-")
	if !found {
		return "", "", false
	}
	for _, a := range archs {
		if id, found := strings.CutPrefix(rest, string(a)+"-"); found && id != "" {
			return a, id, true
		}
	}
	return "", "", false
}

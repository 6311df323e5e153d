package preflight

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
)

// scanning checks that ECR will scan the stack's repositories on push.
// Verify waits for the scan of each draft it pushed; with no scan coming it
// ends every entry with scan-timeout after evergreen:scanWaitMinutes.
//
// The stack asks for scan on push per repository (ImageScanOnPush), which
// ECR honours only while the registry has no scanning rules of its own:
// once the registry-level configuration has rules, a repository no
// SCAN_ON_PUSH rule matches is scanned manually only (basic scanning), or
// not at all (enhanced). With evergreen:enhancedScanning the stack writes
// the registry's configuration itself (for its repositories), so there is
// nothing to check.
func scanning(ctx context.Context, c Clients, in Inputs) []Result {
	if in.Config.EnhancedScanning {
		return []Result{{OK, "scanning", "the stack sets the registry's scanning configuration (" + config.KeyEnhancedScanning + ")", ""}}
	}
	got, err := c.ECR.GetRegistryScanningConfiguration(ctx, &ecr.GetRegistryScanningConfigurationInput{})
	if err != nil {
		return []Result{{Warn, "scanning", "cannot read the registry's scanning configuration: " + awsops.Short(err),
			"allow ecr:GetRegistryScanningConfiguration, or check the ECR console (Private registry, Scanning): the stack's repositories must be scanned on push"}}
	}
	sc := got.ScanningConfiguration
	if sc == nil {
		sc = &ecrtypes.RegistryScanningConfiguration{}
	}
	var repos []string
	for _, rt := range in.List.Runtimes {
		repos = append(repos, in.Config.RepositoryName(rt.Name))
	}
	if sc.ScanType == ecrtypes.ScanTypeEnhanced {
		return []Result{{Warn, "scanning", "the registry scans with Amazon Inspector (ENHANCED) but " + config.KeyEnhancedScanning + " is false: Verify reads basic findings and lacks the inspector2 permissions ECR requires to return enhanced ones, so every entry would fail",
			"set " + config.KeyEnhancedScanning + " to true (the stack then writes the registry's scanning configuration for its repositories), or switch the registry back to basic scanning"}}
	}
	if len(sc.Rules) == 0 {
		return []Result{{OK, "scanning", "basic scanning with no registry rules: the repositories' own scan on push applies", ""}}
	}
	var unmatched []string
	for _, repo := range repos {
		if !slices.ContainsFunc(sc.Rules, func(r ecrtypes.RegistryScanningRule) bool {
			return r.ScanFrequency == ecrtypes.ScanFrequencyScanOnPush && slices.ContainsFunc(r.RepositoryFilters, func(f ecrtypes.ScanningRepositoryFilter) bool {
				return filterMatches(deref(f.Filter), repo)
			})
		}) {
			unmatched = append(unmatched, repo)
		}
	}
	if len(unmatched) == 0 {
		return []Result{{OK, "scanning", "the registry's scan-on-push rules match every repository of the stack", ""}}
	}
	return []Result{{Warn, "scanning",
		fmt.Sprintf("the registry has scanning rules, and no SCAN_ON_PUSH rule matches %s: ECR would not scan their drafts on push, and Verify would end each entry with scan-timeout", strings.Join(unmatched, ", ")),
		"add a SCAN_ON_PUSH rule with the filter " + suggestFilter(in.Config.RepositoryPrefix, unmatched) + " (WILDCARD) to the registry's scanning configuration (ECR console, Private registry, Scanning; or aws ecr put-registry-scanning-configuration with the existing rules plus that one)"}}
}

// filterMatches is ECR's rule for a scanning repository filter ("Filters
// to choose which repositories are scanned", ECR User Guide): a filter
// with no wildcard matches every repository name that contains it; with
// wildcards, each * stands for zero or more characters and the whole name
// must match.
func filterMatches(filter, repo string) bool {
	if !strings.Contains(filter, "*") {
		return strings.Contains(repo, filter)
	}
	parts := strings.Split(filter, "*")
	rest, ok := strings.CutPrefix(repo, parts[0])
	if !ok {
		return false
	}
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return strings.HasSuffix(rest, last)
}

// suggestFilter is one filter that matches the stack's repositories: the
// prefix with a wildcard, or with no prefix the bare names.
func suggestFilter(prefix string, repos []string) string {
	if prefix != "" {
		return prefix + "*"
	}
	return strings.Join(repos, ", ")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

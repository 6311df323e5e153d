package stacks_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/stacks"
	"go.yaml.in/yaml/v3"
)

// physicalNames lists every name a template gives a resource (a property
// ending in "Name", e.g. RepositoryName, LogGroupName, PolicyName), with
// AWS::StackName replaced by the stack's name and references to the stack's
// own resources marked as such (CloudFormation names those uniquely).
func physicalNames(t *testing.T, s synthesized, stackName string) map[string]string {
	t.Helper()
	var render func(v any) string
	render = func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case map[string]any:
			if ref, ok := x["Ref"].(string); ok {
				if ref == "AWS::StackName" {
					return stackName
				}
				return "<" + stackName + ":" + ref + ">"
			}
			if j, ok := x["Fn::Join"].([]any); ok {
				var parts []string
				for _, p := range j[1].([]any) {
					parts = append(parts, render(p))
				}
				return strings.Join(parts, render(j[0]))
			}
			return fmt.Sprintf("<%s:%v>", stackName, x)
		}
		return fmt.Sprint(v)
	}
	out := map[string]string{}
	for id, r := range s.json["Resources"].(map[string]any) {
		typ := r.(map[string]any)["Type"]
		for k, v := range props(r.(map[string]any)) {
			// Names that are not account-wide physical names: labels, and
			// an AWS::IAM::Policy's name, which is unique per role it is
			// attached to (each copy has its own roles).
			if !strings.HasSuffix(k, "Name") || k == "DisplayName" || k == "MetricName" || k == "ServiceName" ||
				typ == "AWS::IAM::Policy" && k == "PolicyName" {
				continue
			}
			out[id+"."+k] = render(v)
		}
	}
	return out
}

// Two copies of the app (another stack name and repository prefix) deploy
// side by side in one account and region: no physical name is shared.
func TestTwoCopiesShareNoPhysicalName(t *testing.T) {
	a := physicalNames(t, def, "Default")
	b := physicalNames(t, staging, stagingConfig().StackName)
	taken := map[string]string{}
	for where, name := range a {
		taken[name] = where
	}
	checked := 0
	for where, name := range b {
		checked++
		if other, ok := taken[name]; ok {
			t.Errorf("%s and %s are both named %q", other, where, name)
		}
	}
	if checked == 0 {
		t.Fatal("no physical names found")
	}
	for where, name := range b {
		if strings.HasSuffix(where, ".RepositoryName") && !strings.HasPrefix(name, stagingConfig().RepositoryPrefix) {
			t.Errorf("%s is %q, without the prefix %q", where, name, stagingConfig().RepositoryPrefix)
		}
	}
}

// With evergreen:maxConcurrentBuilds, at most that many entries of one
// environment type and compute type run at once: depend-on chains, and a
// batch timeout sized for the longest chain.
func TestConcurrencyCapChainsTheBuildGraph(t *testing.T) {
	limit := stagingConfig().MaxConcurrentBuilds
	projects := projectsByStage(t, staging)
	for _, spec := range staging.specs {
		if !spec.Batch() {
			continue
		}
		var doc struct {
			Batch struct {
				Graph []struct {
					Identifier string
					Env        struct {
						Type        string
						ComputeType string `yaml:"compute-type"`
					}
					DependOn []string `yaml:"depend-on"`
				} `yaml:"build-graph"`
			}
		}
		if err := yaml.Unmarshal(spec.Content, &doc); err != nil {
			t.Fatal(err)
		}
		// Simulate the batch: each entry starts when its dependencies are
		// done; count the entries of a kind that can run at once, which is
		// the number of chains of that kind.
		kind := map[string]string{}
		heads := map[string]int{}
		depth := map[string]int{}
		longest := 0
		for _, e := range doc.Batch.Graph {
			k := e.Env.Type + "/" + e.Env.ComputeType
			kind[e.Identifier] = k
			depth[e.Identifier] = 1
			switch len(e.DependOn) {
			case 0:
				heads[k]++
			case 1:
				d := e.DependOn[0]
				if kind[d] != k {
					t.Errorf("%s: %s depends on %s, of another kind", spec.Name(), e.Identifier, d)
				}
				depth[e.Identifier] = depth[d] + 1
			default:
				t.Errorf("%s: %s depends on %v; one chain predecessor expected", spec.Name(), e.Identifier, e.DependOn)
			}
			longest = max(longest, depth[e.Identifier])
		}
		for k, n := range heads {
			if n > limit {
				t.Errorf("%s: %d %s entries start at once, over the cap of %d", spec.Name(), n, k, limit)
			}
		}
		if longest != spec.LongestChain {
			t.Errorf("%s: longest chain %d, spec says %d", spec.Name(), longest, spec.LongestChain)
		}
		batch := props(projects[spec.FileName()])["BuildBatchConfig"].(map[string]any)
		timeout := int(batch["TimeoutInMins"].(float64))
		uncapped := stacks.BatchTimeout(withoutCap(spec))
		if timeout != stacks.BatchTimeout(spec) || longest < len(doc.Batch.Graph) && timeout*len(doc.Batch.Graph) != uncapped*longest {
			t.Errorf("%s: batch timeout %d minutes; with a cap it follows the longest chain (%d of %d entries; %d minutes without the cap)", spec.Name(), timeout, longest, len(doc.Batch.Graph), uncapped)
		}
		if got := int(batch["Restrictions"].(map[string]any)["MaximumBuildsAllowed"].(float64)); got != 2*len(doc.Batch.Graph) {
			t.Errorf("%s: MaximumBuildsAllowed %d, want twice the %d entries, the cap notwithstanding", spec.Name(), got, len(doc.Batch.Graph))
		}
	}
	// The default has no cap: no entry waits.
	for _, spec := range def.specs {
		if strings.Contains(string(spec.Content), "depend-on") {
			t.Errorf("%s: depend-on without a cap", spec.Name())
		}
	}
}

func withoutCap(s buildspecs.Spec) buildspecs.Spec {
	s.LongestChain = 0
	return s
}

package stacks_test

import (
	"encoding/json"
	"path"
	"slices"
	"sort"
	"testing"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/referrers"
	"github.com/evergreen-images/evergreen/stacks"
)

// The lifecycle policy is tested the way ECR evaluates it (Amazon ECR User
// Guide, "Lifecycle policy evaluation rules"): rules in priority order; an
// image belongs to the first rule whose tag selection it matches and can be
// expired by that rule only; a tagged selection with a pattern list matches an
// image when every pattern matches one of its tags; sinceImagePushed expires
// images older than the count; imageCountMoreThan keeps the newest count.

type lcRule struct {
	RulePriority float64
	Selection    struct {
		TagStatus      string
		TagPatternList []string
		CountType      string
		CountNumber    float64
	}
}

type image struct {
	name string
	tags []string
	age  float64  // days since pushed
	refs []string // children, for an index
	// subject is the image a referrer (SBOM, provenance, verdict) is
	// attached to.
	subject string
}

// ECR documents that it deletes referrers within 24 hours of their subject
// ("Sign images", Amazon ECR User Guide), not whether a tagStatus untagged
// rule selects a referrer on its own. The evaluator takes both readings.
type referrerRules int

const (
	rulesSelectReferrers referrerRules = iota // a referrer is an image like any other
	rulesSkipReferrers                        // only the subject's deletion removes it
)

// expireWith is expire under one reading, followed by ECR's deletion of the
// referrers of every deleted image (repeated: a referrer may have its own).
func expireWith(rules []lcRule, images []image, how referrerRules) map[string]bool {
	var selectable []image
	for _, img := range images {
		if how == rulesSelectReferrers || img.subject == "" {
			selectable = append(selectable, img)
		}
	}
	expired := expire(rules, selectable)
	for changed := true; changed; {
		changed = false
		for _, img := range images {
			if img.subject != "" && expired[img.subject] && !expired[img.name] {
				expired[img.name] = true
				changed = true
			}
		}
	}
	return expired
}

func (r lcRule) selects(img image) bool {
	switch r.Selection.TagStatus {
	case "untagged":
		return len(img.tags) == 0
	case "any":
		return true
	}
	if len(img.tags) == 0 {
		return false
	}
	for _, p := range r.Selection.TagPatternList {
		if !slices.ContainsFunc(img.tags, func(tag string) bool {
			ok, _ := path.Match(p, tag) // '*' never meets a '/' in a tag
			return ok
		}) {
			return false
		}
	}
	return true
}

func expire(rules []lcRule, images []image) map[string]bool {
	sort.Slice(rules, func(i, j int) bool { return rules[i].RulePriority < rules[j].RulePriority })
	claimed := map[int][]image{}
	for _, img := range images {
		for i, r := range rules {
			if r.selects(img) {
				claimed[i] = append(claimed[i], img)
				break
			}
		}
	}
	expired := map[string]bool{}
	for i, imgs := range claimed {
		s := rules[i].Selection
		switch s.CountType {
		case "sinceImagePushed":
			for _, img := range imgs {
				if img.age > s.CountNumber {
					expired[img.name] = true
				}
			}
		case "imageCountMoreThan":
			sort.Slice(imgs, func(a, b int) bool { return imgs[a].age < imgs[b].age })
			for n, img := range imgs {
				if float64(n) >= s.CountNumber {
					expired[img.name] = true
				}
			}
		}
	}
	return expired
}

func lifecycleOf(t *testing.T, s synthesized, repoName string) []lcRule {
	t.Helper()
	for _, r := range resources(s, "AWS::ECR::Repository") {
		p := props(r)
		if p["RepositoryName"] != repoName {
			continue
		}
		var policy struct{ Rules []lcRule }
		text := p["LifecyclePolicy"].(map[string]any)["LifecyclePolicyText"].(string)
		if err := json.Unmarshal([]byte(text), &policy); err != nil {
			t.Fatal(err)
		}
		return policy.Rules
	}
	t.Fatalf("no repository %s", repoName)
	return nil
}

func TestLifecycleRulesNeverBreakAPublishedTag(t *testing.T) {
	// The tags below name node 22 and 24: the sixty-version list (testdata)
	// has them whatever the default list holds.
	rules := lifecycleOf(t, sixty, config.Default().RepositoryName("node"))
	images := []image{
		// today's publish of 22
		{name: "22-arm64 today", tags: []string{"22-arm64"}, age: 0.2},
		{name: "22-amd64 today", tags: []string{"22-amd64"}, age: 0.2},
		{name: "22 index today", tags: []string{"22", "22-r20261126-aaaaaaaa"}, age: 0.1, refs: []string{"22-arm64 today", "22-amd64 today"}},
		// yesterday's: the moving tags left, the dated index holds them
		{name: "22-arm64 yesterday", age: 1.2},
		{name: "22 index yesterday", tags: []string{"22-r20261125-bbbbbbbb"}, age: 1.1, refs: []string{"22-arm64 yesterday"}},
		// a dated tag about to expire, whose child was built a day before it
		{name: "child of an 89-day index", age: 90.9},
		{name: "89-day index", tags: []string{"22-r20260829-cccccccc"}, age: 89.95, refs: []string{"child of an 89-day index"}},
		// past the retention window: index and child go together
		{name: "child of a 93-day index", age: 93.5},
		{name: "93-day index", tags: []string{"22-r20260825-dddddddd"}, age: 93, refs: []string{"child of a 93-day index"}},
		// 24 has not been published for 100 days (a broken build): its
		// moving tags must survive, dated tag or not
		{name: "24-arm64 old", tags: []string{"24-arm64"}, age: 100},
		{name: "24 index old", tags: []string{"24", "24-r20260818-eeeeeeee"}, age: 100, refs: []string{"24-arm64 old"}},
		// a Publish that stopped before removing its draft tag
		{name: "half-published", tags: []string{"24-amd64", "draft-24-amd64-0a1b2c3d-0000-4000-8000-000000000000"}, age: 3},
		// drafts: abandoned, and in flight
		{name: "abandoned draft", tags: []string{"draft-22-arm64-11111111-0000-4000-8000-000000000000"}, age: 1.5},
		{name: "in-flight draft", tags: []string{"draft-22-arm64-22222222-0000-4000-8000-000000000000"}, age: 0.5},
	}
	expired := expire(rules, images)
	wantExpired := []string{"abandoned draft", "93-day index", "child of a 93-day index"}
	var got []string
	for name := range expired {
		got = append(got, name)
	}
	slices.Sort(got)
	slices.Sort(wantExpired)
	if !slices.Equal(got, wantExpired) {
		t.Errorf("expired %v, want %v", got, wantExpired)
	}
	// No image that survives may reference one that does not.
	for _, img := range images {
		if expired[img.name] {
			continue
		}
		for _, c := range img.refs {
			if expired[c] {
				t.Errorf("%s survives but its child %s expires", img.name, c)
			}
		}
	}
}

func TestUntaggedImagesOutliveEveryDatedIndex(t *testing.T) {
	cfg := config.Default()
	for _, c := range []struct{ draft, dated int }{{1, 90}, {2, 30}, {1, 7}} {
		cfg.DraftRetentionDays, cfg.DatedRetentionDays = c.draft, c.dated
		// A child is pushed by Build at most DraftRetentionDays before the
		// Publish that pushes the dated index, which lives DatedRetentionDays.
		if got := stacks.UntaggedRetentionDays(cfg); got <= c.draft+c.dated {
			t.Errorf("drafts %d days, dated %d days: untagged images kept %d days, a dated index can outlive its children", c.draft, c.dated, got)
		}
	}
	rules := lifecycleOf(t, def, config.Default().RepositoryName(defaultList.Runtimes[len(defaultList.Runtimes)-1].Name))
	last := rules[len(rules)-1].Selection
	if last.TagStatus != "untagged" || last.CountType != "sinceImagePushed" || last.CountNumber != 92 {
		t.Errorf("the last rule is %+v, want untagged images retired after 92 days", last)
	}
	for _, r := range rules {
		if r.Selection.TagStatus == "any" {
			t.Errorf("rule %v selects any image: it could expire a published one", r.RulePriority)
		}
	}
}

// Evidence lives exactly as long as its subject: never expired while the
// image it describes is kept, always gone with it, whichever way ECR reads
// an untagged rule for referrers. The current evidence of a published image
// carries its evidence tag; superseded evidence is untagged and was pushed
// after its subject (by Publish, after Build pushed the image).
func TestEvidenceIsKeptExactlyAsLongAsItsSubject(t *testing.T) {
	rules := lifecycleOf(t, sixty, config.Default().RepositoryName("node"))
	sbom, prov, verdict := referrers.ArtifactSBOM, referrers.ArtifactProvenance, referrers.ArtifactVerdict
	images := []image{
		// today's publish of 22, and its evidence
		{name: "22-amd64 today", tags: []string{"22-amd64"}, age: 0.2},
		{name: "22 index today", tags: []string{"22", "22-r20261126-aaaaaaaa"}, age: 0.1, refs: []string{"22-amd64 today"}},
		{name: "sbom of 22-amd64 today", tags: []string{referrers.EvidenceTag("22-amd64", sbom)}, age: 0.1, subject: "22-amd64 today"},
		{name: "provenance of 22-amd64 today", tags: []string{referrers.EvidenceTag("22-amd64", prov)}, age: 0.1, subject: "22-amd64 today"},
		{name: "verdict of 22 today", tags: []string{referrers.EvidenceTag("22", verdict)}, age: 0.1, subject: "22 index today"},
		// yesterday's: superseded, held by yesterday's dated index
		{name: "22-amd64 yesterday", age: 1.2},
		{name: "22 index yesterday", tags: []string{"22-r20261125-bbbbbbbb"}, age: 1.1, refs: []string{"22-amd64 yesterday"}},
		{name: "sbom of 22-amd64 yesterday", age: 1.1, subject: "22-amd64 yesterday"},
		{name: "verdict of 22 yesterday", age: 1.1, subject: "22 index yesterday"},
		// an image whose dated index is about to expire: its evidence was
		// pushed by the Publish a day after the Build
		{name: "child of an 89-day index", age: 90.9},
		{name: "89-day index", tags: []string{"22-r20260829-cccccccc"}, age: 89.95, refs: []string{"child of an 89-day index"}},
		{name: "sbom of the 89-day child", age: 89.95, subject: "child of an 89-day index"},
		{name: "verdict of the 89-day index", age: 89.95, subject: "89-day index"},
		// past the retention window: image, index and evidence go together
		{name: "child of a 93-day index", age: 93.5},
		{name: "93-day index", tags: []string{"22-r20260825-dddddddd"}, age: 93, refs: []string{"child of a 93-day index"}},
		{name: "sbom of the 93-day child", age: 93, subject: "child of a 93-day index"},
		{name: "verdict of the 93-day index", age: 93, subject: "93-day index"},
		// 24, unchanged for 100 days: the image and its evidence outlive
		// every age rule
		{name: "24-arm64 old", tags: []string{"24-arm64"}, age: 100},
		{name: "24 index old", tags: []string{"24", "24-r20260818-eeeeeeee"}, age: 100, refs: []string{"24-arm64 old"}},
		{name: "sbom of 24-arm64", tags: []string{referrers.EvidenceTag("24-arm64", sbom)}, age: 100, subject: "24-arm64 old"},
		{name: "provenance of 24-arm64", tags: []string{referrers.EvidenceTag("24-arm64", prov)}, age: 100, subject: "24-arm64 old"},
		{name: "verdict of 24", tags: []string{referrers.EvidenceTag("24", verdict)}, age: 100, subject: "24 index old"},
		// Not modelled: signatures by ECR managed signing. ECR pushes them
		// untagged; if the untagged rule selects referrers, the signature
		// of an image published for longer than the untagged window
		// expires while the image stays, and no tag of ours can keep it
		// (docs/verifying.md).
	}
	byName := map[string]image{}
	for _, img := range images {
		byName[img.name] = img
	}
	for _, how := range []referrerRules{rulesSelectReferrers, rulesSkipReferrers} {
		expired := expireWith(rules, images, how)
		for _, img := range images {
			if img.subject == "" {
				continue
			}
			if expired[img.name] != expired[img.subject] {
				t.Errorf("reading %d: %s expired %v, its subject %s expired %v", how, img.name, expired[img.name], img.subject, expired[img.subject])
			}
		}
		for _, gone := range []string{"93-day index", "child of a 93-day index"} {
			if !expired[gone] {
				t.Errorf("reading %d: %s is kept: the model no longer exercises expiry", how, gone)
			}
		}
		for _, kept := range []string{"24-arm64 old", "24 index old", "child of an 89-day index"} {
			if expired[kept] {
				t.Errorf("reading %d: %s expired", how, kept)
			}
		}
	}
	// Without its tag, the evidence of an image unchanged for 100 days would
	// be the untagged rule's, if that rule selects referrers: why the tag.
	untagged := slices.Clone(images)
	for i := range untagged {
		if untagged[i].name == "sbom of 24-arm64" {
			untagged[i].tags = nil
		}
	}
	if !expireWith(rules, untagged, rulesSelectReferrers)["sbom of 24-arm64"] {
		t.Errorf("an untagged 100-day SBOM survives the untagged rule: is the evidence tag still needed?")
	}
}

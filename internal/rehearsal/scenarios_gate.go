package rehearsal

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The gate scenarios: the vulnerability gate, on scans the ECR
// stand-in serves as each scenario declares them (scan.go). They run after
// the release scenarios, as executions of their own with drafts made from
// the published images (no image build), like those:
//
//   - execution 4 of node 22 and node-ci-cd 22, both with one OS package
//     changed on amd64 (a new content). node-ci-cd 22's published amd64
//     image is declared with a HIGH and a MEDIUM finding, its new draft
//     with the MEDIUM one only; node 22's new amd64 draft brings a CRITICAL
//     finding its published image does not have.
//     gate-allows-better: node-ci-cd 22 publishes, and its Publish record
//     and the changelog list the HIGH CVE as fixed.
//     gate-blocks-worse: node 22 is blocked: its tags, parameters and
//     drafts stay, it gets no Fresh datapoint, while node-ci-cd 22
//     publishes in the same Publish stage. The Report sends the changelog,
//     sends the CVE to the alert topic and fails; its retry fails again and
//     sends nothing.
//   - scan-timeout: execution 5, node 22 amd64 only, whose draft's scan
//     never ends. Verify must end the entry with "scan-timeout" after its
//     bound, writing no verification record. The bound is 20 s here, less
//     than evergreen:scanWaitMinutes allows (at least 1 minute), to keep CI
//     short: the command waits the same way for any bound.

const (
	fixedCVE      = "CVE-2026-1111"
	remainingCVE  = "CVE-2026-1112"
	introducedCVE = "CVE-2026-2222"
)

func (r *rehearsal) gateScenarios(pubs []publishEntry, builds []buildEntry) {
	names := []string{"gate-allows-better", "gate-blocks-worse", "scan-timeout"}
	fail := func(why string) {
		for _, n := range names {
			r.scenario(n, []string{why})
		}
	}
	reports := r.pl.Stage("Report")
	if len(reports) != 1 {
		fail(fmt.Sprintf("the pipeline has %d Report actions, want one", len(reports)))
		return
	}
	report := reports[0]
	node, nodeRel := releaseOf(pubs, builds, "node", "22")
	cicd, cicdRel := releaseOf(pubs, builds, "node-ci-cd", "22")
	if node == nil || cicd == nil || len(nodeRel) != 2 || len(cicdRel) != 2 {
		fail("node 22 and node-ci-cd 22, both architectures, are not among the rehearsed entries")
		return
	}
	prefix := r.projectVar("Publish", "PARAMETER_PREFIX")
	changes := r.projectVar("Report", "CHANGES_TOPIC_ARN")
	alerts := r.projectVar("Report", "ALERT_TOPIC_ARN")
	if prefix == "" || changes == "" || alerts == "" {
		fail("PARAMETER_PREFIX, CHANGES_TOPIC_ARN or ALERT_TOPIC_ARN did not resolve")
		return
	}
	r.gate([]publishEntry{*node, *cicd}, [][]buildEntry{nodeRel, cicdRel}, report, prefix, changes, alerts)
	r.scanTimeout(*node, nodeRel)
}

// changedDrafts pushes the drafts of a release for execution execID: the
// amd64 one with one OS package at another version (a new content), the
// arm64 one with the same content as the published image.
func (r *rehearsal) changedDrafts(p publishEntry, rel []buildEntry, execID string) (map[string]string, string, error) {
	repo, v := p.Entry.Get("REPOSITORY"), p.Entry.Get("VERSION")
	status, err := r.fileInImage(repo, v+"-amd64", "var/lib/dpkg/status")
	if err != nil {
		return nil, "", fmt.Errorf("reading /var/lib/dpkg/status of %s:%s-amd64: %w", repo, v, err)
	}
	pkg, from, to, bumped, err := bumpPackage(status)
	if err != nil {
		return nil, "", err
	}
	layer, err := fileLayer("var/lib/dpkg/status", bumped)
	if err != nil {
		return nil, "", err
	}
	drafts := map[string]string{}
	for _, b := range rel {
		arch := b.Build.Get("ARCH")
		var extra v1.Layer
		if arch == "amd64" {
			extra = layer
		}
		d, err := r.pushDraft(repo, v+"-"+arch, draftTag(v, arch, execID), extra)
		if err != nil {
			return nil, "", err
		}
		drafts[arch] = d
	}
	return drafts, fmt.Sprintf("%s %s -> %s", pkg, from, to), nil
}

// gate runs execution 4 and judges gate-allows-better (node-ci-cd 22) and
// gate-blocks-worse (node 22).
func (r *rehearsal) gate(pubs []publishEntry, rels [][]buildEntry, report Action, prefix, changesTopic, alertTopic string) {
	const name = "gate-blocks-worse"
	var fails, better []string
	ff := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	bf := func(format string, a ...any) { better = append(better, fmt.Sprintf(format, a...)) }
	judged := false
	defer func() {
		if !judged {
			// The execution did not get as far as its Publish records.
			better = append(better, fails...)
		}
		r.scenario("gate-allows-better", better)
		r.scenario(name, fails)
	}()
	node, cicd := pubs[0], pubs[1]
	id := NewUUID()
	before := map[string]releaseState{}
	drafts := map[string]map[string]string{}
	var all []buildEntry
	for i, p := range pubs {
		st, err := r.releaseState(p, prefix)
		if err != nil {
			ff("%v", err)
			return
		}
		key := p.Entry.Get("RUNTIME")
		before[key] = st
		d, change, err := r.changedDrafts(p, rels[i], id)
		if err != nil {
			ff("%v", err)
			return
		}
		drafts[key] = d
		all = append(all, rels[i]...)
		r.logf("== %s: execution %s: %s 22 amd64 %s", name, id, key, change)
	}
	// node 22's new amd64 image brings a CRITICAL finding its published
	// one (clean, undeclared) does not have. node-ci-cd 22's published
	// amd64 image has a HIGH finding its new one has not.
	declare := []struct {
		repo, digest string
		findings     []Finding
	}{
		{node.Entry.Get("REPOSITORY"), drafts["node"]["amd64"], []Finding{{introducedCVE, "CRITICAL", "libexample3", "3.0-1"}}},
		{cicd.Entry.Get("REPOSITORY"), before["node-ci-cd"].tags["22-amd64"], []Finding{{fixedCVE, "HIGH", "libexample1", "1.0-1"}, {remainingCVE, "MEDIUM", "libexample2", "2.0-1"}}},
		{cicd.Entry.Get("REPOSITORY"), drafts["node-ci-cd"]["amd64"], []Finding{{remainingCVE, "MEDIUM", "libexample2", "2.0-1"}}},
	}
	for _, d := range declare {
		if err := r.cfg.DeclareScan(d.repo, d.digest, Scan{Status: "COMPLETE", Findings: d.findings}); err != nil {
			ff("%v", err)
			return
		}
	}
	src := r.srcDir("")
	ok := true
	done := func(eid, step string, res RunResult) {
		r.report(eid, step, res, false)
		if res.Err != nil {
			ok = false
			ff("%s %s failed: %v (log %s)", step, eid, res.Err, res.Log)
		}
	}
	r.runBatch("Build", all, id, src, &runOpts{label: name}, done)
	r.runBatch("Verify", all, id, src, &runOpts{label: name}, done)
	if !ok {
		return
	}
	from := time.Now()
	for _, p := range pubs {
		done(p.Entry.ID, "publish ("+name+")", r.runBuild(p.Act, p.Entry, id, src, &runOpts{label: name}))
	}
	to := time.Now()
	if !ok {
		return
	}
	records := map[string]map[string]any{}
	for _, p := range pubs {
		var rec map[string]any
		data, found, err := r.moto.GetObject(r.bucket, recordKey(id, "publish", p.Entry))
		if err != nil || !found || json.Unmarshal(data, &rec) != nil {
			ff("no Publish record of %s (%v)", p.Entry.ID, err)
			return
		}
		records[p.Entry.Get("RUNTIME")] = rec
	}
	judged = true
	// node 22: blocked, and nothing of it moved.
	if res, _ := records["node"]["result"].(string); res != "blocked" {
		ff("node 22's Publish record says %q, want blocked", res)
	}
	by := fmt.Sprint(records["node"]["blockedBy"])
	if !strings.Contains(by, introducedCVE) || !strings.Contains(by, "amd64: CRITICAL 0 -> 1") {
		ff("node 22's record says it was blocked by %s, want amd64: CRITICAL 0 -> 1 with %s", by, introducedCVE)
	}
	nodeAfter, err := r.releaseState(node, prefix)
	if err != nil {
		ff("%v", err)
		return
	}
	if !maps.Equal(before["node"].tags, nodeAfter.tags) {
		ff("node 22's tags moved: %v -> %v", before["node"].tags, nodeAfter.tags)
	}
	for n, pm := range before["node"].params {
		if a := nodeAfter.params[n]; a.Value != pm.Value || a.Version != pm.Version {
			ff("%s was %q version %d, is %q version %d", n, pm.Value, pm.Version, a.Value, a.Version)
		}
	}
	regTags, _ := r.ecr().tags(r.repoRef(node.Entry.Get("REPOSITORY")))
	for arch, d := range drafts["node"] {
		if regTags[draftTag("22", arch, id)] != d {
			ff("node 22's blocked %s draft is gone: it stays to be looked at", arch)
		}
	}
	if err := r.quietAlarm("node", "22", from, to); err == nil {
		ff("node 22 got a Fresh datapoint although it was blocked")
	}
	// node-ci-cd 22: published.
	if res, _ := records["node-ci-cd"]["result"].(string); res != "published" {
		ff("node-ci-cd 22's Publish record says %q, want published", res)
	}
	cicdAfter, err := r.releaseState(cicd, prefix)
	if err != nil || cicdAfter.tags["22"] == before["node-ci-cd"].tags["22"] || cicdAfter.tags["22-amd64"] != drafts["node-ci-cd"]["amd64"] {
		ff("node-ci-cd 22 was not published: 22 %s (before %s), 22-amd64 %s, want %s (%v)",
			cicdAfter.tags["22"], before["node-ci-cd"].tags["22"], cicdAfter.tags["22-amd64"], drafts["node-ci-cd"]["amd64"], err)
	}
	if err := r.quietAlarm("node-ci-cd", "22", from, to); err != nil {
		ff("node-ci-cd 22: %v", err)
	}
	// gate-allows-better: node-ci-cd 22, with fewer findings, published,
	// and its record lists the HIGH CVE as fixed.
	if res, _ := records["node-ci-cd"]["result"].(string); res != "published" {
		bf("node-ci-cd 22's Publish record says %q, want published", res)
	}
	if cicdAfter.tags["22-amd64"] != drafts["node-ci-cd"]["amd64"] {
		bf("node-ci-cd 22-amd64 names %s, want the new draft %s", cicdAfter.tags["22-amd64"], drafts["node-ci-cd"]["amd64"])
	}
	vulns, _ := records["node-ci-cd"]["vulnerabilities"].(map[string]any)
	amd, _ := vulns["amd64"].(map[string]any)
	fixed, _ := json.Marshal(amd["fixed"])
	introduced, _ := json.Marshal(amd["introduced"])
	if string(fixed) != fmt.Sprintf(`[{"id":%q,"package":"libexample1","severity":"HIGH"}]`, fixedCVE) || string(introduced) != "[]" {
		bf("node-ci-cd 22's amd64 vulnerabilities: fixed %s, introduced %s; want %s fixed only", fixed, introduced, fixedCVE)
	}

	// The Report: the changelog to the changes topic, the CVE to the alert
	// topic, a failed stage; and a retry that sends nothing again.
	msgs, _ := r.moto.SNSMessages()
	for attempt := 1; attempt <= 2; attempt++ {
		res := r.runPlain(report, id, src, &runOpts{label: fmt.Sprintf("%s-%d", name, attempt), expectErr: true})
		r.report("(report)", fmt.Sprintf("report (%s, attempt %d)", name, attempt), res, true)
		if res.Err == nil {
			ff("the Report (attempt %d) passed with node 22 blocked", attempt)
		}
		log, _ := os.ReadFile(res.Log)
		if !strings.Contains(string(log), "the vulnerability gate blocked") {
			ff("the Report's log (attempt %d) does not say what the gate blocked (%s)", attempt, res.Log)
		}
	}
	now, _ := r.moto.SNSMessages()
	sent := now[len(msgs):]
	byTopic := map[string][]SNSMessage{}
	for _, m := range sent {
		byTopic[m.TopicArn] = append(byTopic[m.TopicArn], m)
	}
	if c := byTopic[changesTopic]; len(c) != 1 || !strings.Contains(c[0].Message, "\nnode 22: BLOCKED by the vulnerability gate") || !strings.Contains(c[0].Message, "\nnode-ci-cd 22: published") {
		ff("the changes topic got %d messages, want one changelog with node 22 blocked and node-ci-cd 22 published", len(c))
	} else if want := "fixed      " + fixedCVE + " (HIGH, libexample1)"; !strings.Contains(c[0].Message, want) {
		bf("the changelog lacks %q:\n%s", want, c[0].Message)
	}
	if a := byTopic[alertTopic]; len(a) != 1 || !strings.Contains(a[0].Message, introducedCVE) {
		ff("the alert topic got %d messages, want one naming %s", len(a), introducedCVE)
	}
	if len(sent) != 2 {
		ff("%d messages sent by two Report attempts, want 2 (the retry sends nothing)", len(sent))
	}
}

func (r *rehearsal) scanTimeout(p publishEntry, rel []buildEntry) {
	const name = "scan-timeout"
	var fails []string
	ff := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	defer func() { r.scenario(name, fails) }()
	repo, v := p.Entry.Get("REPOSITORY"), p.Entry.Get("VERSION")
	var b buildEntry
	for _, e := range rel {
		if e.Build.Get("ARCH") == "amd64" {
			b = e
		}
	}
	id := NewUUID()
	d, err := r.pushDraft(repo, v+"-amd64", draftTag(v, "amd64", id), nil)
	if err != nil {
		ff("%v", err)
		return
	}
	if err := r.cfg.DeclareScan(repo, d, Scan{Status: "IN_PROGRESS"}); err != nil {
		ff("%v", err)
		return
	}
	const bound = 20 // seconds; see the comment at the top
	b.VerifyAct = withProjectVar(b.VerifyAct, "SCAN_WAIT_SECONDS", fmt.Sprint(bound))
	r.logf("== %s: execution %s, node 22 amd64, a scan that never ends, SCAN_WAIT_SECONDS %d", name, id, bound)
	src := r.srcDir("")
	ok := true
	r.runBatch("Build", []buildEntry{b}, id, src, &runOpts{label: name}, func(eid, step string, res RunResult) {
		r.report(eid, step, res, false)
		if res.Err != nil {
			ok = false
			ff("Build failed: %v", res.Err)
		}
	})
	if !ok {
		return
	}
	var res RunResult
	r.runBatch("Verify", []buildEntry{b}, id, src, &runOpts{label: name, expectErr: true}, func(eid, step string, rr RunResult) {
		r.report(eid, step, rr, true)
		res = rr
	})
	log, _ := os.ReadFile(res.Log)
	switch {
	case res.Err == nil:
		ff("Verify passed an image whose scan never ended")
	case !strings.Contains(string(log), "scan-timeout: ECR's scan of"):
		ff("Verify failed without naming the scan-timeout (log %s)", res.Log)
	case res.Seconds < bound || res.Seconds > float64(bound)+90:
		ff("Verify ended after %.0f s, want the %d s bound and a poll (15 s), plus the pull, self-test and inventory", res.Seconds, bound)
	default:
		r.logf("   %s: Verify ended with scan-timeout after %.0f s", name, res.Seconds)
	}
	if _, found, _ := r.moto.GetObject(r.bucket, recordKey(id, "verify", b.Build)); found {
		ff("a verification record was written for an image the gate could not judge")
	}
}

// withProjectVar is act with one project variable set to value, as another
// configuration of the stack would synthesize it.
func withProjectVar(act Action, name, value string) Action {
	env := make([]RawVar, len(act.ProjectEnv))
	copy(env, act.ProjectEnv)
	for i := range env {
		if env[i].Name == name {
			env[i].Value = value
		}
	}
	act.ProjectEnv = env
	return act
}

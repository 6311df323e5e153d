package rehearsal

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The release scenarios: the Report stage's changelog, a release that
// did not change keeping its digests, a changed OS package reaching the
// changelog, and the consumers' SSM parameters. They run after execution 1
// (the rehearsal's main pipeline execution) has published, as executions
// of their own for one release (node 22, both architectures, the cheapest)
// with no image build: each draft is a published image with a new config
// creation time (a new digest over the same layers, as in
// partial-publish-new-drafts), or with one small layer appended. Then the
// real Build (it finds the draft, records it), Verify (self-test and
// inventory, for real) and Publish entries of the release run with the
// new execution id, and the Report stage. Each scenario is judged on the
// stand-ins' state: registry tags and digests, the records bucket, the
// SSM parameters and their write log, the recorded SNS messages and
// datapoints.

// releaseScenarios runs the scenarios after the main execution's Publish.
func (r *rehearsal) releaseScenarios(pubs []publishEntry, builds []buildEntry) {
	names := []string{"report-sends-changelog", "unchanged-keeps-digest", "changed-package-changelog", "ssm-digests"}
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
	p, rel := releaseOf(pubs, builds, "node", "22")
	if p == nil {
		fail("node 22 is not among the rehearsed releases")
		return
	}
	prefix := r.projectVar("Publish", "PARAMETER_PREFIX")
	topic := r.projectVar("Report", "CHANGES_TOPIC_ARN")
	if prefix == "" || topic == "" {
		fail(fmt.Sprintf("PARAMETER_PREFIX (Publish) %q or CHANGES_TOPIC_ARN (Report) %q did not resolve", prefix, topic))
		return
	}

	// Execution 1 published (the scenarios above): its Report.
	changelog, fails := r.runReport(report, r.execID, "execution-1", topic)
	if !strings.Contains(changelog, "node 22: published") {
		fails = append(fails, "the changelog of execution 1 does not say node 22 was published")
	}
	r.scenario("report-sends-changelog", fails)
	if _, err := r.checkPublished(*p); err != nil {
		fail("node 22 was not published by execution 1: " + err.Error())
		return
	}

	r.unchangedKeepsDigest(*p, rel, report, prefix, topic)
	r.changedPackage(*p, rel, report, prefix, topic)
}

// releaseOf is a runtime-version's Publish entry and its Build and Verify
// entries, among the rehearsed ones; nil when its Publish is not rehearsed.
func releaseOf(pubs []publishEntry, builds []buildEntry, rt, v string) (*publishEntry, []buildEntry) {
	var p *publishEntry
	for i := range pubs {
		if pubs[i].Entry.Get("RUNTIME") == rt && pubs[i].Entry.Get("VERSION") == v {
			p = &pubs[i]
		}
	}
	var rel []buildEntry
	for _, b := range builds {
		if b.Build.Get("RUNTIME") == rt && b.Build.Get("VERSION") == v {
			rel = append(rel, b)
		}
	}
	return p, rel
}

// projectVar resolves a project variable of a stage's first action.
func (r *rehearsal) projectVar(stage, name string) string {
	for _, a := range r.pl.Stage(stage) {
		for _, v := range a.ProjectEnv {
			if v.Name == name {
				val, _ := ResolveProjectValue(v.Value, r.refs)
				return val
			}
		}
	}
	return ""
}

// runReport runs the Report stage of execution execID and returns its
// changelog, with what is wrong with it: no changelog, not exactly one
// message sent, to another topic, or a message that is not the changelog.
func (r *rehearsal) runReport(act Action, execID, label, topic string) (string, []string) {
	var fails []string
	before, _ := r.moto.SNSMessages()
	res := r.runPlain(act, execID, r.srcDir(""), &runOpts{label: label})
	r.report("(report)", "report ("+label+")", res, false)
	if res.Err != nil {
		fails = append(fails, fmt.Sprintf("the Report of %s failed: %v (log %s)", label, res.Err, res.Log))
	}
	key := "executions/" + execID + "/changelog.txt"
	data, ok, err := r.moto.GetObject(r.bucket, key)
	if err != nil || !ok {
		fails = append(fails, fmt.Sprintf("no s3://%s/%s (%v)", r.bucket, key, err))
	}
	after, _ := r.moto.SNSMessages()
	sent := after[len(before):]
	switch {
	case len(sent) != 1:
		fails = append(fails, fmt.Sprintf("%d SNS messages sent, want 1", len(sent)))
	case sent[0].TopicArn != topic:
		fails = append(fails, fmt.Sprintf("sent to %s, not the changes topic %s", sent[0].TopicArn, topic))
	case sent[0].Message != string(data):
		fails = append(fails, fmt.Sprintf("the message sent (%d bytes) is not the changelog (%d bytes)", len(sent[0].Message), len(data)))
	default:
		r.logf("   report (%s): changelog %d bytes, sent to %s, subject %q", label, len(data), topic, sent[0].Subject)
	}
	return string(data), fails
}

// execution is one extra pipeline execution of a release: its id, the
// verified digests (by architecture), the Publish record, the changelog,
// when Publish ran, and what went wrong.
type execution struct {
	id        string
	verified  map[string]string
	publish   map[string]any
	changelog string
	pubFrom   time.Time
	pubTo     time.Time
	fails     []string
}

// execute runs Build, Verify and Publish of release p (its entries rel)
// in execution x, whose drafts are already pushed, then its Report.
func (r *rehearsal) execute(x *execution, label string, p publishEntry, rel []buildEntry, report Action, topic string, drafts map[string]string) {
	ff := func(format string, a ...any) { x.fails = append(x.fails, fmt.Sprintf(format, a...)) }
	m := r.mark()
	ok := true
	done := func(id, step string, res RunResult) {
		r.report(id, step, res, false)
		if res.Err != nil {
			ok = false
			ff("%s %s failed: %v (log %s)", step, id, res.Err, res.Log)
		}
	}
	src := r.srcDir("")
	r.runBatch("Build", rel, x.id, src, &runOpts{label: label}, done)
	r.runBatch("Verify", rel, x.id, src, &runOpts{label: label}, done)
	if _, dbuilds, _, _ := r.since(m); len(dbuilds) != 0 {
		ff("Build ran %d image builds; the drafts were pushed", len(dbuilds))
	}
	for _, b := range rel {
		arch := b.Build.Get("ARCH")
		built, err1 := r.record(x.id, "build", b.Build)
		ver, err2 := r.record(x.id, "verify", b.Build)
		if err1 != nil || err2 != nil || built.Digest != drafts[arch] || ver.Digest != drafts[arch] || ver.Result != "passed" {
			ff("%s: the Build and Verify records name %s and %s (%s; %v %v), the draft is %s", b.Build.ID, built.Digest, ver.Digest, ver.Result, err1, err2, drafts[arch])
			continue
		}
		x.verified[arch] = ver.Digest
		if err := r.checkInventoryBase(x.id, b.Build); err != nil {
			ff("%s: %v", b.Build.ID, err)
		}
	}
	if !ok || len(x.fails) > 0 {
		return
	}
	from := r.ecrReg.LogSize()
	x.pubFrom = time.Now()
	res := r.runBuild(p.Act, p.Entry, x.id, src, &runOpts{label: label})
	x.pubTo = time.Now()
	r.report(p.Entry.ID, "publish ("+label+")", res, false)
	if res.Err != nil {
		ff("Publish failed: %v (log %s)", res.Err, res.Log)
		return
	}
	// Publish reads manifests and writes tags and its evidence: never an
	// image's layer.
	if t, err := CountTraffic(r.ecrReg.LogPath, from, r.ecrReg.LogSize(), r.configs); err != nil {
		ff("reading the registry's log: %v", err)
	} else if why := r.imageLayersMoved(t); why != "" {
		ff("Publish moved image layers: %s", why)
	}
	key := recordKey(x.id, "publish", p.Entry)
	data, found, err := r.moto.GetObject(r.bucket, key)
	if err != nil || !found || json.Unmarshal(data, &x.publish) != nil {
		ff("no readable Publish record s3://%s/%s (%v)", r.bucket, key, err)
		return
	}
	changelog, fails := r.runReport(report, x.id, label, topic)
	x.changelog = changelog
	x.fails = append(x.fails, fails...)
}

// checkInventoryBase: the Verify record's inventory names the image's base
// (its label) and that base's digest for the entry's architecture, as the
// base images' registry holds it. Verify looks the digest up with
// `docker buildx imagetools inspect`; a lookup that failed unnoticed would
// leave another digest here.
func (r *rehearsal) checkInventoryBase(execID string, e Entry) error {
	key := recordKey(execID, "verify", e)
	data, _, err := r.moto.GetObject(r.bucket, key)
	if err != nil {
		return err
	}
	var rec struct {
		Inventory struct {
			Base struct{ Name, Digest string }
			OS   map[string]string
		}
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return fmt.Errorf("s3://%s/%s: %w", r.bucket, key, err)
	}
	base := rec.Inventory.Base
	want := e.Get("BASE_REGISTRY") + "/" + e.Get("BASE_IMAGE") + ":" + baseSpecOf(e, r.variants).Tag()
	if base.Name != want || len(rec.Inventory.OS) == 0 {
		return fmt.Errorf("the inventory names the base %q (want %q) and %d OS packages", base.Name, want, len(rec.Inventory.OS))
	}
	local, ok := r.cfg.resolveMirror(base.Name)
	if !ok {
		return fmt.Errorf("no stand-in registry for the base %s", base.Name)
	}
	ref, err := name.ParseReference(local, name.Insecure)
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref)
	if err != nil {
		return err
	}
	var idx struct {
		Manifests []struct {
			Digest   string
			Platform struct{ OS, Architecture string }
		}
	}
	json.Unmarshal(desc.Manifest, &idx)
	for _, m := range idx.Manifests {
		if m.Platform.OS == "linux" && m.Platform.Architecture == e.Get("ARCH") {
			if base.Digest != m.Digest {
				return fmt.Errorf("the inventory's base digest is %s, the base's %s image is %s", base.Digest, e.Get("ARCH"), m.Digest)
			}
			return nil
		}
	}
	return fmt.Errorf("the base %s has no linux/%s image", base.Name, e.Get("ARCH"))
}

// pushDraft pushes, under the draft tag of execution execID, the image
// the tag from names, with a new config creation time (a rebuild of the
// same source: a new digest) and, if extra is not nil, that layer
// appended. The rehearsal stands in for Build's push: it records the push
// time as the ECR stand-in does.
func (r *rehearsal) pushDraft(repo, from, toTag string, extra v1.Layer) (string, error) {
	e := r.ecr()
	src, err := name.NewTag(r.repoRef(repo).Name()+":"+from, name.Insecure)
	if err != nil {
		return "", err
	}
	img, err := remote.Image(src, e.options()...)
	if err != nil {
		return "", fmt.Errorf("reading %s:%s: %w", repo, from, err)
	}
	if extra != nil {
		if img, err = mutate.AppendLayers(img, extra); err != nil {
			return "", err
		}
	}
	if img, err = mutate.CreatedAt(img, v1.Time{Time: time.Now().UTC()}); err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.configs[cfgName.String()] = true
	r.mu.Unlock()
	unlock, err := r.cfg.Lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := remote.Write(r.repoRef(repo).Tag(toTag), img, e.options()...); err != nil {
		return "", fmt.Errorf("pushing %s:%s: %w", repo, toTag, err)
	}
	return digest.String(), r.cfg.RecordPush(repo, digest.String(), time.Now())
}

// releaseState is what the scenarios compare before and after an
// execution: the release's tags (<v>, <v>-<arch>, every dated tag) and
// its SSM parameters.
type releaseState struct {
	tags   map[string]string
	params map[string]Parameter
}

func (r *rehearsal) releaseState(p publishEntry, prefix string) (releaseState, error) {
	tags, err := r.publishedTags(p)
	if err != nil {
		return releaseState{}, err
	}
	all, err := r.moto.Parameters(prefix)
	if err != nil {
		return releaseState{}, err
	}
	params := map[string]Parameter{}
	for _, n := range r.paramNames(p, prefix) {
		if pm, ok := all[n]; ok {
			params[n] = pm
		}
	}
	return releaseState{tags, params}, nil
}

// paramNames are the consumers' parameters of a release, as the contract
// names them: <prefix>/<runtime>/<version> and .../<arch>.
func (r *rehearsal) paramNames(p publishEntry, prefix string) []string {
	base := prefix + "/" + p.Entry.Get("RUNTIME") + "/" + p.Entry.Get("VERSION")
	out := []string{base}
	for _, a := range strings.Fields(p.Entry.Get("ARCHITECTURES")) {
		out = append(out, base+"/"+a)
	}
	return out
}

// paramsMatchTags: each parameter holds <registry>/<repository>@<digest> of
// what its tag names (<v> for the runtime-version, <v>-<arch> for each
// architecture). REGISTRY is the ECR stand-in's address in the rehearsal.
func (r *rehearsal) paramsMatchTags(p publishEntry, prefix string, st releaseState) []string {
	var fails []string
	v := p.Entry.Get("VERSION")
	at := r.ecrReg.Addr + "/" + p.Entry.Get("REPOSITORY") + "@"
	for i, n := range r.paramNames(p, prefix) {
		tag := v
		if i > 0 {
			tag = v + "-" + n[strings.LastIndex(n, "/")+1:]
		}
		pm, ok := st.params[n]
		switch {
		case !ok:
			fails = append(fails, fmt.Sprintf("no parameter %s", n))
		case st.tags[tag] == "" || pm.Value != at+st.tags[tag]:
			fails = append(fails, fmt.Sprintf("%s holds %q, the tag %s names %s", n, pm.Value, tag, st.tags[tag]))
		}
	}
	return fails
}

// quietAlarm: the staleness alarm of runtime rt version v saw a Fresh
// datapoint between from and to (it is not breaching over that window).
func (r *rehearsal) quietAlarm(rt, v string, from, to time.Time) error {
	ns := r.projectVar("Publish", "METRIC_NAMESPACE")
	for _, ra := range r.pl.Alarms {
		if ra.Namespace != ns {
			continue
		}
		a := Alarm{LogicalID: ra.LogicalID, Namespace: ra.Namespace, MetricName: ra.MetricName, Statistic: ra.Statistic, Comparison: ra.Comparison, Threshold: ra.Threshold}
		for _, d := range ra.Dimensions {
			val, err := ResolveProjectValue(d.Value, r.refs)
			if err != nil {
				return err
			}
			a.Dimensions = append(a.Dimensions, Dimension{d.Name, val})
		}
		if a.Dimension("Runtime") != rt || a.Dimension("Version") != v {
			continue
		}
		sum := r.cw.Sum(a, from, to)
		breaching, err := a.Breaching(sum)
		if err != nil {
			return err
		}
		if breaching {
			return fmt.Errorf("alarm %s is stale over the Publish run (Sum of %s %.0f)", a.LogicalID, a.MetricName, sum)
		}
		return nil
	}
	return fmt.Errorf("no alarm in %s watches %s %s", ns, rt, v)
}

// unchangedKeepsDigest: execution 2 of node 22 with nothing changed.
func (r *rehearsal) unchangedKeepsDigest(p publishEntry, rel []buildEntry, report Action, prefix, topic string) {
	const name = "unchanged-keeps-digest"
	var fails []string
	ff := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	defer func() { r.scenario(name, fails) }()
	repo, v := p.Entry.Get("REPOSITORY"), p.Entry.Get("VERSION")
	before, err := r.releaseState(p, prefix)
	if err != nil {
		ff("reading the state: %v", err)
		return
	}
	// Execution 1's parameters: what its tags name.
	fails = append(fails, r.paramsMatchTags(p, prefix, before)...)
	x := execution{id: NewUUID(), verified: map[string]string{}}
	r.logf("== %s: execution %s of %s %s, drafts rebuilt from the published images", name, x.id, p.Entry.Get("RUNTIME"), v)
	drafts := map[string]string{}
	for _, b := range rel {
		arch := b.Build.Get("ARCH")
		d, err := r.pushDraft(repo, v+"-"+arch, draftTag(v, arch, x.id), nil)
		if err != nil {
			ff("%v", err)
			return
		}
		drafts[arch] = d
	}
	writes, _ := r.moto.ParameterWrites(prefix)
	r.execute(&x, "unchanged", p, rel, report, topic, drafts)
	fails = append(fails, x.fails...)
	if x.publish == nil {
		return
	}
	after, err := r.releaseState(p, prefix)
	if err != nil {
		ff("reading the state: %v", err)
		return
	}
	if !maps.Equal(before.tags, after.tags) {
		ff("the tags moved: before %v, after %v", before.tags, after.tags)
	}
	all, _ := r.ecr().tags(r.repoRef(repo))
	for arch := range drafts {
		if d, ok := all[draftTag(v, arch, x.id)]; ok {
			ff("the draft %s of execution 2 is still there (%s)", draftTag(v, arch, x.id), d)
		}
	}
	for n, pm := range before.params {
		if a := after.params[n]; a.Value != pm.Value || a.Version != pm.Version {
			ff("%s was %q version %d, is %q version %d", n, pm.Value, pm.Version, a.Value, a.Version)
		}
	}
	if now, _ := r.moto.ParameterWrites(prefix); now != writes {
		ff("%d parameter writes in execution 2, want none", now-writes)
	}
	if res, _ := x.publish["result"].(string); res != "unchanged" {
		ff("the Publish record says %q, want unchanged", res)
	}
	if idx, _ := x.publish["index"].(string); idx != before.tags[v] {
		ff("the Publish record names the index %s, %s is %s", idx, v, before.tags[v])
	}
	if err := r.quietAlarm(p.Entry.Get("RUNTIME"), v, x.pubFrom, x.pubTo); err != nil {
		ff("no Fresh datapoint for node 22: %v", err)
	}
	if !strings.Contains(x.changelog, "\nnode 22: unchanged") || strings.Contains(x.changelog, "\nnode 22: published") {
		ff("the changelog does not say node 22 unchanged:\n%s", x.changelog)
	}
}

// changedPackage: execution 3 of node 22, whose amd64 draft has one OS
// package at another version (a layer appended over /var/lib/dpkg/status)
// and whose arm64 draft has the same content under a new digest. Then
// ssm-digests on the state it leaves.
func (r *rehearsal) changedPackage(p publishEntry, rel []buildEntry, report Action, prefix, topic string) {
	const name = "changed-package-changelog"
	var fails []string
	ff := func(format string, a ...any) { fails = append(fails, fmt.Sprintf(format, a...)) }
	ssmFails := []string{"execution 3 did not publish"}
	defer func() {
		r.scenario(name, fails)
		r.scenario("ssm-digests", ssmFails)
	}()
	repo, v := p.Entry.Get("REPOSITORY"), p.Entry.Get("VERSION")
	before, err := r.releaseState(p, prefix)
	if err != nil {
		ff("reading the state: %v", err)
		return
	}
	status, err := r.fileInImage(repo, v+"-amd64", "var/lib/dpkg/status")
	if err != nil {
		ff("reading /var/lib/dpkg/status of %s:%s-amd64: %v", repo, v, err)
		return
	}
	pkg, from, to, bumped, err := bumpPackage(status)
	if err != nil {
		ff("%v", err)
		return
	}
	layer, err := fileLayer("var/lib/dpkg/status", bumped)
	if err != nil {
		ff("%v", err)
		return
	}
	x := execution{id: NewUUID(), verified: map[string]string{}}
	r.logf("== %s: execution %s of %s %s; amd64 draft with dpkg's %s %s -> %s, arm64 the same content under a new digest", name, x.id, p.Entry.Get("RUNTIME"), v, pkg, from, to)
	drafts := map[string]string{}
	for _, b := range rel {
		arch := b.Build.Get("ARCH")
		var extra v1.Layer
		if arch == "amd64" {
			extra = layer
		}
		d, err := r.pushDraft(repo, v+"-"+arch, draftTag(v, arch, x.id), extra)
		if err != nil {
			ff("%v", err)
			return
		}
		drafts[arch] = d
	}
	if len(drafts) != 2 || drafts["amd64"] == "" || drafts["arm64"] == "" {
		ff("node 22 has no amd64 and arm64 entries: %v", drafts)
		return
	}
	r.execute(&x, "changed-package", p, rel, report, topic, drafts)
	fails = append(fails, x.fails...)
	if x.publish == nil {
		return
	}
	state, err := r.checkPublishedSet(p, x.verified, x.id)
	if err != nil {
		ff("%v", err)
	} else {
		r.logf("   %s: %s", name, state)
	}
	after, err := r.releaseState(p, prefix)
	if err != nil {
		ff("reading the state: %v", err)
		return
	}
	if after.tags[v] == before.tags[v] {
		ff("%s still names the index of before, %s", v, before.tags[v])
	}
	var dated []string
	for t := range after.tags {
		if _, had := before.tags[t]; !had {
			dated = append(dated, t)
		}
	}
	if len(dated) != 1 || !strings.HasSuffix(dated[0], "-"+x.id) || after.tags[dated[0]] != after.tags[v] {
		ff("new tags %v: want exactly one dated tag of execution 3, naming %s", dated, after.tags[v])
	}
	rec := x.publish
	if res, _ := rec["result"].(string); res != "published" {
		ff("the Publish record says %q, want published", res)
	}
	if idx, _ := rec["index"].(string); idx != after.tags[v] {
		ff("the Publish record names %s, %s is %s", idx, v, after.tags[v])
	}
	// The record's changes: exactly the one upgrade, on amd64.
	want := map[string]string{"amd64": fmt.Sprintf(`[{"from":%q,"kind":"os","name":%q,"to":%q}]`, from, pkg, to), "arm64": "[]"}
	changes, _ := rec["changes"].(map[string]any)
	for arch, up := range want {
		c, _ := changes[arch].(map[string]any)
		got, _ := json.Marshal(c["upgraded"])
		added, _ := json.Marshal(c["added"])
		removed, _ := json.Marshal(c["removed"])
		if c == nil || c["previousKnown"] != true || c["base"] != nil || c["recipeChanged"] != false || string(got) != up || string(added) != "[]" || string(removed) != "[]" {
			all, _ := json.Marshal(c)
			ff("the record's changes for %s are %s, want upgraded %s and nothing else", arch, all, up)
		}
	}
	// The changelog: under amd64 that one upgrade, under arm64 nothing.
	items := changelogItems(x.changelog, "node 22")
	wantLine := fmt.Sprintf("upgraded os %s %s -> %s", pkg, from, to)
	if !slices.Equal(items["amd64"], []string{wantLine}) || len(items["arm64"]) != 0 || len(items[""]) != 0 {
		ff("the changelog lists %v, want amd64: [%s] and nothing for arm64:\n%s", items, wantLine, x.changelog)
	}

	// ssm-digests: the parameters hold what the tags name now.
	ssmFails = r.paramsMatchTags(p, prefix, after)
}

// changelogItems reads the section of a release ("node 22") of a Report
// changelog: its item lines (upgraded, added, removed), by the
// architecture they are listed under ("" before any), spaces normalized.
func changelogItems(changelog, release string) map[string][]string {
	items := map[string][]string{}
	in, arch := false, ""
	for _, l := range strings.Split(changelog, "\n") {
		switch {
		case strings.HasPrefix(l, release+": "):
			in = true
		case l == "":
			in = false
		case !in:
		case strings.HasPrefix(l, "    "):
			items[arch] = append(items[arch], strings.Join(strings.Fields(l), " "))
		case strings.HasPrefix(l, "  ") && strings.Contains(l, ": "):
			arch, _, _ = strings.Cut(strings.TrimSpace(l), ": ")
		}
	}
	return items
}

// fileInImage reads a file of an image: from the topmost layer that has
// it (an image's layers are applied bottom to top).
func (r *rehearsal) fileInImage(repo, tag, path string) ([]byte, error) {
	ref, err := name.NewTag(r.repoRef(repo).Name()+":"+tag, name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(ref, r.ecr().options()...)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for i := len(layers) - 1; i >= 0; i-- {
		rc, err := layers[i].Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			if strings.TrimPrefix(h.Name, "./") == path && h.Typeflag == tar.TypeReg {
				b, err := io.ReadAll(tr)
				rc.Close()
				return b, err
			}
		}
		rc.Close()
	}
	return nil, fmt.Errorf("no %s in any layer", path)
}

// bumpPackage changes the Version of one installed package in a dpkg
// status file (base-files if installed: every Debian image has it). It
// returns the package, its version and the new one, and the new file.
func bumpPackage(status []byte) (pkg, from, to string, out []byte, err error) {
	stanzas := strings.Split(string(status), "\n\n")
	pick := -1
	for i, s := range stanzas {
		if !strings.Contains(s, "\nStatus: install ok installed") || !strings.Contains(s, "\nVersion: ") {
			continue
		}
		if pick < 0 || strings.HasPrefix(s, "Package: base-files\n") {
			pick = i
		}
	}
	if pick < 0 {
		return "", "", "", nil, fmt.Errorf("no installed package in /var/lib/dpkg/status")
	}
	lines := strings.Split(stanzas[pick], "\n")
	for i, l := range lines {
		if p, ok := strings.CutPrefix(l, "Package: "); ok {
			pkg = p
		}
		if v, ok := strings.CutPrefix(l, "Version: "); ok {
			from, to = v, v+"+rehearsal1"
			lines[i] = "Version: " + to
		}
	}
	stanzas[pick] = strings.Join(lines, "\n")
	return pkg, from, to, []byte(strings.Join(stanzas, "\n\n")), nil
}

// fileLayer is a gzip layer (Docker's media type, as Build pushes) with
// one regular file.
func fileLayer(path string, data []byte) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.DockerLayer))
}

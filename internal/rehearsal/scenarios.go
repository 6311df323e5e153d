package rehearsal

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/evergreen-images/evergreen/internal/referrers"
)

// The retry scenarios: retries, a moved draft tag, concurrent and
// interrupted Publish runs, and freshness per runtime-version. They are
// woven into the one pipeline execution the rehearsal runs, so that they
// reuse its images: the Build stage itself is the one that fails and is
// retried, and Publish runs as stage attempts. Each ends in one line,
// `scenario NAME: ok` or `scenario NAME: FAILED WHY`, judged on state read
// back from the stand-ins (registry tags and digests, the registry's log,
// the records bucket, the docker stand-in's build log, the datapoints),
// never on the commands' own output alone.

// Every stage's build phase is one command, the Tool stage's binary
// (`"$CODEBUILD_SRC_DIR_Tool/bin/$(uname -m)/evergreen" stage <name>`):
// a build that must fail must fail there, and its log must say why, in
// the binary's words (internal/stage): these are the words.
const (
	stageCommandPrefix = `"$CODEBUILD_SRC_DIR_Tool/bin/$(uname -m)/evergreen" stage `
	buildFailure       = "building and pushing"
	noExecutionID      = "PIPELINE_EXECUTION_ID is not set"
	selfTestFailure    = "the self-test of"
	noBuildRecord      = "no Build record for"
	// The injected fault, as the binary reports the API's error.
	injectedFault = "injected by the rehearsal"
)

// failedWith reports whether a build failed at its stage command with a
// log that says says.
func failedWith(res RunResult, says string) bool {
	if res.Err == nil || !strings.HasPrefix(res.FailedCommand, stageCommandPrefix) {
		return false
	}
	log, _ := os.ReadFile(res.Log)
	return strings.Contains(string(log), says)
}

// scenarioResult is one line `scenario NAME: ok` or `scenario NAME: FAILED WHY`.
type scenarioResult struct {
	Name, Failure string
}

func (r *rehearsal) scenario(name string, failures []string) {
	why := strings.Join(failures, "; ")
	r.mu.Lock()
	r.scenarios = append(r.scenarios, scenarioResult{name, why})
	r.mu.Unlock()
	if why == "" {
		r.row(Row{"(scenario)", name, 0, "ok", ""})
	} else {
		r.row(Row{"(scenario)", name, 0, "FAIL", why})
	}
}

func (r *rehearsal) printScenarios() {
	fmt.Println()
	for _, s := range r.scenarios {
		if s.Failure == "" {
			fmt.Printf("scenario %s: ok\n", s.Name)
		} else {
			fmt.Printf("scenario %s: FAILED %s\n", s.Name, strings.ReplaceAll(s.Failure, "\n", " "))
		}
	}
}

// mark is a point in the stand-ins' state, to read what happened since.
type mark struct {
	s3     map[string]bool // object versions of the records bucket
	builds int
	log    int64
	at     time.Time
}

func (r *rehearsal) mark() mark {
	w, _ := r.moto.S3Writes(r.bucket)
	b, _ := r.cfg.DockerBuilds()
	seen := map[string]bool{}
	for _, x := range w {
		seen[x.VersionID] = true
	}
	return mark{seen, len(b), r.ecrReg.LogSize(), time.Now()}
}

// since returns the objects written, the builds run and the registry
// traffic after m.
func (r *rehearsal) since(m mark) ([]S3Write, []DockerBuild, Traffic, error) {
	w, err := r.moto.S3Writes(r.bucket)
	if err != nil {
		return nil, nil, Traffic{}, err
	}
	var written []S3Write
	for _, x := range w {
		if !m.s3[x.VersionID] {
			written = append(written, x)
		}
	}
	b, err := r.cfg.DockerBuilds()
	if err != nil {
		return nil, nil, Traffic{}, err
	}
	t, err := CountTraffic(r.ecrReg.LogPath, m.log, r.ecrReg.LogSize(), r.configs)
	return written, b[m.builds:], t, err
}

func (r *rehearsal) draftOf(b buildEntry) (repo, tag string) {
	return b.Build.Get("REPOSITORY"), draftTag(b.Build.Get("VERSION"), b.Build.Get("ARCH"), r.execID)
}

// draftDigest is the digest the entry's draft tag names now, or "".
func (r *rehearsal) draftDigest(b buildEntry) (string, error) {
	repo, tag := r.draftOf(b)
	m, err := r.ecr().get(r.repoRef(repo), tag)
	if err != nil || m == nil {
		return "", err
	}
	return m.Digest, nil
}

// buildsOf are the docker stand-in's builds that pushed the entry's draft.
func (r *rehearsal) buildsOf(b buildEntry, builds []DockerBuild) (real, faulted int) {
	repo, tag := r.draftOf(b)
	for _, d := range builds {
		for _, t := range d.Tags {
			if strings.HasSuffix(t, "/"+repo+":"+tag) {
				if d.Fault {
					faulted++
				} else {
					real++
				}
			}
		}
	}
	return real, faulted
}

// pickFaulted chooses the two Build entries that fail: amd64 entries (the
// quickest to build: each fails at once and is built once, later, alone),
// of two runtimes, node first.
func pickFaulted(builds []buildEntry) (x, y int) {
	x, y = -1, -1
	for _, pass := range []func(b buildEntry) bool{
		func(b buildEntry) bool { return b.Build.Get("RUNTIME") == "node" },
		func(b buildEntry) bool { return true },
	} {
		for i, b := range builds {
			if b.Build.Get("ARCH") != "amd64" || !pass(b) || i == x {
				continue
			}
			if x < 0 {
				x = i
			} else if y < 0 && b.Build.Get("RUNTIME") != builds[x].Build.Get("RUNTIME") {
				y = i
			}
		}
	}
	return x, y
}

// stageRetry holds what the stage-retry-skips-done scenario found in the
// Build stage until Publish shows whether the execution published.
type stageRetry struct {
	failures []string
	rebuilt  buildEntry
	ok       bool // it got as far as a rebuilt entry
}

// buildStage runs the Build stage the way a bad day does:
//
//  1. the batch, with two entries failing at `docker buildx build` (an
//     injected transient failure: the stand-in refuses the build at once);
//  2. CodeBuild's console "Retry build batch" with RETRY_FAILED_BUILDS,
//     for the case where the retried builds lose the action's environment
//     variables: they must stop at once, changing nothing;
//  3. the same retry keeping the variables: only the two failed entries
//     run; one builds, the other fails again;
//  4. Retry on the pipeline stage: a new batch with every entry, same
//     execution: every finished entry skips, the failed one builds.
//
// Every image is built exactly once, as without failures.
func (r *rehearsal) buildStage(builds []buildEntry) {
	src := r.srcDir("")
	xi, yi := pickFaulted(builds)
	if xi < 0 || yi < 0 {
		r.runStage("Build", builds, r.execID, src, nil)
		why := []string{"needs two amd64 Build entries of two runtimes to fail, the rehearsal has fewer"}
		r.scenario("console-retry-failed-builds", why)
		r.stageRetry = stageRetry{failures: why}
		return
	}
	x, y := builds[xi], builds[yi]
	failed := []buildEntry{x, y}
	aim := func(b buildEntry) Fault {
		repo, tag := r.draftOf(b)
		return Fault{Op: "buildx build", N: 1, Match: "*/" + repo + ":" + tag}
	}
	var console, retry []string
	cf := func(f string, a ...any) { console = append(console, fmt.Sprintf(f, a...)) }
	sf := func(f string, a ...any) { retry = append(retry, fmt.Sprintf(f, a...)) }
	var mu sync.Mutex
	results := map[string]RunResult{}
	collect := func(expectFail map[string]string) func(id, step string, res RunResult) {
		return func(id, step string, res RunResult) {
			if cmd, ok := expectFail[id]; ok {
				r.expectFailure(id, step, res, cmd)
			} else {
				r.report(id, step, res, false)
			}
			mu.Lock()
			results[id] = res
			mu.Unlock()
		}
	}
	failedAt := func(id, says string) bool { return failedWith(results[id], says) }

	// 1. The batch; x and y fail.
	r.cfg.SetFaults([]Fault{aim(x), aim(y)})
	r.runBatch("Build", builds, r.execID, src, &runOpts{label: "attempt-1"}, collect(map[string]string{x.Build.ID: buildFailure, y.Build.ID: buildFailure}))
	if r.cfg.FaultPending() {
		sf("the injected build failures did not fire")
	}
	r.cfg.SetFaults(nil)
	for _, b := range failed {
		if !failedAt(b.Build.ID, buildFailure) {
			sf("%s did not fail at its docker buildx build in the first batch (log %s)", b.Build.ID, results[b.Build.ID].Log)
		}
		if d, err := r.draftDigest(b); d != "" || err != nil {
			sf("%s has a draft (%s %v) although its build failed", b.Build.ID, d, err)
		}
	}

	// 2. Console retry of the failed builds, without the action's variables.
	m := r.mark()
	r.runBatch("Build", failed, r.execID, src, &runOpts{label: "console-retry-no-env", noActionEnv: true},
		collect(map[string]string{x.Build.ID: noExecutionID, y.Build.ID: noExecutionID}))
	writes, dbuilds, t, err := r.since(m)
	if err != nil {
		cf("reading the stand-ins' state: %v", err)
	}
	for _, b := range failed {
		if !failedAt(b.Build.ID, noExecutionID) {
			cf("%s, retried without PIPELINE_EXECUTION_ID, did not stop saying %q (log %s)", b.Build.ID, noExecutionID, results[b.Build.ID].Log)
		} else if s := results[b.Build.ID].Seconds; s > 15 {
			cf("%s took %.0f s to stop", b.Build.ID, s)
		}
	}
	if len(writes)+len(dbuilds)+t.UploadRequests+len(t.ManifestWrites) > 0 {
		cf("the retry without PIPELINE_EXECUTION_ID changed state: %d objects written, %d builds, %d upload requests, manifest writes %v",
			len(writes), len(dbuilds), t.UploadRequests, t.ManifestWrites)
	}
	r.logf("   console retry without the action's variables: %s %.1f s, %s %.1f s, both stopped: %q; %d objects written, %d builds, %d registry writes",
		x.Build.ID, results[x.Build.ID].Seconds, y.Build.ID, results[y.Build.ID].Seconds, noExecutionID, len(writes), len(dbuilds), t.UploadRequests+len(t.ManifestWrites))

	// 3. Console retry of the failed builds, keeping the variables; y fails again.
	m = r.mark()
	r.cfg.SetFaults([]Fault{aim(y)})
	r.runBatch("Build", failed, r.execID, src, &runOpts{label: "console-retry"}, collect(map[string]string{y.Build.ID: buildFailure}))
	if r.cfg.FaultPending() {
		cf("the injected failure of %s did not fire in the console retry", y.Build.ID)
	}
	r.cfg.SetFaults(nil)
	writes, dbuilds, _, err = r.since(m)
	if err != nil {
		cf("reading the stand-ins' state: %v", err)
	}
	xDigest, _ := r.draftDigest(x)
	xRec, recErr := r.record(r.execID, "build", x.Build)
	switch {
	case results[x.Build.ID].Err != nil:
		cf("%s failed in the console retry: %v", x.Build.ID, results[x.Build.ID].Err)
	case xDigest == "":
		cf("%s has no draft after its console retry", x.Build.ID)
	case recErr != nil || xRec.Digest != xDigest:
		cf("%s's Build record (%s %v) does not name its draft %s", x.Build.ID, xRec.Digest, recErr, xDigest)
	}
	if real, _ := r.buildsOf(x, dbuilds); real != 1 || len(dbuilds) != 2 {
		cf("the console retry ran %d builds, %d of them %s's: want %s built once and %s refused once", len(dbuilds), real, x.Build.ID, x.Build.ID, y.Build.ID)
	}
	for _, w := range writes {
		if w.Key != recordKey(r.execID, "build", x.Build) {
			cf("the console retry wrote s3://%s/%s: only %s's Build record was due", w.Bucket, w.Key, x.Build.ID)
		}
	}

	// 4. Retry on the pipeline stage: every entry.
	before := map[string]string{}
	for _, b := range builds {
		before[b.Build.ID], _ = r.draftDigest(b)
	}
	m = r.mark()
	r.runBatch("Build", builds, r.execID, src, &runOpts{label: "stage-retry"}, collect(nil))
	_, dbuilds, t, err = r.since(m)
	if err != nil {
		sf("reading the stand-ins' state: %v", err)
	}
	var skipped []string
	for _, b := range builds {
		id := b.Build.ID
		res := results[id]
		now, _ := r.draftDigest(b)
		rec, recErr := r.record(r.execID, "build", b.Build)
		real, _ := r.buildsOf(b, dbuilds)
		switch {
		case res.Err != nil:
			sf("%s failed in the stage retry: %v", id, res.Err)
		case now == "" || recErr != nil || rec.Digest != now:
			sf("%s: draft %q, Build record %q (%v) after the stage retry", id, now, rec.Digest, recErr)
		case id == y.Build.ID && real != 1:
			sf("%s, the entry that had failed, was built %d times in the stage retry, want once", id, real)
		case id != y.Build.ID && (real != 0 || now != before[id]):
			msg := fmt.Sprintf("%s was rebuilt in the stage retry (%d builds; draft %s, was %s)", id, real, now, before[id])
			sf("%s", msg)
			if id == x.Build.ID {
				cf("%s", msg)
			}
		case id != y.Build.ID:
			skipped = append(skipped, fmt.Sprintf("%s %.1f s", id, res.Seconds))
		}
	}
	// The registry saw the rebuilt entry's push and nothing else: its
	// manifest under its draft tag, and its own blobs.
	yRepo, yTag := r.draftOf(y)
	for _, w := range t.ManifestWrites {
		if w != "PUT /v2/"+yRepo+"/manifests/"+yTag {
			sf("the stage retry wrote a manifest it should not have: %s", w)
		}
	}
	if yd, _ := r.draftDigest(y); yd != "" {
		own := map[string]bool{}
		if m, err := r.ecr().get(r.repoRef(yRepo), yd); err == nil && m != nil {
			var om ociManifest
			json.Unmarshal(m.Raw, &om)
			own[om.Config.Digest] = true
			for _, l := range om.Layers {
				own[l.Digest] = true
			}
		}
		for _, l := range t.UploadedLayers {
			if !own[l] {
				sf("the stage retry uploaded layer %s, which is not %s's", l, y.Build.ID)
			}
		}
	}
	r.logf("   stage retry: skipped (not rebuilt) %s; %s built in %.1f s (%d layer uploads, manifest writes %v)",
		strings.Join(skipped, ", "), y.Build.ID, results[y.Build.ID].Seconds, t.LayerWrites, t.ManifestWrites)
	r.scenario("console-retry-failed-builds", console)
	r.stageRetry = stageRetry{failures: retry, rebuilt: y, ok: true}
}

// rebuiltVariant puts a new image under repo:tag that differs from the
// one there only in its config's creation time, as a rebuild of the same
// source does: a new digest over the same layers, so no layer moves. The
// rehearsal stands in for the rebuild's push (it records the push time).
func (r *rehearsal) rebuiltVariant(repo, tag string) (string, error) {
	e := r.ecr()
	ref := r.repoRef(repo)
	m, err := e.get(ref, tag)
	if err != nil || m == nil {
		return "", fmt.Errorf("no %s:%s to rebuild: %v", repo, tag, err)
	}
	var man map[string]any
	if err := json.Unmarshal(m.Raw, &man); err != nil {
		return "", err
	}
	cfgDesc, ok := man["config"].(map[string]any)
	if !ok {
		return "", fmt.Errorf("%s:%s has no config", repo, tag)
	}
	cfgDigest, _ := cfgDesc["digest"].(string)
	cfgType, _ := cfgDesc["mediaType"].(string)
	raw, err := r.blob(repo, cfgDigest)
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return "", err
	}
	cfg["created"] = time.Now().UTC().Format(time.RFC3339Nano)
	newCfg, _ := json.Marshal(cfg)
	layer := static.NewLayer(newCfg, types.MediaType(cfgType))
	if err := remote.WriteLayer(ref, layer, e.options()...); err != nil {
		return "", fmt.Errorf("uploading the rebuilt config: %w", err)
	}
	d, _ := layer.Digest()
	cfgDesc["digest"], cfgDesc["size"] = d.String(), len(newCfg)
	newRaw, _ := json.Marshal(man)
	unlock, err := r.cfg.Lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := e.put(ref, tag, newRaw, m.MediaType); err != nil {
		return "", err
	}
	digest := digestOf(newRaw)
	r.mu.Lock()
	r.configs[d.String()] = true
	r.mu.Unlock()
	return digest, r.cfg.RecordPush(repo, digest, time.Now())
}

// publishedTags are the tags of a runtime-version's published state:
// <v>, <v>-<arch> and the dated tags of this execution.
func (r *rehearsal) publishedTags(p publishEntry) (map[string]string, error) {
	tags, err := r.ecr().tags(r.repoRef(p.Entry.Get("REPOSITORY")))
	if err != nil {
		return nil, err
	}
	v := p.Entry.Get("VERSION")
	out := map[string]string{}
	for t, d := range tags {
		// An evidence tag (<moving tag>.evidence-<kind>) names a referrer,
		// not an image: it keeps the evidence and publishes nothing.
		if strings.Contains(t, referrers.EvidenceTagMarker) {
			continue
		}
		if t == v || (strings.HasPrefix(t, v+"-") && !strings.HasPrefix(t, "draft-")) {
			out[t] = d
		}
	}
	return out, nil
}

// notPublished fails when digest is under a published tag of p or named
// by the index one of them points at.
func (r *rehearsal) notPublished(p publishEntry, digest string) error {
	tags, err := r.publishedTags(p)
	if err != nil {
		return err
	}
	for t, d := range tags {
		if d == digest {
			return fmt.Errorf("%s:%s is the unverified %s", p.Entry.Get("REPOSITORY"), t, digest)
		}
		m, err := r.ecr().get(r.repoRef(p.Entry.Get("REPOSITORY")), d)
		if err != nil || m == nil {
			continue
		}
		var om ociManifest
		json.Unmarshal(m.Raw, &om)
		for _, c := range om.Manifests {
			if c.Digest == digest {
				return fmt.Errorf("%s:%s names the unverified %s", p.Entry.Get("REPOSITORY"), t, digest)
			}
		}
	}
	return nil
}

// publishRecordAgrees: the Publish record names the index under <v>.
func (r *rehearsal) publishRecordAgrees(p publishEntry) error {
	rec, err := r.record(r.execID, "publish", p.Entry)
	if err != nil {
		return err
	}
	tags, err := r.publishedTags(p)
	if err != nil {
		return err
	}
	v := p.Entry.Get("VERSION")
	if rec.Result != "published" || rec.Index != tags[v] || tags[rec.DatedTag] != tags[v] {
		return fmt.Errorf("the Publish record says %s %s (dated %s); %s is %s, the dated tag %s", rec.Result, rec.Index, rec.DatedTag, v, tags[v], tags[rec.DatedTag])
	}
	return nil
}

// freshness evaluates the template's staleness alarms over the datapoints
// put between from and to: an alarm must be quiet exactly for the
// runtime-versions in fresh.
func (r *rehearsal) freshness(from, to time.Time, fresh map[string]bool) (string, []string) {
	var fails []string
	ns := ""
	for _, a := range r.pl.Stage("Publish") {
		for _, v := range a.ProjectEnv {
			if v.Name == "METRIC_NAMESPACE" {
				ns, _ = ResolveProjectValue(v.Value, r.refs)
			}
		}
	}
	if ns == "" {
		return "", []string{"the Publish project has no METRIC_NAMESPACE"}
	}
	watched := map[string]bool{}
	var stale, quiet []string
	for _, ra := range r.pl.Alarms {
		if ra.Namespace != ns {
			continue
		}
		a := Alarm{LogicalID: ra.LogicalID, Namespace: ra.Namespace, MetricName: ra.MetricName, Statistic: ra.Statistic, Comparison: ra.Comparison, Threshold: ra.Threshold}
		for _, d := range ra.Dimensions {
			v, err := ResolveProjectValue(d.Value, r.refs)
			if err != nil {
				fails = append(fails, fmt.Sprintf("alarm %s dimension %s: %v", ra.LogicalID, d.Name, err))
			}
			a.Dimensions = append(a.Dimensions, Dimension{d.Name, v})
		}
		key := a.Dimension("Runtime") + " " + a.Dimension("Version")
		if a.Dimension("Stack") != r.pl.StackName {
			fails = append(fails, fmt.Sprintf("alarm %s watches Stack=%q, not this stack %q", a.LogicalID, a.Dimension("Stack"), r.pl.StackName))
		}
		watched[key] = true
		sum := r.cw.Sum(a, from, to)
		breaching, err := a.Breaching(sum)
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		if breaching {
			stale = append(stale, key)
		} else {
			quiet = append(quiet, key)
		}
		if breaching == fresh[key] {
			fails = append(fails, fmt.Sprintf("%s (alarm %s, Sum of %s %.0f) should be %s", key, a.LogicalID, a.MetricName, sum, map[bool]string{true: "fresh", false: "stale"}[fresh[key]]))
		}
	}
	for k := range fresh {
		if !watched[k] {
			fails = append(fails, fmt.Sprintf("no alarm in %s watches %s", ns, k))
		}
	}
	slices.Sort(stale)
	slices.Sort(quiet)
	return fmt.Sprintf("fresh: %s; stale: %s", strings.Join(quiet, ", "), strings.Join(stale, ", ")), fails
}

// publish runs the Publish stage as attempts of a batch with every
// release, and the scenarios on them:
//
//	draft-replaced-after-verify: before attempt 1, release D's first
//	  draft tag is moved to an image nobody verified;
//	attempt 1: release F fails after its first tags (3rd put-image);
//	  release C runs twice at once (concurrent-publish); freshness of
//	  this attempt (freshness-per-image: F stale, the others fresh);
//	partial-publish-new-drafts: F's drafts are rebuilt (new digests), its
//	  Build and Verify entries run again and record them;
//	attempt 2: F fails again, removing its drafts; attempt 3: everything
//	  publishes; attempt 4: again, and nothing changes.
func (r *rehearsal) publish(pubs []publishEntry, builds []buildEntry) {
	r.logf("== Publish: %d entries", len(pubs))
	var ready []publishEntry
	for _, p := range pubs {
		rt, v := p.Entry.Get("RUNTIME"), p.Entry.Get("VERSION")
		var unverified []string
		for _, a := range strings.Fields(p.Entry.Get("ARCHITECTURES")) {
			if r.verified[rt+"/"+v+"/"+a] == "" {
				unverified = append(unverified, a)
			}
		}
		if len(unverified) > 0 {
			r.row(Row{p.Entry.ID, "publish", 0, "FAIL", "not run: no verified draft for " + strings.Join(unverified, ", ")})
			continue
		}
		ready = append(ready, p)
	}
	names := []string{"draft-replaced-after-verify", "concurrent-publish", "partial-publish-new-drafts", "freshness-per-image"}
	if len(ready) < 3 {
		why := fmt.Sprintf("needs three releases whose images were verified, has %d", len(ready))
		for _, n := range names {
			r.scenario(n, []string{why})
		}
		r.scenario("stage-retry-skips-done", append(r.stageRetry.failures, why))
		return
	}
	f, d, c := ready[0], ready[1], ready[2]
	key := func(p publishEntry) string { return p.Entry.Get("RUNTIME") + " " + p.Entry.Get("VERSION") }
	var total Traffic

	// attempt runs every release once (twice at once: c when twice), with
	// faults armed; expect maps entry ids to the command they must fail at.
	attempt := func(label string, faults []Fault, expect map[string]string, twice bool) (map[string][]RunResult, time.Time, time.Time) {
		r.logf("== Publish (%s): %d entries", label, len(ready))
		r.cfg.SetFaults(faults)
		from, start := r.ecrReg.LogSize(), time.Now()
		type run struct {
			p     publishEntry
			label string
		}
		var runs []run
		for _, p := range ready {
			runs = append(runs, run{p, label})
			if twice && p.Entry.ID == c.Entry.ID {
				runs = append(runs, run{p, label + "-concurrent"})
			}
		}
		var mu sync.Mutex
		out := map[string][]RunResult{}
		var wg sync.WaitGroup
		for _, rn := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := r.runBuild(rn.p.Act, rn.p.Entry, r.execID, r.srcDir(""), &runOpts{label: rn.label})
				step := "publish (" + rn.label + ")"
				if cmd, ok := expect[rn.p.Entry.ID]; ok {
					r.expectFailure(rn.p.Entry.ID, step, res, cmd)
				} else {
					r.report(rn.p.Entry.ID, step, res, false)
				}
				mu.Lock()
				out[rn.p.Entry.ID] = append(out[rn.p.Entry.ID], res)
				mu.Unlock()
			}()
		}
		wg.Wait()
		end := time.Now()
		if r.cfg.FaultPending() {
			r.row(Row{f.Entry.ID, "publish (" + label + ")", 0, "FAIL", "the injected fault never fired: the commands no longer make that call"})
		}
		r.cfg.SetFaults(nil)
		t, err := CountTraffic(r.ecrReg.LogPath, from, r.ecrReg.LogSize(), r.configs)
		if err != nil {
			r.row(Row{"(publish)", "publish traffic", 0, "FAIL", err.Error()})
		}
		r.logf("   publish (%s): layer blobs read %d (%d bytes), layer uploads %d, config blobs read %d (%d bytes), manifest requests %d",
			label, t.LayerReads, t.LayerBytesRead, t.LayerWrites, t.ConfigReads, t.ConfigBytesRead, t.ManifestRequests)
		total.Add(t)
		r.logf("   state of %s after %s: %s", key(f), label, r.describeTags(f.Entry.Get("REPOSITORY"), f.Entry.Get("VERSION")))
		return out, start, end
	}
	fRepo := f.Entry.Get("REPOSITORY")

	// draft-replaced-after-verify: D's first draft tag now names an image
	// Verify never saw.
	var replaced []string
	dArch := strings.Fields(d.Entry.Get("ARCHITECTURES"))[0]
	dKey := d.Entry.Get("RUNTIME") + "/" + d.Entry.Get("VERSION") + "/" + dArch
	dTag := draftTag(d.Entry.Get("VERSION"), dArch, r.execID)
	replacement, err := r.rebuiltVariant(d.Entry.Get("REPOSITORY"), dTag)
	if err != nil {
		replaced = append(replaced, "could not replace the draft: "+err.Error())
	} else if m, _ := r.ecr().get(r.repoRef(d.Entry.Get("REPOSITORY")), dTag); m == nil || m.Digest != replacement || replacement == r.verified[dKey] {
		replaced = append(replaced, fmt.Sprintf("the draft %s does not name the replacement %s", dTag, replacement))
	}
	r.logf("   draft %s:%s moved from the verified %s to %s", d.Entry.Get("REPOSITORY"), dTag, r.verified[dKey], replacement)

	// Attempt 1.
	res1, from1, to1 := attempt("attempt-1", []Fault{{Op: "PutImage", N: 3, Match: fRepo, Sticky: true}}, map[string]string{f.Entry.ID: injectedFault}, true)
	check := func(p publishEntry, step string) (string, error) {
		state, err := r.checkPublished(p)
		if err != nil {
			r.row(Row{p.Entry.ID, step, 0, "FAIL", err.Error()})
		} else {
			r.row(Row{p.Entry.ID, step, 0, "ok", state})
		}
		return state, err
	}
	if _, err := check(d, "check published (attempt-1)"); err != nil {
		replaced = append(replaced, err.Error())
	}
	if err := r.notPublished(d, replacement); err != nil {
		replaced = append(replaced, err.Error())
	}
	if err := r.publishRecordAgrees(d); err != nil {
		replaced = append(replaced, err.Error())
	}
	r.scenario("draft-replaced-after-verify", replaced)

	var concurrent []string
	cr := res1[c.Entry.ID]
	okRuns := 0
	for _, res := range cr {
		if res.Err == nil {
			okRuns++
		}
	}
	if len(cr) != 2 || okRuns == 0 {
		concurrent = append(concurrent, fmt.Sprintf("%d of %d concurrent runs succeeded", okRuns, len(cr)))
	} else {
		r.logf("   concurrent publish of %s: %d of 2 runs succeeded (%.1f s, %.1f s)", key(c), okRuns, cr[0].Seconds, cr[1].Seconds)
	}
	if _, err := check(c, "check published (attempt-1)"); err != nil {
		concurrent = append(concurrent, err.Error())
	}
	if tags, err := r.publishedTags(c); err == nil {
		var dated []string
		for t := range tags {
			if strings.Contains(t, "-r20") && strings.HasSuffix(t, "-"+r.execID) {
				dated = append(dated, t)
			}
		}
		if len(dated) != 1 {
			concurrent = append(concurrent, fmt.Sprintf("%d dated tags of this execution: %v", len(dated), dated))
		}
	}
	if err := r.publishRecordAgrees(c); err != nil {
		concurrent = append(concurrent, err.Error())
	}
	r.scenario("concurrent-publish", concurrent)

	freshFails := []string{}
	summary1, fails := r.freshness(from1, to1, map[string]bool{key(d): res1[d.Entry.ID][0].Err == nil, key(c): okRuns > 0})
	freshFails = append(freshFails, fails...)
	if res1[f.Entry.ID][0].Err == nil {
		freshFails = append(freshFails, key(f)+" was made to fail in attempt 1 but published")
	}
	r.logf("   freshness over attempt 1 (%s failed): %s", key(f), summary1)

	// partial-publish-new-drafts: F stopped after its first tags; its
	// drafts are rebuilt, Build and Verify record the new images.
	var partial []string
	pf := func(format string, a ...any) { partial = append(partial, fmt.Sprintf(format, a...)) }
	fTags, _ := r.publishedTags(f)
	if len(fTags) == 0 || len(fTags) >= 2+len(strings.Fields(f.Entry.Get("ARCHITECTURES"))) {
		pf("attempt 1 should have left %s with some of its tags, it left %v", key(f), fTags)
	}
	var fBuilds []buildEntry
	for _, b := range builds {
		if b.Build.Get("RUNTIME") == f.Entry.Get("RUNTIME") && b.Build.Get("VERSION") == f.Entry.Get("VERSION") {
			fBuilds = append(fBuilds, b)
		}
	}
	rebuilt := map[string]string{}
	for _, b := range fBuilds {
		repo, tag := r.draftOf(b)
		nd, err := r.rebuiltVariant(repo, tag)
		if err != nil {
			pf("rebuilding %s: %v", b.Build.ID, err)
			continue
		}
		rebuilt[b.Build.ID] = nd
		r.logf("   draft %s:%s rebuilt: %s (was %s)", repo, tag, nd, r.verified[b.Build.Get("RUNTIME")+"/"+b.Build.Get("VERSION")+"/"+b.Build.Get("ARCH")])
	}
	m := r.mark()
	okAll := true
	done := func(id, step string, res RunResult) {
		r.report(id, step, res, false)
		if res.Err != nil {
			okAll = false
		}
	}
	r.runBatch("Build", fBuilds, r.execID, r.srcDir(""), &runOpts{label: "after-rebuild"}, done)
	r.runBatch("Verify", fBuilds, r.execID, r.srcDir(""), &runOpts{label: "after-rebuild"}, done)
	if !okAll {
		pf("Build or Verify of the rebuilt drafts failed")
	}
	_, dbuilds, _, _ := r.since(m)
	if len(dbuilds) != 0 {
		pf("Build ran %d builds for drafts that were already pushed", len(dbuilds))
	}
	for _, b := range fBuilds {
		for _, stage := range []string{"build", "verify"} {
			rec, err := r.record(r.execID, stage, b.Build)
			if err != nil || rec.Digest != rebuilt[b.Build.ID] || (stage == "verify" && rec.Result != "passed") {
				pf("the %s record of %s names %s (%s, %v), not the rebuilt %s", stage, b.Build.ID, rec.Digest, rec.Result, err, rebuilt[b.Build.ID])
			}
		}
	}

	// Attempts 2, 3 and 4.
	attempt("attempt-2", []Fault{{Op: "BatchDeleteImage", N: 1, Match: fRepo, Sticky: true}}, map[string]string{f.Entry.ID: injectedFault}, false)
	res3, from3, to3 := attempt("attempt-3", nil, nil, false)
	first := map[string]string{}
	for _, p := range ready {
		first[p.Entry.ID], err = check(p, "check published")
		if p.Entry.ID == f.Entry.ID && err != nil {
			pf("%v", err)
		}
	}
	for id, nd := range rebuilt {
		if err := r.notPublished(f, nd); err != nil {
			pf("%s: %v", id, err)
		}
	}
	if err := r.publishRecordAgrees(f); err != nil {
		pf("%v", err)
	}
	r.scenario("partial-publish-new-drafts", partial)

	fresh3 := map[string]bool{}
	for _, p := range ready {
		fresh3[key(p)] = res3[p.Entry.ID][0].Err == nil
	}
	summary3, fails := r.freshness(from3, to3, fresh3)
	freshFails = append(freshFails, fails...)
	r.logf("   freshness over attempt 3: %s", summary3)
	r.scenario("freshness-per-image", freshFails)

	// stage-retry-skips-done: the release of the entry that built in the
	// stage retry is published.
	sr := r.stageRetry
	if sr.ok {
		for _, p := range ready {
			if p.Entry.Get("RUNTIME") == sr.rebuilt.Build.Get("RUNTIME") && p.Entry.Get("VERSION") == sr.rebuilt.Build.Get("VERSION") && first[p.Entry.ID] == "" {
				sr.failures = append(sr.failures, fmt.Sprintf("the execution did not publish %s", key(p)))
			}
		}
	}
	r.scenario("stage-retry-skips-done", sr.failures)

	attempt("again", nil, nil, false)
	for _, p := range ready {
		if first[p.Entry.ID] == "" {
			continue
		}
		second, err := r.checkPublished(p)
		switch {
		case err != nil:
			r.row(Row{p.Entry.ID, "check publish again", 0, "FAIL", err.Error()})
		case second != first[p.Entry.ID]:
			r.row(Row{p.Entry.ID, "check publish again", 0, "FAIL", fmt.Sprintf("the state changed: %s, then %s", first[p.Entry.ID], second)})
		default:
			r.row(Row{p.Entry.ID, "check publish again", 0, "ok", "same state"})
		}
	}

	total.LayerBytesWritten = r.layerBytes(nil, total.UploadedLayers)
	fmt.Printf("\nPublish traffic (registry log, every Publish run above):\n"+
		"  layer blobs:  %d downloads (GET/HEAD), %d bytes downloaded; %d uploads (%d bytes, the evidence's documents and empty configs), %d upload requests (POST/PATCH/PUT)\n"+
		"  config blobs: %d reads, %d bytes (allowed: small JSON)\n"+
		"  manifests:    %d requests\n", total.LayerReads, total.LayerBytesRead, total.LayerWrites, total.LayerBytesWritten, total.UploadRequests,
		total.ConfigReads, total.ConfigBytesRead, total.ManifestRequests)
	res := "ok"
	detail := fmt.Sprintf("blobs: %d read (%d B), %d uploaded, all evidence (%d B); config blobs: %d read (%d B)", total.LayerReads, total.LayerBytesRead, total.LayerWrites, total.LayerBytesWritten, total.ConfigReads, total.ConfigBytesRead)
	if why := r.imageLayersMoved(total); why != "" {
		res, detail = "FAIL", why
	}
	r.row(Row{"(all publish runs)", "publish moves no image layers", 0, res, detail})
}

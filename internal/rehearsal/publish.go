package rehearsal

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/evergreen-images/evergreen/runtimes"
)

func fetchBlob(ref name.Digest, opts []remote.Option) ([]byte, error) {
	l, err := remote.Layer(ref, opts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// --- deliberate failures ---------------------------------------------------------------

// negative proves that the rehearsal catches what broke the seed in AWS:
// each case must fail the named entry at the expected command.
func (r *rehearsal) negative(builds []buildEntry) {
	var target *buildEntry
	for i := range builds {
		b := &builds[i]
		if b.Build.Get("ARCH") != "amd64" || r.failed(b.Build.ID, "build") {
			continue
		}
		if target == nil || b.Build.Get("RUNTIME") == "node" {
			target = b
		}
		if b.Build.Get("RUNTIME") == "node" {
			break
		}
	}
	if target == nil {
		r.row(Row{"(none)", "deliberate failures", 0, "FAIL", "no amd64 entry built: the deliberate failures could not run"})
		return
	}
	rt := target.Build.Get("RUNTIME")
	r.logf("== deliberate failures on %s (%s)", target.Build.ID, rt)
	dir := func(src string) string { return filepath.Join(src, "runtimes", rt) }

	type kase struct {
		label   string
		mutate  func(src string) error
		verify  bool   // the failure shows in Verify (Build must pass)
		command string // what the failed build's log must say
	}
	cases := []kase{
		{"broken-self-test", func(src string) error {
			// A self-test that reports a failed check, as a real regression would.
			return editFile(filepath.Join(dir(src), "self-test"), func(s string) (string, error) {
				i := strings.Index(s, "\nset -u\n")
				if i < 0 {
					return "", fmt.Errorf("no 'set -u' line to put the broken check after")
				}
				i += len("\nset -u\n")
				return s[:i] + "echo 'FAIL - deliberately broken by the rehearsal'; exit 1\n" + s[i:], nil
			})
		}, true, selfTestFailure},
		{"non-executable-self-test", func(src string) error {
			return editFile(filepath.Join(dir(src), "Dockerfile"), func(s string) (string, error) {
				return s + "\n# the rehearsal: the entry point loses its executable bit\nRUN chmod 0644 /usr/local/bin/self-test\n", nil
			})
		}, true, selfTestFailure},
		{"dockerfile-does-not-build", func(src string) error {
			return editFile(filepath.Join(dir(src), "Dockerfile"), func(s string) (string, error) {
				i := strings.Index(s, "\nFROM ")
				if i < 0 {
					return "", fmt.Errorf("no FROM line")
				}
				j := strings.Index(s[i+1:], "\n") + i + 2
				return s[:j] + "RUN echo 'deliberately broken by the rehearsal' >&2; exit 3\n" + s[j:], nil
			})
		}, false, buildFailure},
	}
	parallel(len(cases), r.o.Jobs, func(i int) error {
		c := cases[i]
		if err := r.snapshot(c.label, c.mutate); err != nil {
			r.row(Row{target.Build.ID, c.label, 0, "FAIL", "could not make the broken source: " + err.Error()})
			return nil
		}
		execID := NewUUID() // a pipeline execution of its own
		res := r.runBuild(target.BuildAct, target.Build, execID, r.srcDir(c.label), &runOpts{label: c.label})
		if !c.verify {
			r.expectFailure(target.Build.ID, "build ("+c.label+")", res, c.command)
			return nil
		}
		if res.Err != nil {
			r.report(target.Build.ID, "build ("+c.label+")", res, false)
			return nil
		}
		res = r.runBuild(target.VerifyAct, target.Verify, execID, r.srcDir(c.label), &runOpts{label: c.label})
		r.expectFailure(target.Verify.ID, "verify ("+c.label+")", res, c.command)
		return nil
	})

	// A key mismatch between stages: Verify finds Build's record under
	// another key than Build wrote it. Both stages take the key from one
	// function now (internal/records), so the mismatch is made in the
	// bucket: Build's record moved to the key in another order
	// (<runtime>/<arch>/<version>). Verify pulls the digest that record
	// names, not the draft tag: the record's key is what the two stages
	// must agree on, and a record it cannot find must stop it.
	key := recordKey(r.execID, "build", target.Build)
	moved := strings.TrimSuffix(key, target.Build.Get("VERSION")+"/"+target.Build.Get("ARCH")+".json") + target.Build.Get("ARCH") + "/" + target.Build.Get("VERSION") + ".json"
	if err := r.moto.MoveObject(r.bucket, key, moved); err != nil {
		r.row(Row{target.Verify.ID, "verify (record-key-mismatch)", 0, "FAIL", "could not move Build's record: " + err.Error()})
		return
	}
	res := r.runBuild(target.VerifyAct, target.Verify, r.execID, r.srcDir(""), &runOpts{label: "record-key-mismatch"})
	if err := r.moto.MoveObject(r.bucket, moved, key); err != nil {
		r.row(Row{target.Verify.ID, "verify (record-key-mismatch)", 0, "FAIL", "could not put Build's record back: " + err.Error()})
	}
	r.expectFailure(target.Verify.ID, "verify (record-key-mismatch)", res, noBuildRecord)
}

func (r *rehearsal) expectFailure(entry, step string, res RunResult, says string) {
	if res.Err != nil && !failedWith(res, says) {
		r.row(Row{entry, step, res.Seconds, "FAIL", fmt.Sprintf("failed at %q, but its log does not say %q; log %s", res.FailedCommand, says, res.Log)})
		return
	}
	r.report(entry, step, res, true)
}

func editFile(path string, f func(string) (string, error)) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s, err := f(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(s), fi.Mode())
}

// --- publish -------------------------------------------------------------------------------

// layerBytes adds the sizes of uploaded layers, from the drafts' manifests
// when they name them, else from the registry.
func (r *rehearsal) layerBytes(builds []buildEntry, digests []string) int64 {
	var n int64
	repos := map[string]bool{}
	for _, rp := range r.pl.Repositories {
		repos[rp.Name] = true
	}
	for _, d := range digests {
		for rp := range repos {
			ref, err := name.NewDigest(r.ecrReg.Addr+"/"+rp+"@"+d, name.Insecure)
			if err != nil {
				continue
			}
			desc, err := remote.Layer(ref, r.ecr().options()...)
			if err != nil {
				continue
			}
			if sz, err := desc.Size(); err == nil {
				n += sz
				break
			}
		}
	}
	return n
}

// describeTags lists the tags of a runtime version: tag=digest prefix.
func (r *rehearsal) describeTags(repository, version string) string {
	tags, err := r.ecr().tags(r.repoRef(repository))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(tags)) {
		if t == version || strings.HasPrefix(t, version+"-") || strings.HasPrefix(t, "draft-"+version+"-") && strings.HasSuffix(t, r.execID) {
			parts = append(parts, t+"="+tags[t][7:19])
		}
	}
	return strings.Join(parts, " ")
}

// checkPublished inspects what Publish left and returns a description of
// the state (to compare runs).
func (r *rehearsal) checkPublished(p publishEntry) (string, error) {
	rt, v := p.Entry.Get("RUNTIME"), p.Entry.Get("VERSION")
	verified := map[string]string{}
	for _, a := range strings.Fields(p.Entry.Get("ARCHITECTURES")) {
		verified[a] = r.verified[rt+"/"+v+"/"+a]
	}
	return r.checkPublishedSet(p, verified, r.execID)
}

// checkPublishedSet inspects what a Publish of execution execID left:
// <v>-<arch> are the verified digests (by architecture), <v> an index of
// exactly those, the execution's dated tag that index, its drafts gone.
func (r *rehearsal) checkPublishedSet(p publishEntry, verified map[string]string, execID string) (string, error) {
	rt, v := p.Entry.Get("RUNTIME"), p.Entry.Get("VERSION")
	arches := strings.Fields(p.Entry.Get("ARCHITECTURES"))
	e := r.ecr()
	repo := r.repoRef(p.Entry.Get("REPOSITORY"))
	tags, err := e.tags(repo)
	if err != nil {
		return "", err
	}
	for _, a := range arches {
		want := verified[a]
		if got := tags[v+"-"+a]; got != want {
			return "", fmt.Errorf("%s:%s-%s is %q, want the verified %s", rt, v, a, got, want)
		}
		if d, ok := tags[draftTag(v, a, execID)]; ok {
			return "", fmt.Errorf("the draft %s:%s is still there (%s)", rt, draftTag(v, a, execID), d)
		}
	}
	idx, err := e.get(repo, v)
	if err != nil || idx == nil {
		return "", fmt.Errorf("no %s:%s index: %v", rt, v, err)
	}
	if !isIndex(idx.MediaType) {
		return "", fmt.Errorf("%s:%s is a %s, not an index", rt, v, idx.MediaType)
	}
	var ix struct {
		Manifests []struct {
			Digest   string
			Platform struct{ Architecture, OS, Variant string }
		}
	}
	json.Unmarshal(idx.Raw, &ix)
	if len(ix.Manifests) != len(arches) {
		return "", fmt.Errorf("%s:%s names %d manifests, want exactly %d", rt, v, len(ix.Manifests), len(arches))
	}
	var plats []string
	for _, m := range ix.Manifests {
		want := verified[m.Platform.Architecture]
		if m.Digest != want || m.Platform.OS != "linux" {
			return "", fmt.Errorf("%s:%s names %s for %s/%s, want the verified %q", rt, v, m.Digest, m.Platform.OS, m.Platform.Architecture, want)
		}
		plat := m.Platform.OS + "/" + m.Platform.Architecture
		if m.Platform.Variant != "" {
			plat += "/" + m.Platform.Variant
		}
		plats = append(plats, plat+"="+m.Digest)
	}
	firstDigest := verified[arches[0]]
	at, ok, err := r.cfg.PushedAt(p.Entry.Get("REPOSITORY"), firstDigest)
	if err != nil || !ok {
		return "", fmt.Errorf("no push time for %s: %v", firstDigest, err)
	}
	dated := runtimes.DatedTag(v, at.UTC().Format("20060102"), execID)
	if tags[dated] != idx.Digest {
		var have []string
		for t := range tags {
			if strings.Contains(t, "-r20") {
				have = append(have, t)
			}
		}
		return "", fmt.Errorf("dated tag %s:%s is %q, want the index %s (dated tags: %v)", rt, dated, tags[dated], idx.Digest, have)
	}
	r.logf("   inspect %s:%s = %s (%s): %s; dated tag %s", rt, v, idx.Digest, idx.MediaType, strings.Join(plats, ", "), dated)
	var state []string
	for _, t := range slices.Sorted(maps.Keys(tags)) {
		if strings.HasSuffix(t, execID) || t == v || strings.HasPrefix(t, v+"-") {
			state = append(state, t+"="+tags[t])
		}
	}
	return fmt.Sprintf("index %s, %d platforms, dated %s; tags: %s", idx.Digest[:19], len(ix.Manifests), dated, strings.Join(state, " ")), nil
}

// --- the table --------------------------------------------------------------------------------

func (r *rehearsal) printTable() {
	fmt.Println("\nRehearsal summary")
	rows := append([]Row{}, r.rows...)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "entry\tstep\tseconds\tresult\tdetail")
	totals := map[string]float64{}
	counts := map[string]int{}
	for _, row := range rows {
		d := row.Detail
		if len(d) > 140 {
			d = d[:137] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\n", row.Entry, row.Step, row.Seconds, row.Result, d)
		step := row.Step
		if i := strings.Index(step, " ("); i > 0 {
			step = step[:i]
		}
		totals[step] += row.Seconds
		counts[row.Result]++
	}
	tw.Flush()
	var steps []string
	for s, t := range totals {
		if t > 0 {
			steps = append(steps, fmt.Sprintf("%s %.0f s", s, t))
		}
	}
	sort.Strings(steps)
	var res []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		res = append(res, fmt.Sprintf("%d %s", counts[k], k))
	}
	fmt.Printf("\nTotals: %s wall clock (-subset %s, -j %d); summed per step: %s\n", time.Since(r.start).Round(time.Second), r.o.Subset, r.o.Jobs, strings.Join(steps, ", "))
	fmt.Printf("Results: %s\n", strings.Join(res, ", "))
}

package rehearsal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/evergreen-images/evergreen/runtimes"
)

// Options configure a rehearsal.
type Options struct {
	Repo         string // the work tree (the pipeline's source)
	Subset       string // ci or full
	Template     string
	Work         string
	Keep         bool
	Cache        string
	Jobs         int
	SkipNegative bool
	Mirror       string
}

// The stand-in AWS account and region: REGISTRY resolves to the local
// registry instead of <account>.dkr.ecr.<region>.amazonaws.com.
const (
	standInAccount = "111122223333"
	standInRegion  = "eu-west-1"
)

// Row is one line of the closing table.
type Row struct {
	Entry, Step string
	Seconds     float64
	Result      string
	Detail      string
}

type rehearsal struct {
	o       Options
	pl      *Pipeline
	work    string
	bin     string
	cfg     *StandInConfig
	ecrReg  *RegistryProc
	baseReg *RegistryProc
	// ecrAPI serves ECR's API over ecrReg (ecr.go); moto serves S3, SSM,
	// SNS and CloudWatch (moto.go).
	ecrAPI *http.Server
	ecrURL string
	moto   *Moto
	// cw keeps the datapoints of PutMetricData, which moto cannot answer
	// (cloudwatch_standin.go); it is served with ECR's API.
	cw *CloudWatch
	// artifacts are the output artifacts of the actions run so far, by
	// name (the Tool stage's: bin/<uname -m>/evergreen), each a directory.
	artifacts map[string]string
	execID    string
	revision  string
	mu        sync.Mutex
	rows      []Row
	failures  []string
	start     time.Time
	verified  map[string]string // RUNTIME/VERSION/ARCH -> digest verified
	configs   map[string]bool   // config blob digests of the drafts
	// refs resolves the template's Ref and Fn::Sub: pseudo parameters and
	// the resources the rehearsal stands in for (the records bucket).
	refs map[string]string
	// bucket is the records bucket's stand-in name (RECORDS_BUCKET).
	bucket string
	// stageRetry waits for Publish to finish its scenario.
	stageRetry stageRetry
	// scenarios are the results of the scenarios, in order.
	scenarios []scenarioResult
	// variants are the runtimes' variants in the list the template was
	// synthesized from: which bases have a stand-in, and their tags.
	variants map[string]runtimes.Variant
}

func (r *rehearsal) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Printf("[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

func (r *rehearsal) row(row Row) {
	r.mu.Lock()
	r.rows = append(r.rows, row)
	if strings.HasPrefix(row.Result, "FAIL") {
		r.failures = append(r.failures, fmt.Sprintf("%s %s: %s", row.Step, row.Entry, row.Detail))
	}
	r.mu.Unlock()
}

// Rehearse runs the rehearsal.
func Rehearse(o Options) (err error) {
	r := &rehearsal{o: o, start: time.Now(), verified: map[string]string{}, configs: map[string]bool{}, artifacts: map[string]string{}}
	if o.Jobs < 1 {
		o.Jobs = 1
	}
	if o.Subset != "ci" && o.Subset != "full" {
		return fmt.Errorf("-subset must be ci or full, not %q", o.Subset)
	}
	r.work = o.Work
	if r.work == "" {
		r.work, err = os.MkdirTemp("/var/tmp", "rehearsal-")
		if err != nil {
			return err
		}
	}
	if err := os.MkdirAll(r.work, 0o755); err != nil {
		return err
	}
	r.logf("scratch directory %s", r.work)
	defer r.cleanup()
	// SIGINT/SIGTERM: stop the registries and remove the scratch directory.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "rehearse: %s: cleaning up\n", s)
		r.cleanup()
		os.Exit(130)
	}()

	if err := r.loadTemplate(); err != nil {
		return err
	}
	if err := r.setup(); err != nil {
		return err
	}
	builds, publishes, notRehearsed := r.selectEntries()
	for _, n := range notRehearsed {
		r.row(n)
		r.logf("NOT REHEARSED %s %s: %s", n.Step, n.Entry, n.Detail)
	}
	// The Tool stage (the binary every later stage runs) builds while the
	// base stand-ins do: the one needs the CPU, the other mostly the network
	// and qemu.
	toolErr := make(chan error, 1)
	go func() { toolErr <- r.toolStage() }()
	if err := r.buildBases(builds); err != nil {
		<-toolErr
		return err
	}
	if err := <-toolErr; err != nil {
		return err
	}
	from := r.ecrReg.LogSize()
	// The Build stage fails for two entries, is retried from CodeBuild's
	// console and then from the pipeline (scenarios.go).
	r.buildStage(builds)
	r.checkDrafts(builds)
	// Calibration: the same count over Build, which does upload layers.
	if t, err := CountTraffic(r.ecrReg.LogPath, from, r.ecrReg.LogSize(), r.configs); err == nil {
		size := r.layerBytes(builds, t.UploadedLayers)
		r.logf("Build traffic (calibrates the Publish count): %d layer uploads (%d bytes), %d config uploads, %d layer reads, %d upload requests",
			t.LayerWrites, size, t.ConfigWrites, t.LayerReads, t.UploadRequests)
	}
	if !o.SkipNegative {
		r.negative(builds)
	}
	r.runStage("Verify", builds, r.execID, r.srcDir(""), nil)
	r.recordVerified(builds)
	r.publish(publishes, builds)
	// What execution 1 published carries its evidence, and the consumers'
	// check passes on it (scenarios_evidence.go).
	r.evidenceScenarios(publishes)
	// The Report stage, unchanged and changed releases, the
	// consumers' parameters (scenarios_releases.go).
	r.releaseScenarios(publishes, builds)
	// The vulnerability gate on declared scans (scenarios_gate.go),
	// then make status and make rollback against moto seeded with what
	// all of the above left (ops.go).
	r.gateScenarios(publishes, builds)
	r.opsScenarios(publishes)
	r.printTable()
	r.printScenarios()
	if len(r.failures) > 0 {
		return fmt.Errorf("%d failure(s):\n  %s", len(r.failures), strings.Join(r.failures, "\n  "))
	}
	return nil
}

func (r *rehearsal) cleanup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ecrReg != nil {
		r.ecrReg.Stop()
		r.ecrReg = nil
	}
	if r.baseReg != nil {
		r.baseReg.Stop()
		r.baseReg = nil
	}
	if r.ecrAPI != nil {
		r.ecrAPI.Close()
		r.ecrAPI = nil
	}
	if r.moto != nil {
		r.moto.Stop()
		r.moto = nil
	}
	// Image stores were mounted by podman/buildah: unmount before removing.
	if r.work != "" {
		exec.Command("sh", "-c", `grep -o " $0[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null; true`, r.work).Run()
		if !r.o.Keep && r.o.Work == "" {
			os.RemoveAll(r.work)
		} else {
			fmt.Printf("kept %s\n", r.work)
		}
		r.work = ""
	}
}

// --- template -----------------------------------------------------------------------------

func (r *rehearsal) loadTemplate() error {
	path := r.o.Template
	if path == "" {
		out := filepath.Join(r.work, "cdk.out")
		r.logf("synthesizing the app: cdk synth --quiet --output %s", out)
		start := time.Now()
		cmd := exec.Command("cdk", "synth", "--quiet", "--output", out)
		cmd.Dir = r.o.Repo
		// No CLI telemetry from a rehearsal: without a route to its
		// endpoint the CLI leaves its events in a file in the temp folder.
		cmd.Env = append(os.Environ(), "CDK_DISABLE_CLI_TELEMETRY=true", "PATH="+filepath.Join(r.o.Repo, ".tools/node22/node_modules/.bin")+":"+filepath.Join(r.o.Repo, ".tools/cdk/node_modules/.bin")+":"+os.Getenv("PATH"))
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("cdk synth (run `make setup` first): %v\n%s", err, b)
		}
		r.row(Row{"(app)", "synth", time.Since(start).Seconds(), "ok", "cdk synth"})
		path = filepath.Join(out, "EvergreenImages.template.json")
	}
	pl, err := LoadTemplate(path)
	if err != nil {
		return err
	}
	r.pl = pl
	if r.variants, err = Variants(r.o.Repo); err != nil {
		return fmt.Errorf("the runtime list (which bases the rehearsal can stand in for): %w", err)
	}
	for _, st := range []string{"Tool", "Build", "Verify", "Publish"} {
		if len(pl.Stage(st)) == 0 {
			return fmt.Errorf("%s: the pipeline has no %s stage", path, st)
		}
	}
	r.logf("template %s: %d CodeBuild actions, %d repositories", path, len(pl.Actions), len(pl.Repositories))
	return nil
}

// --- setup ----------------------------------------------------------------------------------

func (r *rehearsal) setup() error {
	var err error
	password := NewUUID()
	if r.ecrReg, err = StartRegistry(filepath.Join(r.work, "ecr-registry"), "AWS", password); err != nil {
		return fmt.Errorf("ECR stand-in registry: %w", err)
	}
	if r.baseReg, err = StartRegistry(filepath.Join(r.work, "base-registry"), "", ""); err != nil {
		return fmt.Errorf("base image registry: %w", err)
	}
	r.logf("registries: ECR stand-in %s (htpasswd user AWS), public base images %s (anonymous)", r.ecrReg.Addr, r.baseReg.Addr)

	// Every BASE_REGISTRY of the Build entries is served by the base registry.
	bases := map[string]bool{}
	for _, a := range r.pl.Stage("Build") {
		for _, e := range a.Spec.Entries {
			if b := e.Get("BASE_REGISTRY"); b != "" {
				bases[b] = true
			}
		}
	}
	var conf strings.Builder
	conf.WriteString("unqualified-search-registries = []\n\n")
	for _, b := range slices.Sorted(maps.Keys(bases)) {
		fmt.Fprintf(&conf, "[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n\n", b, r.baseReg.Addr+"/library")
	}
	fmt.Fprintf(&conf, "[[registry]]\nlocation = %q\ninsecure = true\n", r.ecrReg.Addr)
	regConf := filepath.Join(r.work, "registries.conf")
	if err := os.WriteFile(regConf, []byte(conf.String()), 0o644); err != nil {
		return err
	}

	realDocker := ""
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(d, "docker")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			realDocker = p
			break
		}
	}
	if realDocker == "" {
		return fmt.Errorf("no docker client on PATH (docker login is run for real)")
	}
	r.bin = filepath.Join(r.work, "bin")
	state := filepath.Join(r.work, "state")
	for _, d := range []string{r.bin, state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := copyFile(exe, filepath.Join(r.bin, "rehearse-standin"), 0o755); err != nil {
		return err
	}
	for _, n := range []string{"docker"} {
		if err := os.Symlink("rehearse-standin", filepath.Join(r.bin, n)); err != nil {
			return err
		}
	}
	// What a Ref or Fn::Sub of a project variable resolves to. A bucket
	// without a literal name gets one the way CloudFormation names it
	// (stack-logicalid-suffix, lower case): the commands must take the
	// name from RECORDS_BUCKET, never assume it.
	r.refs = map[string]string{"AWS::AccountId": standInAccount, "AWS::Region": standInRegion, "AWS::URLSuffix": "amazonaws.com",
		"AWS::Partition": "aws", "AWS::StackName": r.pl.StackName}
	var buckets []string
	for _, b := range r.pl.Buckets {
		n := b.Name
		if n == "" {
			n = strings.ToLower(r.pl.StackName + "-" + b.LogicalID + "-" + strings.ReplaceAll(NewUUID(), "-", "")[:12])
		}
		r.refs[b.LogicalID] = n
		buckets = append(buckets, n)
	}
	// A Ref to a topic is its ARN; CloudFormation names a topic without a
	// literal name <stack>-<logical id>-<random suffix> (upper case
	// letters and digits).
	var topics []string
	for _, tp := range r.pl.Topics {
		n := tp.Name
		if n == "" {
			n = r.pl.StackName + "-" + tp.LogicalID + "-" + strings.ToUpper(strings.ReplaceAll(NewUUID(), "-", "")[:13])
		}
		arn := "arn:aws:sns:" + standInRegion + ":" + standInAccount + ":" + n
		r.refs[tp.LogicalID] = arn
		topics = append(topics, arn)
	}
	for _, a := range r.pl.Stage("Build") {
		for _, v := range a.ProjectEnv {
			if v.Name == "RECORDS_BUCKET" {
				if r.bucket, err = ResolveProjectValue(v.Value, r.refs); err != nil {
					return fmt.Errorf("the Build project's RECORDS_BUCKET: %w", err)
				}
			}
		}
	}
	if r.bucket == "" {
		return fmt.Errorf("the Build project has no RECORDS_BUCKET: the rehearsal reads the records the commands write there")
	}
	r.cfg = &StandInConfig{
		Registry: r.ecrReg.Addr, User: "AWS", Password: password,
		Account: standInAccount, Region: standInRegion,
		Repositories: r.pl.Repositories, StateDir: state,
		RegistriesConf: regConf, RealDocker: realDocker,
		PublicRegistry: r.baseReg.Addr,
	}
	for _, b := range slices.Sorted(maps.Keys(bases)) {
		r.cfg.BaseMirrors = append(r.cfg.BaseMirrors, Mirror{b, r.baseReg.Addr + "/library"})
	}
	if err := r.cfg.Write(r.bin); err != nil {
		return err
	}
	// ECR's API, in this process, over the ECR stand-in registry.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.ecrURL = "http://" + l.Addr().String()
	r.cw = &CloudWatch{Now: time.Now}
	mux := http.NewServeMux()
	mux.Handle(cloudWatchPathPrefix, r.cw)
	mux.Handle("/", r.ecr())
	r.ecrAPI = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go r.ecrAPI.Serve(l)
	if r.moto, err = StartMoto(r.o.Repo, filepath.Join(r.work, "moto"), standInAccount, standInRegion); err != nil {
		return err
	}
	if err := r.moto.Create(context.Background(), buckets, topics); err != nil {
		return err
	}
	r.logf("AWS: ECR's API %s and CloudWatch's PutMetricData (over the ECR stand-in registry), moto %s (S3, SSM, SNS): buckets %v, topics %v", r.ecrURL, r.moto.URL, buckets, topics)

	r.execID = NewUUID()
	if out, err := exec.Command("git", "-C", r.o.Repo, "rev-parse", "HEAD").Output(); err == nil {
		r.revision = strings.TrimSpace(string(out))
	} else {
		r.revision = "unknown"
	}
	if err := r.snapshot("", nil); err != nil {
		return err
	}
	r.logf("pipeline execution %s, source revision %s", r.execID, r.revision)
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (r *rehearsal) srcDir(variant string) string {
	if variant == "" {
		return filepath.Join(r.work, "src")
	}
	return filepath.Join(r.work, "src-"+variant)
}

// snapshot copies the work tree (the pipeline's source artifact) with file
// modes, leaving out .git and installed tools; mutate edits the copy.
func (r *rehearsal) snapshot(variant string, mutate func(dir string) error) error {
	dst := r.srcDir(variant)
	os.RemoveAll(dst)
	cmd := exec.Command("tar", "-C", r.o.Repo, "--exclude=./.git", "--exclude=./.tools", "--exclude=./cdk.out",
		"--exclude=./node_modules", "--exclude=./.venv", "--exclude=./--storage-driver", "-cf", "-", ".")
	untar := exec.Command("tar", "-C", dst, "-xpf", "-")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	if err := cmd.Start(); err != nil {
		return err
	}
	if out, err := untar.CombinedOutput(); err != nil {
		return fmt.Errorf("copying the source: %v %s", err, out)
	}
	if err := cmd.Wait(); err != nil {
		return err
	}
	if mutate != nil {
		return mutate(dst)
	}
	return nil
}

// --- selection --------------------------------------------------------------------------------

// buildEntry is a Build entry and its Verify twin.
type buildEntry struct {
	Build, Verify Entry
	BuildAct      Action
	VerifyAct     Action
}

type publishEntry struct {
	Entry Entry
	Act   Action
}

func (r *rehearsal) selectEntries() ([]buildEntry, []publishEntry, []Row) {
	verify := map[string]struct {
		e Entry
		a Action
	}{}
	for _, a := range r.pl.Stage("Verify") {
		for _, e := range a.Spec.Entries {
			verify[e.ID] = struct {
				e Entry
				a Action
			}{e, a}
		}
	}
	var builds []buildEntry
	var skipped []Row
	chosenVersion := map[string]string{}
	built := map[string]bool{} // RUNTIME/VERSION/ARCH
	for _, a := range r.pl.Stage("Build") {
		for _, e := range a.Spec.Entries {
			rt, v, arch := e.Get("RUNTIME"), e.Get("VERSION"), e.Get("ARCH")
			ok, why := StandInFor(baseSpecOf(e, r.variants))
			if !ok {
				skipped = append(skipped, Row{e.ID, "build+verify", 0, "NOT REHEARSED", why})
				continue
			}
			if r.o.Subset == "ci" {
				if cv, seen := chosenVersion[rt]; seen && cv != v {
					skipped = append(skipped, Row{e.ID, "build+verify", 0, "not in subset ci", "one version per runtime: " + rt + " " + cv})
					continue
				}
				chosenVersion[rt] = v
			}
			ve, ok := verify[e.ID]
			if !ok {
				skipped = append(skipped, Row{e.ID, "verify", 0, "FAIL", "the Build entry has no Verify entry of the same identifier"})
				continue
			}
			builds = append(builds, buildEntry{e, ve.e, a, ve.a})
			built[rt+"/"+v+"/"+arch] = true
		}
	}
	var pubs []publishEntry
	// A release is not rehearsed, rather than left out of subset ci, when
	// a Build entry of it has no stand-in.
	noStandIn := map[string]string{} // RUNTIME/VERSION -> why
	for _, a := range r.pl.Stage("Build") {
		for _, e := range a.Spec.Entries {
			if ok, why := StandInFor(baseSpecOf(e, r.variants)); !ok {
				noStandIn[e.Get("RUNTIME")+"/"+e.Get("VERSION")] = why
			}
		}
	}
	for _, a := range r.pl.Stage("Publish") {
		for _, e := range a.Spec.Entries {
			rt, v := e.Get("RUNTIME"), e.Get("VERSION")
			var missing []string
			for _, arch := range strings.Fields(e.Get("ARCHITECTURES")) {
				if !built[rt+"/"+v+"/"+arch] {
					missing = append(missing, arch)
				}
			}
			if len(missing) > 0 {
				why := fmt.Sprintf("no %s draft is built in this rehearsal (subset %s)", strings.Join(missing, "+"), r.o.Subset)
				res := "NOT REHEARSED"
				if no, ok := noStandIn[rt+"/"+v]; ok {
					why += ": " + no
				} else if r.o.Subset == "ci" {
					res = "not in subset ci"
				}
				skipped = append(skipped, Row{e.ID, "publish", 0, res, why})
				continue
			}
			pubs = append(pubs, publishEntry{e, a})
		}
	}
	return builds, pubs, skipped
}

// --- bases --------------------------------------------------------------------------------------

func (r *rehearsal) buildBases(builds []buildEntry) error {
	need := map[BaseSpec]map[string]bool{}
	for _, b := range builds {
		bs := baseSpecOf(b.Build, r.variants)
		if need[bs] == nil {
			need[bs] = map[string]bool{}
		}
		// Both architectures, as the official images: --platform picks one.
		need[bs]["amd64"], need[bs]["arm64"] = true, true
	}
	bases := &Bases{Work: filepath.Join(r.work, "bases"), Cache: r.o.Cache, Registry: r.baseReg.Addr, Mirror: r.o.Mirror, Log: r.logf}
	defer func() {
		d := filepath.Join(bases.Work, "bases-storage")
		removeStore(d)
	}()
	os.MkdirAll(bases.Work, 0o755)
	// The root file systems first (both at once: debootstrap for arm64 runs
	// under emulation, amd64 mostly downloads).
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, arch := range []string{"amd64", "arm64"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = bases.rootfsOnce(arch)
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	r.row(Row{"(bases)", "debootstrap " + StandInRelease + " amd64+arm64", time.Since(start).Seconds(), "ok", ""})
	var specs []BaseSpec
	for bs := range need {
		specs = append(specs, bs)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Image+":"+specs[i].Tag() < specs[j].Image+":"+specs[j].Tag() })
	err := parallel(len(specs), r.o.Jobs, func(i int) error {
		bs := specs[i]
		start := time.Now()
		err := bases.Build(bs, slices.Sorted(maps.Keys(need[bs])))
		res := "ok"
		detail := fmt.Sprintf("%s:%s stand-in (amd64, arm64)", bs.Image, bs.Tag())
		if err != nil {
			res, detail = "FAIL", err.Error()
		}
		r.row(Row{"(bases)", "base " + bs.Image + ":" + bs.Version, time.Since(start).Seconds(), res, detail})
		return err
	})
	if err != nil {
		return fmt.Errorf("building the base stand-ins: %w", err)
	}
	return nil
}

func parallel(n, jobs int, f func(i int) error) error {
	sem := make(chan struct{}, jobs)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// --- running builds ---------------------------------------------------------------------------

// runOpts changes one run for a deliberate failure.
type runOpts struct {
	label     string                    // table step suffix
	mutate    func(Buildspec) Buildspec // edits the stage's buildspec
	expectErr bool
	// noActionEnv leaves out the pipeline action's variables: a build
	// retried from CodeBuild's console, if it does not keep them.
	noActionEnv bool
	// env is added to what the build's machine has (the Tool stage's Go
	// toolchain and its caches).
	env []string
}

// runBuild runs one build-graph entry of an action as CodeBuild would.
func (r *rehearsal) runBuild(act Action, e Entry, execID, src string, ro *runOpts) RunResult {
	spec := act.Spec
	if ro != nil && ro.mutate != nil {
		spec = ro.mutate(spec)
	}
	step := strings.ToLower(act.Stage)
	if ro != nil && ro.label != "" {
		step += "-" + ro.label
	}
	id := e.ID
	if !act.Batch {
		id = act.Name // a plain build has no build-graph entry
	}
	home, err := os.MkdirTemp(filepath.Join(r.work), "home-"+step+"-"+id+"-")
	if err != nil {
		return RunResult{Err: err}
	}
	logPath := filepath.Join(r.work, "logs", step+"-"+id+".log")
	os.MkdirAll(filepath.Dir(logPath), 0o755)
	env, err := r.env(act, e, spec, execID, src, home, ro != nil && ro.noActionEnv)
	if err != nil {
		return RunResult{Err: err, Log: logPath}
	}
	if ro != nil {
		env = append(env, ro.env...)
	}
	script, err := Script(spec.Phases)
	if err != nil {
		return RunResult{Err: err, Log: logPath}
	}
	timeout := time.Duration(act.TimeoutMinutes) * time.Minute
	if timeout == 0 {
		timeout = 60 * time.Minute
	}
	res := RunScript(script, src, env, logPath, timeout)
	// The build's machine goes away: its image store with it.
	removeStore(home)
	return res
}

// removeStore removes a directory holding an image store and the store's
// run directory, unmounting what podman or buildah left mounted there.
func removeStore(dir string) {
	for _, d := range []string{dir, RunRoot(dir)} {
		exec.Command("sh", "-c", `grep -o " $0[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null; true`, d).Run()
		os.RemoveAll(d)
	}
}

func (r *rehearsal) env(act Action, e Entry, spec Buildspec, execID, src, home string, noActionEnv bool) ([]string, error) {
	var project []Var
	for _, v := range act.ProjectEnv {
		val, err := ResolveProjectValue(v.Value, r.refs)
		if err != nil {
			return nil, fmt.Errorf("project variable %s: %w", v.Name, err)
		}
		if v.Name == "REGISTRY" {
			want := standInAccount + ".dkr.ecr." + standInRegion + ".amazonaws.com"
			if val != want {
				return nil, fmt.Errorf("REGISTRY resolves to %q, not to this account's ECR registry %q: the rehearsal only stands in for ECR", val, want)
			}
			val = r.ecrReg.Addr // the substitution: ECR -> the local registry
		}
		project = append(project, Var{v.Name, val})
	}
	pvars := map[string]string{
		"codepipeline.PipelineExecutionId": execID,
		"SourceVariables.VersionId":        r.revision,
		"SourceVariables.CommitId":         r.revision,
	}
	var action []Var
	for _, v := range act.ActionEnv {
		val, err := ResolvePipelineValue(v.Value, pvars)
		if err != nil {
			return nil, fmt.Errorf("pipeline action variable %s: %w", v.Name, err)
		}
		action = append(action, Var{v.Name, val})
	}
	if noActionEnv {
		action = nil
	}
	buildID := act.Project + ":" + NewUUID()
	codebuild := []Var{
		{"AWS_REGION", standInRegion},
		{"AWS_DEFAULT_REGION", standInRegion},
		{"CODEBUILD_SRC_DIR", src},
		{"CODEBUILD_BUILD_ID", buildID},
		// Every CodeBuild build has it; Build records the project it names
		// as the provenance's builder.
		{"CODEBUILD_BUILD_ARN", "arn:aws:codebuild:" + standInRegion + ":" + standInAccount + ":build/" + buildID},
	}
	// The other input artifacts, each where CodeBuild unpacks it: the
	// Tool stage's binary for every later stage.
	for _, in := range act.Inputs {
		if in == act.Primary {
			continue
		}
		dir, ok := r.artifacts[in]
		if !ok {
			return nil, fmt.Errorf("%s/%s takes the artifact %s, which no earlier rehearsed action produced", act.Stage, act.Name, in)
		}
		codebuild = append(codebuild, Var{"CODEBUILD_SRC_DIR_" + in, dir})
	}
	if act.Batch {
		codebuild = append(codebuild, Var{"CODEBUILD_BATCH_BUILD_IDENTIFIER", e.ID})
	}
	codebuild = append(codebuild, Var{"CODEBUILD_INITIATOR", "codepipeline/rehearsal"})
	base := []string{
		"PATH=" + r.bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		"LANG=C.UTF-8",
		"TMPDIR=" + home,
		// The substitution for AWS: the SDK's endpoints (ECR and ECR
		// Public to the ECR stand-in, everything else to moto) and fake
		// credentials where CodeBuild gives the build role's.
		"AWS_ENDPOINT_URL_ECR=" + r.ecrURL,
		"AWS_ENDPOINT_URL_ECR_PUBLIC=" + r.ecrURL,
		"AWS_ENDPOINT_URL_CLOUDWATCH=" + r.ecrURL,
	}
	base = append(base, r.moto.BuildEnv()...)
	return BuildEnv(base, Env{codebuild, project, action}, spec, e)
}

// runPlain runs a plain (non-batch) action once, as CodeBuild runs the
// build CodePipeline starts: the project's, the action's and the
// buildspec's variables, no build-graph entry.
func (r *rehearsal) runPlain(act Action, execID, src string, ro *runOpts) RunResult {
	if act.Batch {
		return RunResult{Err: fmt.Errorf("%s/%s is a batch action", act.Stage, act.Name)}
	}
	return r.runBuild(act, Entry{}, execID, src, ro)
}

// runStage runs a stage's entries (Build or Verify), jobs at a time, each
// after the entries it depends on (depend-on) have finished, as a batch
// does. A dependency outside the rehearsed subset counts as finished.
func (r *rehearsal) runStage(stage string, builds []buildEntry, execID, src string, ro *runOpts) {
	r.runBatch(stage, builds, execID, src, ro, func(id, step string, res RunResult) {
		r.report(id, step, res, ro != nil && ro.expectErr)
	})
}

// runBatch runs a batch of a stage's entries (Build or Verify) and hands
// each result to done with the entry id and the table's step name.
func (r *rehearsal) runBatch(stage string, builds []buildEntry, execID, src string, ro *runOpts, done func(id, step string, res RunResult)) {
	label := ""
	if ro != nil && ro.label != "" {
		label = " (" + ro.label + ")"
	}
	r.logf("== %s%s: %d entries", stage, label, len(builds))
	entry := func(b buildEntry) (Action, Entry) {
		if stage == "Verify" {
			return b.VerifyAct, b.Verify
		}
		return b.BuildAct, b.Build
	}
	ids := make([]string, len(builds))
	deps := make([][]string, len(builds))
	for i, b := range builds {
		_, e := entry(b)
		ids[i], deps[i] = e.ID, e.DependOn
	}
	inOrder(ids, deps, r.o.Jobs, func(i int) {
		b := builds[i]
		act, e := entry(b)
		res := r.runBuild(act, e, execID, src, ro)
		done(e.ID, strings.ToLower(stage)+label, res)
	})
}

// inOrder runs f for every entry, at most jobs at a time, starting each
// only when the entries it depends on (by id, among ids) have finished.
// Entries are started in the order given; dependencies on ids not listed
// are already met. A dependency cycle would leave entries unstarted: the
// generator never writes one, and inOrder panics rather than hang.
func inOrder(ids []string, deps [][]string, jobs int, f func(i int)) {
	index := map[string]int{}
	for i, id := range ids {
		index[id] = i
	}
	done := make([]bool, len(ids))
	started := make([]bool, len(ids))
	finished := make(chan int)
	running, left := 0, len(ids)
	ready := func(i int) bool {
		for _, d := range deps[i] {
			if j, ok := index[d]; ok && !done[j] {
				return false
			}
		}
		return true
	}
	for left > 0 {
		for i := range ids {
			if running < jobs && !started[i] && ready(i) {
				started[i] = true
				running++
				go func() { f(i); finished <- i }()
			}
		}
		if running == 0 {
			panic(fmt.Sprintf("rehearsal: depend-on cycle among %v", ids))
		}
		i := <-finished
		done[i] = true
		running--
		left--
	}
}

func (r *rehearsal) report(entry, step string, res RunResult, expectErr bool) {
	switch {
	case res.Err == nil && !expectErr:
		r.logf("ok   %s %s (%.0f s)", step, entry, res.Seconds)
		r.row(Row{entry, step, res.Seconds, "ok", ""})
	case res.Err == nil && expectErr:
		r.logf("FAIL %s %s: succeeded, but it was made to fail (log %s)", step, entry, res.Log)
		r.row(Row{entry, step, res.Seconds, "FAIL", "succeeded although it was made to fail; log " + res.Log})
	default:
		msg := fmt.Sprintf("%s entry %s failed: %v", step, entry, res.Err)
		if res.FailedCommand != "" {
			msg += "; failed command: " + res.FailedCommand
		}
		if expectErr {
			r.logf("ok   %s %s failed as it should: %s", step, entry, msg)
			r.row(Row{entry, step, res.Seconds, "failed as expected", msg})
			return
		}
		r.logf("FAIL %s\n--- last lines of %s:\n%s\n---", msg, res.Log, Tail(res.Log, 25))
		r.row(Row{entry, step, res.Seconds, "FAIL", msg + "; log " + res.Log})
	}
}

func (r *rehearsal) ecr() *ECR { return &ECR{Cfg: r.cfg, Now: time.Now} }

func (r *rehearsal) repoRef(repository string) name.Repository {
	ref, _ := name.NewRepository(r.ecrReg.Addr+"/"+repository, name.Insecure)
	return ref
}

// draftTag is the tag scheme of runtimes/tags.go, stated again here so the
// rehearsal checks that the commands compute the same tags.
func draftTag(version, arch, execID string) string {
	return "draft-" + version + "-" + arch + "-" + execID
}

// checkDrafts: each Build pushed one single-platform image manifest for its
// architecture under the documented draft tag.
func (r *rehearsal) checkDrafts(builds []buildEntry) {
	for _, b := range builds {
		if r.failed(b.Build.ID, "build") {
			continue
		}
		rt, v, arch := b.Build.Get("RUNTIME"), b.Build.Get("VERSION"), b.Build.Get("ARCH")
		tag := draftTag(v, arch, r.execID)
		rec, recErr := r.record(r.execID, "build", b.Build)
		err := func() error {
			m, err := r.ecr().get(r.repoRef(b.Build.Get("REPOSITORY")), tag)
			if err != nil {
				return err
			}
			if m == nil {
				return fmt.Errorf("no %s:%s in the registry after Build", rt, tag)
			}
			var om ociManifest
			if err := json.Unmarshal(m.Raw, &om); err != nil || isIndex(m.MediaType) {
				return fmt.Errorf("%s:%s is a %s, not a single-platform image manifest", rt, tag, m.MediaType)
			}
			r.mu.Lock()
			r.configs[om.Config.Digest] = true
			r.mu.Unlock()
			cfg, err := r.blob(b.Build.Get("REPOSITORY"), om.Config.Digest)
			if err != nil {
				return err
			}
			var c struct{ Architecture, OS string }
			json.Unmarshal(cfg, &c)
			if c.Architecture != arch || c.OS != "linux" {
				return fmt.Errorf("%s:%s is built for %s/%s, not linux/%s", rt, tag, c.OS, c.Architecture, arch)
			}
			// Build's record names what it pushed.
			if recErr != nil {
				return recErr
			}
			if rec.Digest != m.Digest || rec.MediaType != m.MediaType || rec.PushedAt == "" {
				return fmt.Errorf("the Build record of %s names %s (%s, pushed %q), the draft is %s (%s)", tag, rec.Digest, rec.MediaType, rec.PushedAt, m.Digest, m.MediaType)
			}
			r.logf("draft %s:%s = %s (%s, linux/%s, %d layers)", b.Build.Get("REPOSITORY"), tag, m.Digest, m.MediaType, arch, len(om.Layers))
			return nil
		}()
		if err != nil {
			r.row(Row{b.Build.ID, "check draft", 0, "FAIL", err.Error()})
		} else {
			r.row(Row{b.Build.ID, "check draft", 0, "ok", tag})
		}
	}
}

func (r *rehearsal) blob(repo, digest string) ([]byte, error) {
	ref, err := name.NewDigest(r.ecrReg.Addr+"/"+repo+"@"+digest, name.Insecure)
	if err != nil {
		return nil, err
	}
	return fetchBlob(ref, r.ecr().options())
}

func (r *rehearsal) failed(entry, stepPrefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, row := range r.rows {
		if row.Entry == entry && strings.HasPrefix(row.Step, stepPrefix) && row.Result == "FAIL" {
			return true
		}
	}
	return false
}

// recordVerified keeps, per entry, the digest Verify recorded as passed,
// after checking that it is the digest Build recorded and the draft's.
func (r *rehearsal) recordVerified(builds []buildEntry) {
	for _, b := range builds {
		if r.failed(b.Verify.ID, "verify") || r.failed(b.Build.ID, "build") {
			continue
		}
		rt, v, arch := b.Build.Get("RUNTIME"), b.Build.Get("VERSION"), b.Build.Get("ARCH")
		err := func() error {
			built, err := r.record(r.execID, "build", b.Build)
			if err != nil {
				return err
			}
			ver, err := r.record(r.execID, "verify", b.Build)
			if err != nil {
				return err
			}
			if ver.Result != "passed" || ver.Digest != built.Digest || ver.ExecutionID != r.execID {
				return fmt.Errorf("the verify record says %q for %s in execution %s; Build recorded %s", ver.Result, ver.Digest, ver.ExecutionID, built.Digest)
			}
			m, err := r.ecr().get(r.repoRef(b.Build.Get("REPOSITORY")), draftTag(v, arch, r.execID))
			if err != nil || m == nil {
				return fmt.Errorf("draft gone after Verify: %v", err)
			}
			if m.Digest != ver.Digest {
				return fmt.Errorf("the draft is %s, Verify passed %s", m.Digest, ver.Digest)
			}
			r.verified[rt+"/"+v+"/"+arch] = ver.Digest
			return nil
		}()
		if err != nil {
			r.row(Row{b.Verify.ID, "verified digest", 0, "FAIL", err.Error()})
		}
	}
}

// Record is the part of a Build, Verify or Publish record the rehearsal reads.
type Record struct {
	Stage       string `json:"stage"`
	ExecutionID string `json:"executionId"`
	Digest      string `json:"digest"`
	MediaType   string `json:"mediaType"`
	PushedAt    string `json:"pushedAt"`
	Result      string `json:"result"`
	Index       string `json:"index"`
	DatedTag    string `json:"datedTag"`
}

// recordKey is where the commands keep an entry's record of a stage.
func recordKey(execID, stage string, e Entry) string {
	k := "executions/" + execID + "/" + stage + "/" + e.Get("RUNTIME") + "/" + e.Get("VERSION")
	if stage == "publish" {
		return k + ".json"
	}
	return k + "/" + e.Get("ARCH") + ".json"
}

// record reads an entry's record of a stage back from the records bucket.
func (r *rehearsal) record(execID, stage string, e Entry) (Record, error) {
	var rec Record
	key := recordKey(execID, stage, e)
	data, ok, err := r.moto.GetObject(r.bucket, key)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, fmt.Errorf("no %s record s3://%s/%s", stage, r.bucket, key)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("s3://%s/%s: %w", r.bucket, key, err)
	}
	return rec, nil
}

// toolStage runs the Tool stage's build for real: its buildspec's commands
// (go build of cmd/evergreen) in a copy of the source, with the machine's
// Go toolchain, which must be the one the buildspec asks for, and the
// machine's build and module caches (warm, as CodeBuild's would not be:
// only the time differs). Its output artifact's files are then where the
// later stages find them, CODEBUILD_SRC_DIR_<artifact>. In -subset ci only
// the binary for this machine's architecture is built (the cross-compile
// costs about 2 minutes cold): every build of the rehearsal runs on this
// machine, arm64 entries included (only their images run under qemu), so
// `uname -m` picks this machine's binary.
func (r *rehearsal) toolStage() error {
	acts := r.pl.Stage("Tool")
	if len(acts) != 1 || acts[0].Batch {
		return fmt.Errorf("the pipeline's Tool stage has %d actions, want one plain build", len(acts))
	}
	act := acts[0]
	if len(act.Outputs) != 1 {
		return fmt.Errorf("the Tool action has the output artifacts %v, want one", act.Outputs)
	}
	start := time.Now()
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the Tool stage needs Go on PATH: %w", err)
	}
	out, err := exec.Command(goBin, "env", "GOVERSION", "GOCACHE", "GOMODCACHE", "GOPROXY").Output()
	if err != nil {
		return fmt.Errorf("go env: %w", err)
	}
	goenv := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(goenv) != 4 {
		return fmt.Errorf("go env printed %q", out)
	}
	for lang, v := range act.Spec.RuntimeVersions {
		if lang != "golang" || !strings.HasPrefix(goenv[0], "go"+v) {
			return fmt.Errorf("the Tool buildspec asks for runtime-versions %s %s; this machine has %s", lang, v, goenv[0])
		}
	}
	host := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	spec := act.Spec
	var skipped []string
	if r.o.Subset == "ci" {
		var phases []Phase
		for _, ph := range spec.Phases {
			var cmds []string
			for _, c := range ph.Commands {
				if strings.Contains(c, "GOARCH=") && !strings.Contains(c, "GOARCH="+runtime.GOARCH+" ") {
					skipped = append(skipped, c)
					continue
				}
				cmds = append(cmds, c)
			}
			phases = append(phases, Phase{ph.Name, cmds})
		}
		spec.Phases = phases
	}
	if err := r.snapshot("tool", nil); err != nil {
		return err
	}
	src := r.srcDir("tool")
	ro := &runOpts{
		mutate: func(Buildspec) Buildspec { return spec },
		env: []string{"PATH=" + filepath.Dir(goBin) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"GOCACHE=" + goenv[1], "GOMODCACHE=" + goenv[2], "GOPROXY=" + goenv[3]},
	}
	res := r.runPlain(act, r.execID, src, ro)
	r.report("(tool)", "tool", res, false)
	if res.Err != nil {
		return fmt.Errorf("the Tool stage failed (log %s): nothing after it can run", res.Log)
	}
	dir := filepath.Join(r.work, "artifacts", act.Outputs[0])
	var got []string
	for _, f := range spec.Artifacts {
		if !strings.Contains(f, "/"+host+"/") && r.o.Subset == "ci" {
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			return err
		}
		if err := copyFile(filepath.Join(src, f), filepath.Join(dir, f), 0o755); err != nil {
			return fmt.Errorf("the Tool stage's artifact file %s: %w", f, err)
		}
		got = append(got, f)
	}
	if !slices.ContainsFunc(got, func(f string) bool { return strings.Contains(f, "/"+host+"/") }) {
		return fmt.Errorf("the Tool stage's artifact has no binary for %s (files %v)", host, spec.Artifacts)
	}
	r.mu.Lock()
	r.artifacts[act.Outputs[0]] = dir
	r.mu.Unlock()
	note := ""
	if len(skipped) > 0 {
		note = fmt.Sprintf("; not built in -subset ci (no build of this machine runs it): %s", strings.Join(skipped, " | "))
	}
	r.logf("   Tool: %s in %.0f s (%s)%s", strings.Join(got, ", "), time.Since(start).Seconds(), goenv[0], note)
	return nil
}

package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/source"
	"github.com/evergreen-images/evergreen/runtimes"
	"github.com/evergreen-images/evergreen/stacks"
)

// The stacks this package synthesizes, once, in one jsii process (starting
// it costs seconds): the default app as `cdk synth` builds it from cdk.json,
// and the same app with a 60-version list, which splits every stage into
// parts.
const (
	defaultStack = "EvergreenImages"
	sixtyStack   = "EvergreenImagesSixty"
	// optionsStack turns on every option that adds resources: the
	// account-wide enhanced scanning and signing, a concurrency cap, a
	// GitHub role, another prefix.
	optionsStack = "EvergreenImagesOptions"
	// sixtyList is relative to the repository root.
	sixtyList = "testdata/runtimes/sixty/runtimes.yaml"
)

// synthesized is the cloud assembly both stacks were written to.
type synthesized struct {
	dir       string
	templates map[string]string // stack name -> template path
	specs     map[string][]buildspecs.Spec
	took      time.Duration
	err       error
}

var (
	synthOnce   sync.Once
	synthResult synthesized
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Always: the jsii runtime unpacks itself into the temp directory when
	// the CDK's packages initialise, whether or not a test synthesized, and
	// only Close removes it.
	jsii.Close()
	for _, d := range []string{synthResult.dir, appDir} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	os.Exit(code)
}

// synth synthesizes both stacks the way main.go does (list, context, buildspecs,
// stack, CheckLimits), with cdk.json's context, into a temporary folder.
func synth(t *testing.T) *synthesized {
	t.Helper()
	synthOnce.Do(func() {
		start := time.Now()
		synthResult.err = doSynth(&synthResult)
		synthResult.took = time.Since(start)
	})
	if synthResult.err != nil {
		t.Fatalf("synthesizing the app: %v", synthResult.err)
	}
	return &synthResult
}

func doSynth(s *synthesized) (err error) {
	ctx, err := config.ReadCDKJSON(filepath.Join(repoRoot, config.DefaultCDKJSON))
	if err != nil {
		return err
	}
	// Paths in the context are relative to the repository root, as for the CLI.
	if err := os.Chdir(repoRoot); err != nil {
		return err
	}
	defer func() {
		if cerr := os.Chdir(filepath.Join(repoRoot, "validate")); cerr != nil && err == nil {
			err = cerr
		}
	}()
	cfg, err := config.FromContext(ctx)
	if err != nil {
		return err
	}
	defaultList := cfg.RuntimeList
	s.dir, err = os.MkdirTemp("", "validate-synth-")
	if err != nil {
		return err
	}
	s.templates = map[string]string{}
	s.specs = map[string][]buildspecs.Spec{}

	defer func() {
		// A construct that rejects its props panics through jsii.
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	src, err := source.Make(".")
	if err != nil {
		return err
	}
	defer src.Remove()
	app := awscdk.NewApp(&awscdk.AppProps{
		Context: &ctx,
		Outdir:  jsii.String(s.dir),
	})
	options := cfg
	options.StackName = optionsStack
	options.RepositoryPrefix = "options/"
	options.EnhancedScanning, options.Signing = true, true
	options.MaxConcurrentBuilds = 2
	options.GitHub = &config.GitHub{Repository: "acme/evergreen-images", Branch: "main"}
	for _, st := range []struct {
		name, list string
		cfg        config.Config
	}{
		{defaultStack, defaultList, cfg},
		{sixtyStack, sixtyList, cfg},
		{optionsStack, defaultList, options},
	} {
		list, err := runtimes.Load(st.list)
		if err != nil {
			return err
		}
		specs, err := buildspecs.Generate(list, buildspecs.OptionsFrom(st.cfg))
		if err != nil {
			return err
		}
		s.specs[st.name] = specs
		stacks.NewEvergreenStack(app, st.name, &stacks.EvergreenStackProps{
			List:      list,
			Specs:     specs,
			Config:    st.cfg,
			SourceZip: src.Path,
		})
	}
	asm := app.Synth(nil)
	for name := range s.specs {
		if err := stacks.CheckLimits(*asm.Directory(), name); err != nil {
			return err
		}
		s.templates[name] = filepath.Join(*asm.Directory(), name+".template.json")
	}
	return nil
}

// TestSixtyVersionsSplitIntoParts makes sure the 60-version list really
// exercises the split: otherwise linting it proves nothing about parts.
func TestSixtyVersionsSplitIntoParts(t *testing.T) {
	s := synth(t)
	parts := map[buildspecs.Stage]int{}
	builds := map[buildspecs.Stage]int{}
	for _, sp := range s.specs[sixtyStack] {
		parts[sp.Stage]++
		builds[sp.Stage] += len(sp.Identifiers)
	}
	if builds[buildspecs.Build] != 120 || builds[buildspecs.Verify] != 120 || builds[buildspecs.Publish] != 60 {
		t.Fatalf("%s: want 120 Build, 120 Verify and 60 Publish entries, got %v", sixtyList, builds)
	}
	if parts[buildspecs.Build] < 2 || parts[buildspecs.Verify] < 2 {
		t.Fatalf("%s: want Build and Verify split into parts, got %v", sixtyList, parts)
	}
}

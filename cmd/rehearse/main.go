// Command rehearse runs the pipeline's stages (the Tool stage's build of
// cmd/evergreen, then Build, Verify, Publish and Report, each running that
// binary), taken from the synthesized template, on this machine against
// moto and a stand-in for ECR over a local registry. See docs/rehearsal.md.
//
//	go run ./cmd/rehearse -subset ci     # the CI subset (.ci/rehearse.sh)
//	go run ./cmd/rehearse -subset full   # every entry that has a base stand-in
//
// Invoked as `docker` (a symlink the rehearsal makes), the same executable
// is the stand-in for docker's daemon verbs (internal/rehearsal/docker.go).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/evergreen-images/evergreen/internal/rehearsal"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "docker":
		os.Exit(standIn(func(c *rehearsal.StandInConfig) error {
			d := &rehearsal.Docker{Cfg: c, Stdout: os.Stdout, Stderr: os.Stderr, Now: time.Now}
			return d.RunDocker(os.Args[1:])
		}))
	}

	var o rehearsal.Options
	flag.StringVar(&o.Subset, "subset", "ci", "ci: one version per runtime (both architectures for python "+rehearsal.TrixiePython+" and node), full: every entry with a base stand-in")
	flag.StringVar(&o.Template, "template", "", "synthesized template to read (default: synthesize the app with the CDK CLI into a scratch directory)")
	flag.StringVar(&o.Work, "work", "", "scratch directory (default: a new one under /var/tmp, removed at the end)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the scratch directory (logs, registry data)")
	flag.StringVar(&o.Cache, "cache", "", "keep debootstrap root file systems and npm tarballs here between runs (default: none, as in CI)")
	flag.IntVar(&o.Jobs, "j", 2, "build-graph entries run at once (CodeBuild runs a batch's entries in parallel)")
	flag.BoolVar(&o.SkipNegative, "skip-negative", false, "do not run the deliberate failures (broken self-test, non-executable self-test, Dockerfile that does not build, tag mismatch)")
	flag.StringVar(&o.Mirror, "mirror", "http://deb.debian.org/debian", "Debian mirror for debootstrap")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "rehearse: unexpected arguments:", flag.Args())
		os.Exit(2)
	}
	repo, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rehearse:", err)
		os.Exit(2)
	}
	o.Repo = repo
	if err := rehearsal.Rehearse(o); err != nil {
		fmt.Fprintln(os.Stderr, "\nrehearsal FAILED:", err)
		os.Exit(1)
	}
}

func standIn(run func(*rehearsal.StandInConfig) error) int {
	c, err := rehearsal.LoadStandInConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 255
	}
	err = run(c)
	var st rehearsal.Status
	switch {
	case err == nil:
		return 0
	case errors.As(err, &st):
		return int(st)
	}
	fmt.Fprintln(os.Stderr, err)
	return 255
}

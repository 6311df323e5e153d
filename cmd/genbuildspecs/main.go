// Command genbuildspecs renders buildspecs/*.yml from the runtime list.
//
//	go run ./cmd/genbuildspecs          # rewrite buildspecs/ from runtimes/runtimes.yaml
//	go run ./cmd/genbuildspecs -check   # exit 1 if buildspecs/ is out of date
//
// Run it from the repository root.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/runtimes"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genbuildspecs:", err)
		os.Exit(1)
	}
}

func run() error {
	listPath := flag.String("list", runtimes.DefaultPath, "the runtime list")
	outDir := flag.String("out", "buildspecs", "where the buildspecs are written")
	check := flag.Bool("check", false, "write nothing; fail if any file differs from what would be written")
	flag.Parse()

	list, err := runtimes.Load(*listPath)
	if err != nil {
		return err
	}
	defer jsii.Close()
	specs, err := buildspecs.Generate(list, buildspecs.DefaultImages())
	if err != nil {
		return err
	}
	stale, err := buildspecs.Diff(*outDir, specs)
	if err != nil {
		return err
	}
	if *check {
		if len(stale) > 0 {
			return fmt.Errorf("out of date: %s; run: go run ./cmd/genbuildspecs", strings.Join(stale, ", "))
		}
		return nil
	}
	return write(*outDir, specs)
}

// write replaces the generated files and removes generated files that the
// list no longer produces (a stage that needed two parts and now needs one).
func write(dir string, specs []buildspecs.Spec) error {
	want := map[string]bool{}
	for _, s := range specs {
		want[s.FileName()] = true
		if err := os.WriteFile(filepath.Join(dir, s.FileName()), s.Content, 0o644); err != nil {
			return err
		}
	}
	old, err := buildspecs.GeneratedFiles(dir)
	if err != nil {
		return err
	}
	for _, name := range old {
		if !want[name] {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

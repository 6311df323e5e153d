// Command generate writes every file that the runtime list and cdk.json
// drive: buildspecs/*.yml, .github/workflows/images.yml and docs/configuration.md's table
// of context keys. `make generate` runs it from the repository root.
//
//	go run ./cmd/generate          # rewrite what is out of date
//	go run ./cmd/generate -check   # write nothing; exit 1 naming what is out of date
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/evergreen-images/evergreen/internal/generate"
)

func main() {
	check := flag.Bool("check", false, "write nothing; fail if any generated file is out of date")
	flag.Parse()
	if err := run(*check); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(check bool) error {
	r, err := generate.Run(".")
	if err != nil {
		return err
	}
	stale, err := r.Stale(".")
	if err != nil {
		return err
	}
	if check {
		if len(stale) > 0 {
			return fmt.Errorf("out of date: %s; run: %s", strings.Join(stale, ", "), generate.Command)
		}
		return nil
	}
	if err := r.Write("."); err != nil {
		return err
	}
	for _, s := range stale {
		fmt.Println("generate: wrote", s)
	}
	return nil
}

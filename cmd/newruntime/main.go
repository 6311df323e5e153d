// Command newruntime adds a runtime: its entry in the runtime list and a
// folder runtimes/<name>/ with a Dockerfile and a self-test that follow the
// contract (docs/runtime-contract.md). `make runtime` runs it:
//
//	make runtime NAME=go BASE=golang VERSIONS="1.25 1.26" VERSION_CMD="go version"
//	make runtime NAME=java BASE=eclipse-temurin VERSIONS="21 25" VARIANT=noble VERSION_CMD="java -version"
//	go run ./cmd/newruntime -name go -base golang -versions "1.25 1.26" -version-cmd "go version"
//
// Nothing is written unless the list, with the new entry, is valid.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/evergreen-images/evergreen/internal/scaffold"
	"github.com/evergreen-images/evergreen/runtimes"
)

func main() {
	var r scaffold.Runtime
	var versions string
	list := flag.String("list", runtimes.DefaultPath, "the runtime list to add to; the folder goes next to it")
	flag.StringVar(&r.Name, "name", "", "runtime name: ECR repository and folder (NAME)")
	flag.StringVar(&r.BaseImage, "base", "", "image in the base registry, e.g. golang (BASE)")
	flag.StringVar(&versions, "versions", "", `versions, separated by spaces or commas, e.g. "1.25 1.26" (VERSIONS)`)
	flag.StringVar(&r.VersionCmd, "version-cmd", "", `command that prints the version in the image (VERSION_CMD; default "<name> --version")`)
	flag.StringVar(&r.Variant, "variant", "", `the base image's variant: a release (noble, alpine3.22, bookworm-slim) or a tag template ("{version}-jdk-noble") (VARIANT; default `+runtimes.DefaultVariant+`)`)
	flag.StringVar(&r.Family, "family", "", "debian, ubuntu or alpine, when the variant names no release this tool knows (FAMILY)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "newruntime: unexpected arguments %q; use the flags (see -h)\n", flag.Args())
		os.Exit(2)
	}
	r.Versions = strings.FieldsFunc(versions, func(c rune) bool { return c == ' ' || c == ',' || c == '\t' })
	p, err := scaffold.Add(*list, r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "newruntime:", err)
		os.Exit(1)
	}
	fmt.Printf("newruntime: added %s to %s\n", r.Name, p.ListPath)
	for _, f := range p.Files {
		fmt.Printf("newruntime: wrote %s/%s\n", p.Dir, f.Name)
	}
	fmt.Printf("next: make generate && make test; add the checks that prove %s works to %s/self-test; then commit (git add %s runtimes/runtimes.yaml buildspecs .github/workflows && git commit) before make deploy: the pipeline builds committed files only\n", r.Name, p.Dir, p.Dir)
}

// Package validate holds the project's offline checks, run by `go test ./...`
// (and so by `make test` and .ci/run): cfn-lint on the synthesized templates,
// shellcheck on every buildspec command and self-test, hadolint on every
// runtime Dockerfile, a JSON Schema for batch buildspecs, and a corpus of bad
// runtime lists and context values run through the app as a user runs it.
//
// The tools are installed by .ci/install-validators.sh (make setup). A missing
// tool skips its check on a developer's machine and fails it when CI=true.
// Every external check reports one line through internal/checkreport, even
// when it passes: what it checked and how long it took, so a slow check is
// visible (make test prints them after the run).
package validate

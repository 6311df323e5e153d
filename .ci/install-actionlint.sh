#!/usr/bin/env bash
# Installs actionlint (the GitHub Actions workflow linter, a Go module) into
# .tools/bin, pinned. workflow/external_test.go runs it on the generated
# .github/workflows/images.yml. actionlint runs shellcheck on every run: block
# when shellcheck is on PATH (.ci/install-runtime-test-tools.sh installs it).
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

ACTIONLINT_VERSION=1.7.12

repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
bin="$repo_root/.tools/bin/actionlint"
if [[ -x "$bin" ]] && [[ "$("$bin" -version 2>/dev/null | head -n 1)" == "v$ACTIONLINT_VERSION" ]]; then
  exit 0
fi
echo "install-actionlint: go install github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION into .tools/bin"
mkdir -p "$repo_root/.tools/bin"
# Outside the module: the tool's own go.mod decides its dependencies, and
# this repository's go.mod stays untouched.
(cd "$repo_root/.tools" && GOBIN="$repo_root/.tools/bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION")
"$bin" -version | head -n 1

#!/usr/bin/env bash
# CI step: rehearse the pipeline's generated Build, Verify and Publish commands
# on this machine (docs/rehearsal.md), CI subset. Called from .ci/run after
# `make test` (which installed the CDK CLI the rehearsal synthesizes with).
# Installs its tools first (.ci/rehearsal-install.sh); the rehearsal starts its
# own registries on 127.0.0.1 and stops them, and removes its scratch
# directory, whatever happens. Bounded: the whole step is killed after 40 min.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$(date +%s)
bash .ci/rehearsal-install.sh
echo "rehearse: tools installed in $(($(date +%s) - start)) s"

# make setup is idempotent and quick when make test ran before.
make -s setup
PATH="$PWD/.tools/node22/node_modules/.bin:$PWD/.tools/cdk/node_modules/.bin:$PATH"
export PATH

go build -o .tools/rehearse ./cmd/rehearse
# timeout sends SIGTERM (the rehearsal cleans up), then SIGKILL 60 s later.
timeout --kill-after=60 40m .tools/rehearse -subset ci "$@"
echo "rehearse: CI subset done in $(($(date +%s) - start)) s including installs"

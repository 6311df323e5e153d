#!/usr/bin/env bash
# CI step: rehearse the pipeline's stages on this machine (docs/rehearsal.md),
# CI subset: the Tool stage builds cmd/evergreen, Build, Verify, Publish and
# Report run it against moto and the ECR stand-in over a local registry. Called from .ci/run after
# `make test` (which installed the CDK CLI the rehearsal synthesizes with).
# Installs its tools first (.ci/rehearsal-install.sh); the rehearsal starts its
# own registries, moto and the ECR stand-in on 127.0.0.1 and stops them, and removes its scratch
# directory, whatever happens. Bounded: the whole step is killed after 40 min.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$(date +%s)
bash .ci/rehearsal-install.sh
echo "rehearse: tools installed in $(($(date +%s) - start)) s"

# make setup is idempotent and quick when make test ran before; it installs
# moto into .venv.
make -s setup
PATH="$PWD/.tools/node22/node_modules/.bin:$PWD/.tools/cdk/node_modules/.bin:$PATH"
export PATH

go build -o .tools/rehearse ./cmd/rehearse
# timeout sends SIGTERM (the rehearsal cleans up), then SIGKILL 60 s later.
timeout --kill-after=60 40m .tools/rehearse -subset ci "$@"
echo "rehearse: CI subset done in $(($(date +%s) - start)) s including installs"

#!/usr/bin/env bash
# Installs the pinned tools, then returns. Idempotent and quiet when
# everything is already there.
#
#   .ci/setup.sh synth   what synthesizing and deploying need: Node.js 22 and
#                        the CDK CLI
#   .ci/setup.sh         that, and every .ci/install-*.sh (the tests' tools),
#                        in name order
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The CDK CLI goes to .tools/cdk, not ./node_modules: the CLI package ships Go
# template files that `go test ./...` would try to build.
if [ ! -x .tools/cdk/node_modules/.bin/cdk ] || ! cmp -s package-lock.json .tools/cdk/package-lock.json; then
  echo "setup: npm ci into .tools/cdk (CDK CLI pinned in package.json)"
  mkdir -p .tools/cdk
  cp package.json package-lock.json .tools/cdk/
  npm ci --prefix .tools/cdk --no-audit --no-fund --loglevel=error
fi
bash .ci/install-node.sh
go mod download
[ "${1:-}" = synth ] && exit 0

for script in .ci/install-*.sh; do
  [ -e "$script" ] || continue
  bash "$script"
done

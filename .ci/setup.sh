#!/usr/bin/env bash
# Installs every pinned tool the app and its tests need, then returns.
# Idempotent and quiet when everything is already there. Each
# .ci/install-*.sh installs one group of tools; they run in name order.
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
go mod download

for script in .ci/install-*.sh; do
  [ -e "$script" ] || continue
  bash "$script"
done

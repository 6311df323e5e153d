#!/usr/bin/env bash
# Installs zizmor (static security analysis of GitHub Actions workflows, from
# PyPI), pinned, into its own virtual environment .tools/zizmor (not .venv/,
# which holds other tools). workflow/external_test.go runs it offline on the
# generated .github/workflows/images.yml.
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

ZIZMOR_VERSION=1.32.0

repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.tools/zizmor"
bin="$venv/bin/zizmor"
if [[ -x "$bin" ]] && [[ "$("$bin" --version 2>/dev/null)" == "zizmor $ZIZMOR_VERSION" ]]; then
  exit 0
fi
echo "install-zizmor: pip install zizmor==$ZIZMOR_VERSION into .tools/zizmor"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "zizmor==$ZIZMOR_VERSION"
"$bin" --version

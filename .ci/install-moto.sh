#!/usr/bin/env bash
# Installs moto (PyPI moto[server]), a third-party emulator of AWS APIs, into
# the project-local virtual environment .venv/ (git-ignored), pinned with
# every dependency. the tests of the AWS commands and the stages start .venv/bin/moto_server on
# 127.0.0.1 and runs the preflight checks against it (or finds it through
# MOTO_SERVER). Idempotent and quiet when it is already there.
#
# It also installs cyclonedx-python-lib (CycloneDX's own Python library,
# with its JSON schema validator), the independent parser that reads the
# SBOM samples back in internal/evidence's tests.
#
# It only adds packages to .venv: `pip install --dry-run --report` against an
# environment with the validators (.ci/install-validators.sh) changes none of
# their pins, and PyYAML and typing_extensions are pinned here to the same
# versions as there.
set -euo pipefail

repo_root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo_root/.venv"

# The exact set pip resolved for moto[server] 5.2.5 on Python 3.11, then
# for cyclonedx-python-lib[json-validation] 11.12.0 on top of it (it
# changes none of moto's pins). Bump a
# version here, run this script, run `go test ./internal/stage ./internal/preflight`.
requirements='moto[server]==5.2.5
annotated-types==0.8.0
antlr4-python3-runtime==4.13.2
attrs==26.1.0
aws-xray-sdk==2.15.0
blinker==1.9.0
boto3==1.44.8
botocore==1.44.8
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
click==8.5.1
cryptography==50.0.2
docker==7.2.0
Flask==3.1.3
flask-cors==6.0.5
graphql-core==3.3.2
idna==3.20
itsdangerous==2.2.0
Jinja2==3.1.6
jmespath==1.1.0
joserfc==1.8.0
jsonpath-ng==1.16.0
jsonschema==4.26.0
jsonschema-path==0.5.0
jsonschema-specifications==2025.9.1
lazy-object-proxy==1.13.0
MarkupSafe==3.0.4
openapi-schema-validator==0.9.0
openapi-spec-validator==0.9.0
pathable==0.6.0
py-partiql-parser==0.6.3
pycparser==3.12
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
pyparsing==3.3.3
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
referencing==0.37.0
requests==2.34.2
responses==0.26.3
rfc3339-validator==0.1.4
rpds-py==2026.9.1
s3transfer==0.19.3
six==1.17.0
typing-inspection==0.4.5
urllib3==2.8.0
Werkzeug==3.1.9
wrapt==2.5.2
xmltodict==1.0.4
PyYAML==6.0.4
typing_extensions==4.16.0
cyclonedx-python-lib[json-validation]==11.12.0
arrow==1.4.0
boolean.py==5.0
defusedxml==0.7.1
fqdn==1.6.0
isoduration==20.11.0
lark==1.3.1
license-expression==30.4.4
packageurl-python==0.17.6
py-serializable==2.2.0
rfc3986-validator==0.1.1
rfc3987-syntax==1.1.0
sortedcontainers==2.4.0
tzdata==2026.6
uri-template==1.3.0
webcolors==25.10.0'

# Debian's python3 needs python3-venv for `python3 -m venv` (ensurepip).
if [[ ! -x "$venv/bin/python" ]] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "install-moto: apt-get install python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi

stamp="$venv/.moto-requirements.txt"
if [[ -x "$venv/bin/moto_server" && -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$requirements" ]]; then
  exit 0
fi
echo "install-moto: pip install moto[server] (pinned) into .venv"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
printf '%s\n' "$requirements" > "$venv/.moto-requirements.in"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --requirement "$venv/.moto-requirements.in"
"$venv/bin/python" -c 'import moto; print("moto", moto.__version__)'
"$venv/bin/python" -c 'import cyclonedx.validation.json; from importlib.metadata import version; print("cyclonedx-python-lib", version("cyclonedx-python-lib"))'
printf '%s' "$requirements" > "$stamp"

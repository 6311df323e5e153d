# The two commands of the README:
#   make synth   synthesize the app with its default configuration (cdk.out/)
#   make test    run every test and validator
# Both install the pinned tools they need first (make setup, idempotent).

# Node.js 22 and the CDK CLI are installed into the project (.tools/node22,
# .tools/cdk) and come first on PATH, so the machine's own versions do not matter.
export PATH := $(CURDIR)/.tools/node22/node_modules/.bin:$(CURDIR)/.tools/cdk/node_modules/.bin:$(PATH)

.PHONY: setup setup-synth synth test bootstrap deploy preflight status rollback resume generate runtime bench eol

# Everything the tests need (apt packages, .venv, .tools).
setup:
	@bash .ci/setup.sh

# Only what synthesizing needs: Node.js 22 and the CDK CLI.
setup-synth:
	@bash .ci/setup.sh synth

synth: setup-synth
	cdk synth --quiet
	@echo "synthesized: cdk.out/ (the stack is evergreen:stackName, default EvergreenImages)"

# The external checks (cfn-lint, shellcheck, hadolint, the buildspec schema,
# actionlint, zizmor, the bad-input corpus) each write one line, what they
# checked and how long it took, to CHECK_REPORT; it is printed after the run.
# The tests get a temp directory of their own, which must be empty when they
# end: no test, and no run of the app they make, may leave files behind.
# node-compile-cache is Node.js's own cache (the CDK CLI turns it on), one
# folder reused by every later run, not a run's leftovers.
test: setup
	@rm -f .tools/checks.log
	@status=0; tmp=$$(mktemp -d); \
	TMPDIR=$$tmp CHECK_REPORT=$(CURDIR)/.tools/checks.log go test -count=1 ./... || status=$$?; \
	echo "== external checks"; cat .tools/checks.log 2>/dev/null; \
	left=$$(ls -A $$tmp | grep -vx node-compile-cache); rm -rf $$tmp; \
	if [ -n "$$left" ]; then echo "== the tests left files in their temp directory: $$left"; status=1; fi; \
	exit $$status

# Once per account and region, before the first deploy.
bootstrap: setup-synth
	cdk bootstrap

# Check the account and region of your AWS credentials before a deploy: one
# line per check, with a fix; exit 1 when a deploy would fail. Reads only.
preflight:
	go run ./cmd/evergreen preflight

# Where each runtime-version of the list stands in the deployed stack: the
# published digest and dated tag, the last check, holds, drafts, whether the
# SSM parameters agree with the tags, the last pipeline execution. Reads only.
status:
	@go run ./cmd/evergreen status

# Point a runtime-version's tags and parameters back at one of its dated
# tags, and hold them there until make resume:
#   make rollback RUNTIME=node VERSION=22 TO=22-r20261120-0a1b2c3d
# Like runtime, the values reach the command through the environment.
rollback:
	@go run ./cmd/evergreen rollback -runtime "$$RUNTIME" -version "$$VERSION" -to "$$TO"

# Lift a rollback's hold: the next pipeline execution publishes again.
#   make resume RUNTIME=node VERSION=22
resume:
	@go run ./cmd/evergreen resume -runtime "$$RUNTIME" -version "$$VERSION"

# Deploy to the account and region of your AWS credentials.
deploy: setup-synth
	cdk deploy

# Rewrite everything the runtime list and cdk.json drive (buildspecs/*.yml,
# .github/workflows/images.yml, the table of context keys in
# docs/configuration.md) after editing either. Plain Go: no CDK, no Node.js.
generate:
	go run ./cmd/generate

# Add a runtime: its entry in runtimes/runtimes.yaml and runtimes/$(NAME)/
# with a Dockerfile and a self-test; then make generate && make test, and
# commit before make synth or make deploy (the default source deploys
# committed files only).
#   make runtime NAME=go BASE=golang VERSIONS="1.25 1.26" VERSION_CMD="go version"
#   make runtime NAME=java BASE=eclipse-temurin VERSIONS="21 25" VARIANT=noble VERSION_CMD="java -version"
# VARIANT (default trixie) is the base's tag after the version: a release
# (noble, alpine3.22) or a template ("{version}-jdk-noble"); FAMILY (debian,
# ubuntu, alpine) only when the variant names no release the tool knows.
# The values reach the command through the environment (make exports its
# command-line variables), so quotes in them need no escaping here.
runtime:
	@go run ./cmd/newruntime -name "$$NAME" -base "$$BASE" -versions "$$VERSIONS" -version-cmd "$$VERSION_CMD" -variant "$$VARIANT" -family "$$FAMILY"

# Time cdk synth of the default app, a 60-version list and a 1-resource Go app.
bench: setup-synth
	go run ./cmd/benchsynth

# Refresh runtimes/eol.json (end-of-life dates) from endoflife.date's API.
# Needs internet; without it, it fails and keeps the committed table.
eol:
	go run ./cmd/eol

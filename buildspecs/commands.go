package buildspecs

// The commands each stage runs. They are sh (CodeBuild's default shell) and
// share one shell session per build, so a variable set in one command is seen
// by the next. Every one of them is safe to run twice in the same pipeline
// execution: a stage retried from the console must end in the same state.
//
// Variables they rely on:
//   REGISTRY               project environment: <account>.dkr.ecr.<region>.<suffix>
//   PIPELINE_EXECUTION_ID  pipeline action: the same on a retry of any stage
//   SOURCE_REVISION        pipeline action: the commit (or S3 object version)
//   RUNTIME, REPOSITORY, VERSION, ARCH, BASE_IMAGE, BASE_REGISTRY, ARCHITECTURES
//                          build-graph entry; RUNTIME names the folder under
//                          runtimes/, REPOSITORY the ECR repository
//                          (evergreen:repositoryPrefix + RUNTIME)
//   RECORDS_BUCKET         project environment: the stack's records bucket
//   METRIC_NAMESPACE, STACK_NAME
//                          project environment (Publish): the freshness metric
//   PARAMETER_PREFIX       project environment (Publish): the consumers' SSM
//                          parameters, <prefix>/<runtime>/<version>[/<arch>]
//   VULNERABILITY_GATE     project environment (Verify, Publish): never-worse, off,
//                          or "CRITICAL=0 HIGH=5" (evergreen:vulnerabilityGate)
//   SCAN_WAIT_SECONDS, SIGNING
//                          project environment (Verify): the bound on waiting
//                          for a scan or a signature; whether ECR signs
//   RELEASES, CHANGES_TOPIC_ARN, ALERT_TOPIC_ARN
//                          project environment (Report): every runtime-version
//                          as <runtime>/<version>, and the changelog's topic
//   AWS_REGION             CodeBuild: the build's own region
//
// Facts flow down the pipeline through the records bucket, under
// executions/<execution id>/: Build records the digest it pushed
// (build/<runtime>/<version>/<arch>.json), Verify pulls that digest, not a
// tag, and records that it passed (verify/...), and Publish publishes the
// verified digests and no others. The records outlive a failed batch, which
// is what lets a retried stage skip the entries whose work is done: a
// stage retry (the pipeline's automatic one, or Retry in the console)
// starts a new batch with every entry in it.

// requireExecutionID stops a build that was started outside the pipeline:
// without the execution id, stages cannot agree on the draft tag.
const requireExecutionID = `: "${PIPELINE_EXECUTION_ID:?is not set: start this build from the pipeline (it passes PIPELINE_EXECUTION_ID to every build)}"`

const ecrLogin = `aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$REGISTRY"`

const draftImage = `IMAGE="$REGISTRY/$REPOSITORY:draft-$VERSION-$ARCH-$PIPELINE_EXECUTION_ID"`

// ecrPublicLogin authenticates the base image pulls. Anonymous pulls from
// ECR Public are limited per source address (500 GB a month), and CodeBuild's
// addresses are shared with other accounts; authenticated pulls count against
// this account. ECR Public's API is in us-east-1 only, whatever the build's
// region; the token is good for pulls from anywhere.
const ecrPublicLogin = `case "$BASE_REGISTRY" in
  public.ecr.aws/*)
    aws ecr-public get-login-password --region us-east-1 | docker login --username AWS --password-stdin public.ecr.aws ;;
esac`

var buildPreBuild = []string{
	requireExecutionID,
	ecrLogin,
	ecrPublicLogin,
}

// MetricNamespace holds the freshness metric Publish puts (metric Fresh,
// dimensions Stack, Runtime, Version); the stack's alarms watch it and its
// PutMetricData grant is held to it.
const MetricNamespace = "EvergreenImages"

// recordPrefix and recordPath say where an entry's records live in the
// records bucket.
const (
	recordPrefix = `RECORD_PREFIX="s3://$RECORDS_BUCKET/executions/$PIPELINE_EXECUTION_ID"`
	recordPath   = `RECORD_PATH="$RUNTIME/$VERSION/$ARCH.json"`
)

// Build pushes one plain image manifest per architecture. --provenance and
// --sbom are off because attestations turn the push into an index, which
// Publish cannot put under a per-architecture tag and Lambda refuses.
//
// A retried Build (a stage retry runs every entry again) finds the draft it
// pushed earlier in this execution and does not rebuild it: a push is
// complete once its tag exists, and Verify checks the image anyway. Any
// doubt (the tag is missing, the lookup fails, the push is not a plain
// image manifest) means building again, which is never wrong, only slower.
var buildCommands = []string{
	draftImage,
	recordPrefix,
	recordPath,
	`PUSHED=$(aws ecr describe-images --repository-name "$REPOSITORY" --image-ids "imageTag=${IMAGE##*:}" --output json 2>/dev/null | jq -c '.imageDetails[0] | select(.imageManifestMediaType == "application/vnd.docker.distribution.manifest.v2+json" or .imageManifestMediaType == "application/vnd.oci.image.manifest.v1+json")' || true)`,
	`if [ -n "${PUSHED:-}" ]; then
  echo "$IMAGE was already pushed in execution $PIPELINE_EXECUTION_ID: not rebuilt"
else
  docker buildx build --platform "linux/$ARCH" --pull --provenance=false --sbom=false --build-arg "VERSION=$VERSION" --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "BASE_REGISTRY=$BASE_REGISTRY" --label "org.opencontainers.image.revision=$SOURCE_REVISION" --tag "$IMAGE" --push "runtimes/$RUNTIME"
fi`,
	`PUSHED=$(aws ecr describe-images --repository-name "$REPOSITORY" --image-ids "imageTag=${IMAGE##*:}" --query 'imageDetails[0]' --output json)`,
	`MEDIA_TYPE=$(printf '%s' "$PUSHED" | jq -r .imageManifestMediaType)
case "$MEDIA_TYPE" in
  application/vnd.docker.distribution.manifest.v2+json|application/vnd.oci.image.manifest.v1+json)
    echo "pushed $IMAGE ($MEDIA_TYPE)" ;;
  *)
    echo "$IMAGE was pushed as $MEDIA_TYPE, not as a single-platform image manifest" >&2
    exit 1 ;;
esac`,
	// The record is made in full before it is uploaded: sh has no
	// pipefail, and an empty record must never be written.
	`RECORD=$(printf '%s' "$PUSHED" | jq -c --arg e "$PIPELINE_EXECUTION_ID" --arg s "$SOURCE_REVISION" --arg r "$RUNTIME" --arg v "$VERSION" --arg a "$ARCH" --arg repo "$REPOSITORY" --arg b "${CODEBUILD_BUILD_ID:-}" \
  '{stage: "build", executionId: $e, sourceRevision: $s, runtime: $r, version: $v, arch: $a, repository: $repo,
    digest: .imageDigest, mediaType: .imageManifestMediaType, pushedAt: .imagePushedAt, buildId: $b}') &&
  [ -n "$RECORD" ] && printf '%s\n' "$RECORD" | aws s3 cp - "$RECORD_PREFIX/build/$RECORD_PATH"`,
}

var verifyPreBuild = []string{
	requireExecutionID,
	ecrLogin,
}

// verifyGuard skips a command when this execution already verified the
// image: a stage retry runs every entry again, and only the entries that
// did not pass do real work.
const verifyGuard = `[ -n "${VERIFIED:-}" ] || `

// Verify runs on the entry's own architecture (ARM_CONTAINER or
// LINUX_CONTAINER, no emulation), so an image built for the wrong platform
// fails here. It pulls the digest Build recorded, not the draft tag, so what
// it checks is what Publish will publish, whatever happens to the tag. The
// self-test gets the expected version and architecture from the pipeline,
// not from the image, so an image pushed under the wrong tag fails too.
// Verify reads ECR and writes only its record.
var verifyCommands = []string{
	draftImage,
	recordPrefix,
	recordPath,
	`BUILT=$(aws s3 cp "$RECORD_PREFIX/build/$RECORD_PATH" - | jq -r '.digest // empty')`,
	`[ -n "$BUILT" ] || { echo "no Build record for $RUNTIME $VERSION $ARCH in execution $PIPELINE_EXECUTION_ID: retry the Build stage first" >&2; exit 1; }`,
	`IMAGE="$REGISTRY/$REPOSITORY@$BUILT"`,
	`VERIFIED=$( (aws s3 cp "$RECORD_PREFIX/verify/$RECORD_PATH" - 2>/dev/null || true) | jq -r --arg d "$BUILT" 'select(.digest == $d and .result == "passed") | "yes"')`,
	`[ -z "${VERIFIED:-}" ] || echo "$IMAGE already passed its self-test in execution $PIPELINE_EXECUTION_ID: not run again"`,
	verifyGuard + `docker pull --platform "linux/$ARCH" "$IMAGE"`,
	verifyGuard + `IMAGE_ARCH=$(docker image inspect --format '{{.Architecture}}' "$IMAGE")`,
	`if [ -z "${VERIFIED:-}" ] && [ "$IMAGE_ARCH" != "$ARCH" ]; then
  echo "$IMAGE is built for $IMAGE_ARCH, expected $ARCH" >&2
  exit 1
fi`,
	verifyGuard + `docker run --rm --platform "linux/$ARCH" --env "EXPECTED_VERSION=$VERSION" --env "EXPECTED_ARCH=$ARCH" --entrypoint self-test "$IMAGE"`,
	verifyGuard + `INVENTORY_START=$(date +%s)`,
	// The inventory runs in the image, on its own architecture, like the
	// self-test: what dpkg, node, npm and python report there is what the
	// image holds (buildspecs/inventory.sh says what it lists).
	verifyGuard + `INVENTORY_TSV=$(docker run --rm --platform "linux/$ARCH" --entrypoint sh "$IMAGE" -c "$(cat buildspecs/inventory.sh)")`,
	verifyGuard + `BASE_NAME=$(docker image inspect --format '{{ index .Config.Labels "org.opencontainers.image.base.name" }}' "$IMAGE")`,
	// The base image's digest for this architecture, read from its registry
	// now, minutes after Build pulled it: ECR Public allows anonymous
	// manifest reads. The packages are read from the image itself, so a
	// base that moved in between shows as a changed base digest with no
	// package change, never as a missed change.
	`BASE_DIGEST=""
if [ -z "${VERIFIED:-}" ] && [ -n "$BASE_NAME" ] && [ "$BASE_NAME" != "<no value>" ]; then
  BASE_MANIFEST=$(mktemp)
  # A failed lookup fails the entry (the build sees only the status of the
  # whole command): the digest of an empty answer would pass for a change.
  if ! docker buildx imagetools inspect --raw "$BASE_NAME" > "$BASE_MANIFEST" || [ ! -s "$BASE_MANIFEST" ]; then
    echo "could not read the base image $BASE_NAME from its registry: retry the stage" >&2
    exit 1
  fi
  BASE_DIGEST=$(jq -r --arg a "$ARCH" '[.manifests[]? | select(.platform.os == "linux" and .platform.architecture == $a) | .digest][0] // empty' "$BASE_MANIFEST")
  [ -n "$BASE_DIGEST" ] || BASE_DIGEST="sha256:$(sha256sum < "$BASE_MANIFEST" | cut -d ' ' -f 1)"
fi`,
	// The recipe: every file of the runtime's folder (Dockerfile, self-test),
	// so that a changed Dockerfile is a change even when no package moved.
	verifyGuard + `RECIPE=$(cd "runtimes/$RUNTIME" && find . -type f -exec sha256sum {} + | LC_ALL=C sort -k 2 | sha256sum | cut -d ' ' -f 1)`,
	verifyGuard + `INVENTORY=$(printf '%s\n' "$INVENTORY_TSV" | jq -R -s -c --arg bn "$BASE_NAME" --arg bd "$BASE_DIGEST" --arg recipe "sha256:$RECIPE" --argjson secs "$(( $(date +%s) - INVENTORY_START ))" \
  'reduce (split("\n")[] | split("\t") | select(length == 3 and (.[0] | IN("os", "runtime", "npm", "pip")))) as [$k, $n, $v]
     ({base: {name: (if $bn == "<no value>" then "" else $bn end), digest: $bd}, recipe: $recipe, os: {}, runtime: {}, npm: {}, pip: {}, seconds: $secs};
      .[$k][$n] = $v)') && [ -n "$INVENTORY" ]`,
	verifyGuard + `echo "inventory of $IMAGE: $(printf '%s' "$INVENTORY" | jq -r '"\(.os | length) OS packages, runtime \(.runtime | to_entries | map("\(.key) \(.value)") | join(", ")), \(.npm | length) global npm packages, \(.pip | length) Python distributions, base \(.base.digest), in \(.seconds) s"')"`,
	// ECR's scan of the draft, and of the published image it would
	// replace, for the vulnerability gate in Publish; with signing on, the
	// draft's signature. Only Verify reads findings.
	`# shellcheck disable=SC2034 # SCAN, PUBLISHED_SCAN and SIGNING_STATUS go into the record the next command writes
SCAN='{}'
PUBLISHED_SCAN=null
SIGNING_STATUS=null
if [ -z "${VERIFIED:-}" ]; then
  scans=$(mktemp -d)
  # scan_of IMAGE_ID NAME: ECR's scan of the image, waited for until it
  # ends or the entry's deadline passes, into $scans/NAME.json as {status,
  # completedAt, counts, findings: [{id, severity, package, version, fix}]}.
  # Status TIMEOUT is the named outcome of a scan that did not end before
  # the entry's deadline.
  # Basic findings carry no fix information (fix null); enhanced
  # (Inspector) findings say fixAvailable YES, NO or PARTIAL.
  scan_of() {
    rm -f "$scans/$2.raw"
    while :; do
      status=PENDING
      if aws ecr describe-image-scan-findings --repository-name "$REPOSITORY" --image-id "$1" --output json > "$scans/$2.raw" 2> "$scans/$2.err"; then
        status=$(jq -r '.imageScanStatus.status // "PENDING"' "$scans/$2.raw")
      else
        rm -f "$scans/$2.raw"
        # The scan of a just-pushed image may not exist yet.
        grep -q ScanNotFoundException "$scans/$2.err" || { cat "$scans/$2.err" >&2; return 1; }
      fi
      case $status in
        IN_PROGRESS|PENDING) ;;
        *) break ;;
      esac
      if [ "$(date +%s)" -ge "$deadline" ]; then
        status=TIMEOUT
        break
      fi
      sleep "${SCAN_POLL_SECONDS:-15}"
    done
    [ -s "$scans/$2.raw" ] || echo '{}' > "$scans/$2.raw"
    jq -c --arg s "$status" '{status: $s, description: (.imageScanStatus.description // ""),
      digest: (.imageId.imageDigest // ""), completedAt: (.imageScanFindings.imageScanCompletedAt // ""),
      counts: (.imageScanFindings.findingSeverityCounts // {}),
      findings: ([(.imageScanFindings.findings // [])[] | {id: .name, severity,
          package: ([.attributes[]? | select(.key == "package_name") | .value][0] // ""),
          version: ([.attributes[]? | select(.key == "package_version") | .value][0] // ""), fix: null}]
        + [(.imageScanFindings.enhancedFindings // [])[] | {id: (.packageVulnerabilityDetails.vulnerabilityId // .title), severity,
          package: (.packageVulnerabilityDetails.vulnerablePackages[0].name // ""),
          version: (.packageVulnerabilityDetails.vulnerablePackages[0].version // ""), fix: (.fixAvailable // null)}]
        | unique_by([.id, .package]))}' "$scans/$2.raw" > "$scans/$2.json"
  }
  # One bound for every wait of the entry (the scans, the signature), so
  # that Verify's build timeout holds whatever they do.
  deadline=$(( $(date +%s) + SCAN_WAIT_SECONDS ))
  scan_of "imageDigest=$BUILT" draft || exit 1
  SCAN=$(cat "$scans/draft.json")
  echo "scan of $IMAGE: $(jq -r '"\(.status): \(.counts | to_entries | map("\(.key) \(.value)") | join(", ") | if . == "" then "no findings" else . end)"' "$scans/draft.json")"
  case $(jq -r .status "$scans/draft.json") in
    COMPLETE|ACTIVE) ;;
    *)
      if [ "$VULNERABILITY_GATE" != off ]; then
        if [ "$(jq -r .status "$scans/draft.json")" = TIMEOUT ]; then
          echo "scan-timeout: ECR's scan of $IMAGE did not end within $SCAN_WAIT_SECONDS s (evergreen:scanWaitMinutes); the vulnerability gate cannot judge it: retry the stage once the scan is complete" >&2
        else
          echo "scan-failed: ECR's scan of $IMAGE ended $(jq -r '"\(.status) \(.description)"' "$scans/draft.json"); the vulnerability gate cannot judge it" >&2
        fi
        exit 1
      fi ;;
  esac
  # The published image's findings, for the gate and the changelog, as
  # fresh as the draft's: a basic scan is from the image's push, before
  # CVEs published since, so it is scanned again when its scan is older
  # than 20 hours (ECR allows one basic scan per image per 24 hours;
  # enhanced scanning rescans continuously and refuses the call: both
  # refusals are fine).
  if aws ecr describe-image-scan-findings --repository-name "$REPOSITORY" --image-id "imageTag=$VERSION-$ARCH" --output json > "$scans/published.first" 2> "$scans/published.err"; then
    published=$(jq -r .imageId.imageDigest "$scans/published.first")
    completed=$(jq -r '.imageScanFindings.imageScanCompletedAt // empty' "$scans/published.first")
    if [ -z "$completed" ] || [ $(( $(date +%s) - $(date -u -d "$completed" +%s) )) -gt 72000 ]; then
      aws ecr start-image-scan --repository-name "$REPOSITORY" --image-id "imageDigest=$published" > /dev/null 2>&1 || true
    fi
    scan_of "imageDigest=$published" published || exit 1
    PUBLISHED_SCAN=$(cat "$scans/published.json")
  elif grep -q -e ImageNotFoundException -e ScanNotFoundException "$scans/published.err"; then
    echo "$REPOSITORY:$VERSION-$ARCH has no scan to compare with (not published yet, or never scanned)"
  else
    cat "$scans/published.err" >&2
    exit 1
  fi
  # With ECR managed signing on, the draft is signed on push: wait for it.
  if [ "${SIGNING:-false}" = true ]; then
    while :; do
      aws ecr describe-image-signing-status --repository-name "$REPOSITORY" --image-id "imageDigest=$BUILT" --output json > "$scans/signing.json"
      signed=$(jq -r '[.signingStatuses[]?.status] | if length == 0 then "PENDING" elif any(. == "FAILED") then "FAILED" elif all(. == "COMPLETE") then "COMPLETE" else "IN_PROGRESS" end' "$scans/signing.json")
      case $signed in
        COMPLETE) break ;;
        FAILED)
          echo "signing-failed: $(jq -r '[.signingStatuses[] | select(.status == "FAILED") | "\(.signingProfileArn): \(.failureCode) \(.failureReason)"] | join("; ")' "$scans/signing.json")" >&2
          exit 1 ;;
      esac
      if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "signing-timeout: ECR did not sign $IMAGE within $SCAN_WAIT_SECONDS s (evergreen:scanWaitMinutes)" >&2
        exit 1
      fi
      sleep "${SCAN_POLL_SECONDS:-15}"
    done
    SIGNING_STATUS=$(jq -c '{status: "COMPLETE", profiles: [.signingStatuses[].signingProfileArn]}' "$scans/signing.json")
    echo "signed: $IMAGE"
  fi
fi`,
	verifyGuard + `RECORD=$(aws s3 cp "$RECORD_PREFIX/build/$RECORD_PATH" - | jq -c --arg d "$BUILT" --arg b "${CODEBUILD_BUILD_ID:-}" --arg t "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson inventory "$INVENTORY" \
  --argjson scan "$SCAN" --argjson published "$PUBLISHED_SCAN" --argjson signing "$SIGNING_STATUS" \
  'select(.digest == $d) | . + {stage: "verify", result: "passed", selfTest: "passed", verifiedAt: $t, verifyBuildId: $b, inventory: $inventory,
    scan: $scan, publishedScan: $published, signing: $signing}') &&
  { [ -n "$RECORD" ] || { echo "the Build record of $RUNTIME $VERSION $ARCH changed while it was verified: retry the stage" >&2; exit 1; }; } &&
  printf '%s\n' "$RECORD" | aws s3 cp - "$RECORD_PREFIX/verify/$RECORD_PATH"`,
}

// publishScript publishes, for one runtime-version, exactly the digests
// Verify recorded as passed in this execution, through the ECR API:
// manifests only, no layer is pulled or pushed, no Docker daemon is needed.
//
// All or nothing. Before it moves any tag it checks everything it needs:
// a passed record for every architecture, each verified image still in the
// repository with the bytes its digest names, and the dated tag absent or
// naming a set this execution already committed to. Any doubt: it changes
// nothing, says why, and fails.
//
// The dated tag is the commit point. It is immutable and written first, so
// of two Publish runs of one execution (a retry, a concurrent retry, a
// Publish after the drafts were rebuilt), whichever writes it decides the
// set, and every run then completes that set: <v>-<arch>, then <v>, then
// the drafts are removed. <v>, <v>-<arch> and the dated tag always end up
// describing one verified set. Each per-architecture image gets its
// published tag before its draft tag goes, because ECR deletes an image
// with its last tag.
//
// Publish only what changed. Verify recorded each image's inventory (base
// digest, recipe, packages); Publish keeps the inventories of what it
// published under inventories/<runtime>/<version>/<arch>/<digest>.json. When
// every architecture's verified image holds what the published one holds,
// the outcome is "unchanged": no tag moves, so the published digests (and
// the consumers' pins on them) stay; the drafts go. A rollback's hold
// (holds/<runtime>/<version>.json, make rollback) makes the outcome "held"
// the same way. Otherwise the outcome is "published", and the record says
// what changed, per architecture, from the inventories.
//
// Whatever the outcome, Publish keeps the consumers' SSM parameters on the
// published digests (writing one only when its value differs), records the
// outcome for the Report stage and make status, and emits the freshness
// metric of the runtime-version last: the staleness alarm watches that
// metric, per runtime-version, however Publish was run.
const publishScript = `set -eu
work=$(mktemp -d)
short_id=$(printf '%s' "$PIPELINE_EXECUTION_ID" | cut -c1-8)
records="s3://$RECORDS_BUCKET/executions/$PIPELINE_EXECUTION_ID"
image_types="application/vnd.docker.distribution.manifest.v2+json application/vnd.oci.image.manifest.v1+json"
index_types="application/vnd.docker.distribution.manifest.list.v2+json application/vnd.oci.image.index.v1+json"
draft_tag() { printf 'draft-%s-%s-%s' "$VERSION" "$1" "$PIPELINE_EXECUTION_ID"; }
sha() { printf 'sha256:%s' "$(sha256sum "$1" | cut -d ' ' -f 1)"; }

refuse() {
  echo "Publish refused $RUNTIME $VERSION and changed nothing: $*" >&2
  exit 1
}

# get_manifest REF TYPES FILE: the manifest REF (imageTag=... or
# imageDigest=...) names, into FILE and FILE.type; returns 1 if there is none.
get_manifest() {
  # shellcheck disable=SC2086 # one media type per word
  aws ecr batch-get-image --repository-name "$REPOSITORY" --image-ids "$1" \
    --accepted-media-types $2 --output json > "$3.json"
  [ "$(jq '.images | length' "$3.json")" = 1 ] || return 1
  jq -j '.images[0].imageManifest' "$3.json" > "$3"
  jq -r '.images[0].imageManifestMediaType // (.images[0].imageManifest | fromjson | .mediaType) // empty' "$3.json" > "$3.type"
  # The registry must hold exactly the bytes the digest names.
  digest=$(jq -r '.images[0].imageId.imageDigest' "$3.json")
  [ "$(sha "$3")" = "$digest" ] || refuse "the manifest of $1 does not hash to $digest"
}

# put_tag TAG FILE points TAG at the manifest in FILE. A tag that already
# points at it is left alone: that is a retry, not an error. When ECR
# refuses the put (ImageAlreadyExistsException, or, on an immutable tag,
# ImageTagAlreadyExistsException), the tag is read again: it succeeds only
# if the tag now names FILE's digest.
put_tag() {
  want=$(sha "$2")
  if get_manifest "imageTag=$1" "$image_types $index_types" "$work/have" && [ "$(sha "$work/have")" = "$want" ]; then
    echo "$REPOSITORY:$1 already points at $want"
    return 0
  fi
  if out=$(aws ecr put-image --repository-name "$REPOSITORY" --image-tag "$1" \
      --image-manifest-media-type "$(cat "$2.type")" --image-manifest "file://$2" 2>&1); then
    echo "tagged $REPOSITORY:$1 $want"
    return 0
  fi
  case "$out" in
    *ImageAlreadyExistsException*|*ImageTagAlreadyExistsException*)
      if get_manifest "imageTag=$1" "$image_types $index_types" "$work/have" && [ "$(sha "$work/have")" = "$want" ]; then
        echo "$REPOSITORY:$1 already points at $want"
        return 0
      fi
      echo "$REPOSITORY:$1 names another manifest and cannot be moved" >&2
      return 1 ;;
    *) printf '%s\n' "$out" >&2; return 1 ;;
  esac
}

# 1. What Verify established: a passed record per architecture.
for arch in $ARCHITECTURES; do
  if ! aws s3 cp "$records/verify/$RUNTIME/$VERSION/$arch.json" "$work/$arch.record" --only-show-errors || [ ! -s "$work/$arch.record" ]; then
    refuse "no verification record for $arch in execution $PIPELINE_EXECUTION_ID: Verify has not passed it (retry the Verify stage)"
  fi
  jq -e --arg e "$PIPELINE_EXECUTION_ID" --arg r "$RUNTIME" --arg v "$VERSION" --arg a "$arch" \
    '.result == "passed" and .executionId == $e and .runtime == $r and .version == $v and .arch == $a and (.digest | test("^sha256:[0-9a-f]{64}$"))' \
    "$work/$arch.record" > /dev/null || refuse "the $arch verification record does not say passed for this execution"
done

# load_set FILE: the per-architecture manifests the index in FILE names,
# into $work/<arch>; they must all still be in the repository.
load_set() {
  for arch in $ARCHITECTURES; do
    digest=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$1")
    get_manifest "imageDigest=$digest" "$image_types" "$work/$arch" ||
      refuse "$REPOSITORY:$dated names a $arch image $digest that is gone"
  done
  cp "$1" "$work/index"
  cp "$1.type" "$work/index.type"
}

# prev_set: what <v> and <v>-<arch> name now, into $work/prev.json
# ({index, datedTag, pushedAt, images: {arch: digest}}), or null when they do
# not form one set of exactly this runtime-version's architectures (never
# published, a partial manual change): then nothing counts as unchanged.
prev_set() {
  echo null > "$work/prev.json"
  get_manifest "imageTag=$VERSION" "$index_types" "$work/prev-index" || return 0
  # shellcheck disable=SC2086 # one architecture per word
  [ "$(jq '.manifests | length' "$work/prev-index")" = "$(printf '%s\n' $ARCHITECTURES | wc -l)" ] || return 0
  echo '{}' > "$work/prev-images"
  for arch in $ARCHITECTURES; do
    digest=$(jq -r --arg a "$arch" '[.manifests[] | select(.platform.architecture == $a) | .digest][0] // empty' "$work/prev-index")
    [ -n "$digest" ] && get_manifest "imageTag=$VERSION-$arch" "$image_types" "$work/prev-$arch" &&
      [ "$(sha "$work/prev-$arch")" = "$digest" ] || return 0
    jq -c --arg a "$arch" --arg d "$digest" '. + {($a): $d}' "$work/prev-images" > "$work/prev-images.new"
    mv "$work/prev-images.new" "$work/prev-images"
  done
  aws ecr describe-images --repository-name "$REPOSITORY" --image-ids "imageDigest=$(sha "$work/prev-index")" --output json |
    jq -c --arg p "$VERSION-r20" --arg index "$(sha "$work/prev-index")" --slurpfile images "$work/prev-images" \
      '.imageDetails[0] | {index: $index, datedTag: ([.imageTags[]? | select(startswith($p))] | sort | last // ""),
        pushedAt: (.imagePushedAt // ""), images: $images[0]}' > "$work/prev.json.new"
  [ -s "$work/prev.json.new" ] || refuse "could not describe what $REPOSITORY:$VERSION names now"
  mv "$work/prev.json.new" "$work/prev.json"
}

# inventory ARCH DIGEST FILE: the published inventory of that image, if any.
inventory() {
  aws s3 cp "s3://$RECORDS_BUCKET/inventories/$RUNTIME/$VERSION/$1/${2#sha256:}.json" "$3" --only-show-errors 2>/dev/null && [ -s "$3" ]
}

# changes PREV SET: per architecture, what changed from the images PREV
# names to those SET names, by their inventories (JSON, into
# $work/changes.json). An image without an inventory (published before
# inventories were kept) has previousKnown false. "upgraded" is any change
# of version: Debian version order is dpkg's to judge, not jq's.
changes() {
  echo '{}' > "$work/changes.json"
  for arch in $ARCHITECTURES; do
    new=$(jq -r --arg a "$arch" '.[$a]' "$2")
    old=$(jq -r --arg a "$arch" '.images[$a] // empty' "$1")
    inventory "$arch" "$new" "$work/new.inv" || refuse "no inventory of the $arch image $new in the records bucket"
    if [ -n "$old" ] && inventory "$arch" "$old" "$work/old.inv"; then
      jq -n -c --slurpfile o "$work/old.inv" --slurpfile n "$work/new.inv" '
        def items: . as $i | [("os", "runtime", "npm", "pip") as $k | ($i[$k] // {}) | to_entries[] | {kind: $k, name: .key, version: .value}];
        def keyed: map({key: "\(.kind) \(.name)", value: .}) | from_entries;
        ($o[0] | items) as $old | ($n[0] | items) as $new | ($old | keyed) as $om | ($new | keyed) as $nm |
        {previousKnown: true,
         base: (if $o[0].base.digest != $n[0].base.digest then {from: $o[0].base.digest, to: $n[0].base.digest} else null end),
         recipeChanged: ($o[0].recipe != $n[0].recipe),
         added: [$new[] | select($om["\(.kind) \(.name)"] == null)],
         removed: [$old[] | select($nm["\(.kind) \(.name)"] == null)],
         upgraded: [$new[] | . as $p | $om["\(.kind) \(.name)"] as $q | select($q != null and $q.version != $p.version) | {kind, name, from: $q.version, to: $p.version}]}' > "$work/delta"
    else
      jq -c '{previousKnown: false, base: null, recipeChanged: false, added: [], removed: [], upgraded: [],
        packages: ([.os, .runtime, .npm, .pip] | map(length) | add)}' "$work/new.inv" > "$work/delta"
    fi
    jq -c --arg a "$arch" --slurpfile d "$work/delta" '. + {($a): $d[0]}' "$work/changes.json" > "$work/changes.new"
    mv "$work/changes.new" "$work/changes.json"
  done
}

# same_content: every architecture's verified image has the content of the
# published one (base digest, recipe, packages), by their inventories.
same_content() {
  [ "$(jq -c . "$work/prev.json")" != null ] || return 1
  content='{base: .base.digest, recipe, os, runtime, npm, pip}'
  for arch in $ARCHITECTURES; do
    jq '.inventory // empty' "$work/$arch.record" > "$work/$arch.inv"
    [ -s "$work/$arch.inv" ] || return 1
    inventory "$arch" "$(jq -r --arg a "$arch" '.images[$a]' "$work/prev.json")" "$work/$arch.published" || return 1
    [ "$(jq -S -c "$content" "$work/$arch.inv")" = "$(jq -S -c "$content" "$work/$arch.published")" ] || return 1
  done
}

# put_param NAME VALUE: a consumer's parameter, written only when its value
# differs, so that its version (and whatever watches it) moves only with
# the digest.
put_param() {
  have=$(aws ssm get-parameter --name "$1" --query Parameter.Value --output text 2>/dev/null || true)
  if [ "$have" = "$2" ]; then
    echo "parameter $1 already holds $2"
    return 0
  fi
  aws ssm put-parameter --name "$1" --value "$2" --type String --overwrite > /dev/null
  echo "parameter $1 = $2"
}

remove_drafts() {
  ids=""
  for arch in $ARCHITECTURES; do ids="$ids imageTag=$(draft_tag "$arch")"; done
  # shellcheck disable=SC2086 # one image id per word
  aws ecr batch-delete-image --repository-name "$REPOSITORY" --image-ids $ids \
    --query "failures[?failureCode!='ImageNotFound']" --output json > "$work/failures"
  if [ "$(jq length "$work/failures")" != 0 ]; then
    cat "$work/failures" >&2
    exit 1
  fi
}

# 2. The commit point: the dated tag. One this execution already wrote wins,
#    whatever its day (drafts rebuilt after midnight must not make a second
#    commit point), and its set is completed: a retry after a Publish that
#    committed to an earlier verified set, or after it finished and removed
#    the drafts, does not need the drafts. What the tags named before the
#    commit is kept next to the records, for the changelog of a retry (by
#    then the tags may have moved).
#    --output json: the CLI applies --query to all pages together.
dated=$(aws ecr list-images --repository-name "$REPOSITORY" --filter tagStatus=TAGGED \
  --query "imageIds[?starts_with(imageTag, '$VERSION-r20') && ends_with(imageTag, '-$short_id')].imageTag" \
  --output json | jq -r 'sort | .[0] // empty')
previous="$records/publish/$RUNTIME/$VERSION.previous.json"
if [ -n "$dated" ] && get_manifest "imageTag=$dated" "$index_types" "$work/dated"; then
  echo "$REPOSITORY:$dated: execution $PIPELINE_EXECUTION_ID committed to $(sha "$work/dated"); completing it"
  load_set "$work/dated"
  aws s3 cp "$previous" "$work/prev.json" --only-show-errors 2>/dev/null || echo null > "$work/prev.json"
  outcome=published
else
  dated=""
  prev_set
  if aws s3 cp "s3://$RECORDS_BUCKET/holds/$RUNTIME/$VERSION.json" "$work/hold" --only-show-errors 2>/dev/null && [ -s "$work/hold" ]; then
    echo "$RUNTIME $VERSION is held at $(jq -r .to "$work/hold") since $(jq -r .at "$work/hold") by a rollback: its tags do not move (make resume RUNTIME=$RUNTIME VERSION=$VERSION releases it)"
    outcome=held
  elif same_content; then
    echo "$RUNTIME $VERSION: the verified images hold what the published ones hold (base, recipe, packages): the published tags keep their digests"
    outcome=unchanged
  else
    outcome=published
  fi
fi

# The vulnerability gate (evergreen:vulnerabilityGate) judges what would be
# published, on what Verify read of ECR's scans: each architecture's
# verified image against the published one (never-worse), or against the
# maximum counts. A blocked runtime-version keeps its published image and
# its drafts (to be looked at; the lifecycle rule retires them), puts no
# freshness metric, and the Report stage alerts with the CVEs.
if [ "$outcome" = published ] && [ -z "$dated" ] && [ "$VULNERABILITY_GATE" != off ]; then
  : > "$work/gate"
  for arch in $ARCHITECTURES; do
    jq -r --arg a "$arch" --arg gate "$VULNERABILITY_GATE" '
      def n($s): (.counts[$s] // 0);
      def ids($s): [.findings[]? | select(.severity == $s) | .id] | unique;
      (.scan // {}) as $new | .publishedScan as $old |
      if $gate == "never-worse" then
        if $old == null or ($old.status | IN("COMPLETE", "ACTIVE") | not) then empty
        else ("CRITICAL", "HIGH") as $s | select(($new | n($s)) > ($old | n($s))) |
          "\($a): \($s) \($old | n($s)) -> \($new | n($s)); new: \((($new | ids($s)) - ($old | ids($s))) | join(", "))"
        end
      else ($gate | split(" ")[] | split("=")) as [$s, $max] | select(($new | n($s)) > ($max | tonumber)) |
        "\($a): \($s) \($new | n($s)), more than \($max): \($new | ids($s) | join(", "))"
      end' "$work/$arch.record" >> "$work/gate"
  done
  if [ -s "$work/gate" ]; then
    outcome=blocked
    echo "the vulnerability gate ($VULNERABILITY_GATE) blocks $RUNTIME $VERSION; its published image stays:" >&2
    cat "$work/gate" >&2
  fi
fi
if [ "$outcome" = blocked ]; then
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for arch in $ARCHITECTURES; do jq -c --arg a "$arch" '{($a): .digest}' "$work/$arch.record"; done | jq -s -c add > "$work/blocked-images"
  jq -n -c --arg e "$PIPELINE_EXECUTION_ID" --arg r "$RUNTIME" --arg v "$VERSION" --arg repo "$REPOSITORY" --arg registry "$REGISTRY" \
    --arg gate "$VULNERABILITY_GATE" --arg t "$now" --rawfile reasons "$work/gate" \
    --slurpfile prev "$work/prev.json" --slurpfile blocked "$work/blocked-images" \
    '{stage: "publish", result: "blocked", executionId: $e, runtime: $r, version: $v, repository: $repo, registry: $registry,
      gate: $gate, blockedBy: ($reasons | split("\n") | map(select(length > 0))), blockedImages: $blocked[0],
      index: ($prev[0].index // ""), datedTag: ($prev[0].datedTag // ""), images: ($prev[0].images // {}), previous: $prev[0],
      checkedAt: $t, changedAt: ($prev[0].pushedAt // "")}' > "$work/publish.json"
  aws s3 cp "$work/publish.json" "$records/publish/$RUNTIME/$VERSION.json" --only-show-errors
  echo "blocked $REPOSITORY:$VERSION: it stays $(jq -r '.index' "$work/publish.json")"
  exit 0
fi

if [ "$outcome" = published ] && [ -z "$dated" ]; then
  # The verified manifests, by digest, and the index of them.
  : > "$work/entries"
  index_type=application/vnd.docker.distribution.manifest.list.v2+json
  for arch in $ARCHITECTURES; do
    digest=$(jq -r .digest "$work/$arch.record")
    get_manifest "imageDigest=$digest" "$image_types" "$work/$arch" ||
      refuse "the verified $arch image $digest is no longer in $REPOSITORY"
    if [ "$(cat "$work/$arch.type")" != application/vnd.docker.distribution.manifest.v2+json ]; then
      index_type=application/vnd.oci.image.index.v1+json
    fi
    jq -n -c --arg media "$(cat "$work/$arch.type")" --arg digest "$digest" --arg arch "$arch" \
      --argjson size "$(wc -c < "$work/$arch")" \
      '{mediaType: $media, digest: $digest, size: $size,
        platform: ({architecture: $arch, os: "linux"} + (if $arch == "arm64" then {variant: "v8"} else {} end))}' \
      >> "$work/entries"
  done
  # Before the commit point: the inventories of the images about to be
  # published (the next Publish compares with them), and what the tags
  # name now.
  for arch in $ARCHITECTURES; do
    jq -c '.inventory // empty' "$work/$arch.record" > "$work/$arch.inv"
    [ -s "$work/$arch.inv" ] || refuse "the $arch verification record has no inventory (retry the Verify stage)"
    aws s3 cp "$work/$arch.inv" "s3://$RECORDS_BUCKET/inventories/$RUNTIME/$VERSION/$arch/$(jq -r '.digest | ltrimstr("sha256:")' "$work/$arch.record").json" --only-show-errors
  done
  aws s3 cp "$work/prev.json" "$previous" --only-show-errors
  jq -s -j --arg type "$index_type" '{schemaVersion: 2, mediaType: $type, manifests: .}' "$work/entries" > "$work/index"
  printf '%s' "$index_type" > "$work/index.type"
  # The dated tag carries the day Build pushed the images (from the
  # record), not today's date, so a Publish retried after midnight writes
  # the same tag.
  # shellcheck disable=SC2086 # the first architecture
  set -- $ARCHITECTURES
  dated="$VERSION-r$(date -u -d "$(jq -r .pushedAt "$work/$1.record")" +%Y%m%d)-$short_id"
  # A concurrent Publish may write it first: either way it is read back,
  # and the set it names is the one completed.
  put_tag "$dated" "$work/index" || true
  get_manifest "imageTag=$dated" "$index_types" "$work/dated" || refuse "$REPOSITORY:$dated could not be written or read back"
  if [ "$(sha "$work/dated")" != "$(sha "$work/index")" ]; then
    echo "$REPOSITORY:$dated names $(sha "$work/dated"), another verified set of execution $PIPELINE_EXECUTION_ID: completing that one"
    load_set "$work/dated"
  fi
fi

# 3. A publish moves the tags; whatever the outcome, the drafts go.
if [ "$outcome" = published ]; then
  for arch in $ARCHITECTURES; do
    put_tag "$VERSION-$arch" "$work/$arch"
  done
  put_tag "$VERSION" "$work/index"
  echo '{}' > "$work/set"
  for arch in $ARCHITECTURES; do
    jq -c --arg a "$arch" --arg d "$(sha "$work/$arch")" '. + {($a): $d}' "$work/set" > "$work/set.new"
    mv "$work/set.new" "$work/set"
  done
  index=$(sha "$work/index")
  # The content changed when its index was first pushed (the commit point):
  # a retried Publish of the same execution says the same.
  changed_at=$(aws ecr describe-images --repository-name "$REPOSITORY" --image-ids "imageTag=$dated" --output json |
    jq -r '.imageDetails[0].imagePushedAt // empty')
  [ -n "$changed_at" ] || refuse "could not read when $REPOSITORY:$dated was pushed"
  changed_at=$(date -u -d "$changed_at" +%Y-%m-%dT%H:%M:%SZ)
  changes "$work/prev.json" "$work/set"
  # The CVEs fixed and introduced, per architecture, from the scans Verify
  # read, when the published image is the one this execution verified.
  for arch in $ARCHITECTURES; do
    jq -c --arg a "$arch" --arg d "$(jq -r --arg a "$arch" '.[$a]' "$work/set")" '
      def key: "\(.id) \(.package)";
      if .digest != $d or .scan == null then {($a): null}
      else (.scan.findings // []) as $new | (.publishedScan.findings // []) as $old |
        ($new | map(key)) as $nk | ($old | map(key)) as $ok |
        {($a): {counts: (.scan.counts // {}), previousCounts: (.publishedScan.counts // null),
          fixed: [$old[] | select(key as $k | $nk | index($k) | not) | {id, severity, package}],
          introduced: (if .publishedScan == null then [] else [$new[] | select(key as $k | $ok | index($k) | not) | {id, severity, package}] end)}}
      end' "$work/$arch.record"
  done | jq -s -c 'add' > "$work/vulnerabilities.json"
else
  # Unchanged or held: the set is what the tags name now.
  [ "$(jq -c . "$work/prev.json")" != null ] || refuse "$REPOSITORY:$VERSION and its architecture tags do not form one published set to keep"
  jq -c .images "$work/prev.json" > "$work/set"
  index=$(jq -r .index "$work/prev.json")
  dated=$(jq -r .datedTag "$work/prev.json")
  changed_at=$( (aws s3 cp "s3://$RECORDS_BUCKET/releases/$RUNTIME/$VERSION.json" - 2>/dev/null || true) | jq -r '.changedAt // empty')
  [ -n "$changed_at" ] || changed_at=$(date -u -d "$(jq -r .pushedAt "$work/prev.json")" +%Y-%m-%dT%H:%M:%SZ)
  echo '{}' > "$work/changes.json"
  echo '{}' > "$work/vulnerabilities.json"
fi
remove_drafts

# 4. The consumers' parameters: <prefix>/<runtime>/<version> names the
#    index, .../<arch> each image, by digest.
put_param "$PARAMETER_PREFIX/$RUNTIME/$VERSION" "$REGISTRY/$REPOSITORY@$index"
for arch in $ARCHITECTURES; do
  put_param "$PARAMETER_PREFIX/$RUNTIME/$VERSION/$arch" "$REGISTRY/$REPOSITORY@$(jq -r --arg a "$arch" '.[$a]' "$work/set")"
done

# 5. The records of the outcome (this execution's, for the Report stage; the
#    runtime-version's latest, for make status), then the freshness
#    signal: unchanged and held are fresh too, the check ran.
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
jq -n -c --arg result "$outcome" --arg e "$PIPELINE_EXECUTION_ID" --arg r "$RUNTIME" --arg v "$VERSION" --arg repo "$REPOSITORY" \
  --arg registry "$REGISTRY" --arg index "$index" --arg dated "$dated" --arg t "$now" --arg changed "$changed_at" \
  --slurpfile set "$work/set" --slurpfile prev "$work/prev.json" --slurpfile changes "$work/changes.json" --slurpfile vulns "$work/vulnerabilities.json" \
  '{stage: "publish", result: $result, executionId: $e, runtime: $r, version: $v, repository: $repo, registry: $registry,
    index: $index, datedTag: $dated, images: $set[0], previous: $prev[0], changes: $changes[0], vulnerabilities: $vulns[0],
    publishedAt: $t, checkedAt: $t, changedAt: $changed}' > "$work/publish.json"
aws s3 cp "$work/publish.json" "$records/publish/$RUNTIME/$VERSION.json" --only-show-errors
jq -c '{runtime, version, repository, result, executionId, checkedAt, changedAt, index, datedTag, images}' "$work/publish.json" > "$work/release.json"
aws s3 cp "$work/release.json" "s3://$RECORDS_BUCKET/releases/$RUNTIME/$VERSION.json" --only-show-errors
aws cloudwatch put-metric-data --namespace "$METRIC_NAMESPACE" --metric-name Fresh --unit Count --value 1 \
  --dimensions "Stack=$STACK_NAME,Runtime=$RUNTIME,Version=$VERSION"
echo "$outcome $REPOSITORY:$VERSION $index ($dated)"`

// reportScript writes the execution's changelog, one plain-text summary
// of every runtime-version's outcome from the Publish records, next to the
// records (executions/<id>/changelog.txt), and sends it to the changes
// topic: subscribers to changes are not subscribers to failures. It runs
// once, after every Publish batch succeeded; a retried Report sends again.
const reportScript = `set -eu
work=$(mktemp -d)
records="s3://$RECORDS_BUCKET/executions/$PIPELINE_EXECUTION_ID"

# Every runtime-version's outcome in this execution, in list order. One
# without a Publish record is reported as such, not dropped.
: > "$work/outcomes"
for release in $RELEASES; do
  if aws s3 cp "$records/publish/$release.json" "$work/one.json" --only-show-errors 2>/dev/null && [ -s "$work/one.json" ]; then
    jq -c . "$work/one.json" >> "$work/outcomes"
  else
    jq -n -c --arg r "${release%/*}" --arg v "${release#*/}" '{runtime: $r, version: $v, result: "none"}' >> "$work/outcomes"
  fi
done

jq -s -r --arg e "$PIPELINE_EXECUTION_ID" --arg s "${SOURCE_REVISION:-}" --arg stack "$STACK_NAME" --arg t "$(date -u '+%Y-%m-%d %H:%M UTC')" '
  def ref: "\(.registry)/\(.repository)@\(.index)";
  def count($r): map(select(.result == $r)) | length;
  def cves: map("\(.id) (\(.severity), \(.package))") | join(", ");
  def vulns: .key as $a | .value |
    "  \($a) findings: \(.counts | to_entries | map("\(.key) \(.value)") | join(", ") | if . == "" then "none" else . end)" +
    (if .previousCounts == null then " (the image it replaces had no scan)\n"
     else "; CVEs fixed \(.fixed | length), introduced \(.introduced | length)\n" +
       (if (.fixed | length) > 0 then "    fixed      \(.fixed | cves)\n" else "" end) +
       (if (.introduced | length) > 0 then "    introduced \(.introduced | cves)\n" else "" end)
     end);
  def arch($rt; $first): .key as $a | .value |
    if $first then "  \($a): \(.packages) packages and runtimes\n"
    elif .previousKnown | not then "  \($a): no inventory of the image it replaces; \(.packages) packages and runtimes now\n"
    else "  \($a): " + ([
        (if .base then "base image \(.base.from) -> \(.base.to)" else "base image unchanged" end),
        (if .recipeChanged then "runtimes/\($rt) changed" else "runtimes/\($rt) unchanged" end),
        "\(.upgraded | length) upgraded, \(.added | length) added, \(.removed | length) removed"] | join("; ")) + "\n" +
      (.upgraded | map("    upgraded \(.kind) \(.name) \(.from) -> \(.to)\n") | add // "") +
      (.added | map("    added    \(.kind) \(.name) \(.version)\n") | add // "") +
      (.removed | map("    removed  \(.kind) \(.name) \(.version)\n") | add // "")
    end;
  "Evergreen images: stack \($stack), execution \($e)\n" +
  "Source revision \($s), reported \($t)\n\n" +
  "\(count("published")) published, \(count("unchanged")) unchanged, \(count("held")) held, \(count("blocked")) blocked, \(count("none")) without an outcome\n" +
  (map("\n" +
    if .result == "published" then
      "\(.runtime) \(.version): published \(ref) (\(.datedTag))\n" +
      (if .previous then "  replaces \(.previous.index) (\(.previous.datedTag))\n" else "  first publish of this version\n" end) +
      (.runtime as $rt | (.previous == null) as $first | .changes | to_entries | map(arch($rt; $first)) | add // "") +
      (.vulnerabilities // {} | to_entries | map(select(.value != null) | vulns) | add // "")
    elif .result == "blocked" then
      "\(.runtime) \(.version): BLOCKED by the vulnerability gate (\(.gate)); it stays \(if .index == "" then "unpublished" else ref end)\n" +
      (.blockedBy | map("  \(.)\n") | add // "")
    elif .result == "unchanged" then
      "\(.runtime) \(.version): unchanged, stays \(ref) (\(.datedTag)), content of \(.changedAt)\n"
    elif .result == "held" then
      "\(.runtime) \(.version): held by a rollback at \(ref) (\(.datedTag)); make resume RUNTIME=\(.runtime) VERSION=\(.version) releases it\n"
    else
      "\(.runtime) \(.version): no Publish record in this execution\n"
    end) | add // "")' "$work/outcomes" > "$work/changelog.txt"

subject=$(jq -s -r --arg stack "$STACK_NAME" '
  "Evergreen images: \(map(select(.result == "published")) | length) published, \(map(select(.result == "unchanged")) | length) unchanged (\($stack))"' "$work/outcomes" | cut -c 1-100)
aws s3 cp "$work/changelog.txt" "$records/changelog.txt" --only-show-errors
# Sent once per execution: a retried Report (the stage retries by itself
# after it fails on a blocked runtime-version) does not send it again.
sent() { aws s3 cp "$records/report/$1" - --only-show-errors > /dev/null 2>&1; }
mark() { date -u +%Y-%m-%dT%H:%M:%SZ | aws s3 cp - "$records/report/$1" --only-show-errors; }
# SNS takes at most 256 KB: a longer changelog (a first publish of many
# versions with every package listed cannot be; a very long list could)
# is cut, and says where the whole of it is.
if [ "$(wc -c < "$work/changelog.txt")" -gt 260000 ]; then
  head -c 250000 "$work/changelog.txt" > "$work/message.txt"
  printf '\n[cut at 250000 bytes: the whole changelog is %s/changelog.txt]\n' "$records" >> "$work/message.txt"
else
  cp "$work/changelog.txt" "$work/message.txt"
fi
if sent changelog; then
  echo "the changelog of execution $PIPELINE_EXECUTION_ID was sent already"
else
  aws sns publish --topic-arn "$CHANGES_TOPIC_ARN" --subject "$subject" --message "file://$work/message.txt" > /dev/null
  mark changelog
fi
cat "$work/changelog.txt"

# A runtime-version the vulnerability gate blocked counts as a failure:
# the alert topic gets the CVEs, and the stage fails.
jq -s -r '.[] | select(.result == "blocked") | "\(.runtime) \(.version): \(.blockedBy | join("; "))"' "$work/outcomes" > "$work/blocked.txt"
if [ -s "$work/blocked.txt" ]; then
  if ! sent alert; then
    { echo "The vulnerability gate blocked, in execution $PIPELINE_EXECUTION_ID of stack $STACK_NAME (their published images stay):"
      cat "$work/blocked.txt"
      echo
      echo "The changelog: $records/changelog.txt"; } > "$work/alert.txt"
    aws sns publish --topic-arn "$ALERT_TOPIC_ARN" --subject "$(printf 'Evergreen images: %s blocked by the vulnerability gate (%s)' "$(wc -l < "$work/blocked.txt" | tr -d ' ')" "$STACK_NAME" | cut -c 1-100)" \
      --message "file://$work/alert.txt" > /dev/null
    mark alert
  fi
  echo "the vulnerability gate blocked:" >&2
  cat "$work/blocked.txt" >&2
  exit 1
fi`

var reportCommands = []string{
	requireExecutionID,
	reportScript,
}

var publishCommands = []string{
	requireExecutionID,
	publishScript,
}

// Commands returns the pre_build and build commands of a stage, for other
// runners of the same steps (the GitHub workflow, the local rehearsal).
func Commands(st Stage) (preBuild, build []string) {
	switch st {
	case Build:
		return buildPreBuild, buildCommands
	case Verify:
		return verifyPreBuild, verifyCommands
	case Publish:
		return nil, publishCommands
	case Report:
		return nil, reportCommands
	}
	return nil, nil
}

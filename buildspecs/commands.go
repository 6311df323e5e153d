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
	verifyGuard + `RECORD=$(aws s3 cp "$RECORD_PREFIX/build/$RECORD_PATH" - | jq -c --arg d "$BUILT" --arg b "${CODEBUILD_BUILD_ID:-}" --arg t "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  'select(.digest == $d) | . + {stage: "verify", result: "passed", selfTest: "passed", verifiedAt: $t, verifyBuildId: $b}') &&
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
// Publish emits the freshness metric of the runtime-version last: the
// staleness alarm watches that metric, per runtime-version, however Publish
// was run.
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

# 2. The commit point: the dated tag. One this execution already wrote wins,
#    whatever its day (drafts rebuilt after midnight must not make a second
#    commit point), and its set is completed: a retry after a Publish that
#    committed to an earlier verified set, or after it finished and removed
#    the drafts, does not need the drafts.
#    --output json: the CLI applies --query to all pages together.
dated=$(aws ecr list-images --repository-name "$REPOSITORY" --filter tagStatus=TAGGED \
  --query "imageIds[?starts_with(imageTag, '$VERSION-r20') && ends_with(imageTag, '-$short_id')].imageTag" \
  --output json | jq -r 'sort | .[0] // empty')
if [ -n "$dated" ] && get_manifest "imageTag=$dated" "$index_types" "$work/dated"; then
  echo "$REPOSITORY:$dated: execution $PIPELINE_EXECUTION_ID committed to $(sha "$work/dated"); completing it"
  load_set "$work/dated"
else
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

# 3. The moving tags, then the drafts.
for arch in $ARCHITECTURES; do
  put_tag "$VERSION-$arch" "$work/$arch"
done
put_tag "$VERSION" "$work/index"
ids=""
for arch in $ARCHITECTURES; do ids="$ids imageTag=$(draft_tag "$arch")"; done
# shellcheck disable=SC2086 # one image id per word
aws ecr batch-delete-image --repository-name "$REPOSITORY" --image-ids $ids \
  --query "failures[?failureCode!='ImageNotFound']" --output json > "$work/failures"
if [ "$(jq length "$work/failures")" != 0 ]; then
  cat "$work/failures" >&2
  exit 1
fi

# 4. The record of what was published, and the freshness signal.
jq -n --arg e "$PIPELINE_EXECUTION_ID" --arg r "$RUNTIME" --arg v "$VERSION" --arg repo "$REPOSITORY" \
  --arg index "$(sha "$work/index")" --arg dated "$dated" --arg t "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  '{stage: "publish", result: "published", executionId: $e, runtime: $r, version: $v, repository: $repo,
    index: $index, datedTag: $dated, publishedAt: $t}' |
  aws s3 cp - "$records/publish/$RUNTIME/$VERSION.json"
aws cloudwatch put-metric-data --namespace "$METRIC_NAMESPACE" --metric-name Fresh --unit Count --value 1 \
  --dimensions "Stack=$STACK_NAME,Runtime=$RUNTIME,Version=$VERSION"
echo "published $REPOSITORY:$VERSION $(sha "$work/index") ($dated)"`

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
	}
	return nil, nil
}

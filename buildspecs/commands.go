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
//   AWS_REGION             CodeBuild: the build's own region

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

// Build pushes one plain image manifest per architecture. --provenance and
// --sbom are off because attestations turn the push into an index, which
// Publish cannot put under a per-architecture tag and Lambda refuses.
// A retried Build overwrites its draft tag (drafts are mutable); the image it
// replaces is left untagged and retired by the untagged rule.
var buildCommands = []string{
	draftImage,
	`docker buildx build --platform "linux/$ARCH" --pull --provenance=false --sbom=false --build-arg "VERSION=$VERSION" --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "BASE_REGISTRY=$BASE_REGISTRY" --label "org.opencontainers.image.revision=$SOURCE_REVISION" --tag "$IMAGE" --push "runtimes/$RUNTIME"`,
	`MEDIA_TYPE=$(aws ecr describe-images --repository-name "$REPOSITORY" --image-ids "imageTag=${IMAGE##*:}" --query 'imageDetails[0].imageManifestMediaType' --output text)`,
	`case "$MEDIA_TYPE" in
  application/vnd.docker.distribution.manifest.v2+json|application/vnd.oci.image.manifest.v1+json)
    echo "pushed $IMAGE ($MEDIA_TYPE)" ;;
  *)
    echo "$IMAGE was pushed as $MEDIA_TYPE, not as a single-platform image manifest" >&2
    exit 1 ;;
esac`,
}

var verifyPreBuild = []string{
	requireExecutionID,
	ecrLogin,
}

// Verify runs on the entry's own architecture (ARM_CONTAINER or
// LINUX_CONTAINER, no emulation), so an image built for the wrong platform
// fails here. The self-test gets the expected version and architecture from
// the pipeline, not from the image, so an image pushed under the wrong tag
// fails too.
var verifyCommands = []string{
	draftImage,
	`docker pull --platform "linux/$ARCH" "$IMAGE"`,
	`IMAGE_ARCH=$(docker image inspect --format '{{.Architecture}}' "$IMAGE")`,
	`if [ "$IMAGE_ARCH" != "$ARCH" ]; then
  echo "$IMAGE is built for $IMAGE_ARCH, expected $ARCH" >&2
  exit 1
fi`,
	`docker run --rm --platform "linux/$ARCH" --env "EXPECTED_VERSION=$VERSION" --env "EXPECTED_ARCH=$ARCH" --entrypoint self-test "$IMAGE"`,
}

// publishScript retags verified drafts through the ECR API: manifests only,
// no layer is pulled or pushed, and no Docker daemon is needed.
//
// Order matters. Each per-architecture image gets its published tag before its
// draft tag is removed, because ECR deletes an image with its last tag and
// refuses that while an index references it. The dated and multi-architecture
// tags are written before the drafts are removed, so a Publish that stops half
// way still finds its drafts when retried. A retry after a complete Publish
// finds no drafts, but finds this execution's dated tag, and succeeds.
const publishScript = `set -eu
work=$(mktemp -d)
short_id=$(printf '%s' "$PIPELINE_EXECUTION_ID" | cut -c1-8)
draft_tag() { printf 'draft-%s-%s-%s' "$VERSION" "$1" "$PIPELINE_EXECUTION_ID"; }

# put_tag TAG MEDIA_TYPE FILE points TAG at the manifest in FILE. A tag that
# already points at it is left alone: that is a retry, not an error (ECR
# refuses to put it again, with ImageAlreadyExistsException or, on an
# immutable tag, ImageTagAlreadyExistsException).
put_tag() {
  want="sha256:$(sha256sum "$3" | cut -d ' ' -f 1)"
  have=$(aws ecr batch-get-image --repository-name "$REPOSITORY" --image-ids "imageTag=$1" \
    --accepted-media-types "$2" --query 'images[0].imageId.imageDigest' --output text)
  if [ "$have" = "$want" ]; then
    echo "$REPOSITORY:$1 already points at $want"
    return 0
  fi
  if out=$(aws ecr put-image --repository-name "$REPOSITORY" --image-tag "$1" \
      --image-manifest-media-type "$2" --image-manifest "file://$3" 2>&1); then
    echo "tagged $REPOSITORY:$1 $want"
  else
    case "$out" in
      *ImageAlreadyExistsException*) echo "$REPOSITORY:$1 already points at $want" ;;
      *) printf '%s\n' "$out" >&2; return 1 ;;
    esac
  fi
}

delete_drafts() {
  ids=""
  for arch in $ARCHITECTURES; do ids="$ids imageTag=$(draft_tag "$arch")"; done
  # shellcheck disable=SC2086 # one image id per word
  aws ecr batch-delete-image --repository-name "$REPOSITORY" --image-ids $ids \
    --query "failures[?failureCode!='ImageNotFound']" --output json > "$work/failures"
  if [ "$(jq length "$work/failures")" != 0 ]; then
    cat "$work/failures" >&2
    return 1
  fi
  echo "removed the draft tags of $RUNTIME $VERSION"
}

publish() {
  missing=""
  for arch in $ARCHITECTURES; do
    aws ecr batch-get-image --repository-name "$REPOSITORY" --image-ids "imageTag=$(draft_tag "$arch")" \
      --accepted-media-types application/vnd.docker.distribution.manifest.v2+json application/vnd.oci.image.manifest.v1+json \
      --output json > "$work/$arch.json"
    if [ "$(jq '.images | length' "$work/$arch.json")" = 0 ]; then
      missing="$missing $arch"
    fi
  done

  if [ -n "$missing" ]; then
    # --output json: the CLI applies --query to all pages together (with
    # text output it applies it page by page, printing one None per page).
    done_tag=$(aws ecr list-images --repository-name "$REPOSITORY" --filter tagStatus=TAGGED \
      --query "imageIds[?starts_with(imageTag, '$VERSION-r20') && ends_with(imageTag, '-$short_id')].imageTag" \
      --output json | jq -r '.[0] // empty')
    if [ -n "$done_tag" ]; then
      echo "$REPOSITORY:$done_tag shows execution $PIPELINE_EXECUTION_ID already published $VERSION"
      delete_drafts
      return 0
    fi
    echo "no verified draft of $RUNTIME $VERSION for:$missing (execution $PIPELINE_EXECUTION_ID)." >&2
    echo "Drafts expire after a day; start a new execution (Release change) to rebuild them." >&2
    return 1
  fi

  index_type=application/vnd.docker.distribution.manifest.list.v2+json
  : > "$work/entries"
  for arch in $ARCHITECTURES; do
    jq -j '.images[0].imageManifest' "$work/$arch.json" > "$work/$arch.manifest"
    media=$(jq -r '.images[0].imageManifestMediaType' "$work/$arch.json")
    digest=$(jq -r '.images[0].imageId.imageDigest' "$work/$arch.json")
    # The index must name exactly the bytes ECR stores.
    if [ "sha256:$(sha256sum "$work/$arch.manifest" | cut -d ' ' -f 1)" != "$digest" ]; then
      echo "the manifest of $(draft_tag "$arch") does not hash to $digest" >&2
      return 1
    fi
    if [ "$media" != application/vnd.docker.distribution.manifest.v2+json ]; then
      index_type=application/vnd.oci.image.index.v1+json
    fi
    put_tag "$VERSION-$arch" "$media" "$work/$arch.manifest"
    jq -n -c --arg media "$media" --arg digest "$digest" --arg arch "$arch" \
      --argjson size "$(wc -c < "$work/$arch.manifest")" \
      '{mediaType: $media, digest: $digest, size: $size,
        platform: ({architecture: $arch, os: "linux"} + (if $arch == "arm64" then {variant: "v8"} else {} end))}' \
      >> "$work/entries"
  done
  jq -s -j --arg type "$index_type" '{schemaVersion: 2, mediaType: $type, manifests: .}' "$work/entries" > "$work/index.json"

  # The dated tag carries the day the drafts were pushed, not today's date, so
  # a Publish retried after midnight writes the same tag again.
  # shellcheck disable=SC2086 # the first architecture
  set -- $ARCHITECTURES
  pushed=$(aws ecr describe-images --repository-name "$REPOSITORY" --image-ids "imageTag=$(draft_tag "$1")" \
    --query 'imageDetails[0].imagePushedAt' --output text)
  day=$(date -u -d "$pushed" +%Y%m%d)
  put_tag "$VERSION-r$day-$short_id" "$index_type" "$work/index.json"
  put_tag "$VERSION" "$index_type" "$work/index.json"
  delete_drafts
}

publish`

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

#!/bin/sh
# Uploads the committed HEAD of this repository to the stack's source bucket
# and starts the pipeline. Used when no Git source is configured
# (cdk.json context "evergreen:source" unset): the S3 source has no trigger of
# its own, so this script starts the execution.
#
#   scripts/upload-source.sh [stack name]     (default: EvergreenImages)
#
# Needs git, the AWS CLI v2 and credentials for the stack's account and region.
set -eu

stack=${1:-EvergreenImages}
output() {
  aws cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

bucket=$(output SourceBucket)
pipeline=$(output PipelineName)
if [ -z "$bucket" ] || [ "$bucket" = None ]; then
  echo "stack $stack has no SourceBucket output: it uses a Git source, so push to its branch instead" >&2
  exit 1
fi

archive=$(mktemp)
trap 'rm -f "$archive"' EXIT
# git archive takes only committed files: what is built is what is reviewed.
git archive --format=zip --output="$archive" HEAD
aws s3 cp "$archive" "s3://$bucket/source.zip"
aws codepipeline start-pipeline-execution --name "$pipeline" --query pipelineExecutionId --output text

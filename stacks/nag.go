package stacks

import (
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
)

// AddNagChecks applies cdk-nag's AwsSolutions pack: an unsuppressed finding is
// an error annotation, which fails `cdk synth` and `cdk deploy`.
func AddNagChecks(scope constructs.IConstruct) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{
		Verbose: jsii.Bool(true),
		// The CSV reports would add files to cdk.out that nobody reads; the
		// findings are annotations, printed by the CLI and asserted in tests.
		Reports: jsii.Bool(false),
	}), nil)
}

// The suppressions below are for grants the CDK writes for us, each scoped to
// one resource of this stack. Each is listed finding by finding (appliesTo),
// so any new wildcard is still a finding.

// Read access to the pipeline's artifact bucket and use of its key.
func artifactFindings(bucketLogicalID string) []any {
	return []any{
		"Action::s3:GetBucket*",
		"Action::s3:GetObject*",
		"Action::s3:List*",
		"Resource::<" + bucketLogicalID + ".Arn>/*",
		"Action::kms:GenerateDataKey*",
		"Action::kms:ReEncrypt*",
	}
}

// What the CDK grants a CodeBuild project: its log streams and report groups.
var codeBuildFindings = []any{
	map[string]any{"regex": `/^Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:\/aws\/codebuild\/<[A-Za-z0-9]+>:\*$/`},
	map[string]any{"regex": `/^Resource::arn:<AWS::Partition>:codebuild:<AWS::Region>:<AWS::AccountId>:report-group\/<[A-Za-z0-9]+>-\*$/`},
}

func suppress(c constructs.IConstruct, id, reason string, appliesTo []any) {
	sup := &cdknag.NagPackSuppression{Id: jsii.String(id), Reason: jsii.String(reason)}
	if appliesTo != nil {
		sup.AppliesTo = &appliesTo
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{sup}, jsii.Bool(true))
}

func (s *EvergreenStack) suppressNagFindings(cfg config.Config) {
	pl := s.Pipeline
	artifacts := artifactFindings(*s.Stack.GetLogicalId(pl.ArtifactBucket.Node().DefaultChild().(awscdk.CfnElement)))
	for _, st := range []struct {
		role  constructs.IConstruct
		login bool
	}{
		{pl.Roles[buildspecs.Build], true},
		{pl.Roles[buildspecs.Verify], true},
		{pl.Roles[buildspecs.Publish], false},
		{pl.Roles[buildspecs.Report], false},
	} {
		suppress(st.role, "AwsSolutions-IAM5",
			"CDK grants for CodeBuild: read the source artifact from this pipeline's artifact bucket (object keys are per execution), decrypt with this stack's key, write its own log streams and report groups.",
			append(append([]any{}, artifacts...), codeBuildFindings...))
		if st.login {
			suppress(st.role, "AwsSolutions-IAM5",
				"docker login: ecr:GetAuthorizationToken, and for Build ecr-public:GetAuthorizationToken with sts:GetServiceBearerToken, have no resource-level permissions, nor have Verify's inspector2:ListFindings and inspector2:ListCoverage (with evergreen:enhancedScanning, ECR returns enhanced findings only to a principal that holds them); they are the only actions on '*' (asserted by stacks tests).",
				[]any{"Resource::*"})
		}
	}
	if tool, ok := pl.Roles[toolStage]; ok {
		suppress(tool, "AwsSolutions-IAM5",
			"CDK grants for CodeBuild: read the source artifact from and write the Tool artifact to this pipeline's artifact bucket (object keys are per execution), with the artifacts key; write its own log streams and report groups. Nothing else (asserted by stacks tests).",
			append(append(slices.Clone(artifacts), "Action::s3:DeleteObject*", "Action::s3:Abort*"), codeBuildFindings...))
	}
	records := *s.Stack.GetLogicalId(pl.Records.Node().DefaultChild().(awscdk.CfnElement))
	recordFindings := func(stages ...buildspecs.Stage) []any {
		var out []any
		for _, st := range stages {
			reads, writes := recordPatterns(st)
			for _, p := range append(reads, writes...) {
				if f := "Resource::<" + records + ".Arn>/" + p; !slices.Contains(out, any(f)) {
					out = append(out, f)
				}
			}
		}
		return out
	}
	const recordsReason = "Records of this stack's own records bucket: under executions/<execution id>/<stage>/ each stage writes only its own and reads only the stage before's; Publish also keeps inventories/, releases/ and reads holds/ (asserted by stacks tests)."
	for _, st := range append(slices.Clone(buildspecs.Stages), buildspecs.Report) {
		suppress(pl.Roles[st], "AwsSolutions-IAM5", recordsReason, recordFindings(st))
	}
	parameters := "Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter" + cfg.ParameterPrefix() + "/*"
	const parametersReason = "The consumers' SSM parameters: only this stack's path, <stack name>/<runtime>/<version>[/<arch>], one parameter per runtime-version and architecture (asserted by stacks tests)."
	suppress(pl.Roles[buildspecs.Publish], "AwsSolutions-IAM5", parametersReason, []any{parameters})
	suppress(pl.Roles[buildspecs.Publish], "AwsSolutions-IAM5",
		"cloudwatch:PutMetricData has no resource-level permissions; a cloudwatch:namespace condition holds it to the freshness metric's namespace (asserted by stacks tests).",
		[]any{"Resource::*"})
	pipelineFindings := append(artifacts, "Action::s3:DeleteObject*", "Action::s3:Abort*")
	suppress(pl.Pipeline.Role(), "AwsSolutions-IAM5",
		"CDK grants for CodePipeline: read and write artifacts in this pipeline's own artifact bucket, encrypted with this stack's key.",
		pipelineFindings)
	suppress(pl.Pipeline.Node().FindChild(jsii.String("Source")), "AwsSolutions-IAM5",
		"CDK grants for the source action: write the source artifact to this pipeline's own artifact bucket, encrypted with this stack's key.",
		pipelineFindings)
	if s.GitHub != nil {
		suppress(s.GitHub.Role, "AwsSolutions-IAM5",
			"docker login: ecr:GetAuthorizationToken, ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken have no resource-level permissions, nor have cloudwatch:PutMetricData (held to its namespace by a condition) and, with evergreen:enhancedScanning, inspector2:ListFindings and inspector2:ListCoverage; they are the only actions on '*' (asserted by stacks tests).",
			[]any{"Resource::*"})
		suppress(s.GitHub.Role, "AwsSolutions-IAM5", recordsReason, recordFindings(append(slices.Clone(buildspecs.Stages), buildspecs.Report)...))
		suppress(s.GitHub.Role, "AwsSolutions-IAM5", parametersReason, []any{parameters})
	}
	if cfg.PullOrganization != "" {
		suppress(s.Repositories.Construct, "AwsSolutions-ECR1",
			"The '*' principal is limited to the organization by an aws:PrincipalOrgID condition, and to the three read-only pull actions.",
			nil)
	}
}

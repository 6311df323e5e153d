// Package stacks composes the evergreen images stack: ECR repositories, the
// V2 pipeline with its Build, Verify and Publish batch stages, the daily
// schedule and the alerts. Constructs take everything through props; only
// main reads the environment and the CDK context.
package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

// EvergreenStackProps configures the stack.
type EvergreenStackProps struct {
	awscdk.StackProps
	List  *runtimes.List
	Specs []buildspecs.Spec
	// Config.GitHub, if set, adds the OIDC role the generated GitHub
	// workflow assumes.
	Config config.Config
	// SourceZip is the pipeline's source when Config.Source is nil: a zip
	// of the repository's committed files (internal/source).
	SourceZip string
}

// EvergreenStack is what `cdk deploy` creates.
type EvergreenStack struct {
	awscdk.Stack
	// Key encrypts the records, the logs and the topics; ArtifactsKey the
	// pipeline's artifacts and the CodeBuild projects' output.
	Key          awskms.Key
	ArtifactsKey awskms.Key
	Repositories *Repositories
	Pipeline     *Pipeline
	Alerts       *Alerts
	// GitHub is nil unless Config.GitHub is set.
	GitHub *GitHubAccess
	// Registry is nil unless an account-wide setting is asked for
	// (evergreen:enhancedScanning, evergreen:signing).
	Registry *RegistrySettings
}

// NewEvergreenStack composes the stack.
func NewEvergreenStack(scope constructs.Construct, id string, p *EvergreenStackProps) *EvergreenStack {
	stack := awscdk.NewStack(scope, &id, &p.StackProps)
	s := &EvergreenStack{Stack: stack}

	// One customer-managed key encrypts the records, the build logs and the
	// topics, so access to all of them is one key policy; each stage role
	// holds only the actions its records need (grantStage).
	s.Key = awskms.NewKey(stack, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("Evergreen images pipeline: records, logs and topics"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
	})
	// The pipeline's artifacts (the source, the Tool binary) have a key of
	// their own: it is also every CodeBuild project's EncryptionKey, and the
	// CDK grants a project's key in full (Encrypt, Decrypt, ReEncrypt*,
	// GenerateDataKey*) to the project's role. On the records key that
	// grant would make every stage role's narrow records statement moot.
	s.ArtifactsKey = awskms.NewKey(stack, jsii.String("ArtifactsKey"), &awskms.KeyProps{
		Description:       jsii.String("Evergreen images pipeline: the pipeline's artifacts and the CodeBuild projects' output"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
	})
	s.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchLogs"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("logs."), awscdk.Aws_REGION(), jsii.String(".amazonaws.com")}), nil)},
		Actions:    jsii.Strings("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"ArnLike": map[string]any{
			"kms:EncryptionContext:aws:logs:arn": awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("arn:"), awscdk.Aws_PARTITION(), jsii.String(":logs:"), awscdk.Aws_REGION(), jsii.String(":"), awscdk.Aws_ACCOUNT_ID(), jsii.String(":log-group:*")}),
		}},
	}), nil)

	s.Repositories = NewRepositories(stack, "Repositories", &RepositoriesProps{List: p.List, Config: p.Config})
	s.Alerts = NewAlerts(stack, "Alerts", &AlertsProps{List: p.List, Config: p.Config, Key: s.Key})
	s.Pipeline = NewPipeline(stack, "Images", &PipelineProps{
		Specs:        p.Specs,
		Repositories: s.Repositories,
		Config:       p.Config,
		Key:          s.Key,
		ArtifactsKey: s.ArtifactsKey,
		SourceZip:    p.SourceZip,
		Alerts:       s.Alerts.Topic,
	})
	s.Alerts.Watch(s.Pipeline.Pipeline)
	if p.Config.GitHub != nil {
		s.GitHub = NewGitHubAccess(stack, "GitHub", &GitHubAccessProps{Config: p.Config.GitHub, Repositories: s.Repositories, Access: s.Pipeline.Access})
		awscdk.NewCfnOutput(stack, jsii.String("GitHubRoleArn"), &awscdk.CfnOutputProps{
			Description: jsii.String("Set as the GitHub repository variable AWS_ROLE_ARN"),
			Value:       s.GitHub.Role.RoleArn(),
		})
	}
	if p.Config.EnhancedScanning || p.Config.Signing {
		s.Registry = NewRegistrySettings(stack, "Registry", &RegistrySettingsProps{
			Config: p.Config, Repositories: s.Repositories, Pipeline: s.Pipeline, Pushers: pushers(s.Pipeline, s.GitHub),
		})
		if s.Registry.Profile != nil {
			awscdk.NewCfnOutput(stack, jsii.String("SigningProfileArn"), &awscdk.CfnOutputProps{
				Description: jsii.String("The AWS Signer profile ECR signs the images with: the trusted identity of a Notation trust policy"),
				Value:       s.Registry.Profile.SigningProfileArn(),
			})
		}
	}

	s.suppressNagFindings(p.Config)

	awscdk.NewCfnOutput(stack, jsii.String("RecordsBucket"), &awscdk.CfnOutputProps{
		Description: jsii.String("What each stage established, per execution (executions/<id>/build|verify|publish/...); the GitHub workflow's RECORDS_BUCKET"),
		Value:       s.Pipeline.Records.BucketName(),
	})

	for _, name := range s.Repositories.Names {
		awscdk.NewCfnOutput(stack, jsii.String("RepositoryUri"+outputID(name)), &awscdk.CfnOutputProps{
			Description: jsii.String(fmt.Sprintf("ECR repository of the %s images", name)),
			Value:       s.Repositories.ByName[name].RepositoryUri(),
		})
	}
	pipelineName := s.Pipeline.Pipeline.PipelineName()
	awscdk.NewCfnOutput(stack, jsii.String("PipelineName"), &awscdk.CfnOutputProps{Value: pipelineName})
	awscdk.NewCfnOutput(stack, jsii.String("PipelineConsole"), &awscdk.CfnOutputProps{
		Description: jsii.String("The pipeline in the AWS console"),
		Value: awscdk.Fn_Join(jsii.String(""), &[]*string{
			jsii.String("https://"), awscdk.Aws_REGION(), jsii.String(".console.aws.amazon.com/codesuite/codepipeline/pipelines/"),
			pipelineName, jsii.String("/view?region="), awscdk.Aws_REGION(),
		}),
	})
	awscdk.NewCfnOutput(stack, jsii.String("AlertTopic"), &awscdk.CfnOutputProps{Value: s.Alerts.Topic.TopicArn()})
	awscdk.NewCfnOutput(stack, jsii.String("ChangesTopicArn"), &awscdk.CfnOutputProps{
		Description: jsii.String("The changelog of every execution, plain text (the Report stage); the GitHub workflow's CHANGES_TOPIC_ARN"),
		Value:       s.Pipeline.Changes.TopicArn(),
	})
	return s
}

// outputID turns a runtime name into the alphanumeric part of an output id.
func outputID(name string) string {
	out := make([]rune, 0, len(name))
	upper := true
	for _, r := range name {
		switch {
		case r == '-' || r == '.' || r == '_':
			upper = true
		case upper && r >= 'a' && r <= 'z':
			out = append(out, r-'a'+'A')
			upper = false
		default:
			out = append(out, r)
			upper = false
		}
	}
	return string(out)
}

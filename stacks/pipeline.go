package stacks

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscodebuild"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscodepipeline"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscodepipelineactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
)

// stageTimeouts are per build. Build pulls a base image, upgrades the OS and
// pushes; Verify pulls and runs a self-test; Publish moves manifests and pushes
// the evidence (small documents, no image layer).
// Tool compiles the binary for two architectures (about 4 minutes cold on
// 2 cores, plus the toolchain download when go.mod pins a newer Go than
// the image's).
var stageTimeouts = map[buildspecs.Stage]int{
	toolStage:          20,
	buildspecs.Build:   60,
	buildspecs.Verify:  30,
	buildspecs.Publish: 15,
	buildspecs.Report:  15,
}

// maxBatchTimeout is CodeBuild's ceiling for a batch (36 hours).
const maxBatchTimeout = 2160

// MaximumBuildsAllowed is a batch's build restriction: a batch with more
// builds fails. A retry inside the batch (the console's Retry build batch,
// RetryBuildBatch) starts new builds in the same batch, keeping the earlier
// ones as prior builds of each entry; whether those count towards the
// restriction is not documented. Twice the entries leaves room for one full
// retry, and no room for a graph that grew by mistake.
func MaximumBuildsAllowed(spec buildspecs.Spec) int {
	return 2 * len(spec.Identifiers)
}

// BatchTimeout is a batch's timeout in minutes. Without a concurrency cap,
// every entry may have to wait for the one before it (an account whose quota
// is lower than the batch queues them), so it allows the build timeout
// once per entry. With evergreen:maxConcurrentBuilds, the entries run in
// depend-on chains, and the longest chain is what the batch waits for.
// CodeBuild allows at most 36 hours.
func BatchTimeout(spec buildspecs.Spec) int {
	n := len(spec.Identifiers)
	if spec.LongestChain > 0 {
		n = spec.LongestChain
	}
	return min(stageTimeouts[spec.Stage]*n, maxBatchTimeout)
}

// toolStage builds the evergreen binary from the source artifact, once per
// execution, for every later stage (buildspecs/tool.yml).
const toolStage = buildspecs.Tool

// PipelineProps configures Pipeline.
type PipelineProps struct {
	// Specs are buildspecs.Generate's, the Tool stage's included.
	Specs        []buildspecs.Spec
	Repositories *Repositories
	Config       config.Config
	// Key encrypts the records bucket, the build logs and the topics.
	Key awskms.IKey
	// ArtifactsKey encrypts the pipeline's artifacts and is the CodeBuild
	// projects' EncryptionKey: the CDK grants a project's key in full to
	// its role, so it must not be a key that guards anything else.
	ArtifactsKey awskms.IKey
	// SourceZip is the repository's committed files (internal/source), the
	// pipeline's source when Config.Source is nil.
	SourceZip string
	// Alerts is the alert topic: the Report stage sends what the
	// vulnerability gate blocked to it.
	Alerts awssns.ITopic
}

// Pipeline is the V2 pipeline with its source, its three batch stages and the
// daily schedule.
type Pipeline struct {
	constructs.Construct
	Pipeline       awscodepipeline.Pipeline
	ArtifactBucket awss3.Bucket
	// AccessLogs receives the server access logs of the other buckets.
	AccessLogs awss3.Bucket
	// Records holds what each stage established, per execution (digests,
	// results), for the next stage and for retries.
	Records awss3.Bucket
	// Changes is the changelog's topic (the Report stage sends to it).
	Changes awssns.Topic
	// Access is what the stages' grants name (the GitHub role's too).
	Access stageAccess
	// SourceAsset is nil when a Git source is configured.
	SourceAsset awss3assets.Asset
	// Roles are the CodeBuild service roles, one per stage (Tool's
	// included).
	Roles map[buildspecs.Stage]awsiam.Role
	// Projects are the CodeBuild projects, in pipeline order.
	Projects []awscodebuild.PipelineProject
	Schedule awsevents.Rule
}

// NewPipeline creates the pipeline.
func NewPipeline(scope constructs.Construct, id string, p *PipelineProps) *Pipeline {
	c := constructs.NewConstruct(scope, &id)
	pl := &Pipeline{Construct: c, Roles: map[buildspecs.Stage]awsiam.Role{}}

	// S3 delivers access logs only to a bucket with S3-managed encryption.
	pl.AccessLogs = awss3.NewBucket(c, jsii.String("AccessLogs"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration: awscdk.Duration_Days(jsii.Number(float64(p.Config.LogRetentionDays))),
		}},
	})
	pl.ArtifactBucket = artifactsBucket(c, p.ArtifactsKey, pl.AccessLogs)
	pl.Records = recordsBucket(c, p.Key, pl.AccessLogs, p.Config)

	sourceOutput := awscodepipeline.NewArtifact(jsii.String("Source"), nil)
	var sourceAction awscodepipeline.IAction
	var sourceRevision *string
	var triggers *[]*awscodepipeline.TriggerProps
	if g := p.Config.Source; g != nil {
		a := awscodepipelineactions.NewCodeStarConnectionsSourceAction(&awscodepipelineactions.CodeStarConnectionsSourceActionProps{
			ActionName:         jsii.String("Source"),
			ConnectionArn:      jsii.String(g.ConnectionArn),
			Owner:              jsii.String(g.Owner()),
			Repo:               jsii.String(g.Name()),
			Branch:             jsii.String(g.Branch),
			Output:             sourceOutput,
			VariablesNamespace: jsii.String("SourceVariables"),
		})
		sourceAction, sourceRevision = a, a.Variables().CommitId
		triggers = &[]*awscodepipeline.TriggerProps{{
			ProviderType: awscodepipeline.ProviderType_CODE_STAR_SOURCE_CONNECTION,
			GitConfiguration: &awscodepipeline.GitConfiguration{
				SourceAction: a,
				PushFilter: &[]*awscodepipeline.GitPushFilter{{
					BranchesIncludes: jsii.Strings(g.Branch),
				}},
			},
		}}
	} else {
		// The source is a file asset of the app: cdk deploy uploads the
		// repository's committed files to the bootstrap's staging bucket
		// (versioned, as CodePipeline's S3 source requires; make preflight
		// checks the bootstrap version) before it creates or updates the
		// stack. So the execution that
		// CodePipeline starts as soon as the pipeline exists finds its
		// source, and every later deploy moves the source with the
		// buildspecs it inlines: the pipeline builds what was deployed.
		pl.SourceAsset = awss3assets.NewAsset(c, jsii.String("Source"), &awss3assets.AssetProps{
			Path: jsii.String(p.SourceZip),
		})
		a := awscodepipelineactions.NewS3SourceAction(&awscodepipelineactions.S3SourceActionProps{
			ActionName: jsii.String("Source"),
			Bucket:     pl.SourceAsset.Bucket(),
			BucketKey:  pl.SourceAsset.S3ObjectKey(),
			Output:     sourceOutput,
			// A deploy is what changes the source; the schedule runs daily.
			Trigger:            awscodepipelineactions.S3Trigger_NONE,
			VariablesNamespace: jsii.String("SourceVariables"),
		})
		sourceAction, sourceRevision = a, a.Variables().VersionId
	}

	stages := []*awscodepipeline.StageProps{{
		StageName: jsii.String("Source"),
		Actions:   &[]awscodepipeline.IAction{sourceAction},
	}}
	// The changelog's topic: subscribers to changes are not subscribers to
	// failures (the alert topic).
	pl.Changes = awssns.NewTopic(c, jsii.String("Changes"), &awssns.TopicProps{
		DisplayName: jsii.String("Evergreen images changelog"),
		MasterKey:   p.Key,
		EnforceSSL:  jsii.Bool(true),
	})
	if p.Config.ChangesEmail != "" {
		pl.Changes.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(p.Config.ChangesEmail), nil))
	}
	access := stageAccess{Repositories: p.Repositories, Records: pl.Records, ParameterPrefix: p.Config.ParameterPrefix(), Changes: pl.Changes,
		Alerts: p.Alerts, Signing: p.Config.Signing, EnhancedScanning: p.Config.EnhancedScanning}
	pl.Access = access

	// The Tool stage builds the evergreen binary from the source artifact,
	// so what every later stage runs is the deployed commit.
	//
	// Every later action takes the Tool artifact as a second input. CodeBuild
	// unpacks each input artifact of a CodePipeline action in its own
	// directory, "stored in the built-in environment variable
	// $CODEBUILD_SRC_DIR_yourInputArtifactName", and runs the buildspec in
	// the action's PrimarySource (CodeBuild User Guide, "CodePipeline
	// integration with CodeBuild and multiple input sources and output
	// artifacts"; CodePipeline's CodeBuild action reference: PrimarySource is
	// required with several inputs). The CDK sets PrimarySource to the
	// action's Input, the source artifact, whenever there are several
	// (CodeBuildActionProps.extraInputs), so $CODEBUILD_SRC_DIR stays the
	// deployed commit and the binary is at $CODEBUILD_SRC_DIR_Tool. The batch
	// sample of the same guide ("CodePipeline integration with CodeBuild and
	// batch builds") runs a BatchEnabled action with two input artifacts and
	// PrimarySource; no page says in so many words that every build of the
	// batch receives the secondary sources. A build without it fails at its
	// first command, which names $CODEBUILD_SRC_DIR_Tool/bin/<arch>/evergreen.
	//
	// The artifact's name is part of the variable's name, which CodeBuild
	// takes only of letters, digits and underscores (a hyphen breaks the
	// source download, aws/aws-codebuild-docker-images#367).
	toolOutput := awscodepipeline.NewArtifact(jsii.String(buildspecs.ToolArtifact), nil)
	extraInputs := &[]awscodepipeline.Artifact{toolOutput}
	if toolSpec, ok := findSpec(p.Specs, toolStage); !ok {
		awscdk.Annotations_Of(c).AddError(jsii.String("no Tool buildspec among PipelineProps.Specs: pass buildspecs.Generate's specs whole (the Tool stage builds the binary every later stage starts)"))
	} else {
		role := awsiam.NewRole(c, jsii.String(title(toolStage)+"Role"), &awsiam.RoleProps{
			AssumedBy:   awsiam.NewServicePrincipal(jsii.String("codebuild.amazonaws.com"), nil),
			Description: jsii.String("CodeBuild Tool stage of the evergreen images pipeline: builds the evergreen binary (logs and artifacts only)"),
		})
		pl.Roles[toolStage] = role
		logs := awslogs.NewLogGroup(c, jsii.String(title(toolStage)+"Logs"), &awslogs.LogGroupProps{
			Retention:     retention(p.Config.LogRetentionDays),
			EncryptionKey: p.Key,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		project := newToolProject(c, toolSpec, role, logs, p.ArtifactsKey)
		pl.Projects = append(pl.Projects, project)
		stages = append(stages, &awscodepipeline.StageProps{
			StageName: jsii.String(title(toolStage)),
			Actions: &[]awscodepipeline.IAction{awscodepipelineactions.NewCodeBuildAction(&awscodepipelineactions.CodeBuildActionProps{
				ActionName: jsii.String(toolSpec.Name()),
				Project:    project,
				Input:      sourceOutput,
				Outputs:    &[]awscodepipeline.Artifact{toolOutput},
			})},
			OnFailure: &awscodepipeline.FailureConditions{
				Result:    awscodepipeline.Result_RETRY,
				RetryMode: awscodepipeline.RetryMode_FAILED_ACTIONS,
			},
		})
	}

	for _, st := range append(slices.Clone(buildspecs.Stages), buildspecs.Report) {
		role := awsiam.NewRole(c, jsii.String(title(st)+"Role"), &awsiam.RoleProps{
			AssumedBy:   awsiam.NewServicePrincipal(jsii.String("codebuild.amazonaws.com"), nil),
			Description: jsii.String(fmt.Sprintf("CodeBuild %s stage of the evergreen images pipeline", st)),
		})
		grantStage(role, st, access)
		pl.Roles[st] = role
		logs := awslogs.NewLogGroup(c, jsii.String(title(st)+"Logs"), &awslogs.LogGroupProps{
			Retention:     retention(p.Config.LogRetentionDays),
			EncryptionKey: p.Key,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})

		var actions []awscodepipeline.IAction
		for _, spec := range p.Specs {
			if spec.Stage != st {
				continue
			}
			project := newProject(c, spec, role, logs, p.ArtifactsKey, access, p.Config)
			pl.Projects = append(pl.Projects, project)
			if st == buildspecs.Report {
				// After every Publish batch: one plain build that writes
				// and sends the changelog.
				actions = append(actions, awscodepipelineactions.NewCodeBuildAction(&awscodepipelineactions.CodeBuildActionProps{
					ActionName:  jsii.String(spec.Name()),
					Project:     project,
					Input:       sourceOutput,
					ExtraInputs: extraInputs,
					EnvironmentVariables: &map[string]*awscodebuild.BuildEnvironmentVariable{
						"PIPELINE_EXECUTION_ID": {Value: awscodepipeline.GlobalVariables_ExecutionId()},
						"SOURCE_REVISION":       {Value: sourceRevision},
					},
				}))
				continue
			}
			// A stage too large for one inline buildspec has several
			// parts, each its own batch. They run side by side, unless
			// evergreen:maxConcurrentBuilds caps concurrency: the cap holds
			// within a batch, so the parts then run one after another.
			runOrder := 1
			if p.Config.MaxConcurrentBuilds > 0 {
				runOrder = spec.Part
			}
			actions = append(actions, awscodepipelineactions.NewCodeBuildAction(&awscodepipelineactions.CodeBuildActionProps{
				ActionName:        jsii.String(spec.Name()),
				RunOrder:          jsii.Number(float64(runOrder)),
				Project:           project,
				Input:             sourceOutput,
				ExtraInputs:       extraInputs,
				ExecuteBatchBuild: jsii.Bool(true),
				// The same execution id on every retry is what lets a
				// retried Verify or Publish find the drafts Build pushed.
				EnvironmentVariables: &map[string]*awscodebuild.BuildEnvironmentVariable{
					"PIPELINE_EXECUTION_ID": {Value: awscodepipeline.GlobalVariables_ExecutionId()},
					"SOURCE_REVISION":       {Value: sourceRevision},
				},
			}))
		}
		stages = append(stages, &awscodepipeline.StageProps{
			StageName: jsii.String(title(st)),
			Actions:   &actions,
			// One automatic retry of the failed actions absorbs transient
			// failures (a registry timeout, a mirror hiccup); every command is
			// safe to run twice.
			OnFailure: &awscodepipeline.FailureConditions{
				Result:    awscodepipeline.Result_RETRY,
				RetryMode: awscodepipeline.RetryMode_FAILED_ACTIONS,
			},
		})
	}

	pl.Pipeline = awscodepipeline.NewPipeline(c, jsii.String("Pipeline"), &awscodepipeline.PipelineProps{
		PipelineType: awscodepipeline.PipelineType_V2,
		// SUPERSEDED: one execution per stage at a time, so two executions
		// never publish the same tags at once; a newer execution waiting
		// for a stage replaces an older one waiting there.
		ExecutionMode:            awscodepipeline.ExecutionMode_SUPERSEDED,
		ArtifactBucket:           pl.ArtifactBucket,
		CrossAccountKeys:         jsii.Bool(false),
		RestartExecutionOnUpdate: jsii.Bool(false),
		Stages:                   &stages,
		Triggers:                 triggers,
	})

	// The CDK makes the pipeline depend on its role and on the role's default
	// policy. The policy dependency matters (the pipeline must not start
	// before its permissions exist); the role one is already implied by the
	// RoleArn GetAtt, and cfn-lint flags it (W3005, aws/aws-cdk#24578).
	if policy, ok := pl.Pipeline.Role().Node().TryFindChild(jsii.String("DefaultPolicy")).(awsiam.Policy); ok {
		cfnPolicy := policy.Node().DefaultChild().(awsiam.CfnPolicy)
		pl.Pipeline.Node().DefaultChild().(awscdk.CfnResource).AddOverride(jsii.String("DependsOn"),
			[]*string{awscdk.Stack_Of(c).GetLogicalId(cfnPolicy)})
	}

	pl.Schedule = awsevents.NewRule(c, jsii.String("Daily"), &awsevents.RuleProps{
		Description: jsii.String("Rebuilds the images daily so they pick up OS and runtime patches"),
		Schedule:    awsevents.Schedule_Expression(jsii.String(p.Config.Schedule.Expr)),
		Targets:     &[]awsevents.IRuleTarget{awseventstargets.NewCodePipeline(pl.Pipeline, nil)},
	})
	return pl
}

func findSpec(specs []buildspecs.Spec, st buildspecs.Stage) (buildspecs.Spec, bool) {
	for _, s := range specs {
		if s.Stage == st {
			return s, true
		}
	}
	return buildspecs.Spec{}, false
}

// newToolProject is the Tool stage's plain build: the amd64 image every
// stage's coordinating build uses, no Docker (so not privileged), no
// environment but CodeBuild's own. Its role is the CDK's grants for a
// pipeline project and nothing else: its log group, its report groups,
// the artifact bucket (read the source, write the binary) and the
// artifacts key.
func newToolProject(scope constructs.Construct, spec buildspecs.Spec, role awsiam.IRole, logs awslogs.ILogGroup, key awskms.IKey) awscodebuild.PipelineProject {
	project := awscodebuild.NewPipelineProject(scope, jsii.String(spec.Name()), &awscodebuild.PipelineProjectProps{
		Description: jsii.String(fmt.Sprintf("%s stage of the evergreen images pipeline: builds the evergreen binary for every later stage (buildspecs/%s)", spec.Stage, spec.FileName())),
		Role:        role,
		Environment: &awscodebuild.BuildEnvironment{
			BuildImage:  awscodebuild.LinuxBuildImage_AMAZON_LINUX_2023_6(),
			ComputeType: awscodebuild.ComputeType_SMALL,
			Privileged:  jsii.Bool(false),
		},
		Timeout:       awscdk.Duration_Minutes(jsii.Number(float64(stageTimeouts[toolStage]))),
		EncryptionKey: key,
		Logging: &awscodebuild.LoggingOptions{
			CloudWatch: &awscodebuild.CloudWatchLoggingOptions{LogGroup: logs},
		},
	})
	project.Node().DefaultChild().(awscodebuild.CfnProject).AddPropertyOverride(jsii.String("Source.BuildSpec"), jsii.String(string(spec.Content)))
	return project
}

func newProject(scope constructs.Construct, spec buildspecs.Spec, role awsiam.IRole, logs awslogs.ILogGroup, key awskms.IKey, a stageAccess, cfg config.Config) awscodebuild.PipelineProject {
	timeout := stageTimeouts[spec.Stage]
	env := map[string]*awscodebuild.BuildEnvironmentVariable{
		"REGISTRY":       {Value: awscdk.Fn_Sub(jsii.String("${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}"), nil)},
		"RECORDS_BUCKET": {Value: a.Records.BucketName()},
	}
	gate := &awscodebuild.BuildEnvironmentVariable{Value: jsii.String(cfg.VulnerabilityGate.Env())}
	switch spec.Stage {
	case buildspecs.Verify:
		env["VULNERABILITY_GATE"] = gate
		env["SCAN_WAIT_SECONDS"] = &awscodebuild.BuildEnvironmentVariable{Value: jsii.String(fmt.Sprint(cfg.ScanWaitMinutes * 60))}
		env["SIGNING"] = &awscodebuild.BuildEnvironmentVariable{Value: jsii.String(fmt.Sprint(cfg.Signing))}
		// Enhanced findings come from Amazon Inspector, in another shape
		// and with another status (ACTIVE) than basic scanning's.
		env["ENHANCED_SCANNING"] = &awscodebuild.BuildEnvironmentVariable{Value: jsii.String(fmt.Sprint(cfg.EnhancedScanning))}
	case buildspecs.Publish:
		env["VULNERABILITY_GATE"] = gate
		env["METRIC_NAMESPACE"] = &awscodebuild.BuildEnvironmentVariable{Value: jsii.String(MetricNamespace)}
		env["STACK_NAME"] = &awscodebuild.BuildEnvironmentVariable{Value: awscdk.Aws_STACK_NAME()}
		env["PARAMETER_PREFIX"] = &awscodebuild.BuildEnvironmentVariable{Value: jsii.String(a.ParameterPrefix)}
	case buildspecs.Report:
		delete(env, "REGISTRY")
		env["STACK_NAME"] = &awscodebuild.BuildEnvironmentVariable{Value: awscdk.Aws_STACK_NAME()}
		env["CHANGES_TOPIC_ARN"] = &awscodebuild.BuildEnvironmentVariable{Value: a.Changes.TopicArn()}
		env["ALERT_TOPIC_ARN"] = &awscodebuild.BuildEnvironmentVariable{Value: a.Alerts.TopicArn()}
	}
	project := awscodebuild.NewPipelineProject(scope, jsii.String(spec.Name()), &awscodebuild.PipelineProjectProps{
		Description: jsii.String(fmt.Sprintf("%s stage of the evergreen images pipeline (buildspecs/%s)", spec.Stage, spec.FileName())),
		Role:        role,
		// Build-graph entries choose their own image and compute type; these
		// are the defaults of the batch's coordinating build.
		Environment: &awscodebuild.BuildEnvironment{
			BuildImage:  awscodebuild.LinuxBuildImage_AMAZON_LINUX_2023_6(),
			ComputeType: awscodebuild.ComputeType_SMALL,
			Privileged:  jsii.Bool(spec.Privileged),
		},
		EnvironmentVariables: &env,
		Timeout:              awscdk.Duration_Minutes(jsii.Number(float64(timeout))),
		EncryptionKey:        key,
		Logging: &awscodebuild.LoggingOptions{
			CloudWatch: &awscodebuild.CloudWatchLoggingOptions{LogGroup: logs},
		},
	})
	cfn := project.Node().DefaultChild().(awscodebuild.CfnProject)
	// The buildspec is inlined byte for byte as generated and committed in
	// buildspecs/: CDK's BuildSpec helpers would re-serialize it.
	cfn.AddPropertyOverride(jsii.String("Source.BuildSpec"), jsii.String(string(spec.Content)))
	if spec.Stage == buildspecs.Report {
		return project // one plain build, no batch
	}
	project.EnableBatchBuilds()

	batchTimeout := BatchTimeout(spec)
	// EnableBatchBuilds only creates the batch role; restrictions and the
	// batch timeout are BuildBatchConfig properties.
	cfn.AddPropertyOverride(jsii.String("BuildBatchConfig.TimeoutInMins"), jsii.Number(float64(batchTimeout)))
	cfn.AddPropertyOverride(jsii.String("BuildBatchConfig.CombineArtifacts"), jsii.Bool(false))
	cfn.AddPropertyOverride(jsii.String("BuildBatchConfig.Restrictions.MaximumBuildsAllowed"), jsii.Number(float64(MaximumBuildsAllowed(spec))))
	cfn.AddPropertyOverride(jsii.String("BuildBatchConfig.Restrictions.ComputeTypesAllowed"), jsii.Strings(spec.ComputeTypes...))
	return project
}

// grantStage gives each stage's role exactly the access its commands use: in
// ECR, and in the records bucket, where each stage writes only its own
// records and reads only those of the stage before.
// stageAccess is what the stages' grants name.
type stageAccess struct {
	Repositories *Repositories
	Records      awss3.IBucket
	// ParameterPrefix roots the consumers' SSM parameters (Publish writes
	// them); Changes is the changelog's topic (Report publishes to it).
	ParameterPrefix string
	Changes         awssns.ITopic
	// Alerts is the alert topic (Report sends what the gate blocked);
	// Signing: Verify waits for ECR's signature.
	Alerts  awssns.ITopic
	Signing bool
	// EnhancedScanning: Verify reads Amazon Inspector's findings.
	EnhancedScanning bool
}

func grantStage(role awsiam.Role, st buildspecs.Stage, a stageAccess) {
	repos, records := a.Repositories, a.Records
	var arns []*string
	for _, n := range repos.Names {
		arns = append(arns, repos.ByName[n].RepositoryArn())
	}
	var actions []string
	switch st {
	case buildspecs.Build:
		// push layers and the manifest; describe-images checks the pushed type
		actions = []string{
			"ecr:BatchCheckLayerAvailability",
			"ecr:BatchGetImage",
			"ecr:CompleteLayerUpload",
			"ecr:DescribeImages",
			"ecr:InitiateLayerUpload",
			"ecr:PutImage",
			"ecr:UploadLayerPart",
		}
	case buildspecs.Verify:
		// pull, and read ECR's scans (the only stage that reads findings);
		// a basic scan of the published image is started again when it
		// is older than the draft's by a day
		actions = append(slices.Clone(pullActions), "ecr:DescribeImageScanFindings", "ecr:StartImageScan")
		if a.Signing {
			actions = append(actions, "ecr:DescribeImageSigningStatus")
		}
		if a.EnhancedScanning {
			// "IAM permissions required for enhanced scanning" (ECR User
			// Guide): DescribeImageScanFindings answers enhanced findings
			// only to a principal that may also list them in Amazon
			// Inspector. Neither action has resource-level permissions.
			role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String(title(st) + "EnhancedFindings"),
				Actions:   jsii.Strings("inspector2:ListCoverage", "inspector2:ListFindings"),
				Resources: jsii.Strings("*"),
			}))
		}
	case buildspecs.Publish:
		// Manifests and tags, and the evidence: each document is a blob
		// pushed through the registry API (the layer upload actions, the
		// existence check before them), then a referrer manifest
		// (PutImage); listing referrers is BatchGetImage (ListImageReferrers
		// API reference). Never a layer download: Publish reads no image.
		actions = []string{
			"ecr:BatchCheckLayerAvailability",
			"ecr:BatchDeleteImage",
			"ecr:BatchGetImage",
			"ecr:CompleteLayerUpload",
			"ecr:DescribeImages",
			"ecr:InitiateLayerUpload",
			"ecr:ListImages",
			"ecr:PutImage",
			"ecr:UploadLayerPart",
		}
	}
	if len(actions) > 0 {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			// Sids carry the stage: one role may hold several stages' grants
			// (the GitHub workflow's role), and IAM refuses duplicate Sids.
			Sid:       jsii.String(title(st) + "RuntimeRepositories"),
			Actions:   jsii.Strings(actions...),
			Resources: &arns,
		}))
	}
	// Records: each stage writes only its own, and reads only those of the
	// stage before (and, for a retried Verify, its own). Written out rather
	// than the CDK's grantRead/grantPut, whose s3:GetObject*, s3:List* and
	// kms:ReEncrypt* are wider than the commands need.
	reads, writes := recordPatterns(st)
	objects := func(patterns []string) *[]*string {
		var out []*string
		for _, p := range patterns {
			out = append(out, records.ArnForObjects(jsii.String(p)))
		}
		return &out
	}
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String(title(st) + "WritesItsRecords"),
		Actions:   jsii.Strings("s3:PutObject"),
		Resources: objects(writes),
	}))
	if len(reads) > 0 {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String(title(st) + "ReadsRecords"),
			Actions:   jsii.Strings("s3:GetObject"),
			Resources: objects(reads),
		}))
		// Without s3:ListBucket, S3 answers a GetObject of a missing key
		// with 403 AccessDenied, not 404 NoSuchKey (GetObject API
		// reference), and a record that does not exist yet (a first run,
		// no hold) could not be told from one that cannot be read. The
		// s3:prefix condition holds the listing to the keys the stage
		// reads: for that 404 check S3 evaluates the condition with the
		// requested key as the prefix (what Ceph RGW matches, "to match
		// aws behavior", ceph/ceph#68577).
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String(title(st) + "ListsItsReads"),
			Actions:    jsii.Strings("s3:ListBucket"),
			Resources:  &[]*string{records.BucketArn()},
			Conditions: &map[string]any{"StringLike": map[string]any{"s3:prefix": reads}},
		}))
	}
	// The records key: Decrypt to read (and for S3 to complete a multipart
	// upload), GenerateDataKey to write. The records bucket's key is not
	// a CodeBuild project's EncryptionKey (that is the artifacts key), so
	// this statement is all a stage holds of it. The topics share the key:
	// Report's sns:Publish to them needs the same two actions.
	if key := records.EncryptionKey(); key != nil && len(reads)+len(writes) > 0 {
		kmsActions := []string{"kms:Decrypt"}
		if len(writes) > 0 {
			kmsActions = append(kmsActions, "kms:GenerateDataKey")
		}
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String(title(st) + "RecordsKey"),
			Actions:   jsii.Strings(kmsActions...),
			Resources: &[]*string{key.KeyArn()},
		}))
	}
	if st == buildspecs.Publish {
		// The freshness metric: PutMetricData has no resource-level
		// permissions; the condition holds it to its namespace.
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String(title(st) + "FreshnessMetric"),
			Actions:    jsii.Strings("cloudwatch:PutMetricData"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{"StringEquals": map[string]any{"cloudwatch:namespace": MetricNamespace}},
		}))
	}
	if st == buildspecs.Publish {
		// The consumers' parameters, and only those: <prefix>/<runtime>/...
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:     jsii.String(title(st) + "ConsumerParameters"),
			Actions: jsii.Strings("ssm:GetParameter", "ssm:PutParameter"),
			Resources: &[]*string{awscdk.Fn_Join(jsii.String(""), &[]*string{
				jsii.String("arn:"), awscdk.Aws_PARTITION(), jsii.String(":ssm:"), awscdk.Aws_REGION(), jsii.String(":"),
				awscdk.Aws_ACCOUNT_ID(), jsii.String(":parameter" + a.ParameterPrefix + "/*"),
			})},
		}))
	}
	if st == buildspecs.Report {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String(title(st) + "Changelog"),
			Actions:   jsii.Strings("sns:Publish"),
			Resources: &[]*string{a.Changes.TopicArn(), a.Alerts.TopicArn()},
		}))
	}
	if st == buildspecs.Build || st == buildspecs.Verify || st == buildspecs.Publish {
		// docker login (Publish: the registry API login that pushes the
		// evidence); ECR offers no resource-level permission for it.
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String(title(st) + "DockerLogin"),
			Actions:   jsii.Strings("ecr:GetAuthorizationToken"),
			Resources: jsii.Strings("*"),
		}))
	}
	if st == buildspecs.Build {
		// docker login to ECR Public for authenticated base image pulls;
		// neither action has resource-level permissions.
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String(title(st) + "EcrPublicLogin"),
			Actions:   jsii.Strings("ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"),
			Resources: jsii.Strings("*"),
		}))
	}
}

// recordPatterns are the records-bucket keys a stage reads and writes.
// Publish also keeps, outside the expiring executions/ prefix, the
// inventories of what it published, each runtime-version's latest outcome,
// and reads the holds a rollback leaves.
func recordPatterns(st buildspecs.Stage) (reads, writes []string) {
	switch st {
	case buildspecs.Build:
		writes = []string{RecordsPrefix + "*/build/*"}
	case buildspecs.Verify:
		reads = []string{RecordsPrefix + "*/build/*", RecordsPrefix + "*/verify/*"}
		writes = []string{RecordsPrefix + "*/verify/*"}
	case buildspecs.Publish:
		reads = []string{RecordsPrefix + "*/verify/*", RecordsPrefix + "*/publish/*", InventoriesPrefix + "*", ReleasesPrefix + "*", HoldsPrefix + "*"}
		writes = []string{RecordsPrefix + "*/publish/*", InventoriesPrefix + "*", ReleasesPrefix + "*"}
	case buildspecs.Report:
		reads = []string{RecordsPrefix + "*/publish/*", RecordsPrefix + "*/report/*"}
		writes = []string{RecordsPrefix + "*/changelog.txt", RecordsPrefix + "*/report/*"}
	}
	return reads, writes
}

// The records bucket's prefixes. RecordsPrefix holds each execution's
// records (executions/<id>/<stage>/..., and its changelog.txt) and expires;
// the others hold what outlives an execution: the inventories of published
// images (inventories/<runtime>/<version>/<arch>/<digest>.json), each
// runtime-version's latest outcome (releases/<runtime>/<version>.json),
// rollbacks' holds (holds/<runtime>/<version>.json) and their changelog
// entries (rollbacks/).
const (
	RecordsPrefix     = "executions/"
	InventoriesPrefix = "inventories/"
	ReleasesPrefix    = "releases/"
	HoldsPrefix       = "holds/"
	RollbacksPrefix   = "rollbacks/"
)

// recordsBucket keeps the stages' records. An execution's records (and its
// changelog) are only needed while it can be retried (its drafts live
// DraftRetentionDays), and are kept a while longer for looking back. The
// inventories of published images, the latest outcome per runtime-version
// and rollbacks' holds do not expire: an image unchanged for a year is
// still compared with its inventory every day (their old versions do).
func recordsBucket(scope constructs.Construct, key awskms.IKey, accessLogs awss3.IBucket, cfg config.Config) awss3.Bucket {
	return privateBucket(scope, "Records", key, accessLogs, []*awss3.LifecycleRule{{
		Prefix:     jsii.String(RecordsPrefix),
		Expiration: awscdk.Duration_Days(jsii.Number(float64(max(30, cfg.DraftRetentionDays+7)))),
	}, {
		NoncurrentVersionExpiration:         awscdk.Duration_Days(jsii.Number(30)),
		AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
	}})
}

// artifactsBucket holds the pipeline's artifacts, which are only needed
// while an execution runs.
func artifactsBucket(scope constructs.Construct, key awskms.IKey, accessLogs awss3.IBucket) awss3.Bucket {
	return privateBucket(scope, "Artifacts", key, accessLogs, []*awss3.LifecycleRule{{
		Expiration:                          awscdk.Duration_Days(jsii.Number(30)),
		NoncurrentVersionExpiration:         awscdk.Duration_Days(jsii.Number(1)),
		AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
	}})
}

// privateBucket: private, KMS-encrypted, SSL only, versioned, retained.
func privateBucket(scope constructs.Construct, id string, key awskms.IKey, accessLogs awss3.IBucket, rules []*awss3.LifecycleRule) awss3.Bucket {
	return awss3.NewBucket(scope, jsii.String(id), &awss3.BucketProps{
		ServerAccessLogsBucket: accessLogs,
		ServerAccessLogsPrefix: jsii.String(id + "/"),
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:             awss3.BucketEncryption_KMS,
		EncryptionKey:          key,
		BucketKeyEnabled:       jsii.Bool(true),
		EnforceSSL:             jsii.Bool(true),
		Versioned:              jsii.Bool(true),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:          awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
		LifecycleRules:         &rules,
	})
}

func title(st buildspecs.Stage) string {
	return buildspecs.Spec{Stage: st, Part: 1}.Name()
}

// retention maps days to the nearest CloudWatch Logs retention at or above it.
func retention(days int) awslogs.RetentionDays {
	allowed := []struct {
		days int
		r    awslogs.RetentionDays
	}{
		{1, awslogs.RetentionDays_ONE_DAY}, {3, awslogs.RetentionDays_THREE_DAYS},
		{5, awslogs.RetentionDays_FIVE_DAYS}, {7, awslogs.RetentionDays_ONE_WEEK},
		{14, awslogs.RetentionDays_TWO_WEEKS}, {30, awslogs.RetentionDays_ONE_MONTH},
		{60, awslogs.RetentionDays_TWO_MONTHS}, {90, awslogs.RetentionDays_THREE_MONTHS},
		{120, awslogs.RetentionDays_FOUR_MONTHS}, {150, awslogs.RetentionDays_FIVE_MONTHS},
		{180, awslogs.RetentionDays_SIX_MONTHS}, {365, awslogs.RetentionDays_ONE_YEAR},
		{400, awslogs.RetentionDays_THIRTEEN_MONTHS}, {545, awslogs.RetentionDays_EIGHTEEN_MONTHS},
		{731, awslogs.RetentionDays_TWO_YEARS}, {1827, awslogs.RetentionDays_FIVE_YEARS},
		{3653, awslogs.RetentionDays_TEN_YEARS},
	}
	for _, a := range allowed {
		if days <= a.days {
			return a.r
		}
	}
	return awslogs.RetentionDays_TEN_YEARS
}

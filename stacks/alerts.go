package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscodepipeline"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/config"
)

// MetricNamespace and SucceededMetric count successful executions.
const (
	MetricNamespace = "EvergreenImages"
	SucceededMetric = "PipelineSucceeded"
)

// AlertsProps configures Alerts.
type AlertsProps struct {
	Pipeline awscodepipeline.Pipeline
	Config   config.Config
	Key      awskms.IKey
}

// Alerts tells people when the pipeline fails and when it silently stops.
type Alerts struct {
	constructs.Construct
	Topic       awssns.Topic
	FailureRule awsevents.Rule
	// Executions logs every execution state change; its metric filter counts
	// successes for the staleness alarm.
	Executions awslogs.LogGroup
	StaleAlarm awscloudwatch.Alarm
}

// NewAlerts creates the topic, the failure notification and the staleness
// alarm. Nothing here needs a Lambda function: EventBridge writes to SNS and
// to CloudWatch Logs directly, and a metric filter turns the log into a metric.
func NewAlerts(scope constructs.Construct, id string, p *AlertsProps) *Alerts {
	c := constructs.NewConstruct(scope, &id)
	a := &Alerts{Construct: c}
	a.Topic = awssns.NewTopic(c, jsii.String("Topic"), &awssns.TopicProps{
		DisplayName: jsii.String("Evergreen images pipeline alerts"),
		MasterKey:   p.Key,
		EnforceSSL:  jsii.Bool(true),
	})
	if p.Config.AlarmEmail != "" {
		a.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(p.Config.AlarmEmail), nil))
	}

	pipelineName := p.Pipeline.PipelineName()
	a.FailureRule = awsevents.NewRule(c, jsii.String("Failed"), &awsevents.RuleProps{
		Description: jsii.String("Notifies the alert topic when an execution of the images pipeline fails"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.codepipeline"),
			DetailType: jsii.Strings("CodePipeline Pipeline Execution State Change"),
			Detail: &map[string]any{
				"pipeline": []any{pipelineName},
				"state":    []string{"FAILED"},
			},
		},
	})
	a.FailureRule.AddTarget(awseventstargets.NewSnsTopic(a.Topic, &awseventstargets.SnsTopicProps{
		Message: awsevents.RuleTargetInput_FromText(jsii.String(
			"Pipeline " + *awsevents.EventField_FromPath(jsii.String("$.detail.pipeline")) +
				" execution " + *awsevents.EventField_FromPath(jsii.String("$.detail.execution-id")) +
				" failed. Runbook: README.md, 'When a stage fails'.")),
	}))

	// EventBridge requires log groups it writes to to be named /aws/events/...
	a.Executions = awslogs.NewLogGroup(c, jsii.String("Executions"), &awslogs.LogGroupProps{
		LogGroupName:  awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("/aws/events/"), awscdk.Aws_STACK_NAME(), jsii.String("-pipeline-executions")}),
		Retention:     retention(p.Config.LogRetentionDays),
		EncryptionKey: p.Key,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	// The CDK's CloudWatchLogGroup target would add a Lambda-backed custom
	// resource to write this policy; the plain resource does the same.
	awslogs.NewCfnResourcePolicy(c, jsii.String("EventsMayLog"), &awslogs.CfnResourcePolicyProps{
		PolicyName: awscdk.Fn_Join(jsii.String(""), &[]*string{awscdk.Aws_STACK_NAME(), jsii.String("-events-to-logs")}),
		PolicyDocument: awscdk.Stack_Of(c).ToJsonString(map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Effect":    "Allow",
				"Principal": map[string]any{"Service": []string{"events.amazonaws.com", "delivery.logs.amazonaws.com"}},
				"Action":    []string{"logs:CreateLogStream", "logs:PutLogEvents"},
				"Resource":  a.Executions.LogGroupArn(),
			}},
		}, nil),
	})
	executions := awsevents.NewRule(c, jsii.String("ExecutionEvents"), &awsevents.RuleProps{
		Description: jsii.String("Logs every execution state change of the images pipeline"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.codepipeline"),
			DetailType: jsii.Strings("CodePipeline Pipeline Execution State Change"),
			Detail:     &map[string]any{"pipeline": []any{pipelineName}},
		},
	})
	// The target is the log group's ARN without the ":*" that its GetAtt Arn
	// ends in: EventBridge accepts that ARN as a target but delivers nothing
	// to it (the CDK's own log group target drops the suffix for this reason).
	executions.Node().DefaultChild().(awsevents.CfnRule).AddPropertyOverride(jsii.String("Targets"), []any{map[string]any{
		"Id": "ExecutionLog",
		"Arn": awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${LogGroup}"),
			&map[string]*string{"LogGroup": a.Executions.LogGroupName()}),
	}})
	awslogs.NewMetricFilter(c, jsii.String("Succeeded"), &awslogs.MetricFilterProps{
		LogGroup:        a.Executions,
		FilterPattern:   awslogs.FilterPattern_StringValue(jsii.String("$.detail.state"), jsii.String("="), jsii.String("SUCCEEDED")),
		MetricNamespace: jsii.String(MetricNamespace),
		MetricName:      jsii.String(SucceededMetric),
		MetricValue:     jsii.String("1"),
		Dimensions:      &map[string]*string{"Pipeline": jsii.String("$.detail.pipeline")},
	})

	// One-hour periods, all of them breaching: the alarm fires after
	// StaleAfterHours without a single success. Missing data (no execution
	// at all) counts as breaching, which is the point.
	hours := float64(p.Config.StaleAfterHours)
	a.StaleAlarm = awscloudwatch.NewAlarm(c, jsii.String("Stale"), &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String("No execution of the images pipeline has succeeded recently: the images are going stale. Runbook: README.md, 'When a stage fails'."),
		Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String(MetricNamespace),
			MetricName:    jsii.String(SucceededMetric),
			DimensionsMap: &map[string]*string{"Pipeline": pipelineName},
			Statistic:     jsii.String("Sum"),
			Period:        awscdk.Duration_Hours(jsii.Number(1)),
		}),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(hours),
		DatapointsToAlarm:  jsii.Number(hours),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	})
	a.StaleAlarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(a.Topic))
	// The topic's policy (written by the CDK for EventBridge) replaces SNS's
	// default one, so CloudWatch must be allowed explicitly, for this alarm only.
	a.Topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("StaleAlarmPublishes"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*a.Topic.TopicArn()),
		Conditions: &map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": a.StaleAlarm.AlarmArn()}},
	}))

	// EventBridge and CloudWatch alarms publish to the encrypted topic;
	// CloudWatch Logs encrypts the log groups.
	p.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AlertPublishers"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil), awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
	}), nil)
	return a
}

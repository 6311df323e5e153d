package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscodepipeline"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

// MetricNamespace and FreshMetric: Publish puts FreshMetric (dimensions
// Stack, Runtime, Version) each time it publishes a runtime-version or, later,
// finds it unchanged; the staleness alarms watch it.
const (
	MetricNamespace = buildspecs.MetricNamespace
	FreshMetric     = "Fresh"
)

// AlertsProps configures Alerts.
type AlertsProps struct {
	List   *runtimes.List
	Config config.Config
	Key    awskms.IKey
}

// Alerts tells people when the pipeline fails and when it silently stops.
type Alerts struct {
	constructs.Construct
	Topic       awssns.Topic
	FailureRule awsevents.Rule
	// Stale has one alarm per runtime-version, in list order.
	Stale []awscloudwatch.Alarm
	props *AlertsProps
}

// NewAlerts creates the topic, the failure notification and one staleness
// alarm per runtime-version. Nothing here needs a Lambda function or an
// account-level resource (such as a CloudWatch Logs resource policy, of
// which a region holds 10): EventBridge writes to SNS, and Publish puts the
// freshness metric itself.
//
// The topic comes first (the Report stage sends to it), the rules and
// alarms once the pipeline exists (Watch).
func NewAlerts(scope constructs.Construct, id string, p *AlertsProps) *Alerts {
	c := constructs.NewConstruct(scope, &id)
	a := &Alerts{Construct: c, props: p}
	a.Topic = awssns.NewTopic(c, jsii.String("Topic"), &awssns.TopicProps{
		DisplayName: jsii.String("Evergreen images pipeline alerts"),
		MasterKey:   p.Key,
		EnforceSSL:  jsii.Bool(true),
	})
	if p.Config.AlarmEmail != "" {
		a.Topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(p.Config.AlarmEmail), nil))
	}
	return a
}

// Watch adds the failure notification of the pipeline and the staleness
// alarms.
func (a *Alerts) Watch(pipeline awscodepipeline.Pipeline) {
	c, p := a.Construct, a.props
	pipelineName := pipeline.PipelineName()
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
				" failed. Runbook: docs/operating.md, 'When a stage fails'.")),
	}))

	// Freshness is measured per image, from what Publish did, not from the
	// pipeline's execution state: a Publish finished by a console retry, or
	// a runtime-version that published while another failed, is what counts.
	// One-hour periods, all of them breaching: an alarm fires after
	// StaleAfterHours without the runtime-version being published or
	// confirmed. Missing data (nothing published yet, or ever again) counts
	// as breaching, which is the point.
	hours := float64(p.Config.StaleAfterHours)
	var alarmArns []*string
	for _, r := range p.List.Releases() {
		name := r.Runtime.Name + " " + r.Version
		alarm := awscloudwatch.NewAlarm(c, jsii.String("Stale"+outputID(r.Identifier())), &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String(fmt.Sprintf("%s (%s:%s) has not been published or confirmed for %d hours: the image is going stale. Runbook: docs/operating.md, 'When a stage fails'.",
				name, p.Config.RepositoryName(r.Runtime.Name), r.Version, p.Config.StaleAfterHours)),
			Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace:  jsii.String(MetricNamespace),
				MetricName: jsii.String(FreshMetric),
				DimensionsMap: &map[string]*string{
					"Stack":   awscdk.Aws_STACK_NAME(),
					"Runtime": jsii.String(r.Runtime.Name),
					"Version": jsii.String(r.Version),
				},
				Statistic: jsii.String("Sum"),
				Period:    awscdk.Duration_Hours(jsii.Number(1)),
			}),
			ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
			Threshold:          jsii.Number(1),
			EvaluationPeriods:  jsii.Number(hours),
			DatapointsToAlarm:  jsii.Number(hours),
			TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
		})
		alarm.AddAlarmAction(awscloudwatchactions.NewSnsAction(a.Topic))
		a.Stale = append(a.Stale, alarm)
		alarmArns = append(alarmArns, alarm.AlarmArn())
	}
	// The topic's policy (written by the CDK for EventBridge) replaces SNS's
	// default one, so CloudWatch must be allowed explicitly, for these
	// alarms only.
	a.Topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("StaleAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*a.Topic.TopicArn()),
		Conditions: &map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": alarmArns}},
	}))

	// EventBridge and CloudWatch alarms publish to the encrypted topic;
	// CloudWatch Logs encrypts the log groups.
	p.Key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AlertPublishers"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil), awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
	}), nil)
}

package awsops

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// The stack outputs the commands read (stacks/stack.go writes them).
const (
	OutputRecordsBucket = "RecordsBucket"
	OutputPipelineName  = "PipelineName"
	OutputChangesTopic  = "ChangesTopicArn"
)

// StackOutputs reads the outputs of a deployed stack by name. A stack that
// does not exist is an error that says so: every command that reads the
// outputs needs the stack deployed first.
func StackOutputs(ctx context.Context, cfg aws.Config, stack string) (map[string]string, error) {
	cfn := cloudformation.NewFromConfig(cfg)
	d, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		// CloudFormation answers ValidationError "Stack with id X does not
		// exist" for a missing stack; no dedicated error code exists.
		if strings.Contains(err.Error(), "does not exist") {
			return nil, fmt.Errorf("stack %s does not exist in %s: deploy it first (make deploy), or set evergreen:stackName in cdk.json to the stack you deployed", stack, cfg.Region)
		}
		return nil, fmt.Errorf("reading the outputs of stack %s: %s", stack, Short(err))
	}
	if len(d.Stacks) == 0 {
		return nil, fmt.Errorf("stack %s does not exist in %s: deploy it first (make deploy)", stack, cfg.Region)
	}
	out := map[string]string{}
	for _, o := range d.Stacks[0].Outputs {
		out[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return out, nil
}

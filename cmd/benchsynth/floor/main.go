// Command floor is the smallest Go CDK app: one stack with one resource. Its
// synth time is the floor every Go CDK app pays (starting jsii's Node.js
// process and loading aws-cdk-lib); cmd/benchsynth compares the real app to it.
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Floor"), nil)
	awssns.NewTopic(stack, jsii.String("Topic"), nil)
	app.Synth(nil)
}

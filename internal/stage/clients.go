package stage

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
)

// ECR is the part of the ECR API the stages call (*ecr.Client has it).
// Tests pass moto's through the real client, and wrap it where moto lacks
// an API or deviates (each wrapper names the gap it fills).
type ECR interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
	DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, opts ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	BatchGetImage(ctx context.Context, in *ecr.BatchGetImageInput, opts ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error)
	PutImage(ctx context.Context, in *ecr.PutImageInput, opts ...func(*ecr.Options)) (*ecr.PutImageOutput, error)
	ListImages(ctx context.Context, in *ecr.ListImagesInput, opts ...func(*ecr.Options)) (*ecr.ListImagesOutput, error)
	BatchDeleteImage(ctx context.Context, in *ecr.BatchDeleteImageInput, opts ...func(*ecr.Options)) (*ecr.BatchDeleteImageOutput, error)
	DescribeImageScanFindings(ctx context.Context, in *ecr.DescribeImageScanFindingsInput, opts ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error)
	StartImageScan(ctx context.Context, in *ecr.StartImageScanInput, opts ...func(*ecr.Options)) (*ecr.StartImageScanOutput, error)
	DescribeImageSigningStatus(ctx context.Context, in *ecr.DescribeImageSigningStatusInput, opts ...func(*ecr.Options)) (*ecr.DescribeImageSigningStatusOutput, error)
}

// ECRPublic logs Build in to ECR Public for the base image pulls. Anonymous
// pulls are limited per source address and CodeBuild's addresses are
// shared with other accounts; authenticated pulls count against this
// account. Its API is in us-east-1 only, whatever the build's region.
type ECRPublic interface {
	GetAuthorizationToken(ctx context.Context, in *ecrpublic.GetAuthorizationTokenInput, opts ...func(*ecrpublic.Options)) (*ecrpublic.GetAuthorizationTokenOutput, error)
}

// SSM is the part of the SSM API Publish calls.
type SSM interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, opts ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// SNS is the part of the SNS API Report calls.
type SNS interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// CloudWatch is the part of the CloudWatch API Publish calls.
type CloudWatch interface {
	PutMetricData(ctx context.Context, in *cloudwatch.PutMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

// Docker starts docker (buildx build, pull, run, login): the one program a
// stage runs besides itself. Tests and the rehearsal put their own in.
type Docker interface {
	// Run runs docker with args; stdin may be nil. It returns stdout;
	// stderr goes to the build log.
	Run(ctx context.Context, stdin []byte, args ...string) (stdout []byte, err error)
}

// Clients are a stage's dependencies.
type Clients struct {
	ECR        ECR
	ECRPublic  ECRPublic
	Records    records.Store
	SSM        SSM
	SNS        SNS
	CloudWatch CloudWatch
	Docker     Docker
	// Evidence attaches Publish's documents to what it publishes.
	Evidence Evidence
	// Now is the clock (tests move it).
	Now func() time.Time
}

// NewClients makes the SDK's clients from cfg (the build role's
// credentials, the build's region; AWS_ENDPOINT_URL and its per-service
// forms point them elsewhere, as the SDK documents).
func NewClients(cfg aws.Config, bucket string, docker Docker) Clients {
	return Clients{
		ECR:        ecr.NewFromConfig(cfg),
		ECRPublic:  ecrpublic.NewFromConfig(cfg, func(o *ecrpublic.Options) { o.Region = "us-east-1" }),
		Records:    records.Store{S3: awsops.NewS3(cfg), Bucket: bucket},
		SSM:        ssm.NewFromConfig(cfg),
		SNS:        sns.NewFromConfig(cfg),
		CloudWatch: cloudwatch.NewFromConfig(cfg),
		Docker:     docker,
		Now:        time.Now,
	}
}

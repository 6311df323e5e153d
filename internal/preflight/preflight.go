// Package preflight checks an AWS account and region before a deploy of the
// app: what the CDK deploy or the pipeline's first execution would fail on,
// each as one line with a fix.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Status of a check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Result is one line of the preflight.
type Result struct {
	Status Status
	Check  string
	Msg    string
	Fix    string
}

func (r Result) String() string {
	s := fmt.Sprintf("%-4s %s: %s", r.Status, r.Check, r.Msg)
	if r.Fix != "" {
		s += "\n       fix: " + r.Fix
	}
	return s
}

// Inputs are what the app would deploy.
type Inputs struct {
	Config config.Config
	List   *runtimes.List
	Specs  []buildspecs.Spec
	// Qualifier is the CDK bootstrap qualifier (cdk.json's
	// @aws-cdk/core:bootstrapQualifier, default hnb659fds).
	Qualifier string
	// SkipBases leaves out the base image check, which reads the base
	// registries over the internet (tests against moto have none; the
	// check has its own test against an in-memory registry).
	SkipBases bool
}

// DefaultQualifier is the CDK's default bootstrap qualifier.
const DefaultQualifier = "hnb659fds"

// MinBootstrapVersion is what the synthesized template asserts (its
// CheckBootstrapVersion rule: "CDK bootstrap stack version 6 required").
const MinBootstrapVersion = 6

// ArmRegions offer CodeBuild's ARM_CONTAINER environment type, from the
// CodeBuild API reference (ProjectEnvironment, type): "The environment type
// ARM_CONTAINER is available only in regions US East (N. Virginia), US East
// (Ohio), US West (Oregon), EU (Ireland), Asia Pacific (Mumbai), Asia
// Pacific (Tokyo), Asia Pacific (Singapore), Asia Pacific (Sydney), EU
// (Frankfurt), and South America (São Paulo)". No API answers this, and AWS
// adds regions, so a region outside the list is a warning.
var ArmRegions = []string{"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-south-1", "ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "eu-central-1", "sa-east-1"}

// Clients are the AWS APIs the preflight reads; it writes nothing.
type Clients struct {
	STS            *sts.Client
	SSM            *ssm.Client
	S3             *s3.Client
	ECR            *ecr.Client
	CloudFormation *cloudformation.Client
	ServiceQuotas  *servicequotas.Client
}

// NewClients makes the clients from one configuration.
func NewClients(cfg aws.Config) Clients {
	return Clients{
		STS: sts.NewFromConfig(cfg),
		SSM: ssm.NewFromConfig(cfg),
		// Path-style addressing for a custom endpoint (AWS_ENDPOINT_URL, a
		// local emulator): bucket.host names do not resolve there.
		S3:             s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = cfg.BaseEndpoint != nil }),
		ECR:            ecr.NewFromConfig(cfg),
		CloudFormation: cloudformation.NewFromConfig(cfg),
		ServiceQuotas:  servicequotas.NewFromConfig(cfg),
	}
}

// Run runs every check, in order, and returns their results. A failed
// identity check stops it: nothing else can be read.
func Run(ctx context.Context, c Clients, region string, in Inputs) []Result {
	id, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		cause, fix := awsops.Explain(err)
		if fix == "" {
			fix = "set credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for the account to deploy to"
		}
		return []Result{{Fail, "credentials", "cannot call AWS: " + cause, fix}}
	}
	account := aws.ToString(id.Account)
	out := []Result{{OK, "credentials", fmt.Sprintf("account %s, region %s, as %s", account, region, aws.ToString(id.Arn)), ""}}
	out = append(out, bootstrap(ctx, c, account, region, in.Qualifier)...)
	out = append(out, stackState(ctx, c, in.Config.StackName))
	out = append(out, repositories(ctx, c, in)...)
	out = append(out, scanning(ctx, c, in)...)
	out = append(out, quotas(ctx, c, in)...)
	out = append(out, armRegion(region))
	if !in.SkipBases {
		out = append(out, bases(ctx, in.List)...)
	}
	return out
}

// Failed reports whether any result would make a deploy fail.
func Failed(rs []Result) bool {
	return slices.ContainsFunc(rs, func(r Result) bool { return r.Status == Fail })
}

func bootstrap(ctx context.Context, c Clients, account, region, qualifier string) []Result {
	fix := fmt.Sprintf("make bootstrap (cdk bootstrap aws://%s/%s)", account, region)
	name := "/cdk-bootstrap/" + qualifier + "/version"
	p, err := c.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		if code(err) == "ParameterNotFound" {
			return []Result{{Fail, "bootstrap", fmt.Sprintf("the account is not bootstrapped for the CDK in %s (no SSM parameter %s)", region, name), fix}}
		}
		return []Result{{Fail, "bootstrap", "cannot read " + name + ": " + awsops.Short(err), "allow ssm:GetParameter, or check the bootstrap by hand"}}
	}
	v, err := strconv.Atoi(aws.ToString(p.Parameter.Value))
	if err != nil || v < MinBootstrapVersion {
		return []Result{{Fail, "bootstrap", fmt.Sprintf("CDK bootstrap version %s; the template requires %d or later", aws.ToString(p.Parameter.Value), MinBootstrapVersion), fix + " with the pinned CDK CLI, which upgrades it"}}
	}
	out := []Result{{OK, "bootstrap", fmt.Sprintf("CDK bootstrap version %d", v), ""}}
	// The pipeline's S3 source reads the app's source asset from the
	// bootstrap's staging bucket, and CodePipeline's S3 source needs a
	// versioned bucket. The bootstrap template versions it; a customised
	// or very old bootstrap may not.
	bucket := fmt.Sprintf("cdk-%s-assets-%s-%s", qualifier, account, region)
	ver, err := c.S3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	switch {
	case err != nil:
		out = append(out, Result{Warn, "source bucket", fmt.Sprintf("cannot read the versioning of %s: %s", bucket, awsops.Short(err)), "check that the bootstrap's staging bucket exists and is versioned: the pipeline's S3 source reads the deployed source from it"})
	case ver.Status != s3types.BucketVersioningStatusEnabled:
		out = append(out, Result{Fail, "source bucket", fmt.Sprintf("%s is not versioned: CodePipeline's S3 source needs a versioned bucket", bucket), fix + " (the current bootstrap template versions its staging bucket), or set evergreen:source to a Git repository"})
	default:
		out = append(out, Result{OK, "source bucket", bucket + " is versioned", ""})
	}
	return out
}

func stackState(ctx context.Context, c Clients, stack string) Result {
	d, err := c.CloudFormation.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return Result{OK, "stack", stack + " does not exist yet: the deploy creates it", ""}
		}
		return Result{Warn, "stack", "cannot describe " + stack + ": " + awsops.Short(err), ""}
	}
	return stackStatus(stack, string(d.Stacks[0].StackStatus))
}

// stackStatus judges a stack's state as the pinned CDK CLI and
// CloudFormation treat it: the CLI deletes a stack whose creation rolled
// back (ROLLBACK_COMPLETE) and creates it again, and treats
// REVIEW_IN_PROGRESS as no stack yet; CloudFormation accepts no update in
// UPDATE_ROLLBACK_FAILED, and cannot always delete a stack in
// ROLLBACK_FAILED or DELETE_FAILED.
func stackStatus(stack, st string) Result {
	switch {
	case st == "REVIEW_IN_PROGRESS":
		return Result{OK, "stack", stack + " has only a change set under review: the deploy creates it", ""}
	case st == "ROLLBACK_COMPLETE":
		return Result{Warn, "stack", stack + " is ROLLBACK_COMPLETE (its creation failed): the CDK CLI deletes it and creates it again", "find why the first create failed (the stack's events) before deploying again"}
	case st == "UPDATE_ROLLBACK_FAILED":
		return Result{Fail, "stack", stack + " is UPDATE_ROLLBACK_FAILED: CloudFormation accepts no update in this state", "cdk rollback (or aws cloudformation continue-update-rollback --stack-name " + stack + "), then deploy again"}
	case st == "ROLLBACK_FAILED" || st == "DELETE_FAILED":
		return Result{Fail, "stack", fmt.Sprintf("%s is %s", stack, st), "delete it (the CloudFormation console lets you retain the resources it cannot delete), then deploy again; its repositories and buckets are retained"}
	case strings.HasSuffix(st, "_IN_PROGRESS"):
		return Result{Fail, "stack", fmt.Sprintf("%s is %s", stack, st), "wait for the current operation to end"}
	}
	return Result{OK, "stack", fmt.Sprintf("%s exists (%s): the deploy updates it", stack, st), ""}
}

func repositories(ctx context.Context, c Clients, in Inputs) []Result {
	var out []Result
	ours := map[string]bool{}
	p := cloudformation.NewListStackResourcesPaginator(c.CloudFormation, &cloudformation.ListStackResourcesInput{StackName: aws.String(in.Config.StackName)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			break // no stack yet: nothing is ours
		}
		for _, r := range page.StackResourceSummaries {
			if aws.ToString(r.ResourceType) == "AWS::ECR::Repository" {
				ours[aws.ToString(r.PhysicalResourceId)] = true
			}
		}
	}
	for _, rt := range in.List.Runtimes {
		name := in.Config.RepositoryName(rt.Name)
		d, err := c.ECR.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
		if err != nil {
			if code(err) == "RepositoryNotFoundException" {
				out = append(out, Result{OK, "repository", name + " is free", ""})
				continue
			}
			out = append(out, Result{Warn, "repository", "cannot describe " + name + ": " + awsops.Short(err), ""})
			continue
		}
		// The stack's resources decide whether the repository is the
		// stack's; a repository kept by an earlier cdk destroy may still
		// carry CloudFormation's aws:cloudformation:stack-name tag of the
		// same stack, and only explains where it came from.
		owner := ""
		if ours[name] {
			owner = in.Config.StackName
		}
		if owner == in.Config.StackName {
			out = append(out, Result{OK, "repository", name + " belongs to stack " + owner, ""})
			continue
		}
		why := "exists and is not a resource of stack " + in.Config.StackName + " (retained by an earlier cdk destroy, or made by hand)"
		if tags, err := c.ECR.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: d.Repositories[0].RepositoryArn}); err == nil && stackTag(tags.Tags) != "" {
			why += "; CloudFormation tagged it for stack " + stackTag(tags.Tags)
		}
		out = append(out, Result{Fail, "repository", name + " " + why + ": CloudFormation would fail with \"already exists\"",
			"set evergreen:repositoryPrefix to another prefix, or take it into the stack with cdk import, or delete it (aws ecr delete-repository --repository-name " + name + " --force) if its images are not needed"})
	}
	return out
}

// stackTag is the stack CloudFormation tagged a repository with.
func stackTag(tags []ecrtypes.Tag) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == "aws:cloudformation:stack-name" {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// quotaName matches CodeBuild's concurrency quotas in Service Quotas, e.g.
// "Concurrently running builds for Linux/Small environment" and "... for
// ARM/Small environment": one per environment type and compute size.
var quotaName = regexp.MustCompile(`(?i)^concurrently running builds for (linux|arm)/(small|medium|large|xlarge|2xlarge) environment$`)

// quotaKey names an environment type and compute type as the quotas do.
func quotaKey(envType, computeType string) string {
	env := map[string]string{"LINUX_CONTAINER": "linux", "ARM_CONTAINER": "arm"}[envType]
	size := strings.ToLower(strings.TrimPrefix(computeType, "BUILD_GENERAL1_"))
	return env + "/" + size
}

func quotas(ctx context.Context, c Clients, in Inputs) []Result {
	values := map[string]float64{}
	var applied []sqtypes.ServiceQuota
	p := servicequotas.NewListServiceQuotasPaginator(c.ServiceQuotas, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("codebuild")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return []Result{{Warn, "quotas", "cannot read CodeBuild's quotas: " + awsops.Short(err), "check them in the Service Quotas console (CodeBuild, \"Concurrently running builds for ...\")"}}
		}
		applied = append(applied, page.Quotas...)
	}
	// Quotas that were never changed may be listed only as AWS defaults.
	dp := servicequotas.NewListAWSDefaultServiceQuotasPaginator(c.ServiceQuotas, &servicequotas.ListAWSDefaultServiceQuotasInput{ServiceCode: aws.String("codebuild")})
	var defaults []sqtypes.ServiceQuota
	for dp.HasMorePages() {
		page, err := dp.NextPage(ctx)
		if err != nil {
			break
		}
		defaults = append(defaults, page.Quotas...)
	}
	for _, list := range [][]sqtypes.ServiceQuota{defaults, applied} { // applied values win
		for _, q := range list {
			if m := quotaName.FindStringSubmatch(aws.ToString(q.QuotaName)); m != nil && q.Value != nil {
				values[strings.ToLower(m[1]+"/"+m[2])] = *q.Value
			}
		}
	}

	capped := in.Config.MaxConcurrentBuilds > 0
	peak := buildspecs.Peak(in.Specs, capped)
	var out []Result
	suggest := 0
	for _, l := range peak {
		k := quotaKey(l.Type, l.ComputeType)
		q, ok := values[k]
		what := fmt.Sprintf("%s/%s: up to %d builds at once", l.Type, l.ComputeType, l.AtOnce)
		switch {
		case !ok:
			out = append(out, Result{Warn, "quota", what + "; no CodeBuild quota \"Concurrently running builds for " + k + " environment\" found", "check it in the Service Quotas console"})
			continue
		case q < 1:
			out = append(out, Result{Fail, "quota", fmt.Sprintf("%s, quota %g: CodeBuild refuses every build", what, q), "request an increase in the Service Quotas console (CodeBuild, \"Concurrently running builds for " + k + " environment\")"})
		case float64(l.AtOnce) > 5*q:
			out = append(out, Result{Fail, "quota", fmt.Sprintf("%s, quota %g: CodeBuild queues up to five times the quota and refuses the rest", what, q), fmt.Sprintf("set evergreen:maxConcurrentBuilds to %d, or request a higher quota", int(q))})
		case float64(l.AtOnce) > q:
			out = append(out, Result{Warn, "quota", fmt.Sprintf("%s, quota %g: the rest queue", what, q), fmt.Sprintf("set evergreen:maxConcurrentBuilds to %d so that none queue, or request a higher quota", int(q))})
		default:
			out = append(out, Result{OK, "quota", fmt.Sprintf("%s, quota %g", what, q), ""})
			continue
		}
		if q >= 1 && (suggest == 0 || int(q) < suggest) {
			suggest = int(q)
		}
	}
	if suggest > 0 && !capped {
		out = append(out, Result{Warn, "quota", fmt.Sprintf("suggested: -c %s=%d (the smallest quota among the kinds the list uses)", config.KeyMaxConcurrentBuilds, suggest), ""})
	}
	return out
}

func armRegion(region string) Result {
	if slices.Contains(ArmRegions, region) {
		return Result{OK, "region", region + " offers ARM_CONTAINER", ""}
	}
	return Result{Warn, "region", region + " is not among the regions the CodeBuild API reference lists for ARM_CONTAINER (the arm64 builds)", "check the CodeBuild API reference (ProjectEnvironment, type) for " + region + ", or deploy in one of " + strings.Join(ArmRegions, ", ")}
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

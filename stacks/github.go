package stacks

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
)

// GitHubAudience is the audience aws-actions/configure-aws-credentials
// requests by default.
const GitHubAudience = "sts.amazonaws.com"

// GitHubAccessProps configures GitHubAccess.
type GitHubAccessProps struct {
	Config       *config.GitHub
	Repositories *Repositories
	// Access is what the pipeline's stages are granted; the workflow's jobs
	// run the same commands, so the role gets the same grants.
	Access stageAccess
}

// GitHubAccess lets the GitHub workflow of one repository and branch run the
// Build, Verify and Publish commands with the same ECR grants as the CodeBuild
// stages, through OIDC: no stored keys.
type GitHubAccess struct {
	constructs.Construct
	// Provider is the OIDC provider, created here or imported.
	Provider awsiam.IOidcProvider
	// Role is what the workflow's vars.AWS_ROLE_ARN names.
	Role awsiam.Role
}

// NewGitHubAccess creates (or imports) the GitHub OIDC provider and the role.
func NewGitHubAccess(scope constructs.Construct, id string, p *GitHubAccessProps) *GitHubAccess {
	c := constructs.NewConstruct(scope, &id)
	a := &GitHubAccess{Construct: c}
	g := p.Config

	if g.OIDCProviderArn != "" {
		a.Provider = awsiam.OidcProviderNative_FromOidcProviderArn(c, jsii.String("Provider"), jsii.String(g.OIDCProviderArn))
	} else {
		// OidcProviderNative is AWS::IAM::OIDCProvider. The older
		// awsiam.NewOpenIdConnectProvider is a Lambda-backed custom
		// resource (Custom::AWSCDKOpenIdConnectProvider): a function, its
		// role and its logs, for what CloudFormation now does natively.
		// No thumbprints: IAM trusts GitHub's certificate through its own
		// store of root CAs.
		a.Provider = awsiam.NewOidcProviderNative(c, jsii.String("Provider"), &awsiam.OidcProviderNativeProps{
			Url:       jsii.String("https://" + config.GitHubOIDCHost),
			ClientIds: jsii.Strings(GitHubAudience),
		})
	}

	// StringEquals on both claims, no wildcard: only runs of this
	// repository's workflow on this branch (push, schedule, dispatch) get a
	// token that matches. Pull requests (sub repo:<owner>/<name>:pull_request),
	// other branches, tags, forks and deployment environments do not.
	a.Role = awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewWebIdentityPrincipal(a.Provider.OidcProviderArn(), &map[string]any{
			"StringEquals": map[string]any{
				config.GitHubOIDCHost + ":aud": GitHubAudience,
				config.GitHubOIDCHost + ":sub": g.Subject(),
			},
		}),
		Description:        jsii.String(fmt.Sprintf("GitHub Actions (%s, branch %s): build, verify and publish the evergreen images", g.Repository, g.Branch)),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	// Exactly the CodeBuild stages' grants, and nothing else (grantStage
	// names each statement after its stage, so the Sids do not collide).
	for _, st := range append(slices.Clone(buildspecs.Stages), buildspecs.Report) {
		grantStage(a.Role, st, p.Access)
	}
	return a
}

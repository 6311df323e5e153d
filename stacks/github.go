package stacks

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
)

// CtxGitHub names the GitHub repository whose workflow
// (.github/workflows/images.yml) may run the three stages, e.g.
//
//	"evergreen:github": {"repository": "acme/evergreen-images", "branch": "main"}
//
// and, when the account already has GitHub's OIDC provider (an account holds
// one provider per URL), "oidcProviderArn". Absent: the stack creates nothing
// for GitHub.
const CtxGitHub = "evergreen:github"

// GitHubOIDCHost is the issuer of GitHub Actions' OIDC tokens, and the prefix
// of the claim keys in a trust policy.
const GitHubOIDCHost = "token.actions.githubusercontent.com"

// GitHubAudience is the audience aws-actions/configure-aws-credentials
// requests by default.
const GitHubAudience = "sts.amazonaws.com"

// GitHubConfig is the validated CtxGitHub value.
type GitHubConfig struct {
	// Repository is owner/name, spelled as GitHub spells it (the trust
	// policy compares it case-sensitively).
	Repository string `json:"repository"`
	// Branch is the one branch whose runs may assume the role; default "main".
	Branch string `json:"branch"`
	// OIDCProviderArn, if set, is an existing provider for GitHubOIDCHost.
	OIDCProviderArn string `json:"oidcProviderArn,omitempty"`
}

// Subject is the token's sub claim for a run of a push, schedule or
// workflow_dispatch event on Branch, with GitHub's default claim template and
// no deployment environment.
func (g *GitHubConfig) Subject() string {
	return "repo:" + g.Repository + ":ref:refs/heads/" + g.Branch
}

var (
	// GitHub owners: letters, digits, single hyphens; repositories: letters,
	// digits, '.', '-', '_'.
	githubRepositoryRe = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
	// A branch name as git check-ref-format accepts it, less anything that
	// would read as a pattern in an IAM condition or a GitHub filter.
	githubBranchBadRe = regexp.MustCompile(`[\s~^:?*\[\\\x00-\x1f\x7f]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$`)
	oidcProviderArnRe = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/` + regexp.QuoteMeta(GitHubOIDCHost) + `$`)
)

// GitHubConfigFromContext reads CtxGitHub through get
// (app.Node().TryGetContext, or main's map). It returns nil, nil when the key
// is absent: then the stack creates nothing for GitHub.
func GitHubConfigFromContext(get func(key string) any) (*GitHubConfig, error) {
	v := get(CtxGitHub)
	if v == nil {
		return nil, nil
	}
	fix := `set {"repository": "owner/name", "branch": "main"} (add "oidcProviderArn": "arn:aws:iam::<account>:oidc-provider/` + GitHubOIDCHost + `" when the account already has GitHub's provider), or remove the key`
	var raw []byte
	switch t := v.(type) {
	case string: // -c evergreen:github='{"repository": ...}'
		raw = []byte(t)
	default:
		raw, _ = json.Marshal(t)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	var g GitHubConfig
	if err := dec.Decode(&g); err != nil {
		return nil, &ContextError{CtxGitHub, fmt.Sprintf("cannot read it: %v", err), fix}
	}
	if g.Branch == "" {
		g.Branch = "main"
	}
	switch {
	case !githubRepositoryRe.MatchString(g.Repository):
		return nil, &ContextError{CtxGitHub, fmt.Sprintf("repository %q is not a GitHub owner/name", g.Repository), fix}
	case strings.HasPrefix(g.Branch, "refs/"):
		return nil, &ContextError{CtxGitHub, fmt.Sprintf("branch %q is a ref, not a branch name", g.Branch), `give the branch name alone, e.g. "main"`}
	case githubBranchBadRe.MatchString(g.Branch):
		return nil, &ContextError{CtxGitHub, fmt.Sprintf("branch %q is not a plain branch name", g.Branch), "name one branch exactly: wildcards would let other branches assume the role"}
	case g.OIDCProviderArn != "" && !oidcProviderArnRe.MatchString(g.OIDCProviderArn):
		return nil, &ContextError{CtxGitHub, fmt.Sprintf("oidcProviderArn %q is not the ARN of an IAM OIDC provider for %s", g.OIDCProviderArn, GitHubOIDCHost), "copy it from: aws iam list-open-id-connect-providers, or remove it to create the provider"}
	}
	return &g, nil
}

// GitHubAccessProps configures GitHubAccess.
type GitHubAccessProps struct {
	Config       *GitHubConfig
	Repositories *Repositories
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
			Url:       jsii.String("https://" + GitHubOIDCHost),
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
				GitHubOIDCHost + ":aud": GitHubAudience,
				GitHubOIDCHost + ":sub": g.Subject(),
			},
		}),
		Description:        jsii.String(fmt.Sprintf("GitHub Actions (%s, branch %s): build, verify and publish the evergreen images", g.Repository, g.Branch)),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	// Exactly the CodeBuild stages' grants, and nothing else (grantStage
	// names each statement after its stage, so the Sids do not collide).
	for _, st := range buildspecs.Stages {
		grantStage(a.Role, st, p.Repositories)
	}
	return a
}

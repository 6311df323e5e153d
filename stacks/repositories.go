package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/referrers"
	"github.com/evergreen-images/evergreen/runtimes"
)

// RepositoriesProps configures Repositories.
type RepositoriesProps struct {
	List   *runtimes.List
	Config config.Config
}

// Repositories holds one ECR repository per runtime, keyed by runtime name.
// Each is named <evergreen:repositoryPrefix><runtime>: organisation accounts
// often have a "node" or "python" repository already, and a second copy of
// the stack needs names of its own.
type Repositories struct {
	constructs.Construct
	ByName map[string]awsecr.Repository
	// Names in list order, for deterministic iteration.
	Names []string
}

// pullActions are what a consumer needs to pull an image and nothing more.
// They are also what evergreen verify needs: listing an image's referrers
// (the Referrers API, or ListImageReferrers) is authorized as
// ecr:BatchGetImage, and a referrer's document is a blob
// (GetDownloadUrlForLayer).
var pullActions = []string{
	"ecr:BatchCheckLayerAvailability",
	"ecr:BatchGetImage",
	"ecr:GetDownloadUrlForLayer",
}

// NewRepositories creates the repositories. Each construct id is the runtime
// name, so adding or removing a runtime never changes another repository's
// logical id (a changed id would replace the repository and its images).
func NewRepositories(scope constructs.Construct, id string, p *RepositoriesProps) *Repositories {
	c := constructs.NewConstruct(scope, &id)
	r := &Repositories{Construct: c, ByName: map[string]awsecr.Repository{}}
	for i := range p.List.Runtimes {
		rt := &p.List.Runtimes[i]
		repo := awsecr.NewRepository(c, jsii.String(rt.Name), &awsecr.RepositoryProps{
			RepositoryName: jsii.String(p.Config.RepositoryName(rt.Name)),
			// The images are the organisation's: deleting the stack keeps them.
			// A first deploy that rolls back deletes them (RetainExceptOnCreate),
			// so the retry does not fail on a repository name that exists.
			RemovalPolicy:   awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
			ImageScanOnPush: jsii.Bool(true),
			// Dated tags are immutable so a pinned tag always means the same
			// image; moving tags and drafts stay mutable so daily publishes
			// and retried builds can move them. One wildcard tells them
			// apart, whatever the number of versions (ECR allows 5 filters).
			ImageTagMutability: awsecr.TagMutability_MUTABLE_WITH_EXCLUSION,
			ImageTagMutabilityExclusionFilters: &[]awsecr.ImageTagMutabilityExclusionFilter{
				awsecr.ImageTagMutabilityExclusionFilter_Wildcard(jsii.String(runtimes.DatedTagPattern)),
			},
			LifecycleRules: lifecycleRules(rt, p.Config),
		})
		// AES256 is ECR's default; written out so the template states it.
		repo.Node().DefaultChild().(awsecr.CfnRepository).AddPropertyOverride(
			jsii.String("EncryptionConfiguration.EncryptionType"), jsii.String("AES256"))
		if len(p.Config.PullAccounts) > 0 || p.Config.PullOrganization != "" {
			for _, s := range pullStatements(p.Config) {
				repo.AddToResourcePolicy(s)
			}
		}
		r.ByName[rt.Name] = repo
		r.Names = append(r.Names, rt.Name)
	}
	return r
}

// lifecycleRules retire drafts, expired dated tags and untagged images, and
// never a published image.
//
// ECR evaluates rules by priority, and an image that matches the tag selection
// of a higher-priority rule cannot be expired by a lower-priority one. So the
// first rules select each published moving tag (<version>, <version>-<arch>)
// and keep up to 9999 of them (one image carries a given tag, so none is ever
// expired). That protects an image which still carries a draft tag next to its
// published tag (a Publish that stopped before removing the draft), and an
// index that carries both <version> and an old dated tag.
//
// Untagged images are yesterday's per-architecture images, still referenced by
// dated indexes: they are kept longer than any dated tag can live, counted
// from the Build that pushed them, so no dated index loses a child.
//
// Evidence (SBOM, provenance, the publish verdict) is attached as referrers,
// which ECR deletes within 24 hours of their subject. The current evidence
// is tagged and kept like the published tags; superseded evidence is
// untagged and was pushed after its subject, so the untagged rule, if it
// selects referrers at all, reaches it only after its subject is gone.
func lifecycleRules(rt *runtimes.Runtime, cfg config.Config) *[]*awsecr.LifecycleRule {
	var rules []*awsecr.LifecycleRule
	add := func(r *awsecr.LifecycleRule) {
		r.RulePriority = jsii.Number(float64(len(rules) + 1))
		rules = append(rules, r)
	}
	for _, v := range rt.Versions {
		add(&awsecr.LifecycleRule{
			Description:    jsii.String("Keep the published multi-architecture tag " + v),
			TagStatus:      awsecr.TagStatus_TAGGED,
			TagPatternList: jsii.Strings(v),
			MaxImageCount:  jsii.Number(9999),
		})
	}
	for _, a := range rt.Architectures {
		add(&awsecr.LifecycleRule{
			Description:    jsii.String("Keep the published " + string(a) + " tags"),
			TagStatus:      awsecr.TagStatus_TAGGED,
			TagPatternList: jsii.Strings(runtimes.ArchTag("*", a)),
			MaxImageCount:  jsii.Number(9999),
		})
	}
	// The current evidence of each published image carries a tag named
	// after the image's moving tag (internal/referrers: ECR does not
	// document whether the untagged rule selects referrers, so the one
	// that describes a published image is never left to it).
	add(&awsecr.LifecycleRule{
		Description:    jsii.String("Keep the evidence of the published images"),
		TagStatus:      awsecr.TagStatus_TAGGED,
		TagPatternList: jsii.Strings(referrers.EvidenceTagPattern),
		MaxImageCount:  jsii.Number(9999),
	})
	add(&awsecr.LifecycleRule{
		Description:    jsii.String("Retire draft images"),
		TagStatus:      awsecr.TagStatus_TAGGED,
		TagPatternList: jsii.Strings(runtimes.DraftPrefix + "*"),
		MaxImageAge:    awscdk.Duration_Days(jsii.Number(float64(cfg.DraftRetentionDays))),
	})
	add(&awsecr.LifecycleRule{
		Description:    jsii.String("Retire dated tags after the retention window"),
		TagStatus:      awsecr.TagStatus_TAGGED,
		TagPatternList: jsii.Strings(runtimes.DatedTagPattern),
		MaxImageAge:    awscdk.Duration_Days(jsii.Number(float64(cfg.DatedRetentionDays))),
	})
	add(&awsecr.LifecycleRule{
		Description: jsii.String("Retire untagged images once no dated index can reference them"),
		TagStatus:   awsecr.TagStatus_UNTAGGED,
		MaxImageAge: awscdk.Duration_Days(jsii.Number(float64(UntaggedRetentionDays(cfg)))),
	})
	return &rules
}

// UntaggedRetentionDays: a per-architecture image is pushed by Build, published
// within DraftRetentionDays, and referenced by that publish's dated index for
// DatedRetentionDays; one more day of margin covers ECR's daily evaluation.
func UntaggedRetentionDays(cfg config.Config) int {
	return cfg.DraftRetentionDays + cfg.DatedRetentionDays + 1
}

func pullStatements(cfg config.Config) []awsiam.PolicyStatement {
	var out []awsiam.PolicyStatement
	if len(cfg.PullAccounts) > 0 {
		var principals []awsiam.IPrincipal
		for _, a := range cfg.PullAccounts {
			principals = append(principals, awsiam.NewAccountPrincipal(jsii.String(a)))
		}
		out = append(out, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("PullFromAccounts"),
			Principals: &principals,
			Actions:    jsii.Strings(pullActions...),
		}))
	}
	if cfg.PullOrganization != "" {
		out = append(out, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("PullFromOrganization"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
			Actions:    jsii.Strings(pullActions...),
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"aws:PrincipalOrgID": cfg.PullOrganization},
			},
		}))
	}
	return out
}

package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssigner"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/evergreen-images/evergreen/buildspecs"
	"github.com/evergreen-images/evergreen/config"
)

// RegistrySettingsProps configures RegistrySettings.
type RegistrySettingsProps struct {
	Config       config.Config
	Repositories *Repositories
	Pipeline     *Pipeline
	// Pushers are the roles that push images or put tags (the Build and
	// Publish roles, the GitHub role): with managed signing, ECR signs with
	// the identity of the principal that pushes.
	Pushers []awsiam.IRole
}

// RegistrySettings are the opt-in, account-wide ECR settings. Each is a
// registry-level resource: one per account and region, replacing whatever
// configuration the registry had. Neither exists unless asked for.
type RegistrySettings struct {
	constructs.Construct
	// Scanning and FindingRule exist with evergreen:enhancedScanning.
	Scanning    awsecr.CfnRegistryScanningConfiguration
	FindingRule awsevents.Rule
	// Signing and Profile exist with evergreen:signing.
	Signing awsecr.CfnSigningConfiguration
	Profile awssigner.SigningProfile
}

// NewRegistrySettings creates the registry-level settings the configuration
// asks for, scoped to this stack's repositories by exact name (a filter per
// repository, so that no other repository of the account is matched).
func NewRegistrySettings(scope constructs.Construct, id string, p *RegistrySettingsProps) *RegistrySettings {
	c := constructs.NewConstruct(scope, &id)
	r := &RegistrySettings{Construct: c}
	var names []*string
	for _, n := range p.Repositories.Names {
		names = append(names, jsii.String(p.Config.RepositoryName(n)))
	}

	if p.Config.EnhancedScanning {
		var filters []any
		for _, n := range names {
			filters = append(filters, &awsecr.CfnRegistryScanningConfiguration_RepositoryFilterProperty{Filter: n, FilterType: jsii.String("WILDCARD")})
		}
		// Amazon Inspector rescans continuously, so a CVE published after
		// the daily build still shows up on the published images.
		r.Scanning = awsecr.NewCfnRegistryScanningConfiguration(c, jsii.String("Scanning"), &awsecr.CfnRegistryScanningConfigurationProps{
			ScanType: jsii.String("ENHANCED"),
			Rules: []any{&awsecr.CfnRegistryScanningConfiguration_ScanningRuleProperty{
				ScanFrequency:     jsii.String("CONTINUOUS_SCAN"),
				RepositoryFilters: filters,
			}},
		})
		// A new CRITICAL finding on a published image (any tag that is not
		// a draft) starts an execution, so that its fix ships before the
		// next daily run. Findings arrive as "Inspector2 Finding" events
		// (Amazon Inspector's EventBridge schema).
		r.FindingRule = awsevents.NewRule(c, jsii.String("CriticalFinding"), &awsevents.RuleProps{
			Description: jsii.String("Rebuilds the images when Amazon Inspector reports a new CRITICAL finding on a published image"),
			EventPattern: &awsevents.EventPattern{
				Source:     jsii.Strings("aws.inspector2"),
				DetailType: jsii.Strings("Inspector2 Finding"),
				Detail: &map[string]any{
					"severity": []string{"CRITICAL"},
					"status":   []string{"ACTIVE"},
					"resources": map[string]any{
						"type": []string{"AWS_ECR_CONTAINER_IMAGE"},
						"details": map[string]any{"awsEcrContainerImage": map[string]any{
							"repositoryName": names,
							"imageTags":      []any{map[string]any{"anything-but": map[string]any{"prefix": "draft-"}}},
						}},
					},
				},
			},
			Targets: &[]awsevents.IRuleTarget{awseventstargets.NewCodePipeline(p.Pipeline.Pipeline, nil)},
		})
	}

	if p.Config.Signing {
		r.Profile = awssigner.NewSigningProfile(c, jsii.String("Profile"), &awssigner.SigningProfileProps{
			Platform: awssigner.Platform_NOTATION_OCI_SHA384_ECDSA(),
		})
		var filters []any
		for _, n := range names {
			filters = append(filters, &awsecr.CfnSigningConfiguration_RepositoryFilterProperty{Filter: n, FilterType: jsii.String("WILDCARD_MATCH")})
		}
		r.Signing = awsecr.NewCfnSigningConfiguration(c, jsii.String("Signing"), &awsecr.CfnSigningConfigurationProps{
			Rules: []any{&awsecr.CfnSigningConfiguration_RuleProperty{
				SigningProfileArn: r.Profile.SigningProfileArn(),
				RepositoryFilters: filters,
			}},
		})
		// "The IAM principal pushing images must have permission to sign
		// payloads with the AWS Signer signing profile" (PutSigningConfiguration).
		for _, role := range p.Pushers {
			role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("SignOnPush"),
				Actions:   jsii.Strings("signer:SignPayload"),
				Resources: &[]*string{r.Profile.SigningProfileArn()},
			}))
		}
	}
	return r
}

// pushers are the roles that push to the repositories.
func pushers(pl *Pipeline, gh *GitHubAccess) []awsiam.IRole {
	out := []awsiam.IRole{pl.Roles[buildspecs.Build], pl.Roles[buildspecs.Publish]}
	if gh != nil {
		out = append(out, gh.Role)
	}
	return out
}

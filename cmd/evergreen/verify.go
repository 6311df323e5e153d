package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/evidence"
	"github.com/evergreen-images/evergreen/internal/referrers"
)

// verifyTimeout bounds the registry calls: an index of two images is about
// fifteen small requests.
const verifyTimeout = 2 * time.Minute

// errEvidenceProblems: the check ran and found evidence missing or not
// matching; its lines are on stderr already.
var errEvidenceProblems = errors.New("evidence missing or not matching")

// readEvidence parses a document as the evidence package writes it; tests
// replace it.
var readEvidence referrers.ReadFunc = evidence.Read

// registryOptions are how verify reaches a registry; tests replace it.
var registryOptions = registryAuth

func verifyCommand() *command {
	return &command{
		name:    "verify",
		args:    "<image>@<digest> | <image>:<tag>",
		nargs:   1,
		summary: "Check the evidence attached to a published image: its SBOM, provenance and publish verdict",
		help: `Resolves the image; for a multi-architecture tag or index, checks its
publish verdict and every per-architecture image. Each image must have an
SBOM (` + referrers.ArtifactSBOM + `) and a provenance statement
(` + referrers.ArtifactProvenance + `) attached as OCI referrers, each naming that
image's digest; the provenance's commit and base image must be the SBOM's,
and the verdict (` + referrers.ArtifactVerdict + `) must name each image and
the same commit. Prints a summary per image and for the index.

Exit 0 when everything matches, 1 with one line per problem, 2 on a wrong
command line. An ECR registry (<account>.dkr.ecr.<region>.amazonaws.com) is
read with your AWS credentials (ecr:GetAuthorizationToken, and
ecr:BatchGetImage and ecr:GetDownloadUrlForLayer on the repository: the
pull grant the publisher gives your account); any other registry with your
docker login. docs/verifying.md has the same check with oras.`,
		run: func(ctx context.Context, std ioStreams, fs *flag.FlagSet) error {
			if fs.NArg() != 1 {
				return usageError{"give the image: evergreen verify 111122223333.dkr.ecr.eu-west-1.amazonaws.com/evergreen-node:22"}
			}
			ref, err := name.ParseReference(fs.Arg(0))
			if err != nil {
				return usageError{fmt.Sprintf("%q is not an image reference (<registry>/<repository>:<tag> or @sha256:<digest>): %v", fs.Arg(0), err)}
			}
			ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
			defer cancel()
			opts, err := registryOptions(ctx, ref.Context().Registry)
			if err != nil {
				return err
			}
			res, err := referrers.Check(ctx, ref, readEvidence, opts...)
			if err != nil {
				return explainRegistry(ref, err)
			}
			res.Print(std.out)
			if len(res.Problems) > 0 {
				for _, p := range res.Problems {
					fmt.Fprintf(std.err, "evergreen verify: %s\n", p)
				}
				return fmt.Errorf("%s: %d problems: %w", ref, len(res.Problems), errEvidenceProblems)
			}
			fmt.Fprintf(std.out, "verify: the evidence of %s matches\n", ref)
			return nil
		},
	}
}

// registryAuth logs in to an ECR registry with the caller's AWS
// credentials, and to any other with the docker configuration's
// credentials (authn.DefaultKeychain: docker login, credential helpers).
// go-containerregistry speaks plain HTTP by itself to localhost,
// 127.0.0.1, ::1, *.localhost and private (RFC 1918) addresses.
func registryAuth(ctx context.Context, reg name.Registry) ([]remote.Option, error) {
	region, ok := referrers.ECRRegion(reg.RegistryStr())
	if !ok {
		return []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}, nil
	}
	// The token comes from the registry's region, whatever the profile's;
	// a consumer needs no region of their own.
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		os.Setenv("AWS_REGION", region)
	}
	cfg, err := loadAWS(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	login, err := referrers.ECRAuthenticator(ctx, ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.Region = region }))
	if err != nil {
		return nil, awsops.CallError(err)
	}
	return []remote.Option{remote.WithAuth(login)}, nil
}

// explainRegistry adds the fix to a registry's refusal.
func explainRegistry(ref name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			fix := "docker login " + ref.Context().RegistryStr() + " with an account allowed to pull " + ref.Context().RepositoryStr()
			if _, ok := referrers.ECRRegion(ref.Context().RegistryStr()); ok {
				fix = "use AWS credentials of an account the publisher lets pull (evergreen:pullAccounts or evergreen:pullOrganization in its cdk.json)"
			}
			return fmt.Errorf("%s: the registry refused access (%d)\n  fix: %s", ref, te.StatusCode, fix)
		case http.StatusNotFound:
			return fmt.Errorf("%s: no such image (%s)\n  fix: check the repository and the tag or digest", ref, strings.TrimSpace(te.Error()))
		}
	}
	return err
}

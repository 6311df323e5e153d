package referrers

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
)

// TokenGetter is the one ECR call registry access needs; *ecr.Client has it.
type TokenGetter interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// ecrHost is a private ECR registry host: <account>.dkr.ecr.<region>.amazonaws.com,
// .amazonaws.com.cn in the China regions, and the FIPS endpoints
// (dkr.ecr-fips). ECR Public (public.ecr.aws) is another service with
// another token.
var ecrHost = regexp.MustCompile(`^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// ECRRegion tells whether host is a private ECR registry, and its region.
func ECRRegion(host string) (region string, ok bool) {
	m := ecrHost.FindStringSubmatch(host)
	if m == nil {
		return "", false
	}
	return m[3], true
}

// ECRAuthenticator trades the caller's AWS credentials for a registry
// login: GetAuthorizationToken answers base64("AWS:<password>"), valid for
// 12 hours, the same login docker login takes from
// aws ecr get-login-password.
func ECRAuthenticator(ctx context.Context, c TokenGetter) (authn.Authenticator, error) {
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("getting an ECR login (ecr:GetAuthorizationToken): %w", err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return nil, fmt.Errorf("getting an ECR login: GetAuthorizationToken answered no token")
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("getting an ECR login: the token is not base64: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || pass == "" {
		return nil, fmt.Errorf("getting an ECR login: the token is not <user>:<password>")
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
}

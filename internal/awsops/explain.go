package awsops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// regionPatterns are the partitions' region name patterns, as the SDK's
// endpoint rules state them (partitions.json of aws-sdk-go-v2, an internal
// package, so restated here): aws, aws-cn, aws-us-gov, the ISO partitions
// and the European Sovereign Cloud. A name that none matches is a typo
// (eu-west1) that the SDK would only report as "no such host" later.
var regionPatterns = []*regexp.Regexp{
	regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`),
	regexp.MustCompile(`^cn-\w+-\d+$`),
	regexp.MustCompile(`^us-gov-\w+-\d+$`),
	regexp.MustCompile(`^us-iso-\w+-\d+$`),
	regexp.MustCompile(`^us-isob-\w+-\d+$`),
	regexp.MustCompile(`^eu-isoe-\w+-\d+$`),
	regexp.MustCompile(`^us-isof-\w+-\d+$`),
	regexp.MustCompile(`^eusc-de-\w+-\d+$`),
}

// CheckRegion refuses a region name no partition has, with the nearest
// spelling when one is obvious.
func CheckRegion(region string) error {
	for _, re := range regionPatterns {
		if re.MatchString(region) {
			return nil
		}
	}
	fix := "set AWS_REGION (or the region of your profile) to a region such as eu-west-1"
	if m := regexp.MustCompile(`^([a-z]+(?:-[a-z]+)*?)-?([a-z]+)(\d+)$`).FindStringSubmatch(region); m != nil {
		if guess := m[1] + "-" + m[2] + "-" + m[3]; guess != region && CheckRegion(guess) == nil {
			fix = fmt.Sprintf("did you mean %s? set AWS_REGION=%s (or the region of your profile)", guess, guess)
		}
	}
	return fmt.Errorf("%q is not an AWS region name\n  fix: %s", region, fix)
}

// Explain turns the error of a first AWS call into its cause and fix: no
// route to AWS, no credentials, credentials AWS refuses, or an AWS answer.
// Each has its own fix; telling a user without a network to set
// credentials sends them the wrong way. fix is empty when the error is none
// of these.
func Explain(err error) (cause, fix string) {
	var dns *net.DNSError
	var op *net.OpError
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "i/o timeout"):
		return "no answer from AWS in time (" + Short(err) + ")", "check your network, proxy (HTTPS_PROXY) or VPN; AWS_ENDPOINT_URL, when set, must name a reachable endpoint"
	case errors.As(err, &dns) || errors.As(err, &op) || strings.Contains(msg, "no such host") || strings.Contains(msg, "connection refused"):
		return "cannot reach AWS (" + Short(err) + ")", "check your network, proxy (HTTPS_PROXY) or VPN, and the region; AWS_ENDPOINT_URL, when set, must name a reachable endpoint"
	case strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "no EC2 IMDS role found") || strings.Contains(msg, "get credentials"):
		return "no AWS credentials found (" + Short(err) + ")", "run aws configure (or aws sso login), set AWS_PROFILE to a configured profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	case IsCode(err, "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId"):
		return "AWS refused the credentials (" + Short(err) + ")", "refresh them (aws sso login, or new access keys) for the account of the stack"
	case IsCode(err, "AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
		return "AWS denied the call (" + Short(err) + ")", "use a role or user allowed to make it in the account of the stack"
	}
	return Short(err), ""
}

// CallError is a failed first call of an operator command, with Explain's
// cause and fix (credentials, when Explain has none).
func CallError(err error) error {
	cause, fix := Explain(err)
	if fix == "" {
		fix = "set credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for the account of the stack"
	}
	return fmt.Errorf("cannot call AWS: %s\n  fix: %s", cause, fix)
}

// Load reads the caller's AWS configuration: credentials and region from the
// environment, the shared config files and the profile (AWS_PROFILE). It
// checks what it can before any call: the profile exists, there is a
// region and it is a region's name.
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	var missing awsconfig.SharedConfigProfileNotExistError
	if errors.As(err, &missing) {
		return cfg, fmt.Errorf("the profile %q (AWS_PROFILE) is not in your AWS config or credentials files\n  fix: aws configure --profile %s, or set AWS_PROFILE to a profile you have (aws configure list-profiles)", missing.Profile, missing.Profile)
	}
	if err != nil {
		return cfg, err
	}
	if cfg.Region == "" {
		return cfg, errors.New("no AWS region\n  fix: set AWS_REGION, or a region in your profile (aws configure)")
	}
	// A custom endpoint (a local emulator) takes any region name.
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		if err := CheckRegion(cfg.Region); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

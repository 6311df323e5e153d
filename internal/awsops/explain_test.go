package awsops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

func TestRegionTypoIsNamedWithTheFix(t *testing.T) {
	for _, ok := range []string{"eu-west-1", "us-east-1", "ap-southeast-5", "us-gov-west-1", "cn-north-1", "il-central-1", "mx-central-1"} {
		if err := CheckRegion(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"eu-west1":  "did you mean eu-west-1?",
		"euwest-1":  "set AWS_REGION",
		"Frankfurt": "set AWS_REGION",
		"us-east-":  "set AWS_REGION",
	} {
		err := CheckRegion(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q in it", bad, err, want)
		}
	}
}

// isolated points the SDK at empty config files, so the machine's own
// profiles and credentials play no part.
func isolated(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "eu-west-1")
}

func TestMissingProfileIsNamedWithTheFix(t *testing.T) {
	isolated(t)
	t.Setenv("AWS_PROFILE", "prod")
	_, err := Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), `the profile "prod" (AWS_PROFILE) is not in your AWS config`) || !strings.Contains(err.Error(), "aws configure --profile prod") {
		t.Errorf("got %v", err)
	}
}

func TestRegionTypoFailsBeforeAnyCall(t *testing.T) {
	isolated(t)
	t.Setenv("AWS_REGION", "eu-west1")
	_, err := Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), "did you mean eu-west-1?") {
		t.Errorf("got %v", err)
	}
}

// Each cause of a failed first call has its own fix: a machine without a
// route to AWS is not told to set credentials.
func TestFirstCallErrorsNameTheirCause(t *testing.T) {
	isolated(t)
	ctx := context.Background()

	// No credentials anywhere: the SDK's chain finds none.
	cfg, err := Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if got, _ := Explain(err); !strings.HasPrefix(got, "no AWS credentials found") {
		t.Errorf("no credentials: %s", got)
	}

	// Fake keys and no route: an endpoint nothing listens on.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("AWS_ENDPOINT_URL", "http://"+addr)
	cfg, err = Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sts.NewFromConfig(cfg, func(o *sts.Options) { o.RetryMaxAttempts = 1 }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if got, fix := Explain(err); !strings.HasPrefix(got, "cannot reach AWS") || strings.Contains(fix, "credentials") {
		t.Errorf("no route: %s (fix: %s)", got, fix)
	}
	dnsErr := fmt.Errorf("operation error STS: GetCallerIdentity: %w", &net.DNSError{Err: "no such host", Name: "sts.eu-west-1.amazonaws.com", IsNotFound: true})
	if got, _ := Explain(dnsErr); !strings.HasPrefix(got, "cannot reach AWS") {
		t.Errorf("no such host: %s", got)
	}

	// AWS answers, and refuses the keys.
	refused := &smithy.GenericAPIError{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid."}
	if got, _ := Explain(fmt.Errorf("wrapped: %w", refused)); !strings.HasPrefix(got, "AWS refused the credentials") {
		t.Errorf("refused: %s", got)
	}
	if got, _ := Explain(errors.New("something else")); got != "something else" {
		t.Errorf("other: %s", got)
	}
}

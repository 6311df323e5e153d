package config

import (
	"os"
	"strings"
	"testing"
)

func writeCDKJSON(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/"+DefaultCDKJSON, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
}

func TestKeyOutsideContextIsRefused(t *testing.T) {
	writeCDKJSON(t, `{"app": "go run .", "evergreen:alarmEmail": "ops@example.com", "context": {}}`)
	for _, underCLI := range []bool{false, true} {
		if underCLI {
			t.Setenv("CDK_CONTEXT_JSON", `{}`)
		}
		_, _, err := AppContext()
		if err == nil || !strings.Contains(err.Error(), `"evergreen:alarmEmail" is at the top level`) || !strings.Contains(err.Error(), `move it into the "context" object`) {
			t.Errorf("under the CLI %v: got %v, want the misplaced key named with its fix", underCLI, err)
		}
	}
}

func TestMessageNamesWhereTheValueCameFrom(t *testing.T) {
	writeCDKJSON(t, `{"context": {"evergreen:stackName": "Good"}}`)
	t.Cleanup(func() { cliOrigins = map[string]struct{}{} })
	for _, c := range []struct {
		given, want string
	}{
		// The CLI hands over cdk.json's own value: it came from cdk.json.
		{`{"evergreen:stackName": "Good", "evergreen:schedule": "nope"}`, `-c (or cdk.context.json) "evergreen:schedule"`},
		{`{"evergreen:stackName": "bad name"}`, `-c (or cdk.context.json) "evergreen:stackName"`},
	} {
		cliOrigins = map[string]struct{}{}
		t.Setenv("CDK_CONTEXT_JSON", c.given)
		ctx, _, err := AppContext()
		if err != nil {
			t.Fatal(err)
		}
		_, err = FromContext(ctx)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("context %s: got %v, want it to start with %s", c.given, err, c.want)
		}
	}
	cliOrigins = map[string]struct{}{}
	writeCDKJSON(t, `{"context": {"evergreen:stackName": "bad name"}}`)
	t.Setenv("CDK_CONTEXT_JSON", `{"evergreen:stackName": "bad name"}`)
	ctx, _, err := AppContext()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromContext(ctx); err == nil || !strings.HasPrefix(err.Error(), `cdk.json context "evergreen:stackName"`) {
		t.Errorf("a value from cdk.json: got %v, want it named as cdk.json's", err)
	}
}

package rehearsal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSSMStandIn(t *testing.T) {
	f := newFixture(t)
	const n = "/EvergreenImages/node/22/amd64"
	const v = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/evergreen/node@sha256:" + "ab"

	// A missing parameter: ParameterNotFound, exit 254; with the Publish
	// command's `2>/dev/null || true` that reads as empty.
	if out, st, msg := f.aws("ssm", "get-parameter", "--name", n, "--query", "Parameter.Value", "--output", "text"); st != 254 || out != "" ||
		!strings.Contains(msg, "An error occurred (ParameterNotFound) when calling the GetParameter operation") {
		t.Fatalf("missing: %d %q %s", st, out, msg)
	}
	// Create: Version 1, Tier Standard, JSON as the CLI prints it.
	out, st, msg := f.aws("ssm", "put-parameter", "--name", n, "--value", v, "--type", "String", "--overwrite")
	var put struct {
		Version int
		Tier    string
	}
	if st != 0 || json.Unmarshal([]byte(out), &put) != nil || put.Version != 1 || put.Tier != "Standard" || !strings.HasPrefix(out, "{\n    \"") {
		t.Fatalf("put: %d %q %s", st, out, msg)
	}
	// Read back, as Publish does and in full.
	if out, st, _ := f.aws("ssm", "get-parameter", "--name", n, "--query", "Parameter.Value", "--output", "text"); st != 0 || out != v+"\n" {
		t.Fatalf("get text: %d %q", st, out)
	}
	out, st, _ = f.aws("ssm", "get-parameter", "--name", n)
	var got struct{ Parameter map[string]any }
	if err := json.Unmarshal([]byte(out), &got); st != 0 || err != nil {
		t.Fatalf("get json: %d %v %q", st, err, out)
	}
	p := got.Parameter
	if p["Name"] != n || p["Value"] != v || p["Type"] != "String" || p["Version"] != 1.0 || p["DataType"] != "text" ||
		p["ARN"] != "arn:aws:ssm:eu-west-1:111122223333:parameter"+n || p["LastModifiedDate"] == nil {
		t.Fatalf("get json: %v", p)
	}
	// Without --overwrite an existing name is ParameterAlreadyExists, and
	// nothing changes.
	if _, st, msg := f.aws("ssm", "put-parameter", "--name", n, "--value", "x", "--type", "String"); st != 254 || !strings.Contains(msg, "(ParameterAlreadyExists) when calling the PutParameter operation") {
		t.Fatalf("no overwrite: %d %s", st, msg)
	}
	// Every put is a new version, even of the same value.
	if out, st, _ := f.aws("ssm", "put-parameter", "--name", n, "--value", v, "--type", "String", "--overwrite", "--query", "Version", "--output", "text"); st != 0 || out != "2\n" {
		t.Fatalf("same value again: %d %q", st, out)
	}
	ps, err := f.ecr.Cfg.Parameters()
	if err != nil || ps[n].Version != 2 || ps[n].Value != v {
		t.Fatalf("state: %v %v", ps, err)
	}
	w, err := f.ecr.Cfg.ParameterWrites()
	if err != nil || len(w) != 2 || w[0].Version != 1 || w[1].Version != 2 || w[1].Name != n {
		t.Fatalf("write log: %v %v", w, err)
	}
	// --overwrite with the type omitted keeps it; a new name needs one.
	if _, st, msg := f.aws("ssm", "put-parameter", "--name", n, "--value", "y", "--overwrite"); st != 0 {
		t.Fatalf("overwrite without a type: %d %s", st, msg)
	}
	if _, st, msg := f.aws("ssm", "put-parameter", "--name", "/EvergreenImages/new", "--value", "y"); st != 254 || !strings.Contains(msg, "ValidationException") {
		t.Fatalf("new without a type: %d %s", st, msg)
	}

	// Names, as Parameter Store judges them.
	deep := "/" + strings.Repeat("a/", 15) + "b"
	for _, c := range []struct{ name, code string }{
		{"EvergreenImages/node/22", "ValidationException"}, // not fully qualified
		{"/Evergreen Images/node", "ValidationException"},  // a space
		{"/EvergreenImages/node@22", "ValidationException"},
		{"/aws/node", "ValidationException"},
		{"/AWSImages/node", "ValidationException"},
		{"/SsmImages/node", "ValidationException"},
		{"ssm-node", "ValidationException"},
		{"/EvergreenImages//node", "ValidationException"},
		{deep, "HierarchyLevelLimitExceededException"},
	} {
		for _, op := range []string{"put-parameter", "get-parameter"} {
			args := []string{"ssm", op, "--name", c.name}
			if op == "put-parameter" {
				args = append(args, "--value", "x", "--type", "String")
			}
			if _, st, msg := f.aws(args...); st != 254 || !strings.Contains(msg, "("+c.code+")") {
				t.Errorf("%s %q: %d %s, want %s", op, c.name, st, msg, c.code)
			}
		}
	}
	for _, ok := range []string{"/" + strings.Repeat("a/", 14) + "b", "plain-name_1.x", "/Evergreen-Images/node-ci-cd/22/arm64"} {
		if _, st, msg := f.aws("ssm", "put-parameter", "--name", ok, "--value", "x", "--type", "String"); st != 0 {
			t.Errorf("%q refused: %d %s", ok, st, msg)
		}
	}
	// Values: at most 4096 characters in the standard tier, not empty.
	if _, st, _ := f.aws("ssm", "put-parameter", "--name", "/v/max", "--value", strings.Repeat("x", 4096), "--type", "String"); st != 0 {
		t.Fatalf("4096 characters refused: %d", st)
	}
	if _, st, msg := f.aws("ssm", "put-parameter", "--name", "/v/long", "--value", strings.Repeat("x", 4097), "--type", "String"); st != 254 || !strings.Contains(msg, "4096") {
		t.Fatalf("4097 characters: %d %s", st, msg)
	}
	if _, st, _ := f.aws("ssm", "put-parameter", "--name", "/v/empty", "--value", "", "--type", "String"); st != 254 {
		t.Fatalf("empty value: %d", st)
	}
	// A value from a file, as the CLI reads file://.
	file := filepath.Join(t.TempDir(), "v")
	os.WriteFile(file, []byte("from-a-file"), 0o644)
	if _, st, msg := f.aws("ssm", "put-parameter", "--name", "/v/file", "--value", "file://"+file, "--type", "String"); st != 0 {
		t.Fatalf("file://: %d %s", st, msg)
	}
	if out, _, _ := f.aws("ssm", "get-parameter", "--name", "/v/file", "--query", "Parameter.Value", "--output", "text"); out != "from-a-file\n" {
		t.Fatalf("file:// value: %q", out)
	}

	// The command line: unknown options 252, not emulated ones loudly.
	if _, st, msg := f.aws("ssm", "get-parameter", "--name", n, "--names", n); st != 252 || !strings.Contains(msg, "Unknown options: --names") {
		t.Fatalf("unknown option: %d %s", st, msg)
	}
	if _, st, _ := f.aws("ssm", "put-parameter", "--name", n, "--value", "x", "--type", "SecureString", "--overwrite"); st != 255 {
		t.Fatalf("SecureString: %d", st)
	}
	if _, st, _ := f.aws("ssm", "put-parameter", "--name", n, "--value", "x", "--type", "Strin", "--overwrite"); st != 252 {
		t.Fatalf("bad type: %d", st)
	}
	if _, st, _ := f.aws("ssm", "put-parameter", "--name", n, "--value", "x", "--tier", "Advanced", "--overwrite"); st != 255 {
		t.Fatalf("--tier: %d", st)
	}
	if _, st, _ := f.aws("ssm", "get-parameters", "--names", n); st != 252 {
		t.Fatalf("get-parameters: %d", st)
	}
}

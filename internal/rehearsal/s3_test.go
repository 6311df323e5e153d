package rehearsal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// awsIn runs the aws stand-in with stdin and returns stdout, the exit
// status and the message.
func (f *fixture) awsIn(stdin string, args ...string) (string, int, string) {
	var out bytes.Buffer
	f.ecr.Stdin = strings.NewReader(stdin)
	err := f.ecr.RunAWS(args, &out)
	var ce *CLIError
	switch {
	case err == nil:
		return out.String(), 0, ""
	case errors.As(err, &ce):
		return out.String(), ce.Status, ce.Message
	}
	f.t.Fatalf("aws %v: %v", args, err)
	return "", 0, ""
}

func TestS3StandIn(t *testing.T) {
	f := newFixture(t)
	f.ecr.Cfg.Buckets = []string{"records"}
	key := "s3://records/executions/e/build/node/22/amd64.json"

	// Upload from stdin; the stream upload prints nothing.
	if out, st, msg := f.awsIn(`{"digest":"sha256:1"}`+"\n", "s3", "cp", "-", key); st != 0 || out != "" {
		t.Fatalf("upload: %d %q %s", st, out, msg)
	}
	// Download to stdout: the object, byte for byte.
	if out, st, _ := f.awsIn("", "s3", "cp", key, "-"); st != 0 || out != `{"digest":"sha256:1"}`+"\n" {
		t.Fatalf("download: %d %q", st, out)
	}
	// Download to a file: --only-show-errors takes no value, so the path
	// after it is not swallowed, and nothing is printed.
	dir := t.TempDir()
	file := filepath.Join(dir, "r")
	if out, st, msg := f.awsIn("", "s3", "cp", key, file, "--only-show-errors"); st != 0 || out != "" {
		t.Fatalf("download to a file: %d %q %s", st, out, msg)
	}
	if b, _ := os.ReadFile(file); string(b) != `{"digest":"sha256:1"}`+"\n" {
		t.Fatalf("downloaded file: %q", b)
	}
	if out, st, _ := f.awsIn("", "s3", "cp", "--only-show-errors", key, file); st != 0 || out != "" {
		t.Fatalf("--only-show-errors before the paths: %d %q", st, out)
	}
	if out, st, _ := f.awsIn("", "s3", "cp", key, file); st != 0 || out != "download: "+key+" to "+file+"\n" {
		t.Fatalf("download message: %d %q", st, out)
	}

	// A missing object fails as the CLI does, and writes nothing.
	missing := filepath.Join(dir, "missing")
	_, st, msg := f.awsIn("", "s3", "cp", "s3://records/executions/e/verify/node/22/amd64.json", missing)
	if st != 1 || !strings.Contains(msg, "An error occurred (404) when calling the HeadObject operation: Not Found") {
		t.Fatalf("missing object: %d %s", st, msg)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal("a failed download wrote the file")
	}
	if out, st, _ := f.awsIn("", "s3", "cp", "s3://records/nope", "-"); st != 1 || out != "" {
		t.Fatalf("missing object to stdout: %d %q", st, out)
	}
	// An unknown bucket: NoSuchBucket on upload, 404 on download.
	if _, st, msg := f.awsIn("x", "s3", "cp", "-", "s3://other/k"); st != 1 || !strings.Contains(msg, "NoSuchBucket") {
		t.Fatalf("upload to an unknown bucket: %d %s", st, msg)
	}
	if _, st, _ := f.awsIn("", "s3", "cp", "s3://other/k", "-"); st != 1 {
		t.Fatalf("download from an unknown bucket: %d", st)
	}
	// Flags and shapes it does not know are refused.
	if _, st, msg := f.awsIn("", "s3", "cp", key, "-", "--sse", "aws:kms"); st != 252 || !strings.Contains(msg, "Unknown options: --sse") {
		t.Fatalf("unknown option: %d %s", st, msg)
	}
	if _, st, _ := f.awsIn("", "s3", "cp", key, "s3://records/copy"); st != 255 {
		t.Fatalf("S3 to S3 must be refused: %d", st)
	}
	if _, st, _ := f.awsIn("", "s3", "cp", key); st != 252 {
		t.Fatalf("one path: %d", st)
	}
	if _, st, _ := f.awsIn("", "s3", "ls", "s3://records/"); st != 252 {
		t.Fatalf("s3 ls is not stood in for: %d", st)
	}

	// Every write is logged in the stand-in's state, in order.
	f.awsIn("second\n", "s3", "cp", "-", key)
	w, err := f.ecr.Cfg.S3Writes()
	if err != nil || len(w) != 2 || w[1].Key != "executions/e/build/node/22/amd64.json" || w[1].Size != 7 || w[0].SHA256 == w[1].SHA256 {
		t.Fatalf("writes: %+v %v", w, err)
	}

	// An injected fault aimed at one key fires there only.
	f.ecr.Cfg.SetFault(&Fault{Op: "s3 cp", N: 1, Match: "*/arm64.json"})
	if _, st, _ := f.awsIn("x", "s3", "cp", "-", "s3://records/a/amd64.json"); st != 0 {
		t.Fatal("the fault hit another key")
	}
	if _, st, msg := f.awsIn("x", "s3", "cp", "-", "s3://records/a/arm64.json"); st != 1 || !strings.Contains(msg, "upload failed") {
		t.Fatalf("the aimed fault did not fire: %d %s", st, msg)
	}
	if f.ecr.Cfg.FaultPending() {
		t.Fatal("a fired fault is still armed")
	}
}

func TestCloudWatchStandIn(t *testing.T) {
	f := newFixture(t)
	put := func(args ...string) (int, string) {
		_, st, msg := f.awsIn("", append([]string{"cloudwatch", "put-metric-data"}, args...)...)
		return st, msg
	}
	if st, msg := put("--namespace", "EvergreenImages", "--metric-name", "Fresh", "--unit", "Count", "--value", "1",
		"--dimensions", "Stack=EvergreenImages,Runtime=node,Version=22"); st != 0 {
		t.Fatalf("put-metric-data: %d %s", st, msg)
	}
	for _, c := range []struct {
		args   []string
		status int
		msg    string
	}{
		{[]string{"--namespace", "AWS/EC2", "--metric-name", "Fresh", "--value", "1"}, 254, "InvalidParameterValue"},
		{[]string{"--namespace", "N", "--metric-name", "Fresh", "--value", "1", "--unit", "Counts"}, 254, "InvalidParameterValue"},
		{[]string{"--namespace", "N", "--metric-name", "Fresh", "--value", "one"}, 252, "--value"},
		{[]string{"--namespace", "N", "--metric-name", "Fresh", "--value", "1", "--dimensions", "Stack"}, 252, "--dimensions"},
		{[]string{"--namespace", "N", "--metric-name", "Fresh", "--value", "1", "--dimensions", "A=1,A=2"}, 254, "twice"},
		{[]string{"--metric-name", "Fresh", "--value", "1"}, 252, "--namespace"},
		{[]string{"--namespace", "N", "--metric-name", "Fresh", "--value", "1", "--storage-resolution", "1"}, 252, "Unknown options"},
	} {
		if st, msg := put(c.args...); st != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%v: %d %s, want %d and %q", c.args, st, msg, c.status, c.msg)
		}
	}
	points, err := f.ecr.Cfg.Datapoints()
	if err != nil || len(points) != 1 {
		t.Fatalf("only the valid call is recorded: %+v %v", points, err)
	}
	p := points[0]
	if p.Namespace != "EvergreenImages" || p.MetricName != "Fresh" || p.Value != 1 || p.Unit != "Count" ||
		len(p.Dimensions) != 3 || p.Dimensions[1] != (Dimension{"Runtime", "node"}) || !p.Timestamp.Equal(f.ecr.Now()) {
		t.Fatalf("datapoint: %+v", p)
	}

	// The alarm selects exactly its dimension set, in any order.
	alarm := Alarm{LogicalID: "A", Namespace: "EvergreenImages", MetricName: "Fresh", Statistic: "Sum", Comparison: "LessThanThreshold", Threshold: 1,
		Dimensions: []Dimension{{"Runtime", "node"}, {"Stack", "EvergreenImages"}, {"Version", "22"}}}
	from, to := f.ecr.Now().Add(-time.Minute), f.ecr.Now().Add(time.Minute)
	if b, sum, err := alarm.Breaching(points, from, to); err != nil || b || sum != 1 {
		t.Fatalf("node 22 is fresh: %v %v %v", b, sum, err)
	}
	if b, _, _ := alarm.Breaching(points, to, to.Add(time.Hour)); !b {
		t.Fatal("outside the window node 22 is stale")
	}
	other := alarm
	other.Dimensions = []Dimension{{"Runtime", "node"}, {"Stack", "EvergreenImages"}, {"Version", "24"}}
	if b, _, _ := other.Breaching(points, from, to); !b {
		t.Fatal("node 24 had no datapoint: it is stale")
	}
	fewer := alarm
	fewer.Dimensions = alarm.Dimensions[:2]
	if fewer.Selects(p) {
		t.Fatal("a datapoint with one dimension more is another metric")
	}
}

func TestResolveRefs(t *testing.T) {
	refs := map[string]string{"AWS::StackName": "EvergreenImages", "ImagesRecords1": "evergreenimages-imagesrecords1-abc", "AWS::Region": "eu-west-1"}
	for v, want := range map[string]string{"AWS::StackName": "EvergreenImages", "ImagesRecords1": "evergreenimages-imagesrecords1-abc"} {
		if got, err := ResolveProjectValue(map[string]any{"Ref": v}, refs); err != nil || got != want {
			t.Errorf("Ref %s: %q %v", v, got, err)
		}
	}
	if _, err := ResolveProjectValue(map[string]any{"Ref": "SomeTopic"}, refs); err == nil {
		t.Error("a Ref to something without a stand-in must not resolve")
	}
	if got, err := ResolveProjectValue(map[string]any{"Fn::Sub": "${AWS::StackName}-${AWS::Region}"}, refs); err != nil || got != "EvergreenImages-eu-west-1" {
		t.Errorf("Fn::Sub: %q %v", got, err)
	}
}

// Two faults aimed at two entries fire once each, on their own entry's
// call, whatever the order of the calls.
func TestAimedFaults(t *testing.T) {
	c := &StandInConfig{StateDir: t.TempDir()}
	c.SetFaults([]Fault{{Op: "buildx build", N: 1, Match: "*/evergreen/node:draft-22-amd64-e"}, {Op: "buildx build", N: 1, Match: "*/evergreen/python:draft-3.13-amd64-e"}})
	call := func(tag string) bool {
		return c.countCall("buildx build", []string{"--tag", "127.0.0.1:5000/" + tag, "runtimes/x"})
	}
	if call("evergreen/node:draft-22-arm64-e") || call("evergreen/node-ci-cd:draft-22-amd64-e") {
		t.Fatal("a fault fired on another entry")
	}
	if !call("evergreen/python:draft-3.13-amd64-e") || call("evergreen/python:draft-3.13-amd64-e") {
		t.Fatal("the python fault must fire once")
	}
	if !c.FaultPending() || !call("evergreen/node:draft-22-amd64-e") || c.FaultPending() {
		t.Fatal("the node fault must fire once, and then none is pending")
	}
	if c.countCall("put-image", nil) {
		t.Fatal("no fault is armed")
	}
}

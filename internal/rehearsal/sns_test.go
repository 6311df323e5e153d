package rehearsal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSNSStandIn(t *testing.T) {
	f := newFixture(t)
	topic := "arn:aws:sns:eu-west-1:111122223333:EvergreenImages-PipelineChanges1A2B3C4D-0A1B2C3D4E5F"
	f.ecr.Cfg.Topics = []string{topic}
	dir := t.TempDir()
	file := filepath.Join(dir, "changelog.txt")
	os.WriteFile(file, []byte("node 22: unchanged\n"), 0o644)

	out, st, msg := f.aws("sns", "publish", "--topic-arn", topic, "--subject", "Evergreen images: 0 published, 1 unchanged (EvergreenImages)", "--message", "file://"+file)
	var id struct{ MessageId string }
	if st != 0 || json.Unmarshal([]byte(out), &id) != nil || id.MessageId == "" {
		t.Fatalf("publish: %d %q %s", st, out, msg)
	}
	ms, err := f.ecr.Cfg.SNSMessages()
	if err != nil || len(ms) != 1 || ms[0].TopicArn != topic || ms[0].Message != "node 22: unchanged\n" || ms[0].MessageID != id.MessageId ||
		!strings.HasPrefix(ms[0].Subject, "Evergreen images:") {
		t.Fatalf("recorded: %+v %v", ms, err)
	}
	// A message given as text, no subject.
	if _, st, msg := f.aws("sns", "publish", "--topic-arn", topic, "--message", "hello"); st != 0 {
		t.Fatalf("text message: %d %s", st, msg)
	}

	for _, c := range []struct {
		args []string
		st   int
		want string
	}{
		{[]string{"--topic-arn", strings.Replace(topic, "Changes", "Alerts", 1), "--message", "x"}, 254, "(NotFound)"},
		{[]string{"--topic-arn", "EvergreenImages-Changes", "--message", "x"}, 254, "(InvalidParameter)"},
		{[]string{"--topic-arn", topic, "--subject", strings.Repeat("s", 101), "--message", "x"}, 254, "Subject"},
		{[]string{"--topic-arn", topic, "--subject", "two\nlines", "--message", "x"}, 254, "Subject"},
		{[]string{"--topic-arn", topic, "--subject", "café", "--message", "x"}, 254, "Subject"},
		{[]string{"--topic-arn", topic, "--subject", "", "--message", "x"}, 254, "Subject"},
		{[]string{"--topic-arn", topic, "--message", ""}, 254, "Empty message"},
		{[]string{"--topic-arn", topic, "--message", strings.Repeat("m", 262145)}, 254, "Message too long"},
		{[]string{"--topic-arn", topic, "--message", "file://" + filepath.Join(dir, "missing")}, 255, "Unable to load paramfile"},
		{[]string{"--topic-arn", topic, "--message", "x", "--subjet", "s"}, 252, "Unknown options: --subjet"},
		{[]string{"--topic-arn", topic}, 252, "--message"},
		{[]string{"--topic-arn", topic, "--message", "x", "--message-structure", "json"}, 255, "not emulated"},
	} {
		if _, st, msg := f.aws(append([]string{"sns", "publish"}, c.args...)...); st != c.st || !strings.Contains(msg, c.want) {
			t.Errorf("%v: %d %q, want %d %q", c.args, st, msg, c.st, c.want)
		}
	}
	// Exactly 100 ASCII characters and 262144 bytes are accepted.
	if _, st, msg := f.aws("sns", "publish", "--topic-arn", topic, "--subject", strings.Repeat("s", 100), "--message", strings.Repeat("m", 262144)); st != 0 {
		t.Fatalf("at the limits: %d %s", st, msg)
	}
	if ms, _ := f.ecr.Cfg.SNSMessages(); len(ms) != 3 {
		t.Fatalf("%d messages recorded, want 3 (refused ones are not)", len(ms))
	}
}

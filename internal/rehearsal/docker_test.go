package rehearsal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestImagetoolsInspectRaw(t *testing.T) {
	f := newFixture(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", "")
	// The base stand-in registry holds library/node:22-trixie, an index, as
	// registries.conf maps public.ecr.aws/docker/library to it.
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.NewTag(f.reg+"/library/node:22-trixie", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	cfg := f.ecr.Cfg
	cfg.BaseMirrors = []Mirror{{Prefix: "public.ecr.aws/docker/library", Location: f.reg + "/library"}, {Prefix: "public.ecr.aws", Location: "nowhere.invalid"}}

	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		d := &Docker{Cfg: cfg, Stdout: &out, Stderr: &errOut}
		err := d.RunDocker(args)
		var st Status
		switch {
		case err == nil:
			return out.String(), errOut.String(), 0
		case errors.As(err, &st):
			return out.String(), errOut.String(), int(st)
		}
		t.Fatalf("docker %v: %v", args, err)
		return "", "", 0
	}
	// The raw bytes: their sha256 is the digest the registry serves.
	out, errOut, st := run("buildx", "imagetools", "inspect", "--raw", "public.ecr.aws/docker/library/node:22-trixie")
	sum := sha256.Sum256([]byte(out))
	if st != 0 || "sha256:"+hex.EncodeToString(sum[:]) != want.String() {
		t.Fatalf("inspect --raw: %d, sha256 %x, want %s; %s", st, sum, want, errOut)
	}
	raw, _ := idx.RawManifest()
	if out != string(raw) {
		t.Fatalf("not the stored bytes")
	}
	// A missing tag fails as buildx does.
	if _, errOut, st := run("buildx", "imagetools", "inspect", "--raw", "public.ecr.aws/docker/library/node:99-trixie"); st != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("missing: %d %s", st, errOut)
	}
	// Another registry has no stand-in; other flags are refused.
	if _, _, st := run("buildx", "imagetools", "inspect", "--raw", "docker.io/library/node:22"); st != 1 {
		t.Fatalf("unknown registry: %d", st)
	}
	if _, errOut, st := run("buildx", "imagetools", "inspect", "--raw", "--verbose", "public.ecr.aws/docker/library/node:22-trixie"); st != 125 || !strings.Contains(errOut, "unknown flag: --verbose") {
		t.Fatalf("unknown flag: %d %s", st, errOut)
	}
	if _, _, st := run("buildx", "imagetools", "inspect", "public.ecr.aws/docker/library/node:22-trixie"); st != 125 {
		t.Fatalf("without --raw: %d", st)
	}
}

func TestResolveMirror(t *testing.T) {
	c := &StandInConfig{Registry: "127.0.0.1:1", PublicRegistry: "127.0.0.1:2",
		BaseMirrors: []Mirror{{"public.ecr.aws/docker/library", "127.0.0.1:2/library"}}}
	for in, want := range map[string]string{
		"public.ecr.aws/docker/library/node:22-trixie":     "127.0.0.1:2/library/node:22-trixie",
		"public.ecr.aws/docker/library/python@sha256:abcd": "127.0.0.1:2/library/python@sha256:abcd",
		"127.0.0.1:1/evergreen/node:22":                    "127.0.0.1:1/evergreen/node:22",
		"public.ecr.aws/docker/libraryx/node:22":           "",
		"docker.io/library/node:22":                        "",
	} {
		if got, _ := c.resolveMirror(in); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// docker run: the entry point, then everything after the image, is the
// container's command line (Verify's inventory: --entrypoint sh IMAGE -c
// SCRIPT); docker's flags stop at the image.
func TestParseRun(t *testing.T) {
	script := "set -eu\necho \"$HOME\" -x --rm"
	flags, img, cmd, err := parseRun([]string{"--rm", "--platform", "linux/arm64", "--entrypoint", "sh", "reg/evergreen/node@sha256:ab", "-c", script})
	if err != nil || img != "reg/evergreen/node@sha256:ab" || !slices.Equal(cmd, []string{"sh", "-c", script}) ||
		last(flags, "platform") != "linux/arm64" || last(flags, "rm") != "true" {
		t.Fatalf("%v %q %q %v", flags, img, cmd, err)
	}
	_, img, cmd, err = parseRun([]string{"--rm", "--platform=linux/amd64", "--env", "EXPECTED_VERSION=22", "--entrypoint=self-test", "img"})
	if err != nil || img != "img" || !slices.Equal(cmd, []string{"self-test"}) {
		t.Fatalf("self-test: %q %q %v", img, cmd, err)
	}
	if _, _, _, err := parseRun([]string{"--rm", "--pull", "always", "img"}); err == nil || !strings.Contains(err.Error(), "unknown flag: --pull") {
		t.Fatalf("unknown flag: %v", err)
	}
	if _, _, _, err := parseRun([]string{"--rm", "img"}); err == nil {
		t.Fatalf("no command and no entry point: accepted")
	}
}

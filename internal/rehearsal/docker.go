package rehearsal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The docker stand-in. `docker login` is the real Docker client (it logs in
// client side when there is no daemon). The verbs that need a daemon run on
// podman and buildah, with an image store of the build's own (under $HOME,
// which the rehearsal makes new for every build: every CodeBuild build is a
// new machine with an empty image store).

// Docker runs one docker command line.
type Docker struct {
	Cfg    *StandInConfig
	Stdout io.Writer
	Stderr io.Writer
	Now    func() time.Time
}

// Status is an exit status to leave with.
type Status int

func (s Status) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

func (d *Docker) storage() (root, runroot string) {
	home := os.Getenv("HOME")
	return filepath.Join(home, ".rehearsal-containers", "storage"), RunRoot(home)
}

// RunRoot is the image store's run directory for a build's HOME: podman
// wants it under 50 characters.
func RunRoot(home string) string {
	h := sha256.Sum256([]byte(home))
	return "/tmp/rehearsal-run-" + hex.EncodeToString(h[:6])
}

func (d *Docker) authFile() string {
	if dc := os.Getenv("DOCKER_CONFIG"); dc != "" {
		return filepath.Join(dc, "config.json")
	}
	return filepath.Join(os.Getenv("HOME"), ".docker", "config.json")
}

func (d *Docker) tool(toolName string, args ...string) *exec.Cmd {
	root, runroot := d.storage()
	full := append([]string{"--root", root, "--runroot", runroot, "--storage-driver", "overlay"}, args...)
	cmd := exec.Command(toolName, full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_REGISTRIES_CONF="+d.Cfg.RegistriesConf, "REGISTRY_AUTH_FILE="+d.authFile())
	cmd.Stdout, cmd.Stderr = d.Stdout, d.Stderr
	return cmd
}

func (d *Docker) run(cmd *exec.Cmd) error {
	fmt.Fprintf(d.Stderr, "[stand-in] %s\n", strings.Join(cmd.Args, " "))
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return Status(ee.ExitCode())
	}
	return err
}

// RunDocker runs `docker ARGS`.
func (d *Docker) RunDocker(args []string) error {
	if len(args) == 0 {
		return d.usage("docker: no command")
	}
	switch {
	case args[0] == "login":
		// public.ecr.aws is served by the local base registry (registries.conf):
		// the real client logs in there instead.
		if last := len(args) - 1; args[last] == "public.ecr.aws" && d.Cfg.PublicRegistry != "" {
			fmt.Fprintf(d.Stderr, "[stand-in] docker login public.ecr.aws: logging in to its stand-in %s\n", d.Cfg.PublicRegistry)
			args = append(append([]string{}, args[:last]...), d.Cfg.PublicRegistry)
		}
		cmd := exec.Command(d.Cfg.RealDocker, args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, d.Stdout, d.Stderr
		return d.run(cmd)
	case len(args) > 1 && args[0] == "buildx" && args[1] == "build":
		return d.build(args[2:])
	case len(args) > 2 && args[0] == "buildx" && args[1] == "imagetools" && args[2] == "inspect":
		return d.imagetoolsInspect(args[3:])
	case args[0] == "pull":
		return d.pull(args[1:])
	case len(args) > 1 && args[0] == "image" && args[1] == "inspect":
		return d.inspect(args[2:])
	case args[0] == "run":
		return d.runContainer(args[1:])
	}
	return d.usage(fmt.Sprintf("rehearsal stand-in: `docker %s` is not stood in for (it needs a Docker daemon)", strings.Join(args, " ")))
}

func (d *Docker) usage(msg string) error {
	fmt.Fprintln(d.Stderr, msg)
	return Status(125)
}

// flags parses docker-style flags: names maps each accepted flag to whether
// it takes a value. It returns the flags (repeatable) and the positionals.
func parseFlags(cmd string, args []string, names map[string]bool) (map[string][]string, []string, error) {
	flags := map[string][]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		key, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes, ok := names[key]
		if !ok {
			return nil, nil, fmt.Errorf("unknown flag: %s\nSee 'docker %s --help'.", a, cmd)
		}
		if takes && !hasVal {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("flag needs an argument: %s", a)
			}
			i++
			val = args[i]
		}
		if !takes && !hasVal {
			val = "true"
		}
		flags[key] = append(flags[key], val)
	}
	return flags, pos, nil
}

func last(flags map[string][]string, k string) string {
	if v := flags[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// build stands in for `docker buildx build`: podman build (chroot
// isolation), then podman push of a single image manifest, as buildx does
// with --provenance=false --sbom=false.
func (d *Docker) build(args []string) error {
	flags, pos, err := parseFlags("buildx build", args, map[string]bool{
		"platform": true, "pull": false, "provenance": true, "sbom": true, "build-arg": true,
		"label": true, "tag": true, "t": true, "push": false, "file": true, "f": true, "no-cache": false,
	})
	if err != nil {
		return d.usage(err.Error())
	}
	if len(pos) != 1 {
		return d.usage(fmt.Sprintf("ERROR: \"docker buildx build\" requires exactly 1 argument (got %d)", len(pos)))
	}
	for _, k := range []string{"provenance", "sbom"} {
		if last(flags, k) != "false" {
			// buildx would push an index with an attestation manifest: the
			// stand-in does not emulate that, so it refuses loudly.
			return d.usage(fmt.Sprintf("rehearsal stand-in: docker buildx build without --%s=false would push an index with attestations; that is not emulated", k))
		}
	}
	tags := append(flags["tag"], flags["t"]...)
	bargs := []string{"build", "--isolation=chroot", "--format", "docker"}
	if p := last(flags, "platform"); p != "" {
		bargs = append(bargs, "--platform", p)
	}
	if last(flags, "pull") == "true" {
		bargs = append(bargs, "--pull-always")
	} else {
		bargs = append(bargs, "--pull=missing")
	}
	if last(flags, "no-cache") == "true" {
		bargs = append(bargs, "--no-cache")
	}
	for _, f := range append(flags["file"], flags["f"]...) {
		bargs = append(bargs, "--file", f)
	}
	for _, b := range flags["build-arg"] {
		bargs = append(bargs, "--build-arg", b)
	}
	for _, l := range flags["label"] {
		bargs = append(bargs, "--label", l)
	}
	for _, t := range tags {
		bargs = append(bargs, "--tag", t)
	}
	bargs = append(bargs, pos[0])
	push := last(flags, "push") == "true"
	// ECR refuses a push to a repository that does not exist, and to an
	// immutable tag that exists; the registry would accept both.
	if push {
		for _, t := range tags {
			if err := d.checkPushTarget(t); err != nil {
				return err
			}
		}
	}
	// Every build is logged in the stand-in's state: the rehearsal reads it
	// back to tell an entry that skipped from one that built.
	fault := d.Cfg.countCall("buildx build", args)
	if err := d.Cfg.appendJSONLine(dockerBuildsFile, DockerBuild{Time: d.Now().UTC(), Tags: tags, Platform: last(flags, "platform"), Fault: fault}); err != nil {
		return err
	}
	if fault {
		fmt.Fprintln(d.Stderr, "ERROR: failed to solve: failed to fetch the base image: 503 Service Unavailable (injected by the rehearsal: a transient failure)")
		return Status(1)
	}
	if err := d.run(d.tool("podman", bargs...)); err != nil {
		fmt.Fprintln(d.Stderr, "ERROR: failed to solve: the build failed (podman build, above)")
		return Status(1)
	}
	if !push {
		return nil
	}
	for _, t := range tags {
		df, err := os.CreateTemp("", "digest")
		if err != nil {
			return err
		}
		df.Close()
		defer os.Remove(df.Name())
		if err := d.run(d.tool("podman", "push", "--authfile", d.authFile(), "--digestfile", df.Name(), t)); err != nil {
			fmt.Fprintf(d.Stderr, "ERROR: failed to push %s\n", t)
			return Status(1)
		}
		digest, err := os.ReadFile(df.Name())
		if err != nil {
			return err
		}
		ref, _ := name.ParseReference(t, name.Insecure)
		unlock, err := d.Cfg.Lock()
		if err != nil {
			return err
		}
		err = d.Cfg.RecordPush(ref.Context().RepositoryStr(), strings.TrimSpace(string(digest)), d.Now())
		unlock()
		if err != nil {
			return err
		}
		fmt.Fprintf(d.Stdout, "pushed %s@%s\n", t, strings.TrimSpace(string(digest)))
	}
	return nil
}

func (d *Docker) checkPushTarget(t string) error {
	ref, err := name.ParseReference(t, name.Insecure)
	if err != nil {
		return d.usage(fmt.Sprintf("ERROR: invalid tag %q: %v", t, err))
	}
	if ref.Context().RegistryStr() != d.Cfg.Registry {
		return nil
	}
	r, ok := d.Cfg.Repo(ref.Context().RepositoryStr())
	if !ok {
		fmt.Fprintf(d.Stderr, "ERROR: failed to push %s: name unknown: The repository with name '%s' does not exist in the registry with id '%s'\n", t, ref.Context().RepositoryStr(), d.Cfg.Account)
		return Status(1)
	}
	if tag, ok := ref.(name.Tag); ok && r.Immutable(tag.TagStr()) {
		e := &ECR{Cfg: d.Cfg}
		m, err := e.get(ref.Context(), tag.TagStr())
		if err != nil {
			return err
		}
		if m != nil {
			fmt.Fprintf(d.Stderr, "ERROR: failed to push %s: tag invalid: The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable.\n", t, tag.TagStr(), r.Name)
			return Status(1)
		}
	}
	return nil
}

// pull stands in for `docker pull`: podman pull into the build's store, with
// the credentials docker login stored.
func (d *Docker) pull(args []string) error {
	flags, pos, err := parseFlags("pull", args, map[string]bool{"platform": true, "quiet": false, "q": false})
	if err != nil {
		return d.usage(err.Error())
	}
	if len(pos) != 1 {
		return d.usage(fmt.Sprintf("\"docker pull\" requires exactly 1 argument."))
	}
	pargs := []string{"pull", "--authfile", d.authFile()}
	if p := last(flags, "platform"); p != "" {
		pargs = append(pargs, "--platform", p)
	}
	if err := d.run(d.tool("podman", append(pargs, pos[0])...)); err != nil {
		fmt.Fprintf(d.Stderr, "Error response from daemon: pull of %s failed (podman pull, above)\n", pos[0])
		return Status(1)
	}
	return nil
}

// inspect stands in for `docker image inspect --format`.
func (d *Docker) inspect(args []string) error {
	flags, pos, err := parseFlags("image inspect", args, map[string]bool{"format": true, "f": true})
	if err != nil {
		return d.usage(err.Error())
	}
	if len(pos) == 0 {
		return d.usage("\"docker image inspect\" requires at least 1 argument.")
	}
	iargs := []string{"image", "inspect"}
	if f := last(flags, "format") + last(flags, "f"); f != "" {
		iargs = append(iargs, "--format", f)
	}
	if err := d.run(d.tool("podman", append(iargs, pos...)...)); err != nil {
		return Status(1)
	}
	return nil
}

// parseRun splits `docker run` arguments into its flags, the image and the
// command the container runs (the entry point first, then the arguments
// after the image, as docker passes them). docker stops reading its own
// flags at the image: what follows (`-c SCRIPT`) belongs to the command.
func parseRun(args []string) (flags map[string][]string, img string, cmdArgs []string, err error) {
	var flagArgs, rest []string
	known := map[string]bool{"rm": false, "platform": true, "env": true, "e": true, "entrypoint": true}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			rest = args[i:]
			break
		}
		flagArgs = append(flagArgs, a)
		k, _, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if known[k] && !hasVal && i+1 < len(args) {
			i++
			flagArgs = append(flagArgs, args[i])
		}
	}
	flags, _, err = parseFlags("run", flagArgs, known)
	if err != nil {
		return nil, "", nil, err
	}
	if len(rest) == 0 {
		return nil, "", nil, fmt.Errorf("\"docker run\" requires at least 1 argument.")
	}
	img, cmdArgs = rest[0], append([]string{}, rest[1:]...)
	if ep := last(flags, "entrypoint"); ep != "" {
		cmdArgs = append([]string{ep}, cmdArgs...)
	} else if len(cmdArgs) == 0 {
		return nil, "", nil, fmt.Errorf("rehearsal stand-in: docker run without --entrypoint or a command is not emulated")
	}
	return flags, img, cmdArgs, nil
}

// runContainer stands in for `docker run`: buildah from + buildah run with
// chroot isolation (podman run does not work on this machine), then
// buildah rm (--rm). The container's stdout is the command's stdout, and
// nothing else is: what the stand-in itself says goes to stderr, as
// docker's pull progress does, so that `X=$(docker run ...)` captures
// only what the container printed.
func (d *Docker) runContainer(args []string) error {
	flags, img, cmdArgs, err := parseRun(args)
	if err != nil {
		return d.usage(err.Error())
	}
	if p := last(flags, "platform"); p != "" {
		root, runroot := d.storage()
		out, err := exec.Command("podman", "--root", root, "--runroot", runroot, "--storage-driver", "overlay",
			"image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", img).Output()
		if err != nil {
			// docker run pulls a missing image; podman pull prints the
			// image id on stdout, which docker run would not.
			quiet := *d
			quiet.Stdout = d.Stderr
			if err := quiet.pull([]string{"--platform", p, img}); err != nil {
				return err
			}
		} else if got := strings.TrimSpace(string(out)); got != p {
			fmt.Fprintf(d.Stderr, "docker: Error response from daemon: image with reference %s was found but its platform (%s) does not match the specified platform (%s)\n", img, got, p)
			return Status(125)
		}
	}
	var c strings.Builder
	from := d.tool("buildah", "from", "--pull=never", img)
	from.Stdout = &c
	if err := d.run(from); err != nil {
		return Status(125)
	}
	container := strings.TrimSpace(c.String())
	rargs := []string{"run", "--isolation", "chroot"}
	for _, e := range append(flags["env"], flags["e"]...) {
		if !strings.Contains(e, "=") {
			v, ok := os.LookupEnv(e)
			if !ok {
				continue
			}
			e += "=" + v
		}
		rargs = append(rargs, "--env", e)
	}
	rargs = append(rargs, container, "--")
	rargs = append(rargs, cmdArgs...)
	runErr := d.run(d.tool("buildah", rargs...))
	if last(flags, "rm") == "true" {
		rm := d.tool("buildah", "rm", container)
		rm.Stdout = io.Discard
		d.run(rm)
	}
	return runErr
}

// resolveMirror maps a reference to the registry that stands in for it,
// the way registries.conf maps a pull (the longest prefix that ends at a
// path, tag or digest separator). References to the stand-in registries
// themselves are kept; any other registry has no stand-in.
func (c *StandInConfig) resolveMirror(ref string) (string, bool) {
	best := -1
	for i, m := range c.BaseMirrors {
		rest, ok := strings.CutPrefix(ref, m.Prefix)
		if ok && (rest == "" || strings.ContainsAny(rest[:1], "/:@")) && (best < 0 || len(m.Prefix) > len(c.BaseMirrors[best].Prefix)) {
			best = i
		}
	}
	if best >= 0 {
		return c.BaseMirrors[best].Location + strings.TrimPrefix(ref, c.BaseMirrors[best].Prefix), true
	}
	for _, reg := range []string{c.Registry, c.PublicRegistry} {
		if reg != "" && strings.HasPrefix(ref, reg+"/") {
			return ref, true
		}
	}
	return "", false
}

// imagetoolsInspect stands in for `docker buildx imagetools inspect --raw
// REF`: the manifest (an index for a multi-platform image) exactly as the
// registry holds it, so that its sha256 is the digest. It reads the
// registry that stands in for REF's (the base images' registry for
// public.ecr.aws/...), with the credentials `docker login` stored, as
// buildx does without a daemon. The formatted output (without --raw, or
// --format) is not emulated.
func (d *Docker) imagetoolsInspect(args []string) error {
	flags, pos, err := parseFlags("buildx imagetools inspect", args, map[string]bool{"raw": false})
	if err != nil {
		return d.usage(err.Error())
	}
	if len(pos) != 1 {
		fmt.Fprintf(d.Stderr, "ERROR: \"docker buildx imagetools inspect\" requires exactly 1 argument (got %d)\n", len(pos))
		return Status(1)
	}
	if last(flags, "raw") != "true" {
		return d.usage("rehearsal stand-in: docker buildx imagetools inspect without --raw (its formatted output) is not emulated")
	}
	local, ok := d.Cfg.resolveMirror(pos[0])
	if !ok {
		fmt.Fprintf(d.Stderr, "rehearsal stand-in: no stand-in registry for %s (only the base images' registries and the ECR stand-in are)\n", pos[0])
		return Status(1)
	}
	ref, err := name.ParseReference(local, name.Insecure)
	if err != nil {
		fmt.Fprintf(d.Stderr, "ERROR: invalid reference format: %s\n", pos[0])
		return Status(1)
	}
	fmt.Fprintf(d.Stderr, "[stand-in] docker buildx imagetools inspect --raw %s: reading %s\n", pos[0], local)
	desc, err := remote.Get(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		if isNotFound(err) {
			fmt.Fprintf(d.Stderr, "ERROR: %s: not found\n", pos[0])
		} else {
			fmt.Fprintf(d.Stderr, "ERROR: %s: %v\n", pos[0], err)
		}
		return Status(1)
	}
	_, err = d.Stdout.Write(desc.Manifest)
	return err
}

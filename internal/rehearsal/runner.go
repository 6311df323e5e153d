package rehearsal

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// --- registries ---------------------------------------------------------------------

// RegistryProc is a distribution 2.8 registry (Debian's docker-registry)
// started by the rehearsal on 127.0.0.1.
type RegistryProc struct {
	Addr    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// StartRegistry starts a registry in dir; with user set, htpasswd
// authentication is on.
func StartRegistry(dir, user, password string) (*RegistryProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	auth := ""
	if user != "" {
		out, err := exec.Command("htpasswd", "-Bbn", user, password).Output()
		if err != nil {
			return nil, fmt.Errorf("htpasswd (apache2-utils): %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: rehearsal\n    path: %s\n", filepath.Join(dir, "htpasswd"))
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
%s`, filepath.Join(dir, "data"), addr, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("docker-registry (Debian package docker-registry): %w", err)
	}
	r := &RegistryProc{Addr: addr, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(r.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			want := http.StatusOK
			if user != "" {
				want = http.StatusUnauthorized
			}
			if resp.StatusCode != want {
				r.Stop()
				return nil, fmt.Errorf("registry on %s answered /v2/ with %d, want %d", addr, resp.StatusCode, want)
			}
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("the registry exited at start (log: %s)", logPath)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("the registry did not answer on %s within 20 s (log: %s)", addr, logPath)
		}
	}
}

// Stop ends the registry (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (r *RegistryProc) Stop() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
}

// LogSize is the current size of the registry log (a position for Traffic).
func (r *RegistryProc) LogSize() int64 {
	fi, err := os.Stat(r.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Traffic counts blob requests in the registry log between two positions.
type Traffic struct {
	LayerReads, LayerWrites   int
	LayerBytesRead            int64
	LayerBytesWritten         int64
	ConfigReads, ConfigWrites int
	ConfigBytesRead           int64
	UploadRequests            int // POST/PATCH/PUT under /blobs/uploads/
	ManifestRequests          int
	// UploadedLayers are the layer digests whose upload completed (the
	// registry logs no request size: their sizes are looked up after).
	UploadedLayers []string
	// ReadLayers are the digests of the layer blobs read (GET or HEAD,
	// the existence check before an upload included).
	ReadLayers []string
	// ManifestWrites are the manifest PUTs and DELETEs, "METHOD path".
	ManifestWrites []string
}

// CountTraffic reads the registry's JSON log from position from to to and
// classifies blob requests: configs is the set of digests that are image
// config blobs; every other blob is a layer.
func CountTraffic(logPath string, from, to int64, configs map[string]bool) (Traffic, error) {
	var t Traffic
	f, err := os.Open(logPath)
	if err != nil {
		return t, err
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		return t, err
	}
	sc := bufio.NewScanner(&limitedReader{f, to - from})
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg     string `json:"msg"`
			Method  string `json:"http.request.method"`
			URI     string `json:"http.request.uri"`
			Status  int    `json:"http.response.status"`
			Written int64  `json:"http.response.written"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "response completed" {
			continue
		}
		u, err := url.Parse(l.URI)
		if err != nil {
			continue
		}
		p := u.Path
		switch {
		case strings.Contains(p, "/blobs/uploads/"):
			t.UploadRequests++
			digest := u.Query().Get("digest")
			if mount := u.Query().Get("mount"); mount != "" {
				digest = mount
			}
			if digest == "" {
				continue // the start or a chunk of an upload: counted above
			}
			if configs[digest] {
				t.ConfigWrites++
			} else {
				t.LayerWrites++
				t.UploadedLayers = append(t.UploadedLayers, digest)
			}
		case strings.Contains(p, "/blobs/"):
			digest := p[strings.LastIndex(p, "/")+1:]
			if configs[digest] {
				t.ConfigReads++
				if l.Method == http.MethodGet {
					t.ConfigBytesRead += l.Written
				}
			} else {
				t.LayerReads++
				t.ReadLayers = append(t.ReadLayers, digest)
				if l.Method == http.MethodGet {
					t.LayerBytesRead += l.Written
				}
			}
		case strings.Contains(p, "/manifests/"):
			t.ManifestRequests++
			if l.Method == http.MethodPut || l.Method == http.MethodDelete {
				t.ManifestWrites = append(t.ManifestWrites, l.Method+" "+p)
			}
		}
	}
	return t, sc.Err()
}

// Add sums two counts.
func (t *Traffic) Add(o Traffic) {
	t.LayerReads += o.LayerReads
	t.LayerWrites += o.LayerWrites
	t.LayerBytesRead += o.LayerBytesRead
	t.LayerBytesWritten += o.LayerBytesWritten
	t.ConfigReads += o.ConfigReads
	t.ConfigWrites += o.ConfigWrites
	t.ConfigBytesRead += o.ConfigBytesRead
	t.UploadRequests += o.UploadRequests
	t.ManifestRequests += o.ManifestRequests
	t.UploadedLayers = append(t.UploadedLayers, o.UploadedLayers...)
	t.ReadLayers = append(t.ReadLayers, o.ReadLayers...)
	t.ManifestWrites = append(t.ManifestWrites, o.ManifestWrites...)
}

type limitedReader struct {
	f *os.File
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

// --- running a build --------------------------------------------------------------------

// NewUUID returns a random (version 4) UUID, like a pipeline execution id.
func NewUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Env is the environment of one build, as CodeBuild assembles it.
type Env struct {
	// Values CodeBuild itself sets (AWS_REGION, CODEBUILD_*).
	CodeBuild []Var
	// Project variables, resolved.
	Project []Var
	// Pipeline action variables, resolved.
	Action []Var
}

// BuildEnv merges the levels. The same name at two levels is an error:
// which one wins for batch entries is not documented (docs/aws-facts), so a
// pipeline that relies on it is not rehearsable.
func BuildEnv(base []string, env Env, spec Buildspec, e Entry) ([]string, error) {
	seen := map[string]string{}
	out := append([]string{}, base...)
	levels := []struct {
		name string
		vars []Var
	}{{"CodeBuild", env.CodeBuild}, {"project", env.Project}, {"pipeline action", env.Action}, {"buildspec env", spec.Vars}, {"build-graph entry " + e.ID, e.Vars}}
	for _, l := range levels {
		for _, v := range l.vars {
			if prev, ok := seen[v.Name]; ok {
				return nil, fmt.Errorf("%s is set by both the %s and the %s: which wins is not documented for batch builds", v.Name, prev, l.name)
			}
			seen[v.Name] = l.name
			out = append(out, v.Name+"="+v.Value)
		}
	}
	return out, nil
}

// Script turns the phases into one sh script, the way CodeBuild (buildspec
// version 0.2) runs them: every command of every phase in the same shell
// session, in order; after each command its exit status is checked, and a
// non-zero status fails the build there (the remaining commands and phases
// do not run). CodeBuild logs each command before running it; so does this.
func Script(phases []Phase) (string, error) {
	var b strings.Builder
	// A command may end the shell itself (exit, or set -e in an earlier
	// command): the EXIT trap names the command that was running.
	b.WriteString(`__rehearsal_cmd=''
trap '__rehearsal_rc=$?; if [ "$__rehearsal_rc" -ne 0 ]; then printf "%s%s exit status %s\n" "[Container] Command did not exit successfully " "$__rehearsal_cmd" "$__rehearsal_rc" >&2; fi' EXIT
`)
	for _, ph := range phases {
		if ph.Name == "post_build" {
			return "", fmt.Errorf("post_build runs even after a failed build on CodeBuild: not emulated")
		}
		fmt.Fprintf(&b, "printf '%%s\\n' '[Container] Entering phase %s'\n", strings.ToUpper(ph.Name))
		for _, c := range ph.Commands {
			fmt.Fprintf(&b, "__rehearsal_cmd=%s\n", shQuote(firstLine(c)))
			fmt.Fprintf(&b, "printf '%%s\\n' %s\n", shQuote("[Container] Running command "+c))
			b.WriteString(c)
			b.WriteString("\n")
			b.WriteString("__rehearsal_rc=$?; if [ \"$__rehearsal_rc\" -ne 0 ]; then exit \"$__rehearsal_rc\"; fi\n")
		}
	}
	b.WriteString("__rehearsal_cmd=''\n")
	return b.String(), nil
}

func firstLine(s string) string {
	l, _, more := strings.Cut(s, "\n")
	if more {
		return l + " ..."
	}
	return l
}

func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// RunResult is the outcome of one build.
type RunResult struct {
	Err     error
	Seconds float64
	Log     string
	// FailedCommand is the first line of the command that failed, if any.
	FailedCommand string
}

// RunScript runs script with sh -c in dir with env, logging to logPath,
// and kills the whole process group at the timeout.
func RunScript(script, dir string, env []string, logPath string, timeout time.Duration) RunResult {
	start := time.Now()
	res := RunResult{Log: logPath}
	f, err := os.Create(logPath)
	if err != nil {
		res.Err = err
		return res
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		res.Err = err
		return res
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("timed out after %s (the project's build timeout)", timeout)
	}
	// Nothing a build started may outlive it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	res.Seconds = time.Since(start).Seconds()
	res.Err = err
	if err != nil {
		f.Sync()
		if data, rerr := os.ReadFile(logPath); rerr == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if s, ok := strings.CutPrefix(l, "[Container] Command did not exit successfully "); ok {
					res.FailedCommand = s
				}
			}
		}
	}
	return res
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

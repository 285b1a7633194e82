package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	readyPoll    = 5 * time.Millisecond
	readyTimeout = 60 * time.Second
	idleSettle   = 500 * time.Millisecond
	stopGrace    = 10 * time.Second
)

// errStopTimeout means the server ignored SIGTERM for longer than stopGrace
// and had to be killed.
var errStopTimeout = fmt.Errorf("did not exit within %s of SIGTERM", stopGrace)

// processSpec says how to start a server under test.
type processSpec struct {
	path    string
	args    []string
	env     map[string]string // PLUGBOARD_* variables; inherited ones are dropped
	logPath string            // receives the server's stdout and stderr
}

// serverProcess is a running server under test.
type serverProcess struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	started time.Time
	exited  chan struct{} // closed once the process has exited
	waitErr error         // valid after exited is closed
}

// startServer starts spec listening on addr. The caller must call stop.
func startServer(spec processSpec, addr string) (*serverProcess, error) {
	logFile, err := os.Create(spec.logPath)
	if err != nil {
		return nil, fmt.Errorf("creating server log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor

	cmd := exec.Command(spec.path, spec.args...)
	cmd.Env = serverEnv(os.Environ(), spec.env)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()

	p := &serverProcess{cmd: cmd, addr: addr, logPath: spec.logPath, exited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.path, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// serverEnv returns the inherited environment without any PLUGBOARD_*
// variable, so that a developer's own settings cannot leak into a run, plus
// the given ones.
func serverEnv(inherited []string, set map[string]string) []string {
	env := make([]string, 0, len(inherited)+len(set))
	for _, kv := range inherited {
		if !strings.HasPrefix(kv, "PLUGBOARD_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// baseURL is the server's address as an HTTP URL.
func (p *serverProcess) baseURL() string { return "http://" + p.addr }

// waitReady polls GET /readyz until it answers 200 and returns the time from
// process start to that answer.
func (p *serverProcess) waitReady(ctx context.Context) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.baseURL()+"/readyz", nil)
		if err != nil {
			return 0, fmt.Errorf("polling readiness: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
		}
		select {
		case <-tick.C:
		case <-p.exited:
			return 0, fmt.Errorf("server exited before it was ready (%s)", exitStatus(p.waitErr))
		case <-deadline.C:
			return 0, fmt.Errorf("server not ready after %s", readyTimeout)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// memory reads the resident set size and its high-water mark, in bytes.
func (p *serverProcess) memory() (rss, peak uint64, err error) {
	path := filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "status")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("reading memory use: %w", err)
	}
	return statusField(b, "VmRSS"), statusField(b, "VmHWM"), nil
}

// statusField returns a "Name:   1234 kB" field of /proc/<pid>/status in bytes.
func statusField(status []byte, name string) uint64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != name {
			continue
		}
		kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		return kb << 10
	}
	return 0
}

// clockTicks is the unit of utime and stime in /proc/<pid>/stat (USER_HZ):
// 100 per second on every architecture Go runs Linux on.
const clockTicks = 100

// cpuTime reads the CPU time the server has used so far, user and system.
func (p *serverProcess) cpuTime() (time.Duration, error) {
	path := filepath.Join("/proc", strconv.Itoa(p.cmd.Process.Pid), "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	d, err := statCPU(b)
	if err != nil {
		return 0, fmt.Errorf("reading CPU time from %s: %w", path, err)
	}
	return d, nil
}

// statCPU returns utime + stime of a /proc/<pid>/stat line. The command
// name, in parentheses, may hold spaces and parentheses itself, so the
// fields are counted from the last ')'.
func statCPU(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("no command name")
	}
	// After the name come state (field 3) ... utime (14) and stime (15).
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(fields))
	}
	var ticks uint64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("CPU time %q: %w", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / clockTicks), nil
}

// stop sends SIGTERM and waits up to stopGrace for the process to exit,
// killing it after that. It returns errStopTimeout when the process had to be
// killed, and the exit error when it exited unsuccessfully.
func (p *serverProcess) stop() error {
	select {
	case <-p.exited:
		return fmt.Errorf("server had already exited (%s)", exitStatus(p.waitErr))
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errStopTimeout
	}
}

// exitStatus describes the result of cmd.Wait.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// logTail returns the last n lines the server wrote, for error reports.
func (p *serverProcess) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// buildPlugboard builds ./cmd/plugboard of the enclosing module into dir.
func buildPlugboard(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("locating the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the plugboard module: run from its checkout or pass -bin")
	}
	bin := filepath.Join(dir, "plugboard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/plugboard")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/plugboard (pass -bin, or -skip-plugboard for the baseline alone): %w\n%s", err, out)
	}
	return bin, nil
}

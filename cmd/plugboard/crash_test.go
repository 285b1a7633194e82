package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestCrashLosesNothing kills the server with SIGKILL while it accepts
// webhooks and delivers them, restarts it, and checks that every webhook
// that was answered 202 is delivered, each message always with the same
// Idempotency-Key.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testCrash(t, bin, backend)
		})
	}
}

// deliveries records what the sink received: message n -> keys seen.
type deliveries struct {
	mu   sync.Mutex
	keys map[int]map[string]int
}

func (d *deliveries) has(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys[n]) > 0
}

func testCrash(t *testing.T, bin, backend string) {
	cfg := storetest.Config(t, backend)
	d := &deliveries{keys: map[int]map[string]int{}}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ N int }
		_ = json.NewDecoder(r.Body).Decode(&body)
		time.Sleep(time.Millisecond) // a little latency keeps steps in flight
		d.mu.Lock()
		if d.keys[body.N] == nil {
			d.keys[body.N] = map[string]int{}
		}
		d.keys[body.N][r.Header.Get("Idempotency-Key")]++
		d.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer sink.Close()

	addr := freeAddr(t)
	start := func() *server {
		return startServer(t, bin, addr, "PLUGBOARD_DATA_DIR="+cfg.DataDir, "PLUGBOARD_DATABASE_URL="+cfg.DatabaseURL,
			"PLUGBOARD_NODE_ID=crash-node")
	}
	srv := start()
	base := "http://" + addr
	token := signIn(t, base)
	hook := createStartedFlow(t, base, token, sink.URL)

	// Load until the kill; remember every n that was answered 202.
	var accepted sync.Map
	var count atomic.Int64
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := int(next.Add(1))
				resp, err := client.Post(hook, "application/json", bytes.NewReader(fmt.Appendf(nil, `{"n":%d}`, n)))
				if err != nil {
					continue // the server died mid-request: not accepted
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					accepted.Store(n, true)
					count.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for count.Load() < 300 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	close(stop)
	wg.Wait()
	total := count.Load()
	if total < 100 {
		t.Fatalf("only %d webhooks accepted before the kill", total)
	}
	delivered := 0
	accepted.Range(func(k, _ any) bool {
		if d.has(k.(int)) {
			delivered++
		}
		return true
	})
	t.Logf("accepted %d before SIGKILL, %d of them delivered by then", total, delivered)

	start()
	deadline = time.Now().Add(60 * time.Second)
	for {
		missing := 0
		accepted.Range(func(k, _ any) bool {
			if !d.has(k.(int)) {
				missing++
			}
			return true
		})
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted webhooks were never delivered after the restart", missing, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dups := 0
	for n, keys := range d.keys {
		if len(keys) != 1 {
			t.Errorf("message %d was delivered under %d different idempotency keys: %v", n, len(keys), keys)
		}
		for _, c := range keys {
			dups += c - 1
		}
	}
	t.Logf("all %d accepted webhooks delivered after restart; %d repeated deliveries, each with its message's key", total, dups)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildPath != "" {
		_ = os.RemoveAll(filepath.Dir(buildPath))
	}
	os.Exit(code)
}

// buildBinary builds the plugboard binary once for every test that runs it.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "plugboard-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "plugboard")
		buildOut, buildErr = exec.Command("go", "build", "-o", buildPath, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// server is a running plugboard process.
type server struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// startServer runs `plugboard serve` on addr with the test admin and extra
// environment, waits until it is ready, and kills it when the test ends
// (showing its log if the test failed).
func startServer(t *testing.T, bin, addr string, env ...string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(bin, "serve"), exited: make(chan struct{})}
	s.cmd.Env = append(append(os.Environ(), "PLUGBOARD_ADDR="+addr,
		"PLUGBOARD_ADMIN_EMAIL=crash@example.com", "PLUGBOARD_ADMIN_PASSWORD=crash-password",
		"PLUGBOARD_ALLOW_PRIVATE_NETWORKS=true", "PLUGBOARD_LOG_LEVEL=warn"), env...)
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr.String())
		}
	})
	waitReady(t, "http://"+addr)
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("server did not become ready")
}

func postJSON(t *testing.T, url, token string, body any, want int, out any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
}

func signIn(t *testing.T, base string) string {
	var tok struct{ Token string }
	postJSON(t, base+"/api/v1/auth/sign-in", "", map[string]string{"email": "crash@example.com", "password": "crash-password"}, http.StatusOK, &tok)
	return tok.Token
}

func createStartedFlow(t *testing.T, base, token, sinkURL string) string {
	doc := map[string]any{
		"name": "crash",
		"components": map[string]any{
			"hook": map[string]any{"type": "core.Webhook"},
			"map":  map[string]any{"type": "core.Set", "properties": map[string]any{"values": map[string]any{"n": "{{ $.hook.body.n }}"}}},
			"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{"method": "POST", "url": sinkURL, "body": "{{ $.map }}"},
				"retry": map[string]any{"initialInterval": "20ms", "maxInterval": "200ms"}},
		},
		"links": []map[string]string{{"from": "hook", "to": "map"}, {"from": "map", "to": "call"}},
	}
	var f struct {
		ID         string
		Components map[string]struct{ WebhookURL string }
	}
	postJSON(t, base+"/api/v1/flows", token, doc, http.StatusCreated, &f)
	postJSON(t, base+"/api/v1/flows/"+f.ID, token, map[string]string{"command": "start"}, http.StatusOK, nil)
	return f.Components["hook"].WebhookURL
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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

func testCrash(t *testing.T, bin, backend string) {
	cfg := storetest.Config(t, backend)
	d, sink := newDeliverySink(t)

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
	l := startLoad(hook)
	l.waitAccepted(300, 20*time.Second)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	total := l.stop()
	if total < 100 {
		t.Fatalf("only %d webhooks accepted before the kill", total)
	}
	t.Logf("accepted %d before SIGKILL, %d of them delivered by then", total, int(total)-l.missing(d))

	start()
	l.waitDelivered(t, d, 60*time.Second, "the restart")
	dups := d.checkKeys(t)
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

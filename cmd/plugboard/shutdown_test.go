package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestGracefulStop sends SIGTERM while steps are running: the server stops
// taking requests, lets the running steps finish, and exits 0.
func TestGracefulStop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	var started, finished atomic.Int64
	release := make(chan struct{})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		<-release
		finished.Add(1)
	}))
	defer sink.Close()
	defer close(release)

	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PLUGBOARD_ADDR="+addr, "PLUGBOARD_DATA_DIR="+t.TempDir(),
		"PLUGBOARD_ADMIN_EMAIL=crash@example.com", "PLUGBOARD_ADMIN_PASSWORD=crash-password",
		"PLUGBOARD_ALLOW_PRIVATE_NETWORKS=true", "PLUGBOARD_LOG_LEVEL=warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	base := "http://" + addr
	waitReady(t, base)
	hook := createStartedFlow(t, base, signIn(t, base), sink.URL)
	for i := range 3 {
		resp, err := http.Post(hook, "application/json", bytes.NewReader(fmt.Appendf(nil, `{"n":%d}`, i)))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for started.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("steps did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// While the steps run, the server has stopped taking requests.
	deadline = time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			if resp != nil {
				resp.Body.Close()
			}
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still ready after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The steps are still running: the process must wait for them.
	select {
	case err := <-exited:
		t.Fatalf("exited before its running steps finished: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	release <- struct{}{}
	release <- struct{}{}
	release <- struct{}{}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("did not exit after its steps finished\n%s", stderr.String())
	}
	if finished.Load() != 3 {
		t.Fatalf("%d steps finished, want 3", finished.Load())
	}
}

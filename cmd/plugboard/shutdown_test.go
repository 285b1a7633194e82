package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	srv := startServer(t, bin, addr, "PLUGBOARD_DATA_DIR="+t.TempDir())
	base := "http://" + addr
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
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
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
	case <-srv.exited:
		t.Fatalf("exited before its running steps finished: %v", srv.err)
	case <-time.After(500 * time.Millisecond):
	}
	release <- struct{}{}
	release <- struct{}{}
	release <- struct{}{}
	select {
	case <-srv.exited:
		if srv.err != nil {
			t.Fatalf("exit: %v", srv.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit after its steps finished")
	}
	if finished.Load() != 3 {
		t.Fatalf("%d steps finished, want 3", finished.Load())
	}
}

package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestTwoNodes runs two nodes on one PostgreSQL database: webhooks sent to
// either are delivered exactly once, and both nodes do work.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	if !strings.Contains(strings.Join(storetest.Backends(), ","), store.BackendPostgres) {
		t.Skip(storetest.EnvPostgres + " is not set")
	}
	cfg := storetest.Config(t, store.BackendPostgres)
	n1 := newNode(t, cfg, "node-1")
	n2 := newNode(t, cfg, "node-2")
	if _, err := createAdmin(n1); err != nil {
		t.Fatal(err)
	}
	n1.signInAdmin()
	n2.signInAdmin() // a token from one node works on the other
	s := newSink(t, 0)
	f := n1.startFlow(n1.admin, forwardFlow(s.srv.URL, 5))
	path := strings.TrimPrefix(f.Components["hook"].WebhookURL, n1.srv.URL)
	const total = 200
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := []*env{n1, n2}[w%2]
			for i := w; i < total; i += 8 {
				code, body := postHook(t, node.srv.URL+path, fmt.Sprintf(`{"user":{"email":"u%d@example.com"},"n":%d}`, i, i))
				if code != http.StatusAccepted {
					t.Errorf("webhook on node %d: %d %s", w%2+1, code, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, 30*time.Second, "all delivered", func() bool { return s.delivered() == total })
	s.mu.Lock()
	for key, n := range s.byKey {
		if n != 1 {
			t.Errorf("message %s delivered %d times", key, n)
		}
	}
	s.mu.Unlock()
	for i, n := range []*env{n1, n2} {
		if steps := stepSuccesses(t, n); steps == 0 {
			t.Errorf("node %d ran no steps", i+1)
		}
	}
}

// stepSuccesses reads plugboard_steps_total{status="success"} from a node.
func stepSuccesses(t *testing.T, e *env) int {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, `plugboard_steps_total{status="success"} `); ok {
			var n int
			_, _ = fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

// newDeliverySink records each delivery of {"n": ...} under its
// Idempotency-Key, after a little latency that keeps steps in flight.
func newDeliverySink(t *testing.T) (*deliveries, *httptest.Server) {
	d := &deliveries{keys: map[int]map[string]int{}}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ N int }
		_ = json.NewDecoder(r.Body).Decode(&body)
		time.Sleep(time.Millisecond)
		d.mu.Lock()
		if d.keys[body.N] == nil {
			d.keys[body.N] = map[string]int{}
		}
		d.keys[body.N][r.Header.Get("Idempotency-Key")]++
		d.mu.Unlock()
	}))
	t.Cleanup(sink.Close)
	return d, sink
}

// checkKeys fails the test if a message arrived under more than one key,
// and returns how many deliveries repeated an earlier one.
func (d *deliveries) checkKeys(t *testing.T) (repeats int) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, keys := range d.keys {
		if len(keys) != 1 {
			t.Errorf("message %d was delivered under %d different idempotency keys: %v", n, len(keys), keys)
		}
		for _, c := range keys {
			repeats += c - 1
		}
	}
	return repeats
}

// load posts {"n": <i>} from 16 workers, spread over urls, until stopped,
// and remembers every n answered 202. A server that dies mid-request does
// not accept it.
type load struct {
	accepted sync.Map
	count    atomic.Int64
	next     atomic.Int64
	stopc    chan struct{}
	wg       sync.WaitGroup
}

func startLoad(urls ...string) *load {
	l := &load{stopc: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 16 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			url := urls[w%len(urls)]
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				n := int(l.next.Add(1))
				resp, err := client.Post(url, "application/json", bytes.NewReader(fmt.Appendf(nil, `{"n":%d}`, n)))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					l.accepted.Store(n, true)
					l.count.Add(1)
				}
			}
		}()
	}
	return l
}

// waitAccepted waits until n messages were accepted or timeout passed.
func (l *load) waitAccepted(n int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for l.count.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the load and returns how many messages were accepted.
func (l *load) stop() int64 {
	close(l.stopc)
	l.wg.Wait()
	return l.count.Load()
}

// missing counts accepted messages d has not received.
func (l *load) missing(d *deliveries) int {
	missing := 0
	l.accepted.Range(func(k, _ any) bool {
		if !d.has(k.(int)) {
			missing++
		}
		return true
	})
	return missing
}

// waitDelivered fails the test unless every accepted message reaches d
// within timeout.
func (l *load) waitDelivered(t *testing.T, d *deliveries, timeout time.Duration, after string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := l.missing(d)
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted webhooks were never delivered after %s", missing, l.count.Load(), after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

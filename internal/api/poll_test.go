package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// testPollType is the polling trigger the tests register.
const testPollType = "test.Poll"

// testPoller reads a feed page by page: the items after the cursor it
// keeps in its state, {"after": id}.
type testPoller struct{}

var _ component.Poller = testPoller{}

func (testPoller) Spec() component.Spec {
	return component.Spec{
		Type: testPollType,
		Kind: component.KindTrigger,
		Properties: []component.Property{
			{Name: "url", Type: component.TypeString, Required: true},
			{Name: "interval", Type: component.TypeString, Default: "100ms"},
		},
		OutPorts: []string{component.PortOut},
	}
}

func (testPoller) Interval(props map[string]any) (time.Duration, error) {
	s, _ := props["interval"].(string)
	if s == "" {
		s = "100ms"
	}
	return time.ParseDuration(s)
}

func (testPoller) Poll(ctx context.Context, inv component.PollInvocation) ([]any, json.RawMessage, error) {
	var st struct{ After int }
	if inv.State != nil {
		if err := json.Unmarshal(inv.State, &st); err != nil {
			return nil, nil, err
		}
	}
	url, _ := inv.Properties["url"].(string)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"?after="+strconv.Itoa(st.After), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("feed answered %d", resp.StatusCode)
	}
	var page struct{ IDs []int }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, nil, err
	}
	items := make([]any, 0, len(page.IDs))
	for _, id := range page.IDs {
		items = append(items, map[string]any{"id": id})
		st.After = id
	}
	state, err := json.Marshal(map[string]int{"after": st.After})
	return items, state, err
}

// withPoller registers testPoller; reg, if not nil, receives the registry.
func withPoller(reg **component.Registry) func(*component.Registry) {
	return func(r *component.Registry) {
		r.Register(testPoller{})
		if reg != nil {
			*reg = r
		}
	}
}

// feed is the API the test poller reads: items 1..n, at most 7 a page.
type feed struct {
	mu       sync.Mutex
	n        int
	fail     bool
	requests int
	srv      *httptest.Server
	// inflight and overlap count requests made while another was still
	// being answered (two nodes polling one trigger at once); slow makes
	// each answer take that long, so that overlaps would show.
	inflight, overlap atomic.Int64
	slow              time.Duration
}

func newFeed(t *testing.T) *feed {
	f := &feed{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.inflight.Add(1) > 1 {
			f.overlap.Add(1)
		}
		defer f.inflight.Add(-1)
		time.Sleep(f.slow)
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests++
		if f.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		ids := []int{}
		for id := after + 1; id <= f.n && len(ids) < 7; id++ {
			ids = append(ids, id)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ids": ids})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *feed) add(n int) {
	f.mu.Lock()
	f.n += n
	f.mu.Unlock()
}

func (f *feed) setFailing(fail bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

func (f *feed) polls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// itemSink counts how often each item id reached the end of the flow.
type itemSink struct {
	mu   sync.Mutex
	seen map[int]int
	srv  *httptest.Server
}

func newItemSink(t *testing.T) *itemSink {
	s := &itemSink{seen: map[int]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ ID int }
		_ = json.NewDecoder(r.Body).Decode(&b)
		s.mu.Lock()
		s.seen[b.ID]++
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *itemSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// waitFor waits until items 1..n have arrived, then checks that each
// arrived once and nothing else did.
func (s *itemSink) waitFor(t *testing.T, n int) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%d items", n), func() bool { return s.count() >= n })
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) != n {
		t.Fatalf("%d distinct items arrived, want %d: %v", len(s.seen), n, s.seen)
	}
	for id := 1; id <= n; id++ {
		if s.seen[id] != 1 {
			t.Fatalf("item %d arrived %d times: %v", id, s.seen[id], s.seen)
		}
	}
}

func pollFlow(feedURL, sinkURL, interval string) map[string]any {
	return map[string]any{
		"name": "poll every " + interval,
		"components": map[string]any{
			"poll": map[string]any{"type": testPollType, "properties": map[string]any{"url": feedURL, "interval": interval}},
			"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{
				"method": "POST", "url": sinkURL, "body": map[string]any{"id": "{{ $.poll.id }}"}}},
		},
		"links": []map[string]any{{"from": "poll", "to": "call"}},
	}
}

func (e *env) pollRow(flowID string) store.PollRow {
	e.t.Helper()
	rows, err := e.store.Polls(context.Background(), flowID)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(rows) != 1 {
		e.t.Fatalf("flow has %d poll rows, want 1", len(rows))
	}
	return rows[0]
}

// TestPollEmitsEachItemOnce polls a growing feed across several polls, a
// restart of the node, an update of the flow and a stop and start: every
// item reaches the sink once, and a stopped flow does not poll.
func TestPollEmitsEachItemOnce(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			cfg := storetest.Config(t, backend)
			n1 := newNode(t, cfg, "node-1", withPoller(nil))
			if _, err := createAdmin(n1); err != nil {
				t.Fatal(err)
			}
			n1.signInAdmin()
			fd, sink := newFeed(t), newItemSink(t)
			fd.add(10) // more than a page
			f := n1.startFlow(n1.admin, pollFlow(fd.srv.URL, sink.srv.URL, "100ms"))
			sink.waitFor(t, 10)
			fd.add(5)
			sink.waitFor(t, 15)
			fd.add(1)
			sink.waitFor(t, 16)

			n1.shutdown()
			fd.add(4)
			n2 := newNode(t, cfg, "node-1", withPoller(nil))
			n2.signInAdmin()
			sink.waitFor(t, 20)

			// An update keeps the state of a poll that stays.
			n2.do("PUT", "/api/v1/flows/"+f.ID, n2.admin, pollFlow(fd.srv.URL, sink.srv.URL, "150ms"), http.StatusOK, nil)
			fd.add(2)
			sink.waitFor(t, 22)
			if row := n2.pollRow(f.ID); row.LastError != "" || string(row.State) != `{"after":22}` {
				t.Fatalf("poll row %+v, want state after 22 and no error", row)
			}

			// Stopped: no polls.
			n2.do("POST", "/api/v1/flows/"+f.ID, n2.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
			time.Sleep(100 * time.Millisecond) // a poll already in flight may still land
			before := fd.polls()
			fd.add(3)
			time.Sleep(500 * time.Millisecond)
			if got := fd.polls(); got != before {
				t.Fatalf("a stopped flow polled %d times", got-before)
			}
			if got := sink.count(); got != 22 {
				t.Fatalf("a stopped flow emitted %d items", got-22)
			}
			n2.do("POST", "/api/v1/flows/"+f.ID, n2.admin, map[string]string{"command": "start"}, http.StatusOK, nil)
			sink.waitFor(t, 25)
		})
	}
}

// TestPollStartPollsAtOnce uses an hour-long interval: only the first
// poll and the one a start causes can emit anything.
func TestPollStartPollsAtOnce(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newNode(t, storetest.Config(t, backend), "node-1", withPoller(nil))
			if _, err := createAdmin(e); err != nil {
				t.Fatal(err)
			}
			e.signInAdmin()
			fd, sink := newFeed(t), newItemSink(t)
			fd.add(3)
			f := e.startFlow(e.admin, pollFlow(fd.srv.URL, sink.srv.URL, "1h"))
			sink.waitFor(t, 3)
			if next := e.pollRow(f.ID).NextPollAt; time.Until(next) < 50*time.Minute {
				t.Fatalf("next poll at %s, want in an hour", next)
			}
			fd.add(2)
			e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
			e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "start"}, http.StatusOK, nil)
			sink.waitFor(t, 5)
		})
	}
}

// TestPollTwoNodes has two nodes on one PostgreSQL database poll the same
// flow: each item is emitted once.
func TestPollTwoNodes(t *testing.T) {
	t.Parallel()
	cfg := storetest.Config(t, store.BackendPostgres)
	n1 := newNode(t, cfg, "node-1", withPoller(nil))
	if _, err := createAdmin(n1); err != nil {
		t.Fatal(err)
	}
	n1.signInAdmin()
	n2 := newNode(t, cfg, "node-2", withPoller(nil))
	n2.signInAdmin()
	fd, sink := newFeed(t), newItemSink(t)
	fd.slow = 15 * time.Millisecond
	fd.add(3)
	n1.startFlow(n1.admin, pollFlow(fd.srv.URL, sink.srv.URL, "20ms"))
	total := 3
	for i := range 8 {
		sink.waitFor(t, total)
		fd.add(i + 2)
		total += i + 2
	}
	sink.waitFor(t, total)
	// A node claims a poll before it calls the API: the two never call it
	// for the same trigger at once.
	if n := fd.overlap.Load(); n != 0 {
		t.Fatalf("the feed was polled by both nodes at once %d times", n)
	}
}

// TestPollErrors makes the feed fail: no item is emitted, the error is
// recorded and COMPONENT_ERROR delivered; the feed back, the items come.
// Then the poller's type goes away, as when its connector is removed: each
// poll fails saying so.
func TestPollErrors(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var reg *component.Registry
			e := newNode(t, storetest.Config(t, backend), "node-1", withPoller(&reg))
			if _, err := createAdmin(e); err != nil {
				t.Fatal(err)
			}
			e.signInAdmin()
			rc := newReceiver(t)
			e.subscribe(rc, engine.EventComponentError)
			fd, sink := newFeed(t), newItemSink(t)
			fd.add(4)
			fd.setFailing(true)
			f := e.startFlow(e.admin, pollFlow(fd.srv.URL, sink.srv.URL, "100ms"))

			eventually(t, 15*time.Second, "COMPONENT_ERROR", func() bool { return len(rc.events(engine.EventComponentError)) >= 2 })
			ev := rc.events(engine.EventComponentError)[0]
			if ev.Data["flowId"] != f.ID || ev.Data["componentId"] != "poll" || ev.Data["attempt"] != float64(0) ||
				!strings.Contains(fmt.Sprint(ev.Data["error"]), "503") || ev.Data["ownerId"] == "" {
				t.Fatalf("COMPONENT_ERROR data %v", ev.Data)
			}
			if row := e.pollRow(f.ID); !strings.Contains(row.LastError, "503") || row.State != nil {
				t.Fatalf("poll row %+v, want the error and no state", row)
			}
			if n := sink.count(); n != 0 {
				t.Fatalf("a failing poll emitted %d items", n)
			}

			fd.setFailing(false)
			sink.waitFor(t, 4)
			eventually(t, 5*time.Second, "the error cleared", func() bool { return e.pollRow(f.ID).LastError == "" })

			// The connector goes away: the flow keeps running, each poll fails.
			if err := reg.SetConnector("test", nil); err != nil {
				t.Fatal(err)
			}
			eventually(t, 15*time.Second, "a poll failing for the missing type", func() bool {
				return strings.Contains(e.pollRow(f.ID).LastError, "not installed")
			})
			eventually(t, 15*time.Second, "COMPONENT_ERROR for the missing type", func() bool {
				for _, ev := range rc.events(engine.EventComponentError) {
					if strings.Contains(fmt.Sprint(ev.Data["error"]), "not installed") {
						return true
					}
				}
				return false
			})
			if row := e.pollRow(f.ID); string(row.State) != `{"after":4}` {
				t.Fatalf("state %s after the failed poll, want it kept", row.State)
			}
		})
	}
}

package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// tickSink records the scheduledAt (and skipped count) of every run a
// schedule flow delivers.
type tickSink struct {
	mu      sync.Mutex
	at      []string
	skipped []float64
	srv     *httptest.Server
}

func newTickSink(t *testing.T) *tickSink {
	s := &tickSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			At      string
			Skipped float64
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		s.mu.Lock()
		s.at = append(s.at, b.At)
		s.skipped = append(s.skipped, b.Skipped)
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *tickSink) runs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.at)
}

// checkCadence fails unless runs are distinct and one interval apart.
func checkCadence(t *testing.T, runs []string, every time.Duration) {
	t.Helper()
	seen := map[string]bool{}
	var times []time.Time
	for _, r := range runs {
		if seen[r] {
			t.Fatalf("run %s fired twice: %v", r, runs)
		}
		seen[r] = true
		at, err := time.Parse(time.RFC3339Nano, r)
		if err != nil {
			t.Fatalf("scheduledAt %q: %v", r, err)
		}
		times = append(times, at)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d%every != 0 || d == 0 {
			t.Fatalf("runs %s and %s are not whole intervals apart: %v", times[i-1], times[i], runs)
		}
	}
}

func scheduleFlow(sinkURL, interval string) map[string]any {
	return catchUpFlow(sinkURL, interval, false)
}

func catchUpFlow(sinkURL, interval string, catchUp bool) map[string]any {
	return map[string]any{
		"name": "every " + interval,
		"components": map[string]any{
			"tick": map[string]any{"type": "core.Schedule", "properties": map[string]any{"interval": interval, "catchUp": catchUp}},
			"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{
				"method": "POST", "url": sinkURL, "body": map[string]any{"at": "{{ $.tick.scheduledAt }}", "skipped": "{{ $.tick.skipped }}"}}},
		},
		"links": []map[string]any{{"from": "tick", "to": "call"}},
	}
}

// TestScheduleSurvivesRestart fires a one-second schedule, restarts the
// node, and checks that no run fired twice and none burst after the
// restart; then a stopped flow fires nothing and a started one resumes.
func TestScheduleSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			cfg := storetest.Config(t, backend)
			n1 := newNode(t, cfg, "node-1")
			if _, err := createAdmin(n1); err != nil {
				t.Fatal(err)
			}
			n1.signInAdmin()
			s := newTickSink(t)
			f := n1.startFlow(n1.admin, scheduleFlow(s.srv.URL, "1s"))
			eventually(t, 10*time.Second, "two runs", func() bool { return len(s.runs()) >= 2 })
			n1.shutdown()
			before := len(s.runs())
			restarted := time.Now()

			n2 := newNode(t, cfg, "node-1")
			n2.signInAdmin()
			eventually(t, 10*time.Second, "two runs after the restart", func() bool { return len(s.runs()) >= before+2 })
			runs := s.runs()
			checkCadence(t, runs, time.Second)
			// One run per second of wall time at most (plus the edges).
			if limit := int(time.Since(restarted)/time.Second) + before + 2; len(runs) > limit {
				t.Fatalf("%d runs, more than one a second: %v", len(runs), runs)
			}

			// Stopped: nothing fires. Started again: runs resume from now.
			n2.do("POST", "/api/v1/flows/"+f.ID, n2.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
			time.Sleep(50 * time.Millisecond) // a run already in flight may still land
			stopped := len(s.runs())
			time.Sleep(1500 * time.Millisecond)
			if got := len(s.runs()); got != stopped {
				t.Fatalf("a stopped flow fired %d runs", got-stopped)
			}
			n2.do("POST", "/api/v1/flows/"+f.ID, n2.admin, map[string]string{"command": "start"}, http.StatusOK, nil)
			resumed := time.Now()
			eventually(t, 10*time.Second, "a run after the start", func() bool { return len(s.runs()) > stopped })
			last, _ := time.Parse(time.RFC3339Nano, s.runs()[stopped])
			if last.Before(resumed.Add(-100 * time.Millisecond)) {
				t.Fatalf("after the start, a run missed while stopped fired: %s", last)
			}
		})
	}
}

// TestScheduleAfterDowntime stops the only node for a few runs: a
// schedule with catchUp fires every run it missed, one by one; one
// without fires once for all of them and says how many it skipped.
func TestScheduleAfterDowntime(t *testing.T) {
	t.Parallel()
	cfg := storetest.Config(t, store.BackendSQLite)
	n1 := newNode(t, cfg, "node-1")
	if _, err := createAdmin(n1); err != nil {
		t.Fatal(err)
	}
	n1.signInAdmin()
	every, once := newTickSink(t), newTickSink(t)
	n1.startFlow(n1.admin, catchUpFlow(every.srv.URL, "1s", true))
	n1.startFlow(n1.admin, catchUpFlow(once.srv.URL, "1s", false))
	eventually(t, 10*time.Second, "a run of each", func() bool { return len(every.runs()) >= 1 && len(once.runs()) >= 1 })
	n1.shutdown()
	down := time.Now()
	time.Sleep(3500 * time.Millisecond)
	beforeEvery, beforeOnce := len(every.runs()), len(once.runs())

	n2 := newNode(t, cfg, "node-1")
	up := time.Now()
	inDowntime := func(r string) bool {
		at, _ := time.Parse(time.RFC3339Nano, r)
		return at.After(down) && at.Before(up)
	}
	eventually(t, 10*time.Second, "the missed runs", func() bool {
		n := 0
		for _, r := range every.runs()[beforeEvery:] {
			if inDowntime(r) {
				n++
			}
		}
		return n >= 3
	})
	checkCadence(t, every.runs(), time.Second)
	eventually(t, 10*time.Second, "the folded run", func() bool { return len(once.runs()) > beforeOnce })
	once.mu.Lock()
	first, skipped := once.at[beforeOnce], once.skipped[beforeOnce]
	once.mu.Unlock()
	if !inDowntime(first) || skipped < 2 {
		t.Fatalf("without catchUp the first run after downtime was %s with %v skipped", first, skipped)
	}
	for _, r := range once.runs()[beforeOnce+1:] {
		if inDowntime(r) {
			t.Fatalf("without catchUp a second missed run fired: %s", r)
		}
	}
	_ = n2
}

// TestScheduleFiresOnceAcrossNodes runs one schedule on two nodes of one
// PostgreSQL database: every run fires once.
func TestScheduleFiresOnceAcrossNodes(t *testing.T) {
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
	s := newTickSink(t)
	n1.startFlow(n1.admin, scheduleFlow(s.srv.URL, "1s"))
	eventually(t, 15*time.Second, "four runs", func() bool { return len(s.runs()) >= 4 })
	checkCadence(t, s.runs(), time.Second)
	_ = n2
}

func TestScheduleRejectsBadSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, store.BackendSQLite)
	for _, props := range []map[string]any{
		{"interval": "10ms"},
		{"interval": "soon"},
		{"cron": "61 * * * *"},
		{"cron": "0 9 * * *", "timezone": "Mars/Olympus"},
		{"cron": "0 9 * * *", "interval": "1h"},
		{},
	} {
		doc := map[string]any{
			"name":       "bad",
			"components": map[string]any{"tick": map[string]any{"type": "core.Schedule", "properties": props}},
		}
		body := e.do("POST", "/api/v1/flows", e.admin, doc, http.StatusUnprocessableEntity, nil)
		if !strings.Contains(string(body), `"tick"`) {
			t.Errorf("%v: the problem does not name the component: %s", props, body)
		}
	}
}

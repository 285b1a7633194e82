package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store/storetest"
)

// sink is an httptest stand-in for a third-party API. It records every
// request by Idempotency-Key and can fail the first attempts of each.
type sink struct {
	mu        sync.Mutex
	byKey     map[string]int            // Idempotency-Key -> requests seen
	bodies    map[string]map[string]any // first body per key
	failFirst int                       // answer 503 to the first n requests of each key
	failAll   atomic.Bool
	srv       *httptest.Server
}

func newSink(t *testing.T, failFirst int) *sink {
	s := &sink{byKey: map[string]int{}, bodies: map[string]map[string]any{}, failFirst: failFirst}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		data, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.byKey[key]++
		n := s.byKey[key]
		if _, ok := s.bodies[key]; !ok {
			var b map[string]any
			_ = json.Unmarshal(data, &b)
			s.bodies[key] = b
		}
		s.mu.Unlock()
		if s.failAll.Load() || n <= s.failFirst {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) keys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

// delivered counts keys that got a successful answer.
func (s *sink) delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.byKey {
		if !s.failAll.Load() && c > s.failFirst {
			n++
		}
	}
	return n
}

func postHook(t *testing.T, url string, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestLargeUnicodePayload sends a body whose logs are truncated in the
// middle of multi-byte characters: it must still be stored and delivered.
func TestLargeUnicodePayload(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			s := newSink(t, 0)
			f := e.startFlow(e.admin, forwardFlow(s.srv.URL, 2))
			email := "a" + strings.Repeat("é", 9000) + "@example.com"
			if code, body := postHook(t, f.Components["hook"].WebhookURL, `{"user":{"email":"`+email+`"},"n":1}`); code != http.StatusAccepted {
				t.Fatalf("webhook: %d %s", code, body)
			}
			eventually(t, 20*time.Second, "delivery", func() bool { return s.delivered() == 1 })
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, b := range s.bodies {
				if b["email"] != email {
					t.Fatalf("delivered email has %d bytes, want %d", len(b["email"].(string)), len(email))
				}
			}
		})
	}
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			t.Run("500 webhooks at concurrency 32 all arrive mapped", func(t *testing.T) {
				t.Parallel()
				testDeliverAll(t, backend)
			})
			t.Run("retries until the sink recovers", func(t *testing.T) {
				t.Parallel()
				testRetries(t, backend)
			})
			t.Run("dead letter and retry by API", func(t *testing.T) {
				t.Parallel()
				testDeadLetter(t, backend)
			})
		})
	}
}

func testDeliverAll(t *testing.T, backend string) {
	e := newEnv(t, backend)
	s := newSink(t, 0)
	f := e.startFlow(e.admin, forwardFlow(s.srv.URL, 5))
	hook := f.Components["hook"].WebhookURL
	if !strings.HasPrefix(hook, e.srv.URL+"/hooks/") {
		t.Fatalf("webhookUrl %q is not under %s/hooks/", hook, e.srv.URL)
	}
	const total, conc = 500, 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, total)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				code, body := postHook(t, hook, fmt.Sprintf(`{"user":{"email":"u%d@example.com"},"n":%d}`, i, i))
				if code != http.StatusAccepted || !strings.Contains(body, "correlationId") {
					errs <- fmt.Sprintf("webhook %d: %d %s", i, code, body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
	eventually(t, 60*time.Second, "all 500 messages delivered", func() bool { return s.delivered() == total })
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, n := range s.byKey {
		if n != 1 {
			t.Errorf("message %s was delivered %d times", key, n)
		}
	}
	seen := map[float64]bool{}
	for key, b := range s.bodies {
		n, _ := b["n"].(float64)
		if b["email"] != fmt.Sprintf("u%d@example.com", int(n)) || b["source"] != "web" {
			t.Fatalf("message %s arrived with body %v", key, b)
		}
		seen[n] = true
	}
	if len(seen) != total {
		t.Fatalf("%d distinct messages arrived, want %d", len(seen), total)
	}
}

type logsResp struct {
	Items []struct {
		ComponentID   string `json:"componentId"`
		CorrelationID string `json:"correlationId"`
		Attempt       int    `json:"attempt"`
		Status        string `json:"status"`
		Error         string `json:"error"`
	} `json:"items"`
}

func testRetries(t *testing.T, backend string) {
	e := newEnv(t, backend)
	s := newSink(t, 2) // fails twice per message, then succeeds
	f := e.startFlow(e.admin, forwardFlow(s.srv.URL, 5))
	const total = 20
	corr := make([]string, 0, total)
	for i := range total {
		code, body := postHook(t, f.Components["hook"].WebhookURL, fmt.Sprintf(`{"user":{"email":"r%d@example.com"},"n":%d}`, i, i))
		if code != http.StatusAccepted {
			t.Fatalf("webhook: %d %s", code, body)
		}
		var r struct{ CorrelationID string }
		_ = json.Unmarshal([]byte(body), &r)
		corr = append(corr, r.CorrelationID)
	}
	eventually(t, 30*time.Second, "every message delivered after retries", func() bool { return s.delivered() == total })
	// The logs of one run show two failed attempts and the success.
	var logs logsResp
	eventually(t, 10*time.Second, "logs of the third attempt", func() bool {
		e.do("GET", "/api/v1/flows/"+f.ID+"/logs?correlationId="+corr[0], e.admin, nil, http.StatusOK, &logs)
		return len(logs.Items) == 5
	})
	var got []string
	for _, l := range logs.Items {
		if l.CorrelationID != corr[0] {
			t.Fatalf("log of another run: %+v", l)
		}
		got = append(got, fmt.Sprintf("%s#%d:%s", l.ComponentID, l.Attempt, l.Status))
	}
	want := "hook#1:accepted map#1:success call#1:retrying call#2:retrying call#3:success"
	if strings.Join(got, " ") != want {
		t.Fatalf("logs = %s\nwant   %s", strings.Join(got, " "), want)
	}
}

type unprocessedResp struct {
	Items []struct {
		ID          string `json:"id"`
		FlowID      string `json:"flowId"`
		ComponentID string `json:"componentId"`
		Attempts    int    `json:"attempts"`
		Error       string `json:"error"`
		Message     struct {
			Input map[string]any `json:"input"`
		} `json:"message"`
	} `json:"items"`
}

func testDeadLetter(t *testing.T, backend string) {
	e := newEnv(t, backend)
	s := newSink(t, 0)
	s.failAll.Store(true)
	f := e.startFlow(e.admin, forwardFlow(s.srv.URL, 3))
	if code, body := postHook(t, f.Components["hook"].WebhookURL, `{"user":{"email":"dead@example.com"},"n":1}`); code != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", code, body)
	}
	var un unprocessedResp
	eventually(t, 30*time.Second, "message in unprocessed messages", func() bool {
		e.do("GET", "/api/v1/unprocessed-messages", e.admin, nil, http.StatusOK, &un)
		return len(un.Items) == 1
	})
	m := un.Items[0]
	if m.FlowID != f.ID || m.ComponentID != "call" || m.Attempts != 3 || !strings.Contains(m.Error, "503") ||
		m.Message.Input["email"] != "dead@example.com" {
		t.Fatalf("unprocessed message = %+v", m)
	}
	s.mu.Lock()
	attempts := s.byKey[m.ID]
	s.mu.Unlock()
	if attempts != 3 {
		t.Fatalf("sink saw %d attempts with key %s, want 3", attempts, m.ID)
	}
	// Fix the sink and retry by API: delivered with the same key.
	s.failAll.Store(false)
	e.do("POST", "/api/v1/unprocessed-messages/"+m.ID+"/retry", e.admin, nil, http.StatusAccepted, nil)
	eventually(t, 30*time.Second, "retried message delivered", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.byKey[m.ID] == 4
	})
	e.do("GET", "/api/v1/unprocessed-messages", e.admin, nil, http.StatusOK, &un)
	if len(un.Items) != 0 {
		t.Fatalf("unprocessed messages after retry: %+v", un.Items)
	}
	e.do("POST", "/api/v1/unprocessed-messages/"+m.ID+"/retry", e.admin, nil, http.StatusNotFound, nil)

	// The metrics count the retries and the dead letter.
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"plugboard_dead_letters_total 1", "plugboard_step_retries_total 2", `plugboard_jobs{state="available"}`,
		"plugboard_unprocessed_messages 0", "plugboard_trigger_events_accepted_total 1", `plugboard_http_requests_total{code="202",route="/hooks/{token}"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

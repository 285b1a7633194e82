package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/connector"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// crmAPI stands in for a third-party API: it records the contacts posted
// to it, or answers 503 while failing is set.
type crmAPI struct {
	srv     *httptest.Server
	failing atomic.Bool
	mu      sync.Mutex
	calls   int
	got     []map[string]any
	keys    map[string]int
}

func newCRM(t *testing.T) *crmAPI {
	c := &crmAPI{keys: map[string]int{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.calls++
		if c.failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		c.got = append(c.got, b)
		c.keys[r.Header.Get("Idempotency-Key")]++
		fmt.Fprintf(w, `{"id":"c_%d","email":%q}`, len(c.got), b["email"])
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *crmAPI) contacts() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.got...)
}

func (c *crmAPI) callCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// packCRM packs a connector "crm" whose CreateContact posts to api, with
// source in the body (so that versions behave differently).
func packCRM(t *testing.T, api, version, source string) []byte {
	t.Helper()
	dir := t.TempDir()
	m := map[string]any{
		"name": "crm", "version": version, "label": "CRM", "description": "A test CRM.",
		"components": []any{map[string]any{
			"name": "CreateContact", "kind": "action", "description": "Creates a contact.",
			"properties": map[string]any{"type": "object", "required": []any{"email"},
				"properties": map[string]any{"email": map[string]any{"type": "string"}}},
			"http": map[string]any{
				"method": "POST", "url": api + "/v2/contacts",
				"body":   map[string]any{"email": "{{ $.properties.email }}", "source": source},
				"output": map[string]any{"id": "{{ $.response.body.id }}"},
			},
		}},
	}
	data, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "connector.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "CHANGELOG.md"), []byte("# "+version+"\n\nSource "+source+".\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zipped, err := connector.Pack(dir)
	if err != nil {
		t.Fatalf("packing: %v", err)
	}
	return zipped
}

func TestConnectorRuns(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			crm := newCRM(t)
			if code, body := e.publish(e.admin, packCRM(t, crm.srv.URL, "1.0.0", "v1")); code != http.StatusCreated {
				t.Fatalf("publish: %d %s", code, body)
			}
			// Not installed: a flow using it does not compile.
			doc := func(name string, attempts int) map[string]any {
				return map[string]any{
					"name": name,
					"components": map[string]any{
						"hook": map[string]any{"type": "core.Webhook"},
						"create": map[string]any{"type": "crm.CreateContact", "properties": map[string]any{"email": "{{ $.hook.body.email }}"},
							"retry": map[string]any{"maxAttempts": attempts, "initialInterval": "100ms", "maxInterval": "200ms"}},
					},
					"links": []map[string]any{{"from": "hook", "to": "create"}},
				}
			}
			e.do("POST", "/api/v1/flows", e.admin, doc("early", 3), http.StatusUnprocessableEntity, nil)
			e.do("POST", "/api/v1/connectors/crm/install", e.admin, nil, http.StatusOK, nil)

			// Installed: its action runs in a flow, with the message id as
			// Idempotency-Key.
			f := e.startFlow(e.admin, doc("signups", 50))
			hook := f.Components["hook"].WebhookURL
			e.do("POST", hook, "", `{"email":"ada@example.com"}`, http.StatusAccepted, nil)
			eventually(t, 10*time.Second, "the first contact", func() bool { return len(crm.contacts()) == 1 })
			if c := crm.contacts()[0]; c["email"] != "ada@example.com" || c["source"] != "v1" {
				t.Fatalf("the API got %v", c)
			}

			// A minor update changes what the running flow does, no restart.
			if code, body := e.publish(e.admin, packCRM(t, crm.srv.URL, "1.1.0", "v2")); code != http.StatusCreated {
				t.Fatalf("publish 1.1.0: %d %s", code, body)
			}
			e.do("POST", "/api/v1/connectors/crm/update", e.admin, map[string]any{"version": "1.1.0"}, http.StatusOK, nil)
			e.do("POST", hook, "", `{"email":"grace@example.com"}`, http.StatusAccepted, nil)
			eventually(t, 10*time.Second, "the second contact", func() bool { return len(crm.contacts()) == 2 })
			if c := crm.contacts()[1]; c["source"] != "v2" {
				t.Fatalf("after the minor update the API got %v", c)
			}

			// Removed while a message waits for a retry; installed again
			// in time: the queued action goes through, under its key.
			crm.failing.Store(true)
			e.do("POST", hook, "", `{"email":"linus@example.com"}`, http.StatusAccepted, nil)
			eventually(t, 10*time.Second, "a failed call", func() bool { return crm.callCount() >= 3 })
			e.do("DELETE", "/api/v1/connectors/crm", e.admin, nil, http.StatusNoContent, nil)
			crm.failing.Store(false)
			var logs struct{ Items []struct{ Error string } }
			eventually(t, 10*time.Second, "an attempt failing for the missing connector", func() bool {
				e.do("GET", "/api/v1/flows/"+f.ID+"/logs", e.admin, nil, http.StatusOK, &logs)
				for _, l := range logs.Items {
					if strings.Contains(l.Error, "crm.CreateContact") {
						return true
					}
				}
				return false
			})
			// The flow keeps running: its webhook still takes events, whose
			// step waits for the connector like the queued one.
			e.do("POST", hook, "", `{"email":"margaret@example.com"}`, http.StatusAccepted, nil)
			if n := len(crm.contacts()); n != 2 {
				t.Fatalf("a call went out while the connector was removed: %d contacts", n)
			}
			e.do("POST", "/api/v1/connectors/crm/install", e.admin, map[string]string{"version": "1.1.0"}, http.StatusOK, nil)
			eventually(t, 10*time.Second, "the queued contacts", func() bool { return len(crm.contacts()) == 4 })
			crm.mu.Lock()
			for key, n := range crm.keys {
				if n != 1 {
					t.Errorf("key %s delivered %d times", key, n)
				}
			}
			crm.mu.Unlock()

			// Removed for longer than the retries last: the message is
			// dead-lettered.
			short := e.startFlow(e.admin, doc("short", 3))
			crm.failing.Store(true)
			before := crm.callCount()
			e.do("POST", short.Components["hook"].WebhookURL, "", `{"email":"ken@example.com"}`, http.StatusAccepted, nil)
			eventually(t, 10*time.Second, "a failed call", func() bool { return crm.callCount() > before })
			e.do("DELETE", "/api/v1/connectors/crm", e.admin, nil, http.StatusNoContent, nil)
			eventually(t, 10*time.Second, "the message dead-lettered", func() bool {
				for _, msg := range e.unprocessedErrors() {
					if strings.Contains(msg, "crm.CreateContact") {
						return true
					}
				}
				return false
			})
		})
	}
}

// TestConnectorPolling installs a connector whose polling trigger reads a
// feed: the first poll only learns what exists; each item added later
// starts one run.
func TestConnectorPolling(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			var mu sync.Mutex
			var polls atomic.Int64
			feed := []any{map[string]any{"id": "c1", "email": "old@example.com"}}
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				polls.Add(1)
				_ = json.NewEncoder(w).Encode(map[string]any{"data": feed})
			}))
			pollsMore := func(n int64) {
				target := polls.Load() + n
				eventually(t, 10*time.Second, "more polls", func() bool { return polls.Load() >= target })
			}
			defer api.Close()
			dir := t.TempDir()
			m := map[string]any{
				"name": "feed", "version": "1.0.0", "label": "Feed", "description": "A contact feed.",
				"components": []any{map[string]any{
					"name": "NewContact", "kind": "trigger", "description": "A new contact.",
					"polling": map[string]any{
						"interval": "1m", "request": map[string]any{"method": "GET", "url": api.URL + "/contacts"},
						"itemsPath": "data", "idField": "id", "output": map[string]any{"email": "{{ $.item.email }}"},
					},
				}},
			}
			data, _ := json.Marshal(m)
			_ = os.WriteFile(filepath.Join(dir, "connector.json"), data, 0o644)
			_ = os.WriteFile(filepath.Join(dir, "CHANGELOG.md"), []byte("# 1.0.0\n"), 0o644)
			zipped, err := connector.Pack(dir)
			if err != nil {
				t.Fatal(err)
			}
			if code, body := e.publish(e.admin, zipped); code != http.StatusCreated {
				t.Fatalf("publish: %d %s", code, body)
			}
			e.do("POST", "/api/v1/connectors/feed/install", e.admin, nil, http.StatusOK, nil)
			s := newSink(t, 0)
			e.startFlow(e.admin, map[string]any{
				"name": "new contacts",
				"components": map[string]any{
					"new":  map[string]any{"type": "feed.NewContact"},
					"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{"method": "POST", "url": s.srv.URL, "body": "{{ $.new }}"}},
				},
				"links": []map[string]any{{"from": "new", "to": "call"}},
			})
			// A few polls (100 ms apart in tests) later, nothing old is emitted.
			pollsMore(3)
			if n := s.delivered(); n != 0 {
				t.Fatalf("the first poll emitted %d old items", n)
			}
			mu.Lock()
			feed = append(feed, map[string]any{"id": "c2", "email": "ada@example.com"}, map[string]any{"id": "c3", "email": "grace@example.com"})
			mu.Unlock()
			eventually(t, 10*time.Second, "two new contacts", func() bool { return s.delivered() == 2 })
			pollsMore(3) // more polls: nothing twice
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.byKey) != 2 {
				t.Fatalf("%d deliveries, want 2", len(s.byKey))
			}
			emails := map[any]bool{}
			for _, b := range s.bodies {
				emails[b["email"]] = true
			}
			if !emails["ada@example.com"] || !emails["grace@example.com"] {
				t.Fatalf("delivered %v", s.bodies)
			}
		})
	}
}

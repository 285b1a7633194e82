package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/connector"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// acmeAPI stands in for the API of the example connector, Acme CRM: its
// contacts (listed two a page, whatever the limit asked) and its webhook
// subscriptions.
type acmeAPI struct {
	srv *httptest.Server

	mu           sync.Mutex
	contacts     []map[string]any
	hooks        map[string]string // subscription id -> target URL
	hookSeq      int
	unsubscribed []string
	// failSubscribes answers 503 to that many subscribe requests first.
	failSubscribes, subscribeCalls int
	// events holds each live subscription's event.
	events map[string]string
	// gate, when set, holds each subscribe request until it is closed;
	// arrived is signalled as one arrives.
	gate, arrived chan struct{}
	// token, when set, is the bearer token every request must carry.
	token string
}

func newAcmeAPI(t *testing.T) *acmeAPI {
	a := &acmeAPI{hooks: map[string]string{}, events: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/me", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, map[string]any{"data": map[string]any{"id": "u_1"}})
	})
	mux.HandleFunc("POST /v2/contacts", func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b["email"] == nil {
			http.Error(w, `{"error":"email is required"}`, http.StatusBadRequest)
			return
		}
		c := a.add(b)
		writeTestJSON(w, map[string]any{"data": c})
	})
	mux.HandleFunc("GET /v2/contacts", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		a.mu.Lock()
		list := []map[string]any{}
		for _, c := range a.contacts {
			if after := q.Get("created_after"); after != "" && c["created_at"].(string) <= after {
				continue
			}
			if tag := q.Get("tag"); tag != "" && !slices.Contains(c["tags"].([]any), any(tag)) {
				continue
			}
			list = append(list, c)
		}
		a.mu.Unlock()
		start, _ := strconv.Atoi(q.Get("cursor"))
		end := min(start+2, len(list))
		page := map[string]any{"data": list[min(start, len(list)):end], "meta": map[string]any{}}
		if end < len(list) {
			page["meta"] = map[string]any{"next_cursor": strconv.Itoa(end)}
		}
		writeTestJSON(w, page)
	})
	mux.HandleFunc("POST /v2/webhooks", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Event     string `json:"event"`
			TargetURL string `json:"target_url"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || !strings.HasPrefix(b.Event, "contact.") || !strings.HasPrefix(b.TargetURL, "http") {
			http.Error(w, `{"error":"bad subscription"}`, http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		gate, arrived := a.gate, a.arrived
		a.mu.Unlock()
		if gate != nil {
			arrived <- struct{}{}
			<-gate
		}
		a.mu.Lock()
		if a.subscribeCalls++; a.subscribeCalls <= a.failSubscribes {
			a.mu.Unlock()
			http.Error(w, `{"error":"try later"}`, http.StatusServiceUnavailable)
			return
		}
		a.hookSeq++
		id := "wh_" + strconv.Itoa(a.hookSeq)
		a.hooks[id], a.events[id] = b.TargetURL, b.Event
		a.mu.Unlock()
		writeTestJSON(w, map[string]any{"data": map[string]any{"id": id, "event": b.Event}})
	})
	mux.HandleFunc("DELETE /v2/webhooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		id := r.PathValue("id")
		if _, ok := a.hooks[id]; !ok {
			http.Error(w, `{"error":"no such webhook"}`, http.StatusNotFound)
			return
		}
		delete(a.hooks, id)
		a.unsubscribed = append(a.unsubscribed, id)
		w.WriteHeader(http.StatusNoContent)
	})
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		token := a.token
		a.mu.Unlock()
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":"bad credentials"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// acmeToken is the API token of the Acme accounts the tests make.
const acmeToken = "acme-test-token-0123456789"

// requireAccount makes the Acme API refuse requests without the account's
// token and stores that account for the admin: its id, which every step
// of the connector that calls the API names.
func (a *acmeAPI) requireAccount(t *testing.T, e *env) string {
	t.Helper()
	a.mu.Lock()
	a.token = acmeToken
	a.mu.Unlock()
	// The connector's credential test (GET /v2/me) refuses a wrong token,
	// and nothing is stored.
	var p struct {
		Errors []struct{ Field, Message string }
	}
	e.do("POST", "/api/v1/accounts", e.admin, map[string]any{
		"name": "acme", "authType": "token", "connector": "acme-crm", "domain": a.srv.URL, "token": "wrong-token-0123456789",
	}, http.StatusUnprocessableEntity, &p)
	if len(p.Errors) != 1 || p.Errors[0].Field != "/token" || !strings.Contains(p.Errors[0].Message, "GET /v2/me answered 401") {
		t.Fatalf("a wrong token: %+v, want /token refused by GET /v2/me", p.Errors)
	}
	var accs struct{ Items []any }
	e.do("GET", "/api/v1/accounts", e.admin, nil, http.StatusOK, &accs)
	if len(accs.Items) != 0 {
		t.Fatalf("a refused account was stored: %v", accs.Items)
	}
	var acc struct{ ID string }
	e.do("POST", "/api/v1/accounts", e.admin, map[string]any{
		"name": "acme", "authType": "token", "connector": "acme-crm", "domain": a.srv.URL, "token": acmeToken,
	}, http.StatusCreated, &acc)
	return acc.ID
}

func writeTestJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// add creates a contact as the API does: an id and a creation time that
// grow with each contact.
func (a *acmeAPI) add(b map[string]any) map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.contacts) + 1
	tags, _ := b["tags"].([]any)
	c := map[string]any{
		"id": fmt.Sprintf("c_%d", n), "email": b["email"], "first_name": b["first_name"], "last_name": b["last_name"],
		"tags": append([]any{}, tags...), "created_at": fmt.Sprintf("2026-11-23T10:%02d:%02dZ", n/60, n%60),
	}
	a.contacts = append(a.contacts, c)
	return c
}

// subscriptions returns the live subscriptions (id -> target URL) and
// the ids removed so far.
func (a *acmeAPI) subscriptions() (map[string]string, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	live := make(map[string]string, len(a.hooks))
	for k, v := range a.hooks {
		live[k] = v
	}
	return live, slices.Clone(a.unsubscribed)
}

// pathSink records the JSON bodies posted to it, by path.
type pathSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]any
}

func newPathSink(t *testing.T) *pathSink {
	s := &pathSink{got: map[string][]any{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &v)
		s.mu.Lock()
		s.got[r.URL.Path] = append(s.got[r.URL.Path], v)
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *pathSink) bodies(path string) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got[path])
}

// waitBodies waits until n bodies reached path and returns them.
func (s *pathSink) waitBodies(t *testing.T, path string, n int) []any {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%d bodies at %s", n, path), func() bool { return len(s.bodies(path)) >= n })
	return s.bodies(path)
}

// packExampleWith packs the example connector as version, with its
// baseUrl pointed at api (when set); edit, when set, changes the manifest
// first.
func packExampleWith(t *testing.T, api, version string, edit func(m map[string]any)) []byte {
	t.Helper()
	src := exampleConnector
	dir := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	raw, err := os.ReadFile(filepath.Join(dir, "connector.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["version"] = version
	if api != "" {
		m["baseUrl"] = api
	}
	if edit != nil {
		edit(m)
	}
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "connector.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	zipped, err := connector.Pack(dir)
	if err != nil {
		t.Fatalf("packing the example: %v", err)
	}
	return zipped
}

// toSink is a core.HttpRequest step posting body to the sink's path.
func toSink(sinkURL, path, body string) map[string]any {
	return map[string]any{"type": "core.HttpRequest", "properties": map[string]any{"method": "POST", "url": sinkURL + path, "body": body},
		"retry": map[string]any{"maxAttempts": 5, "initialInterval": "10ms", "maxInterval": "50ms"}}
}

// TestExampleConnector packs, publishes and installs the example
// connector and runs each of its component kinds against a stand-in of
// its API: actions with output mapping, pagination and JavaScript; a
// polling trigger that emits each new contact once, across a restart and
// a minor update; and a webhook-subscription trigger that subscribes when
// its flow starts and unsubscribes when it stops or is deleted.
func TestExampleConnector(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			cfg := storetest.Config(t, backend)
			e := newNode(t, cfg, "node-1")
			if _, err := createAdmin(e); err != nil {
				t.Fatal(err)
			}
			e.signInAdmin()
			acme := newAcmeAPI(t)
			sink := newPathSink(t)
			if code, body := e.publish(e.admin, packExampleWith(t, acme.srv.URL, "1.2.0", nil)); code != http.StatusCreated {
				t.Fatalf("publish: %d %s", code, body)
			}
			e.do("POST", "/api/v1/connectors/acme-crm/install", e.admin, map[string]any{"version": "1.2.0"}, http.StatusOK, nil)
			acc := acme.requireAccount(t, e)
			// An existing contact, which the polling trigger must not emit.
			acme.add(map[string]any{"email": "old@example.com", "tags": []any{"vip"}})

			// Actions: create a contact (output mapping), score it (the
			// JavaScript module), list the tagged ones (cursor pagination).
			actions := e.startFlow(e.admin, map[string]any{
				"name": "signup",
				"components": map[string]any{
					"hook": map[string]any{"type": "core.Webhook"},
					"create": map[string]any{"type": "acme-crm.CreateContact", "properties": map[string]any{"account": acc,
						"email": "{{ $.hook.body.email }}", "firstName": "{{ $.hook.body.first }}", "tags": []any{"vip"}}},
					"score": map[string]any{"type": "acme-crm.ScoreContact", "properties": map[string]any{"contact": "{{ $.hook.body }}"}},
					"list":  map[string]any{"type": "acme-crm.ListContacts", "properties": map[string]any{"account": acc, "tag": "vip"}},
					"out1":  toSink(sink.srv.URL, "/created", "{{ $.create }}"),
					"out2":  toSink(sink.srv.URL, "/scored", "{{ $.score }}"),
					"out3":  toSink(sink.srv.URL, "/listed", "{{ $.list }}"),
				},
				"links": []map[string]any{{"from": "hook", "to": "create"}, {"from": "create", "to": "score"}, {"from": "create", "to": "list"},
					{"from": "create", "to": "out1"}, {"from": "score", "to": "out2"}, {"from": "list", "to": "out3"}},
			})
			for i, email := range []string{"ada@example.com", "grace@example.com"} {
				e.do("POST", actions.Components["hook"].WebhookURL, "",
					fmt.Sprintf(`{"id":"x%d","email":%q,"firstName":"F","lastName":"L"}`, i, email), http.StatusAccepted, nil)
			}
			created := sink.waitBodies(t, "/created", 2)
			ids := map[string]bool{}
			for _, c := range created {
				m := c.(map[string]any)
				ids[m["id"].(string)] = true
				if !strings.HasPrefix(m["url"].(string), "https://app.acme-crm.example/contacts/c_") {
					t.Fatalf("CreateContact's output mapping gave %v", m)
				}
			}
			if !ids["c_2"] || !ids["c_3"] {
				t.Fatalf("created %v, want c_2 and c_3", created)
			}
			for _, s := range sink.waitBodies(t, "/scored", 2) {
				if m := s.(map[string]any); m["score"] != float64(75) || !strings.HasPrefix(m["id"].(string), "x") {
					t.Fatalf("ScoreContact gave %v, want a score of 75 (3 of 4 fields)", m)
				}
			}
			// The second listing ran after both creations, or the first
			// did: either way some listing saw every page (two a page).
			eventually(t, 15*time.Second, "a listing of all three vip contacts", func() bool {
				for _, l := range sink.bodies("/listed") {
					if list, _ := l.([]any); len(list) == 3 {
						return true
					}
				}
				return false
			})

			// The polling trigger: new contacts once each, the old one never.
			poll := e.startFlow(e.admin, map[string]any{
				"name": "new contacts",
				"components": map[string]any{
					"new": map[string]any{"type": "acme-crm.NewContact", "properties": map[string]any{"account": acc}},
					"out": toSink(sink.srv.URL, "/new", "{{ $.new }}"),
				},
				"links": []map[string]any{{"from": "new", "to": "out"}},
			})
			// Wait for the first poll, which only learns what exists.
			eventually(t, 10*time.Second, "the first poll", func() bool {
				rows, err := e.store.Polls(t.Context(), poll.ID)
				return err == nil && len(rows) == 1 && rows[0].State != nil
			})
			for i := range 3 {
				acme.add(map[string]any{"email": fmt.Sprintf("p%d@example.com", i)})
			}
			newIDs := func(n int) []string {
				t.Helper()
				var got []string
				for _, b := range sink.waitBodies(t, "/new", n) {
					got = append(got, b.(map[string]any)["id"].(string))
				}
				slices.Sort(got) // runs of one poll finish in any order
				return got
			}
			if got := newIDs(3); !slices.Equal(got, []string{"c_4", "c_5", "c_6"}) {
				t.Fatalf("the polling trigger emitted %v, want c_4, c_5, c_6", got)
			}

			// The subscription trigger subscribes when its flow starts; the
			// API fails the first try, and the engine tries again.
			acme.mu.Lock()
			acme.failSubscribes = 1
			acme.mu.Unlock()
			sub := e.startFlow(e.admin, map[string]any{
				"name": "contact updates",
				"components": map[string]any{
					"updated": map[string]any{"type": "acme-crm.ContactUpdated", "properties": map[string]any{"account": acc}},
					"out":     toSink(sink.srv.URL, "/updated", "{{ $.updated }}"),
				},
				"links": []map[string]any{{"from": "updated", "to": "out"}},
			})
			inbound := sub.Components["updated"].WebhookURL
			if inbound == "" {
				t.Fatal("the subscription trigger has no inbound URL")
			}
			eventually(t, 10*time.Second, "the subscription", func() bool {
				live, _ := acme.subscriptions()
				return len(live) == 1 && live["wh_1"] == inbound
			})
			var view struct {
				Components map[string]struct {
					Subscription *struct {
						Subscribed bool   `json:"subscribed"`
						LastError  string `json:"lastError"`
					} `json:"subscription"`
				} `json:"components"`
			}
			eventually(t, 10*time.Second, "the subscription in the flow's view", func() bool {
				e.do("GET", "/api/v1/flows/"+sub.ID, e.admin, nil, http.StatusOK, &view)
				s := view.Components["updated"].Subscription
				return s != nil && s.Subscribed && s.LastError == ""
			})
			acme.mu.Lock()
			if acme.subscribeCalls != 2 {
				t.Errorf("%d subscribe requests, want 2 (one failed, one good)", acme.subscribeCalls)
			}
			acme.mu.Unlock()
			e.do("POST", inbound, "", `{"events":[{"contact":{"id":"c_2"},"changed_fields":["email"]},`+
				`{"contact":{"id":"c_3"},"changed_fields":["first_name","tags"]}]}`, http.StatusAccepted, nil)
			upd := sink.waitBodies(t, "/updated", 2)
			slices.SortFunc(upd, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			if fmt.Sprint(upd) != "[map[changes:[email] id:c_2] map[changes:[first_name tags] id:c_3]]" {
				t.Fatalf("the subscription trigger emitted %v", upd)
			}
			// A delivery that is not what the trigger reads is refused.
			e.do("POST", inbound, "", `{"no":"events"}`, http.StatusBadRequest, nil)

			// Restart: the polling trigger goes on from its state. The
			// restarted server has another public URL (a new port), so the
			// subscription moves to it: the old one is removed, one new one
			// made.
			admin := e.admin
			e.shutdown()
			acme.add(map[string]any{"email": "while-down@example.com"})
			e = newNode(t, cfg, "node-1")
			e.admin = admin
			acme.add(map[string]any{"email": "after@example.com"})
			if got := newIDs(5); !slices.Equal(got, []string{"c_4", "c_5", "c_6", "c_7", "c_8"}) {
				t.Fatalf("after a restart the polling trigger emitted %v, want c_7 and c_8 once more", got)
			}
			inbound = strings.Replace(inbound, inbound[:strings.Index(inbound, "/hooks/")], e.srv.URL, 1)
			eventually(t, 10*time.Second, "the subscription moved to the new URL", func() bool {
				live, gone := acme.subscriptions()
				return len(live) == 1 && live["wh_2"] == inbound && slices.Equal(gone, []string{"wh_1"})
			})
			e.do("POST", inbound, "", `{"events":[{"contact":{"id":"c_7"},"changed_fields":["email"]}]}`, http.StatusAccepted, nil)
			sink.waitBodies(t, "/updated", 3)

			// A minor update changes the trigger's output, without a
			// restart and without emitting old contacts again.
			if code, body := e.publish(e.admin, packExampleWith(t, acme.srv.URL, "1.2.1", func(m map[string]any) {
				for _, c := range m["components"].([]any) {
					if c := c.(map[string]any); c["name"] == "NewContact" {
						c["polling"].(map[string]any)["output"].(map[string]any)["source"] = "1.2.1"
					}
				}
			})); code != http.StatusCreated {
				t.Fatalf("publish 1.2.1: %d %s", code, body)
			}
			e.do("POST", "/api/v1/connectors/acme-crm/update", e.admin, map[string]any{"version": "1.2.1"}, http.StatusOK, nil)
			// A poll under way as the update lands may still use 1.2.0: add
			// contacts one at a time until one comes out as 1.2.1 does.
			for try := 0; ; try++ {
				if try == 5 {
					t.Fatal("the polling trigger never used 1.2.1")
				}
				id := acme.add(map[string]any{"email": fmt.Sprintf("u%d@example.com", try)})["id"]
				var out map[string]any
				eventually(t, 10*time.Second, fmt.Sprintf("contact %v emitted", id), func() bool {
					for _, b := range sink.bodies("/new") {
						if m := b.(map[string]any); m["id"] == id {
							out = m
							return true
						}
					}
					return false
				})
				if out["source"] == "1.2.1" {
					break
				}
			}
			seen := map[string]int{}
			for _, b := range sink.bodies("/new") {
				seen[b.(map[string]any)["id"].(string)]++
			}
			acme.mu.Lock()
			total := len(acme.contacts)
			acme.mu.Unlock()
			for n := 4; n <= total; n++ {
				if id := "c_" + strconv.Itoa(n); seen[id] > 1 {
					t.Fatalf("contact %s was emitted %d times: %v", id, seen[id], seen)
				}
			}
			if seen["c_1"] != 0 {
				t.Fatalf("the contact that existed before the flow started was emitted")
			}

			// Stopping the flow removes the subscription; deliveries to it
			// are refused; starting again subscribes anew, and deleting the
			// flow removes that one too.
			e.do("POST", "/api/v1/flows/"+sub.ID, e.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
			eventually(t, 10*time.Second, "the unsubscribe", func() bool {
				live, gone := acme.subscriptions()
				return len(live) == 0 && slices.Equal(gone, []string{"wh_1", "wh_2"})
			})
			e.do("POST", inbound, "", `{"events":[]}`, http.StatusGone, nil)
			e.do("POST", "/api/v1/flows/"+sub.ID, e.admin, map[string]string{"command": "start"}, http.StatusOK, nil)
			// Started again, it takes deliveries at once (a 410 would tell
			// the provider to drop the subscription).
			e.do("POST", inbound, "", `{"events":[]}`, http.StatusAccepted, nil)
			eventually(t, 10*time.Second, "the second subscription", func() bool {
				live, _ := acme.subscriptions()
				return len(live) == 1 && live["wh_3"] == inbound
			})
			e.do("DELETE", "/api/v1/flows/"+sub.ID, e.admin, nil, http.StatusNoContent, nil)
			eventually(t, 10*time.Second, "the unsubscribe after delete", func() bool {
				live, gone := acme.subscriptions()
				return len(live) == 0 && slices.Equal(gone, []string{"wh_1", "wh_2", "wh_3"})
			})
			eventually(t, 10*time.Second, "the subscription row dropped", func() bool {
				rows, err := e.store.Subscriptions(t.Context(), sub.ID)
				return err == nil && len(rows) == 0
			})
		})
	}
}

// TestYAMLConnector publishes a package whose manifest is YAML: its
// details read back, it installs, and its action runs in a flow.
func TestYAMLConnector(t *testing.T) {
	t.Parallel()
	e := newEnv(t, store.BackendSQLite)
	acme := newAcmeAPI(t)
	dir := t.TempDir()
	manifest := `# A YAML manifest
name: acme-lite
version: 0.1.0
label: Acme Lite
description: Creates Acme CRM contacts.
baseUrl: ` + acme.srv.URL + `
components:
  - name: CreateContact
    kind: action
    description: Creates a contact.
    properties:
      type: object
      required: [email]
      properties:
        email: {type: string}
    http:
      method: POST
      url: /v2/contacts
      body: {email: "{{ $.properties.email }}"}
      output: {id: "{{ $.response.body.data.id }}"}
`
	for name, text := range map[string]string{"connector.yaml": manifest, "CHANGELOG.md": "# 0.1.0\n\nFirst.\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	zipped, err := connector.Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := e.publish(e.admin, zipped); code != http.StatusCreated {
		t.Fatalf("publish: %d %s", code, body)
	}
	var details struct {
		Components []struct{ Name string }
	}
	e.do("GET", "/api/v1/connectors/acme-lite", e.admin, nil, http.StatusOK, &details)
	if len(details.Components) != 1 {
		t.Fatalf("details: %+v", details)
	}
	e.do("POST", "/api/v1/connectors/acme-lite/install", e.admin, nil, http.StatusOK, nil)
	sink := newPathSink(t)
	f := e.startFlow(e.admin, map[string]any{
		"name": "yaml",
		"components": map[string]any{
			"hook":   map[string]any{"type": "core.Webhook"},
			"create": map[string]any{"type": "acme-lite.CreateContact", "properties": map[string]any{"email": "{{ $.hook.body.email }}"}},
			"out":    toSink(sink.srv.URL, "/created", "{{ $.create }}"),
		},
		"links": []map[string]any{{"from": "hook", "to": "create"}, {"from": "create", "to": "out"}},
	})
	e.do("POST", f.Components["hook"].WebhookURL, "", `{"email":"ada@example.com"}`, http.StatusAccepted, nil)
	if got := sink.waitBodies(t, "/created", 1); fmt.Sprint(got) != "[map[id:c_1]]" {
		t.Fatalf("the YAML connector's action gave %v", got)
	}
}

// TestSubscriptionChanges: what happens to a subscription when its flow
// changes under it. A property change made while the flow's compiled form
// is cached subscribes anew; a trigger removed and added back (a new
// inbound URL) subscribes anew at the new URL; a flow deleted while its
// subscribe is under way still has the webhook removed; a delivery to a
// trigger whose connector was removed asks the provider to send again.
func TestSubscriptionChanges(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			acme := newAcmeAPI(t)
			withEvent := func(m map[string]any) {
				for _, c := range m["components"].([]any) {
					if c := c.(map[string]any); c["name"] == "ContactUpdated" {
						c["properties"] = map[string]any{"type": "object", "properties": map[string]any{"event": map[string]any{"type": "string"}}}
						c["subscription"].(map[string]any)["subscribe"].(map[string]any)["body"].(map[string]any)["event"] = "{{ $.properties.event }}"
					}
				}
			}
			if code, body := e.publish(e.admin, packExampleWith(t, acme.srv.URL, "1.2.0", withEvent)); code != http.StatusCreated {
				t.Fatalf("publish: %d %s", code, body)
			}
			e.do("POST", "/api/v1/connectors/acme-crm/install", e.admin, nil, http.StatusOK, nil)
			acc := acme.requireAccount(t, e)
			doc := func(event string, withTrigger bool) map[string]any {
				comps := map[string]any{"hook": map[string]any{"type": "core.Webhook"}}
				var links []map[string]any
				if withTrigger {
					comps["updated"] = map[string]any{"type": "acme-crm.ContactUpdated", "properties": map[string]any{"account": acc, "event": event}}
					comps["score"] = map[string]any{"type": "acme-crm.ScoreContact", "properties": map[string]any{"contact": "{{ $.updated }}"}}
					links = append(links, map[string]any{"from": "updated", "to": "score"})
				}
				return map[string]any{"name": "changes", "components": comps, "links": links}
			}
			live := func() map[string]string { // subscription id -> event
				acme.mu.Lock()
				defer acme.mu.Unlock()
				out := map[string]string{}
				for id := range acme.hooks {
					out[id] = acme.events[id]
				}
				return out
			}
			f := e.startFlow(e.admin, doc("contact.updated", true))
			eventually(t, 10*time.Second, "the subscription", func() bool { return fmt.Sprint(live()) == "map[wh_1:contact.updated]" })

			// A delivery compiles the flow into the cache; the update right
			// after must still be seen.
			e.do("POST", f.Components["updated"].WebhookURL, "", `{"events":[]}`, http.StatusAccepted, nil)
			e.do("PUT", "/api/v1/flows/"+f.ID, e.admin, doc("contact.deleted", true), http.StatusOK, nil)
			eventually(t, 10*time.Second, "the subscription for the new event", func() bool {
				return fmt.Sprint(live()) == "map[wh_2:contact.deleted]"
			})

			// Removed and added back: a new inbound URL, so a new
			// subscription to it.
			e.do("PUT", "/api/v1/flows/"+f.ID, e.admin, doc("", false), http.StatusOK, nil)
			var again flowResp
			e.do("PUT", "/api/v1/flows/"+f.ID, e.admin, doc("contact.deleted", true), http.StatusOK, &again)
			eventually(t, 10*time.Second, "a subscription to the new URL", func() bool {
				acme.mu.Lock()
				defer acme.mu.Unlock()
				return len(acme.hooks) == 1 && slices.Contains(slices.Collect(maps.Values(acme.hooks)), again.Components["updated"].WebhookURL)
			})

			// The connector removed: deliveries are refused for now, with
			// Retry-After, not lost as "no such webhook", even the one
			// right after a delivery that left the token in the API's cache.
			e.do("POST", again.Components["updated"].WebhookURL, "", `{"events":[]}`, http.StatusAccepted, nil)
			e.do("DELETE", "/api/v1/connectors/acme-crm", e.admin, nil, http.StatusNoContent, nil)
			resp, err := http.Post(again.Components["updated"].WebhookURL, "application/json", strings.NewReader(`{"events":[]}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("a delivery while the connector is removed: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			e.do("POST", "/api/v1/connectors/acme-crm/install", e.admin, nil, http.StatusOK, nil)

			// Deleted while its subscribe is under way: the webhook the
			// provider makes is removed all the same.
			acme.mu.Lock()
			acme.gate, acme.arrived = make(chan struct{}), make(chan struct{}, 1)
			acme.mu.Unlock()
			g := e.startFlow(e.admin, doc("contact.created", true))
			select {
			case <-acme.arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("no subscribe request")
			}
			e.do("DELETE", "/api/v1/flows/"+g.ID, e.admin, nil, http.StatusNoContent, nil)
			acme.mu.Lock()
			close(acme.gate)
			acme.gate = nil
			acme.mu.Unlock()
			eventually(t, 10*time.Second, "the deleted flow's webhook removed", func() bool {
				for _, ev := range live() {
					if ev == "contact.created" {
						return false
					}
				}
				rows, err := e.store.Subscriptions(t.Context(), g.ID)
				return err == nil && len(rows) == 0
			})
		})
	}
}

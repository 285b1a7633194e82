package api_test

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store/storetest"
)

// appEventFlow is the flow "app event -> call an HTTP API" whose call
// carries tag (which flow sent it) and the whole trigger output.
func appEventFlow(sinkURL, event, tag string) map[string]any {
	return map[string]any{
		"name": "On " + event + " (" + tag + ")",
		"components": map[string]any{
			"ev": map[string]any{"type": "core.OnAppEvent", "properties": map[string]any{
				"event": event, "sample": map[string]any{"email": "ada@example.com"}}},
			"call": map[string]any{"type": "core.HttpRequest",
				"properties": map[string]any{"method": "POST", "url": sinkURL, "body": map[string]any{"tag": tag, "ev": "{{ $.ev }}"}},
				"retry":      map[string]any{"maxAttempts": 3, "initialInterval": "10ms", "maxInterval": "50ms"}},
		},
		"links": []map[string]any{{"from": "ev", "to": "call"}},
	}
}

type appEventResp struct {
	Flows          int      `json:"flows"`
	CorrelationIDs []string `json:"correlationIds"`
}

// sendAppEvent posts an app event and checks the status.
func (e *env) sendAppEvent(token, event, query string, body any, want int) appEventResp {
	e.t.Helper()
	path := "/api/v1/app-events/" + url.PathEscape(event)
	if query != "" {
		path += "?" + query
	}
	var out appEventResp
	if want == http.StatusAccepted {
		e.do("POST", path, token, body, want, &out)
		if out.CorrelationIDs == nil {
			e.t.Fatalf("app event %s: correlationIds is missing or null", event)
		}
	} else {
		e.do("POST", path, token, body, want, nil)
	}
	return out
}

// runsOf maps each correlation id in the flow's logs to the component of
// its first entry (the trigger).
func (e *env) runsOf(flowID string) map[string]string {
	e.t.Helper()
	var logs struct {
		Items []struct {
			CorrelationID string `json:"correlationId"`
			ComponentID   string `json:"componentId"`
			Status        string `json:"status"`
		}
	}
	e.do("GET", "/api/v1/flows/"+flowID+"/logs?limit=500", e.admin, nil, http.StatusOK, &logs)
	out := map[string]string{}
	for _, l := range logs.Items {
		if l.Status == "accepted" {
			out[l.CorrelationID] = l.ComponentID
		}
	}
	return out
}

// received returns the body the sink received under each idempotency key.
func (s *sink) received() map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.bodies)
}

func TestAppEvents(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testAppEvents(t, backend)
		})
	}
}

func testAppEvents(t *testing.T, backend string) {
	e := newEnv(t, backend)
	s := newSink(t, 0)
	aliceID, alice := e.user("alice@example.com")
	bobID, bob := e.user("bob@example.com")

	flows := map[string]string{} // tag -> flow id
	add := func(token, event, tag string, start bool) {
		var f flowResp
		if start {
			f = e.startFlow(token, appEventFlow(s.srv.URL, event, tag))
		} else {
			e.do("POST", "/api/v1/flows", token, appEventFlow(s.srv.URL, event, tag), http.StatusCreated, &f)
		}
		flows[tag] = f.ID
	}
	add(alice, "contact-created", "a1", true)
	add(alice, "contact-created", "a2", true)
	add(alice, "contact-created", "a-stopped", false)
	add(alice, "deal-won", "a-deal", true)
	add(bob, "contact-created", "b1", true)
	add(bob, "deal-won", "b-deal", true)

	delivered := 0
	// send sends an app event and checks that exactly the flows tagged
	// want start: the answer, the logs written with it (before the 202)
	// and, once delivered, what the sink received.
	send := func(token, event, query string, body any, wantUser string, wantData any, want ...string) {
		t.Helper()
		before := map[string]int{}
		for tag, id := range flows {
			before[tag] = len(e.runsOf(id))
		}
		seen := s.received()
		ans := e.sendAppEvent(token, event, query, body, http.StatusAccepted)
		if ans.Flows != len(want) || len(ans.CorrelationIDs) != len(want) {
			t.Fatalf("%s: answer %+v, want %d flows (%v)", event, ans, len(want), want)
		}
		for tag, id := range flows {
			runs := e.runsOf(id)
			n := len(runs) - before[tag]
			if slices.Contains(want, tag) {
				if n != 1 {
					t.Fatalf("%s: flow %s has %d new runs, want 1", event, tag, n)
				}
				found := 0
				for _, c := range ans.CorrelationIDs {
					if runs[c] == "ev" {
						found++
					}
				}
				if found != 1 {
					t.Fatalf("%s: %d of the answered correlation ids %v are in the logs of %s", event, found, ans.CorrelationIDs, tag)
				}
			} else if n != 0 {
				t.Fatalf("%s: flow %s, which should not start, has %d new runs", event, tag, n)
			}
		}
		delivered += len(want)
		eventually(t, 20*time.Second, "deliveries", func() bool { return s.delivered() == delivered })
		var tags []string
		for key, b := range s.received() {
			if _, old := seen[key]; old {
				continue
			}
			tag, _ := b["tag"].(string)
			tags = append(tags, tag)
			ev, _ := b["ev"].(map[string]any)
			if ev["event"] != event || ev["userId"] != wantUser || !equalJSON(ev["data"], wantData) {
				t.Fatalf("%s: flow %s received %v", event, tag, ev)
			}
			at, _ := ev["receivedAt"].(string)
			parsed, err := time.Parse(time.RFC3339Nano, at)
			if err != nil || len(at) != len("2006-01-02T15:04:05.000Z") || !strings.HasSuffix(at, "Z") || time.Since(parsed) > time.Minute {
				t.Fatalf("%s: receivedAt %q is not RFC 3339 UTC with milliseconds", event, at)
			}
		}
		slices.Sort(tags)
		if !slices.Equal(tags, slices.Sorted(slices.Values(want))) {
			t.Fatalf("%s: the sink received calls from %v, want %v", event, tags, want)
		}
	}

	// Each user's send starts exactly that user's running flows on the event.
	contact := map[string]any{"email": "ada@example.com", "tags": []any{"vip"}}
	send(alice, "contact-created", "", contact, aliceID, contact, "a1", "a2")
	send(bob, "contact-created", "", map[string]any{"n": 2.0}, bobID, map[string]any{"n": 2.0}, "b1")
	send(bob, "deal-won", "", []any{1.0, "two"}, bobID, []any{1.0, "two"}, "b-deal")
	// An empty body is null data; no flow on the event is still a 202.
	send(alice, "deal-won", "", "", aliceID, nil, "a-deal")
	send(alice, "nobody-listens", "", map[string]any{}, aliceID, nil)
	// Names are taken exactly, and may hold any printable character.
	send(alice, "Contact-Created", "", "1", aliceID, nil)
	add(alice, "ünïcode/name with spaces", "a-odd", true)
	send(alice, "ünïcode/name with spaces", "", "true", aliceID, true, "a-odd")

	// An admin sends on behalf of a user, and only that user's flows start.
	send(e.admin, "contact-created", "userId="+bobID, "3", bobID, 3.0, "b1")
	send(e.admin, "contact-created", "", "3", "", nil) // the admin's own flows: none
	e.sendAppEvent(alice, "contact-created", "userId="+bobID, "{}", http.StatusForbidden)
	e.sendAppEvent(alice, "contact-created", "userId="+aliceID, "{}", http.StatusForbidden)
	e.sendAppEvent(e.admin, "contact-created", "userId=no-such-user", "{}", http.StatusNotFound)
	e.sendAppEvent(e.admin, "contact-created", "userId=", "{}", http.StatusBadRequest)

	// Changing a flow's event takes effect at once; so do stop and delete.
	doc := appEventFlow(s.srv.URL, "contact-renamed", "a1")
	e.do("PUT", "/api/v1/flows/"+flows["a1"], alice, doc, http.StatusOK, nil)
	doc = appEventFlow(s.srv.URL, "contact-created", "a-deal")
	e.do("PUT", "/api/v1/flows/"+flows["a-deal"], alice, doc, http.StatusOK, nil)
	send(alice, "contact-created", "", "5", aliceID, 5.0, "a2", "a-deal")
	send(alice, "contact-renamed", "", "6", aliceID, 6.0, "a1")
	send(alice, "deal-won", "", "7", aliceID, nil)

	e.do("DELETE", "/api/v1/flows/"+flows["a2"], alice, nil, http.StatusNoContent, nil)
	delete(flows, "a2")
	send(alice, "contact-created", "", "8", aliceID, 8.0, "a-deal")
	e.do("POST", "/api/v1/flows/"+flows["a-deal"], alice, map[string]string{"command": "stop"}, http.StatusOK, nil)
	send(alice, "contact-created", "", "9", aliceID, nil)
	e.do("POST", "/api/v1/flows/"+flows["a-stopped"], alice, map[string]string{"command": "start"}, http.StatusOK, nil)
	send(alice, "contact-created", "", "10", aliceID, 10.0, "a-stopped")
}

// TestAppEventBadInput sends broken requests: each answers a problem
// document and starts nothing.
func TestAppEventBadInput(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			s := newSink(t, 0)
			_, alice := e.user("alice@example.com")
			f := e.startFlow(alice, appEventFlow(s.srv.URL, "contact-created", "a"))

			for _, c := range []struct {
				name, token, event, body string
				want                     int
			}{
				{"malformed JSON", alice, "contact-created", `{"email":`, http.StatusBadRequest},
				{"trailing data", alice, "contact-created", `{} {}`, http.StatusBadRequest},
				{"not JSON", alice, "contact-created", `email=ada@example.com`, http.StatusBadRequest},
				{"oversize body", alice, "contact-created", `"` + strings.Repeat("x", 1<<20) + `"`, http.StatusRequestEntityTooLarge},
				{"name too long", alice, strings.Repeat("x", 201), `{}`, http.StatusUnprocessableEntity},
				{"control character", alice, "contact\ncreated", `{}`, http.StatusUnprocessableEntity},
				{"invalid UTF-8", alice, "contact\xffcreated", `{}`, http.StatusUnprocessableEntity},
				{"bad token", alice + "x", "contact-created", `{}`, http.StatusUnauthorized},
				{"no token", "", "contact-created", `{}`, http.StatusUnauthorized},
			} {
				t.Log(c.name)
				e.sendAppEvent(c.token, c.event, "", c.body, c.want)
			}
			// The longest name is fine.
			e.sendAppEvent(alice, strings.Repeat("x", 200), "", `{}`, http.StatusAccepted)
			if runs := e.runsOf(f.ID); len(runs) != 0 {
				t.Fatalf("bad requests started %d runs", len(runs))
			}
			if n := s.keys(); n != 0 {
				t.Fatalf("the sink got %d calls", n)
			}
		})
	}
}

// equalJSON compares decoded JSON values.
func equalJSON(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		return ok && maps.EqualFunc(a, b, equalJSON)
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, equalJSON)
	}
	return a == b
}

// TestAppEventNameIsCheckedWhenSaved: an event name no request could send
// is refused when the flow is saved; braces in a name are just text.
func TestAppEventNameIsCheckedWhenSaved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storetest.Backends()[0])
	doc := func(event string) map[string]any {
		return map[string]any{"name": "ev", "components": map[string]any{
			"on": map[string]any{"type": "core.OnAppEvent", "properties": map[string]any{"event": event}}}}
	}
	for _, bad := range []string{"", strings.Repeat("x", 201), "tab\there"} {
		body := e.do("POST", "/api/v1/flows", e.admin, doc(bad), http.StatusUnprocessableEntity, nil)
		if !strings.Contains(string(body), `"properties.event"`) {
			t.Errorf("%q: the problem does not name the property: %s", bad, body)
		}
	}
	// Taken literally: "{{" is part of the name, not a placeholder.
	f := e.startFlow(e.admin, doc("{{ weird"))
	var ans struct{ Flows int }
	e.do("POST", "/api/v1/app-events/"+url.PathEscape("{{ weird"), e.admin, `{}`, http.StatusAccepted, &ans)
	if ans.Flows != 1 {
		t.Fatalf("flow %s was not started by its literal event name: %+v", f.ID, ans)
	}
}

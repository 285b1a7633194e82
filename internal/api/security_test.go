package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			s := newSink(t, 0)
			_, alice := e.user("alice@example.com")
			_, bob := e.user("bob@example.com")
			f := e.startFlow(alice, forwardFlow(s.srv.URL, 1))
			id := f.ID
			doc := forwardFlow(s.srv.URL, 1)

			// Bob cannot see, change, start, stop, delete or read logs of Alice's flow.
			e.do("GET", "/api/v1/flows/"+id, bob, nil, http.StatusNotFound, nil)
			e.do("PUT", "/api/v1/flows/"+id, bob, doc, http.StatusNotFound, nil)
			e.do("POST", "/api/v1/flows/"+id, bob, map[string]string{"command": "stop"}, http.StatusNotFound, nil)
			e.do("DELETE", "/api/v1/flows/"+id, bob, nil, http.StatusNotFound, nil)
			e.do("GET", "/api/v1/flows/"+id+"/logs", bob, nil, http.StatusNotFound, nil)
			var list struct{ Items []flowResp }
			e.do("GET", "/api/v1/flows", bob, nil, http.StatusOK, &list)
			if len(list.Items) != 0 {
				t.Fatalf("bob lists %d flows", len(list.Items))
			}
			// Users cannot use admin endpoints.
			e.do("POST", "/api/v1/users", bob, map[string]any{"email": "x@example.com", "virtual": true}, http.StatusForbidden, nil)
			e.do("GET", "/api/v1/users", bob, nil, http.StatusForbidden, nil)

			// Alice's flow is untouched and still running.
			var got flowResp
			e.do("GET", "/api/v1/flows/"+id, alice, nil, http.StatusOK, &got)
			if got.Stage != "running" {
				t.Fatalf("alice's flow stage = %s", got.Stage)
			}
			e.do("GET", "/api/v1/flows", alice, nil, http.StatusOK, &list)
			if len(list.Items) != 1 {
				t.Fatalf("alice lists %d flows, want 1", len(list.Items))
			}

			// Dead-lettered messages are private too.
			s.failAll.Store(true)
			postHook(t, f.Components["hook"].WebhookURL, `{"user":{"email":"a@example.com"}}`)
			var un unprocessedResp
			eventually(t, 20e9, "alice's unprocessed message", func() bool {
				e.do("GET", "/api/v1/unprocessed-messages", alice, nil, http.StatusOK, &un)
				return len(un.Items) == 1
			})
			e.do("GET", "/api/v1/unprocessed-messages", bob, nil, http.StatusOK, &un)
			if len(un.Items) != 0 {
				t.Fatalf("bob sees alice's unprocessed messages")
			}
			e.do("GET", "/api/v1/unprocessed-messages", alice, nil, http.StatusOK, &un)
			mid := un.Items[0].ID
			e.do("POST", "/api/v1/unprocessed-messages/"+mid+"/retry", bob, nil, http.StatusNotFound, nil)
			e.do("DELETE", "/api/v1/unprocessed-messages/"+mid, bob, nil, http.StatusNotFound, nil)
			e.do("DELETE", "/api/v1/unprocessed-messages/"+mid, alice, nil, http.StatusNoContent, nil)
		})
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			s := newSink(t, 0)
			_, alice := e.user("alice@example.com")
			f := e.startFlow(alice, forwardFlow(s.srv.URL, 1))
			ctx := context.Background()
			countFlows := func() int {
				fl, err := e.store.ListFlows(ctx, store.FlowFilter{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				return len(fl)
			}
			before := countFlows()

			cases := []struct {
				name, method, path, token string
				body                      any
				status                    int
				detail                    string
			}{
				{"malformed JSON", "POST", "/api/v1/flows", alice, `{"name": "x", "components": {`, 400, "malformed"},
				{"unknown field", "POST", "/api/v1/flows", alice, `{"name": "x", "colour": 1}`, 400, "colour"},
				{"oversize body", "POST", "/api/v1/flows", alice, `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "larger"},
				{"unknown component", "POST", "/api/v1/flows", alice, map[string]any{"name": "x",
					"components": map[string]any{"a": map[string]any{"type": "core.Nope"}}}, 422, "core.Nope"},
				{"missing required property", "POST", "/api/v1/flows", alice, map[string]any{"name": "x",
					"components": map[string]any{"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{}}}}, 422, "properties.url"},
				{"link to missing component", "POST", "/api/v1/flows", alice, map[string]any{"name": "x",
					"components": map[string]any{"hook": map[string]any{"type": "core.Webhook"}},
					"links":      []any{map[string]any{"from": "hook", "to": "ghost"}}}, 422, "ghost"},
				{"link to missing port", "POST", "/api/v1/flows", alice, map[string]any{"name": "x",
					"components": map[string]any{"hook": map[string]any{"type": "core.Webhook"},
						"map": map[string]any{"type": "core.Set", "properties": map[string]any{"values": map[string]any{}}}},
					"links": []any{map[string]any{"from": "hook", "fromPort": "nope", "to": "map"}}}, 422, "nope"},
				{"cycle", "POST", "/api/v1/flows", alice, map[string]any{"name": "x",
					"components": map[string]any{
						"a": map[string]any{"type": "core.Set", "properties": map[string]any{"values": map[string]any{}}},
						"b": map[string]any{"type": "core.Set", "properties": map[string]any{"values": map[string]any{}}}},
					"links": []any{map[string]any{"from": "a", "to": "b"}, map[string]any{"from": "b", "to": "a"}}}, 422, "cycle"},
				{"bad placeholder", "POST", "/api/v1/flows", alice, map[string]any{"name": "x",
					"components": map[string]any{"a": map[string]any{"type": "core.Set", "properties": map[string]any{"values": map[string]any{"v": "{{ $.a. }}"}}}}}, 422, "values"},
				{"no token", "POST", "/api/v1/flows", "", forwardFlow(s.srv.URL, 1), 401, "token"},
				{"wrong token", "POST", "/api/v1/flows", "0000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", forwardFlow(s.srv.URL, 1), 401, "token"},
				{"forged secret", "POST", "/api/v1/flows", alice[:strings.IndexByte(alice, '.')] + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", forwardFlow(s.srv.URL, 1), 401, "token"},
				{"bad command", "POST", "/api/v1/flows/" + f.ID, alice, map[string]string{"command": "explode"}, 422, "command"},
				{"bad sign-in", "POST", "/api/v1/auth/sign-in", "", map[string]string{"email": "admin@example.com", "password": "wrong-password"}, 401, "wrong"},
				{"bad limit", "GET", "/api/v1/flows?limit=0", alice, nil, 400, "limit"},
			}
			for _, c := range cases {
				data := e.do(c.method, c.path, c.token, c.body, c.status, nil)
				if !strings.Contains(string(data), c.detail) {
					t.Errorf("%s: problem %s does not mention %q", c.name, data, c.detail)
				}
			}
			if n := countFlows(); n != before {
				t.Fatalf("bad requests changed the flows: %d, want %d", n, before)
			}

			// Webhooks: malformed JSON and oversize bodies are refused and
			// store nothing; a stopped flow refuses at once.
			hook := f.Components["hook"].WebhookURL
			if code, _ := postHook(t, hook, `{"user":`); code != http.StatusBadRequest {
				t.Fatalf("malformed webhook JSON: %d", code)
			}
			if code, _ := postHook(t, hook, `{"big":"`+strings.Repeat("x", 1<<20)+`"}`); code != http.StatusRequestEntityTooLarge {
				t.Fatalf("oversize webhook: %d", code)
			}
			if code, _ := postHook(t, e.srv.URL+"/hooks/not-a-token", `{}`); code != http.StatusNotFound {
				t.Fatalf("unknown webhook: %d", code)
			}
			logs, err := e.store.FlowLogs(ctx, store.LogFilter{FlowID: f.ID, Limit: 10})
			if err != nil || len(logs) != 0 {
				t.Fatalf("refused webhooks left %d logs (%v)", len(logs), err)
			}
			e.do("POST", "/api/v1/flows/"+f.ID, alice, map[string]string{"command": "stop"}, http.StatusOK, nil)
			if code, _ := postHook(t, hook, `{}`); code != http.StatusGone {
				t.Fatalf("webhook of stopped flow: %d, want 410", code)
			}
			if s.keys() != 0 {
				t.Fatalf("sink got %d messages from refused webhooks", s.keys())
			}
		})
	}
}

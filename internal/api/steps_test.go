package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// bodiesOf returns the "n" field of every body the sink received, sorted.
func (s *sink) bodiesOf() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []float64
	for _, b := range s.bodies {
		n, _ := b["n"].(float64)
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// send makes a JSON request and returns the answer with its body read.
func send(t *testing.T, method, url, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// unprocessedErrors lists the errors of the admin's unprocessed messages.
func (e *env) unprocessedErrors() []string {
	var un struct{ Items []struct{ Error string } }
	e.do("GET", "/api/v1/unprocessed-messages", e.admin, nil, http.StatusOK, &un)
	var out []string
	for _, m := range un.Items {
		out = append(out, m.Error)
	}
	return out
}

func TestFilterRoutesByPort(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			big, small := newSink(t, 0), newSink(t, 0)
			call := func(url string) map[string]any {
				return map[string]any{"type": "core.HttpRequest", "properties": map[string]any{"method": "POST", "url": url, "body": "{{ $.hook.body }}"}}
			}
			f := e.startFlow(e.admin, map[string]any{
				"name": "route by amount",
				"components": map[string]any{
					"hook":  map[string]any{"type": "core.Webhook"},
					"check": map[string]any{"type": "core.Filter", "properties": map[string]any{"condition": "{{ $.hook.body.n > 100 }}"}},
					"big":   call(big.srv.URL),
					"small": call(small.srv.URL),
				},
				"links": []map[string]any{
					{"from": "hook", "to": "check"},
					{"from": "check", "fromPort": "true", "to": "big"},
					{"from": "check", "fromPort": "false", "to": "small"},
				},
			})
			for _, n := range []string{"50", "150", "100", "101"} {
				e.do("POST", f.Components["hook"].WebhookURL, "", `{"n":`+n+`}`, http.StatusAccepted, nil)
			}
			eventually(t, 10*time.Second, "four deliveries", func() bool { return big.delivered()+small.delivered() == 4 })
			if got := big.bodiesOf(); !slices.Equal(got, []float64{101, 150}) {
				t.Errorf("true port got %v", got)
			}
			if got := small.bodiesOf(); !slices.Equal(got, []float64{50, 100}) {
				t.Errorf("false port got %v", got)
			}

			// A condition that is not a boolean fails the step for good, saying why.
			bad := e.startFlow(e.admin, map[string]any{
				"name": "bad condition",
				"components": map[string]any{
					"hook":  map[string]any{"type": "core.Webhook"},
					"check": map[string]any{"type": "core.Filter", "properties": map[string]any{"condition": "{{ $.hook.body.n }}"}},
					"big":   call(big.srv.URL),
				},
				"links": []map[string]any{{"from": "hook", "to": "check"}, {"from": "check", "fromPort": "true", "to": "big"}},
			})
			e.do("POST", bad.Components["hook"].WebhookURL, "", `{"n":7}`, http.StatusAccepted, nil)
			eventually(t, 10*time.Second, "the bad condition dead-lettered", func() bool { return len(e.unprocessedErrors()) == 1 })
			if errs := e.unprocessedErrors(); !strings.Contains(errs[0], "condition must be true or false, got the number 7") {
				t.Errorf("error = %q", errs[0])
			}
		})
	}
}

func TestDelayWaitsWithoutAWorker(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			s := newSink(t, 0)
			f := e.startFlow(e.admin, map[string]any{
				"name": "later",
				"components": map[string]any{
					"hook":  map[string]any{"type": "core.Webhook"},
					"wait":  map[string]any{"type": "core.Delay", "properties": map[string]any{"duration": "{{ $.hook.body.wait }}"}},
					"until": map[string]any{"type": "core.Delay", "properties": map[string]any{"until": "2001-01-01T00:00:00Z"}},
					"call":  map[string]any{"type": "core.HttpRequest", "properties": map[string]any{"method": "POST", "url": s.srv.URL, "body": "{{ $.hook.body }}"}},
				},
				"links": []map[string]any{{"from": "hook", "to": "wait"}, {"from": "wait", "to": "until"}, {"from": "until", "to": "call"}},
			})
			const wait = 700 * time.Millisecond
			sent := time.Now()
			e.do("POST", f.Components["hook"].WebhookURL, "", `{"n":1,"wait":"700ms"}`, http.StatusAccepted, nil)
			// While it waits, the step is a job due later, not a running one.
			c, err := e.store.JobCounts(t.Context())
			if err != nil || c[store.JobAvailable] != 1 || c[store.JobRunning] != 0 {
				t.Fatalf("job counts while waiting = %v, %v", c, err)
			}
			eventually(t, 10*time.Second, "the delayed delivery", func() bool { return s.delivered() == 1 })
			if took := time.Since(sent); took < wait {
				t.Fatalf("delivered after %s, before the %s delay", took, wait)
			}
			if got := s.bodiesOf(); !slices.Equal(got, []float64{1}) {
				t.Fatalf("delivered %v", got)
			}

			// A duration that makes no sense fails for good at once.
			e.do("POST", f.Components["hook"].WebhookURL, "", `{"n":2,"wait":"soon"}`, http.StatusAccepted, nil)
			eventually(t, 10*time.Second, "the bad delay dead-lettered", func() bool { return len(e.unprocessedErrors()) == 1 })
			if errs := e.unprocessedErrors(); !strings.Contains(errs[0], `"soon" is not a duration`) {
				t.Errorf("error = %q", errs[0])
			}
		})
	}
}

func TestWebhookWaitsForResponse(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			s := newSink(t, 0)
			// The reply is made after an HTTP call, in a job of its own.
			f := e.startFlow(e.admin, map[string]any{
				"name": "sync",
				"components": map[string]any{
					"hook": map[string]any{"type": "core.Webhook", "properties": map[string]any{"mode": "wait", "timeout": "10s"}},
					"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{"method": "POST", "url": s.srv.URL, "body": "{{ $.hook.body }}"}},
					"resp": map[string]any{"type": "core.Response", "properties": map[string]any{
						"status":  201,
						"headers": map[string]any{"x-order": "{{ $.hook.body.order }}"},
						"body":    map[string]any{"order": "{{ $.hook.body.order }}", "upstream": "{{ $.call.body }}"},
					}},
				},
				"links": []map[string]any{{"from": "hook", "to": "call"}, {"from": "call", "to": "resp"}},
			})
			resp, body := send(t, http.MethodPost, f.Components["hook"].WebhookURL, `{"order":"A-17"}`)
			if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Order") != "A-17" || resp.Header.Get("Content-Type") != "application/json" ||
				resp.Header.Get("Plugboard-Correlation-Id") == "" {
				t.Fatalf("reply %d %v %s", resp.StatusCode, resp.Header, body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil || got["order"] != "A-17" || got["upstream"].(map[string]any)["ok"] != true {
				t.Fatalf("reply body %s (%v)", body, err)
			}

			// A text body goes out as text; a reply made inline in the accept
			// comes back too.
			text := e.startFlow(e.admin, map[string]any{
				"name": "text",
				"components": map[string]any{
					"hook": map[string]any{"type": "core.Webhook", "properties": map[string]any{"mode": "wait", "timeout": "3s"}},
					"resp": map[string]any{"type": "core.Response", "properties": map[string]any{"body": "hello {{ $.hook.query.name }}"}},
				},
				"links": []map[string]any{{"from": "hook", "to": "resp"}},
			})
			resp, body = send(t, http.MethodGet, text.Components["hook"].WebhookURL+"?name=Ada", "")
			if resp.StatusCode != http.StatusOK || string(body) != "hello Ada" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("text reply %d %q %v; unprocessed %v", resp.StatusCode, body, resp.Header, e.unprocessedErrors())
			}

			// No reply within the timeout: 504, and the run goes on.
			slow := e.startFlow(e.admin, map[string]any{
				"name": "slow",
				"components": map[string]any{
					"hook": map[string]any{"type": "core.Webhook", "properties": map[string]any{"mode": "wait", "timeout": "300ms"}},
					"wait": map[string]any{"type": "core.Delay", "properties": map[string]any{"duration": "1s"}},
					"resp": map[string]any{"type": "core.Response", "properties": map[string]any{"body": "late"}},
				},
				"links": []map[string]any{{"from": "hook", "to": "wait"}, {"from": "wait", "to": "resp"}},
			})
			start := time.Now()
			resp, body = send(t, http.MethodPost, slow.Components["hook"].WebhookURL, `{}`)
			if took := time.Since(start); resp.StatusCode != http.StatusGatewayTimeout || took < 300*time.Millisecond || took > 5*time.Second ||
				resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "did not reply within 300ms") {
				t.Fatalf("slow reply after %s: %d %s", took, resp.StatusCode, body)
			}
		})
	}
}

func TestCodeStep(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			s := newSink(t, 0)
			codeFlow := func(name, code string) flowResp {
				return e.startFlow(e.admin, map[string]any{
					"name": name,
					"components": map[string]any{
						"hook": map[string]any{"type": "core.Webhook"},
						"code": map[string]any{"type": "core.Code", "properties": map[string]any{"code": code, "timeout": "100ms"},
							"retry": map[string]any{"maxAttempts": 2, "initialInterval": "10ms", "maxInterval": "20ms"}},
						"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{"method": "POST", "url": s.srv.URL, "body": "{{ $.code }}"}},
					},
					"links": []map[string]any{{"from": "hook", "to": "code"}, {"from": "code", "to": "call"}},
				})
			}
			// Happy path: input and $ in, the return value out; {{ }} in the
			// source is left alone; no require, fetch or process.
			ok := codeFlow("score", `const tag = "{{ not a placeholder }}";
				return { n: input.body.n * 2, email: $.hook.body.user.email.toUpperCase(), tag,
				         sandbox: [typeof require, typeof fetch, typeof process].join(",") };`)
			e.do("POST", ok.Components["hook"].WebhookURL, "", `{"n":21,"user":{"email":"ada@example.com"}}`, http.StatusAccepted, nil)
			eventually(t, 10*time.Second, "the scored message", func() bool { return s.delivered() == 1 })
			s.mu.Lock()
			for _, b := range s.bodies {
				if b["n"] != 42.0 || b["email"] != "ADA@EXAMPLE.COM" || b["tag"] != "{{ not a placeholder }}" || b["sandbox"] != "undefined,undefined,undefined" {
					t.Errorf("delivered %v", b)
				}
			}
			s.mu.Unlock()

			// A runaway script is stopped by its time limit, retried, and
			// dead-lettered with its message.
			loop := codeFlow("loop", `while (true) {}`)
			e.do("POST", loop.Components["hook"].WebhookURL, "", `{"n":1}`, http.StatusAccepted, nil)
			eventually(t, 20*time.Second, "the runaway script dead-lettered", func() bool { return len(e.unprocessedErrors()) == 1 })
			var un struct {
				Items []struct {
					ComponentID, Error string
					Attempts           int
				}
			}
			e.do("GET", "/api/v1/unprocessed-messages", e.admin, nil, http.StatusOK, &un)
			if m := un.Items[0]; m.ComponentID != "code" || m.Attempts != 2 || !strings.Contains(strings.ToLower(m.Error), "time") {
				t.Errorf("unprocessed = %+v", un.Items)
			}
			if s.delivered() != 1 {
				t.Errorf("the runaway script's message was delivered")
			}
		})
	}
}

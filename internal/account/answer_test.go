package account_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// huge is an integer that a float64 cannot hold: decoded as one it comes
// back as 12345678901234567000.
const huge = "12345678901234567890"

// TestHugeNumbersPassThrough: an integer beyond float64's precision keeps
// every digit in the answer of a request and in its query, whether the
// call waits (Do) or runs as a job whose result is stored (wait=false).
func TestHugeNumbersPassThrough(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"id": %s, "got": %q, "list": [%s, 1.5]}`, huge, r.URL.Query().Get("id"), huge)
			})
			e.startEngine(t)
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-precision-0123456789", Domain: srv.URL})

			// The request as the API decodes it.
			var req account.Request
			body := `{"path": "/items", "query": {"id": ` + huge + `, "ids": [` + huge + `, 7]}}`
			if err := json.Unmarshal([]byte(body), &req); err != nil {
				t.Fatal(err)
			}
			res, err := e.svc.Do(ctx, alice, v.ID, req, "api")
			if err != nil {
				t.Fatal(err)
			}
			q := srv.last(t).Query
			if q.Get("id") != huge || strings.Join(q["ids"], ",") != huge+",7" {
				t.Errorf("the API got the query %v", q)
			}
			want := `{"id":` + huge + `,"got":"` + huge + `","list":[` + huge + `,1.5]}`
			if got := mustJSON(t, res); !strings.Contains(got, `"body":`+want) {
				t.Errorf("the answer encodes as %s, want the body %s", got, want)
			}
			// Flows still get the body as a value.
			if m, ok := res.Value().(map[string]any); !ok || m["got"] != huge {
				t.Errorf("Body = %s", res.Body)
			}

			// Queued: the job's payload and the stored result keep the
			// digits too.
			id, err := e.svc.Enqueue(ctx, alice, v.ID, req, "api")
			if err != nil {
				t.Fatal(err)
			}
			var rv *account.RequestView
			eventually(t, "the request to be done", func() bool {
				rv, err = e.svc.RequestResult(ctx, alice, v.ID, id)
				if err != nil {
					t.Fatal(err)
				}
				return rv.State == store.AccountRequestDone
			})
			if got := mustJSON(t, rv); !strings.Contains(got, `"body":`+want) {
				t.Errorf("the stored result encodes as %s, want the body %s", got, want)
			}
			if !strings.Contains(string(rv.Request), huge) {
				t.Errorf("the stored request %s lost the number", rv.Request)
			}
			if m, ok := rv.Result.Value().(map[string]any); !ok || m["got"] != huge {
				t.Errorf("stored Body = %s", rv.Result.Body)
			}
			// A result read back and written again is the same JSON.
			var again account.Result
			if err := json.Unmarshal([]byte(mustJSON(t, rv.Result)), &again); err != nil || mustJSON(t, again) != mustJSON(t, rv.Result) {
				t.Errorf("a result read back encodes as %s (%v), want %s", mustJSON(t, again), err, mustJSON(t, rv.Result))
			}
		})
	}
}

// TestResultValue: a Result keeps the answer's body as JSON and Value
// decodes it as outbound.DecodeBody decodes the body it came as, before
// and after the Result is stored as JSON.
func TestResultValue(t *testing.T) {
	t.Parallel()
	answers := map[string]struct{ contentType, body, json string }{
		"/object":    {"application/json", `{"a": [1, 2.5]}`, `{"a":[1,2.5]}`},
		"/number":    {"application/json", `12`, `12`},
		"/vendor":    {"application/vnd.api+json; charset=utf-8", `"quoted"`, `"quoted"`},
		"/untyped":   {"text/plain", ` [true] `, `[true]`},
		"/broken":    {"application/json", `{"a":`, `"{\"a\":"`},
		"/text":      {"text/plain", `12`, `"12"`},
		"/html":      {"text/html", `<p>hi</p>`, `"\u003cp\u003ehi\u003c/p\u003e"`},
		"/empty":     {"application/json", ``, `null`},
		"/bad-start": {"text/plain", `{not json}`, `"{not json}"`},
	}
	srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		w.Header().Set("Content-Type", a.contentType)
		_, _ = io.WriteString(w, a.body)
	})
	e := newEnv(t, store.BackendSQLite)
	v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-value-0123456789", Domain: srv.URL})
	for path, a := range answers {
		res, err := e.svc.Do(context.Background(), alice, v.ID, account.Request{Path: path}, "api")
		if err != nil {
			t.Fatal(err)
		}
		want := mustJSON(t, outbound.DecodeBody(a.contentType, []byte(a.body)))
		if got := mustJSON(t, res.Value()); got != want {
			t.Errorf("%s: Value = %s, want %s", path, got, want)
		}
		if got := mustJSON(t, res.Body); got != a.json {
			t.Errorf("%s: Body = %s, want %s", path, got, a.json)
		}
		var back account.Result
		if err := json.Unmarshal([]byte(mustJSON(t, res)), &back); err != nil || mustJSON(t, back.Value()) != want {
			t.Errorf("%s: read back, Value = %s (%v), want %s", path, mustJSON(t, back.Value()), err, want)
		}
	}
}

// TestRequestDecodesStrictly: a request body with a field the API does
// not know is refused, as every other body of the API.
func TestRequestDecodesStrictly(t *testing.T) {
	t.Parallel()
	var req account.Request
	if err := json.Unmarshal([]byte(`{"path": "/x", "wiat": false}`), &req); err == nil || !strings.Contains(err.Error(), "wiat") {
		t.Errorf("an unknown field: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"path": "/x", "query": {"n": 1.25, "b": true}, "wait": false}`), &req); err != nil ||
		req.Path != "/x" || req.Wait == nil || *req.Wait || req.Query["n"] != json.Number("1.25") || req.Query["b"] != true {
		t.Errorf("decoded %+v, %v", req, err)
	}
}

// TestAcceptEncodingLeftToTheClient: a caller's Accept-Encoding is not
// passed on, so the client asks for gzip itself and hands over the answer
// decompressed; an account cannot set it either.
func TestAcceptEncodingLeftToTheClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, store.BackendSQLite)
	srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			_, _ = io.WriteString(w, `{"compressed":false}`)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, `{"compressed":true}`)
		_ = zw.Close()
	})
	v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-gzip-0123456789", Domain: srv.URL})
	for _, h := range []string{"Accept-Encoding", "accept-encoding", "Accept_Encoding"} {
		res, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/z", Headers: map[string]string{h: "gzip"}}, "api")
		if err != nil {
			t.Fatal(err)
		}
		if got := mustJSON(t, res.Body); got != `{"compressed":true}` {
			t.Errorf("%s: gzip: the body is %s", h, got)
		}
		if got := srv.last(t).Header.Values("Accept-Encoding"); len(got) != 1 || got[0] != "gzip" {
			t.Errorf("%s: the API got Accept-Encoding %q", h, got)
		}
		if _, ok := res.Headers["Content-Encoding"]; ok {
			t.Errorf("%s: the answer still says it is encoded: %v", h, res.Headers)
		}
	}
	res, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/z", Headers: map[string]string{"Accept-Encoding": "identity"}}, "api")
	if err != nil || mustJSON(t, res.Body) != `{"compressed":true}` {
		t.Errorf("identity asked: %+v, %v", res, err)
	}
	// Send (connectors) too.
	resp, err := e.svc.Send(ctx, alice, v.ID, "", "api", func(base *url.URL) (*http.Request, error) {
		r, err := http.NewRequest(http.MethodGet, base.String()+"/z", nil)
		if err == nil {
			r.Header.Set("Accept-Encoding", "gzip")
		}
		return r, err
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"compressed":true}` {
		t.Errorf("Send: the body is %q", b)
	}
	_, err = e.svc.Create(ctx, alice, account.Input{Name: "x", AuthType: "token", Token: "tok-gzip-0123456789", Domain: srv.URL,
		Headers: map[string]string{"Accept-Encoding": "gzip"}})
	if got := inputField(err); got != "/headers/Accept-Encoding" {
		t.Errorf("an account's Accept-Encoding: %v", err)
	}
}

// TestQueuedRequestIdempotencyKey: every attempt of a wait=false request
// carries its request id as Idempotency-Key, unless the caller chose
// one, so that the API can tell an attempt made again after a timeout
// from a new request.
func TestQueuedRequestIdempotencyKey(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			var calls atomic.Int64
			srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/flaky" && calls.Add(1) == 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusCreated)
			})
			e.startEngine(t)
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-idem-0123456789", Domain: srv.URL})
			done := func(id string) {
				t.Helper()
				eventually(t, "request "+id, func() bool {
					rv, err := e.svc.RequestResult(ctx, alice, v.ID, id)
					if err != nil {
						t.Fatal(err)
					}
					return rv.State == store.AccountRequestDone
				})
			}
			id, err := e.svc.Enqueue(ctx, alice, v.ID, account.Request{Method: "POST", Path: "/flaky"}, "api")
			if err != nil {
				t.Fatal(err)
			}
			done(id)
			reqs := srv.requests()
			if len(reqs) != 2 {
				t.Fatalf("the API got %d requests, want 2", len(reqs))
			}
			for i, r := range reqs {
				if got := r.Header.Values("Idempotency-Key"); len(got) != 1 || got[0] != id {
					t.Errorf("attempt %d: Idempotency-Key %q, want %q", i+1, got, id)
				}
			}
			id2, err := e.svc.Enqueue(ctx, alice, v.ID, account.Request{Method: "POST", Path: "/mine",
				Headers: map[string]string{"idempotency-key": "order-42"}}, "api")
			if err != nil {
				t.Fatal(err)
			}
			done(id2)
			if got := srv.last(t).Header.Values("Idempotency-Key"); len(got) != 1 || got[0] != "order-42" {
				t.Errorf("the caller's key became %q", got)
			}
			// A request that waits is the caller's to name.
			if _, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/now"}, "api"); err != nil {
				t.Fatal(err)
			}
			if got := srv.last(t).Header.Get("Idempotency-Key"); got != "" {
				t.Errorf("a waiting request got Idempotency-Key %q", got)
			}
		})
	}
}

// TestPrune: Prune deletes the audit entries and the finished requests
// past their retention and keeps the rest.
func TestPrune(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var offset atomic.Int64
			e := newEnv(t, backend, func(c *account.Config) {
				c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
				c.AuditRetention = time.Hour
				c.RequestRetention = time.Millisecond
			})
			srv := newAPI(t, nil)
			e.startEngine(t)
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-prune-0123456789", Domain: srv.URL})
			for range 3 {
				if _, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/old"}, "api"); err != nil {
					t.Fatal(err)
				}
			}
			audit := func() []*store.AccountAudit {
				t.Helper()
				l, err := e.svc.Audit(ctx, alice, v.ID, "", 0)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			if err := e.svc.Prune(ctx); err != nil || len(audit()) != 3 {
				t.Fatalf("Prune deleted fresh entries: %v, %d left", err, len(audit()))
			}
			offset.Store(int64(2 * time.Hour))
			if _, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/new"}, "api"); err != nil {
				t.Fatal(err)
			}
			_ = audit() // written
			if err := e.svc.Prune(ctx); err != nil {
				t.Fatal(err)
			}
			if l := audit(); len(l) != 1 || l[0].Path != "/new" {
				t.Errorf("after Prune the audit holds %+v", l)
			}

			// A finished request goes once past its (short) retention.
			id, err := e.svc.Enqueue(ctx, alice, v.ID, account.Request{Path: "/queued"}, "api")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "the request to be done", func() bool {
				rv, err := e.svc.RequestResult(ctx, alice, v.ID, id)
				return err == nil && rv.State == store.AccountRequestDone
			})
			eventually(t, "the request to be pruned", func() bool {
				if err := e.svc.Prune(ctx); err != nil {
					t.Fatal(err)
				}
				_, err := e.svc.RequestResult(ctx, alice, v.ID, id)
				return errors.Is(err, account.ErrNotFound)
			})
		})
	}
}

package account_test

import (
	"context"
	"errors"
	"fmt"
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

// TestPathEscapes: no path leaves the account's domain, however it is
// written, and the API is never called for one.
func TestPathEscapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, store.BackendSQLite)
	srv := newAPI(t, nil)
	v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-paths-0123456789", Domain: srv.URL + "/v2"})
	for _, p := range []string{
		"", "x", "../x", "/../v3", "/../v3/x", "/..", "/a/../../v3",
		"//evil.example/x", "///evil.example/x", "http://evil.example/", "https://evil.example/x", "HTTP://evil.example",
		"/%2e%2e/x", "/%2E%2E/v3", "/a/%2e%2e/%2e%2e/v3", "/%2e/x", "/.%2e/x",
		"/a%2fb", "/a%2F..%2F..%2Fv3", "/a%5c..%5cb", "/%252e%252e/x",
		"/..;/x", "/..%3b/x", "/%2e%2e;/x",
		"\\\\evil", "/\\evil.example", "\\/evil.example",
		"@evil.example", "/%zz",
	} {
		_, err := e.svc.Do(context.Background(), alice, v.ID, account.Request{Path: p}, "api")
		if inputField(err) != "/path" {
			t.Errorf("path %q: err = %v, want a problem at /path", p, err)
		}
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("the API was called %d times", n)
	}
	// Paths that stay below the domain pass, dots and all.
	for p, want := range map[string]string{
		"/contacts":          "/v2/contacts",
		"/a/./b/../c":        "/v2/a/c",
		"/a%20b":             "/v2/a b",
		"/contacts/":         "/v2/contacts/",
		"/search?q=a%2Fb":    "/v2/search",
		"/file.name..ext/x.": "/v2/file.name..ext/x.",
	} {
		if _, err := e.svc.Do(context.Background(), alice, v.ID, account.Request{Path: p}, "api"); err != nil {
			t.Errorf("path %q: %v", p, err)
			continue
		}
		if got := srv.last(t).Path; got != want {
			t.Errorf("path %q reached %q, want %q", p, got, want)
		}
	}
}

// TestRequestValidates: a bad request is an InputError naming its field,
// and the API is not called.
func TestRequestValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, store.BackendSQLite, func(c *account.Config) { c.MaxTimeout = time.Minute })
	srv := newAPI(t, nil)
	v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-requests-0123456789", Domain: srv.URL})
	for _, tc := range []struct {
		field string
		req   account.Request
	}{
		{"/method", account.Request{Method: "GE T", Path: "/"}},
		{"/method", account.Request{Method: "CONNECT", Path: "/"}},
		{"/timeout", account.Request{Path: "/", Timeout: "soon"}},
		{"/timeout", account.Request{Path: "/", Timeout: "2m"}},
		{"/timeout", account.Request{Path: "/", Timeout: "-1s"}},
		{"/headers/X-Bad", account.Request{Path: "/", Headers: map[string]string{"X-Bad": "a\r\nInjected: 1"}}},
		{"/headers/X Bad", account.Request{Path: "/", Headers: map[string]string{"X Bad": "1"}}},
		{"/query/filter", account.Request{Path: "/", Query: map[string]any{"filter": map[string]any{"a": 1}}}},
		{"/query/nested", account.Request{Path: "/", Query: map[string]any{"nested": []any{[]any{1}}}}},
		{"/body", account.Request{Path: "/", Body: []byte(`{"a":`)}},
	} {
		if _, err := e.svc.Do(context.Background(), alice, v.ID, tc.req, "api"); inputField(err) != tc.field {
			t.Errorf("%+v: err = %v, want a problem at %s", tc.req, err, tc.field)
		}
		if _, err := e.svc.Enqueue(context.Background(), alice, v.ID, tc.req, "api"); inputField(err) != tc.field {
			t.Errorf("Enqueue %+v: err = %v, want a problem at %s", tc.req, err, tc.field)
		}
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("the API was called %d times", n)
	}
}

// TestOutboundPolicy: without the operator's leave, an account cannot
// reach loopback or metadata addresses, and a redirect cannot take a call
// to an address the policy refuses.
func TestOutboundPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	internal := newAPI(t, nil)
	e := newEnv(t, store.BackendSQLite, func(c *account.Config) { c.HTTP = outbound.NewClient(outbound.Options{}) })
	for _, domain := range []string{internal.URL, "http://169.254.169.254/latest", "http://localhost:" + port(t, internal.URL)} {
		v := e.create(t, alice, account.Input{Name: "internal", AuthType: "token", Token: "tok-ssrf-0123456789", Domain: domain})
		_, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/meta-data", Timeout: "5s"}, "api")
		if _, ok := errors.AsType[*account.UpstreamError](err); !ok || !outbound.IsBlocked(err) {
			t.Errorf("%s: err = %v, want an UpstreamError wrapping a refused address", domain, err)
		}
	}
	if n := internal.hits.Load(); n != 0 {
		t.Errorf("the internal API was called %d times", n)
	}

	// With the address policy off, a redirect that leaves the account's
	// domain is still not followed (the account's redirect policy).
	other := newAPI(t, nil)
	trusted := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/same":
			http.Redirect(w, r, "/v2/landed", http.StatusFound)
		case "/v2/away":
			http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
		default:
			fmt.Fprint(w, "landed")
		}
	})
	e = newEnv(t, store.BackendSQLite, func(c *account.Config) {
		c.HTTP = outbound.NewClient(outbound.Options{AllowPrivate: true})
	})
	v := e.create(t, alice, account.Input{Name: "trusted", AuthType: "token", Token: "tok-trusted-0123456789", Domain: trusted.URL + "/v2"})
	res, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/same"}, "api")
	if err != nil || res.Status != 200 || res.Value() != "landed" {
		t.Errorf("a redirect within the domain: %+v, %v", res, err)
	}
	res, err = e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/away"}, "api")
	if err != nil || res.Status != http.StatusFound || !strings.HasPrefix(res.Headers["Location"], other.URL) {
		t.Errorf("a redirect elsewhere: %+v, %v; want its 302 answer", res, err)
	}
	if n := other.hits.Load(); n != 0 {
		t.Errorf("the redirect reached the other server %d times", n)
	}
}

func port(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// TestRedirectKeepsKeyHome: an API key in the query never follows a
// redirect to another origin.
func TestRedirectKeepsKeyHome(t *testing.T) {
	t.Parallel()
	other := newAPI(t, nil)
	home := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
	})
	e := newEnv(t, store.BackendSQLite)
	v := e.create(t, alice, account.Input{Name: "q", AuthType: "apiKey", Domain: home.URL,
		APIKey: &account.APIKey{In: "query", Name: "key", Value: "key-stays-home-0123456789"}})
	res, err := e.svc.Do(context.Background(), alice, v.ID, account.Request{Path: "/x"}, "api")
	if err != nil || res.Status != http.StatusTemporaryRedirect {
		t.Fatalf("Do = %+v, %v", res, err)
	}
	if n := other.hits.Load(); n != 0 {
		t.Errorf("the key followed the redirect to another origin (%d calls)", n)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	e := newEnv(t, store.BackendSQLite)
	v := e.create(t, alice, account.Input{Name: "slow", AuthType: "token", Token: "tok-slow-0123456789", Domain: srv.URL})
	start := time.Now()
	_, err := e.svc.Do(context.Background(), alice, v.ID, account.Request{Path: "/slow?k=v", Timeout: "50ms"}, "api")
	if !errors.Is(err, account.ErrTimeout) || !strings.Contains(err.Error(), v.ID) || strings.Contains(err.Error(), "k=v") {
		t.Fatalf("err = %v, want ErrTimeout naming the account and no query", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the timeout took %s", d)
	}
	audit, err := e.svc.Audit(context.Background(), alice, v.ID, "", 0)
	if err != nil || len(audit) != 1 || audit[0].Status != 0 || !strings.Contains(audit[0].Error, "timed out") {
		t.Errorf("audit = %+v, %v", audit, err)
	}
}

func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	big := newAPI(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(make([]byte, 2048)) })
	e := newEnv(t, store.BackendSQLite, func(c *account.Config) { c.MaxResponseBytes = 1024 })
	v := e.create(t, alice, account.Input{Name: "big", AuthType: "token", Token: "tok-big-0123456789", Domain: big.URL})
	_, err := e.svc.Do(context.Background(), alice, v.ID, account.Request{Path: "/"}, "api")
	if _, ok := errors.AsType[*account.UpstreamError](err); !ok || !errors.Is(err, outbound.ErrResponseTooLarge) {
		t.Errorf("an answer over the cap: %v", err)
	}
	closed := newAPI(t, nil)
	closed.Close()
	v = e.create(t, alice, account.Input{Name: "gone", AuthType: "token", Token: "tok-gone-0123456789", Domain: closed.URL})
	_, err = e.svc.Do(context.Background(), alice, v.ID, account.Request{Path: "/p?secret=query-value"}, "api")
	if _, ok := errors.AsType[*account.UpstreamError](err); !ok || strings.Contains(err.Error(), "query-value") || !strings.Contains(err.Error(), "GET") {
		t.Errorf("a refused connection: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := newAPI(t, nil)
	e := newEnv(t, store.BackendSQLite, func(c *account.Config) { c.Now = func() time.Time { return clock } })
	ctx := context.Background()
	v := e.create(t, alice, account.Input{Name: "limited", AuthType: "token", Token: "tok-limited-0123456789", Domain: srv.URL, RateLimit: 5})
	passed := 0
	var limited *account.RateLimitedError
	for range 8 {
		_, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/"}, "api")
		if err == nil {
			passed++
			continue
		}
		var ok bool
		if limited, ok = errors.AsType[*account.RateLimitedError](err); !ok {
			t.Fatal(err)
		}
	}
	// The clock stands still: the burst of 5 passes, then nothing.
	if passed != 5 || limited == nil || limited.AccountID != v.ID || limited.RetryAfter <= 0 || limited.RetryAfter > time.Second {
		t.Fatalf("%d passed, last refusal %+v", passed, limited)
	}
	if n := srv.hits.Load(); n != 5 {
		t.Errorf("the API got %d calls", n)
	}
	// Another account is not limited by this one's bucket.
	free := e.create(t, alice, account.Input{Name: "free", AuthType: "token", Token: "tok-free-0123456789", Domain: srv.URL})
	for range 8 {
		if _, err := e.svc.Do(ctx, alice, free.ID, account.Request{Path: "/"}, "api"); err != nil {
			t.Fatal(err)
		}
	}
	// A new limit makes a new bucket.
	rate := 100.0
	if _, err := e.svc.Update(ctx, alice, v.ID, account.Patch{RateLimit: &rate}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/"}, "api"); err != nil {
		t.Errorf("after raising the limit: %v", err)
	}
}

// TestEnqueue: a wait=false request runs as a job and its result can be
// read; a 503 is tried again.
func TestEnqueue(t *testing.T) {
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
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"path":%q,"auth":%q}`, r.URL.Path, r.Header.Get("Authorization"))
			})
			e.startEngine(t)
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-queued-0123456789", Domain: srv.URL})
			id, err := e.svc.Enqueue(ctx, alice, v.ID, account.Request{Method: "POST", Path: "/flaky",
				Headers: map[string]string{"Authorization": "Bearer caller-secret", "X-Trace": "t1"}}, "api")
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
			if rv.Attempts != 2 || rv.Result == nil || rv.Result.Status != 200 ||
				mustJSON(t, rv.Result.Value()) != `{"auth":"Bearer tok-queued-0123456789","path":"/flaky"}` {
				t.Errorf("request = %+v, result %+v", rv, rv.Result)
			}
			if strings.Contains(string(rv.Request), "caller-secret") || !strings.Contains(string(rv.Request), "X-Trace") {
				t.Errorf("the stored request = %s", rv.Request)
			}
			// The audit has both attempts.
			audit, _ := e.svc.Audit(ctx, alice, v.ID, "", 0)
			if len(audit) != 2 || audit[0].Status != 200 || audit[1].Status != 503 {
				t.Errorf("audit = %+v", audit)
			}
		})
	}
}

// TestQueuedRequestOfRevokedAccount: a request queued before its account
// was revoked fails for good, saying so, without reaching the API.
func TestQueuedRequestOfRevokedAccount(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			srv := newAPI(t, nil)
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-queued-0123456789", Domain: srv.URL})
			id, err := e.svc.Enqueue(ctx, alice, v.ID, account.Request{Path: "/later"}, "api")
			if err != nil {
				t.Fatal(err)
			}
			if rv, err := e.svc.RequestResult(ctx, alice, v.ID, id); err != nil || rv.State != store.AccountRequestPending {
				t.Fatalf("before the engine runs: %+v, %v", rv, err)
			}
			if err := e.svc.Revoke(ctx, alice, v.ID); err != nil {
				t.Fatal(err)
			}
			e.startEngine(t)
			var rv *account.RequestView
			eventually(t, "the request to fail", func() bool {
				rv, err = e.svc.RequestResult(ctx, alice, v.ID, id)
				return err == nil && rv.State != store.AccountRequestPending
			})
			if rv.State != store.AccountRequestFailed || rv.Attempts != 1 || !strings.Contains(rv.Error, "revoked by u-alice") {
				t.Errorf("request = %+v", rv)
			}
			if n := srv.hits.Load(); n != 0 {
				t.Errorf("the API was called %d times", n)
			}
		})
	}
}

// TestSecretsStayHidden: a secret is in no API answer, error, log line,
// audit entry or database row in clear.
func TestSecretsStayHidden(t *testing.T) {
	t.Parallel()
	const (
		token    = "tok-SECRET-0123456789-token"
		password = "pw-SECRET-0123456789-password"
		key      = "key-SECRET-0123456789-apikey"
		header   = "hdr-SECRET-0123456789-header"
	)
	secrets := []string{token, password, key, header, "SECRET"}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/fail" {
					w.WriteHeader(http.StatusInternalServerError)
				}
			})
			e.startEngine(t)
			ctx := context.Background()
			var texts []string
			note := func(what string, v any, err error) {
				texts = append(texts, what+": "+mustJSON(t, v))
				if err != nil {
					texts = append(texts, what+" error: "+err.Error())
				}
			}
			hdrs := map[string]string{"X-Secret": header}
			var ids []string
			for _, in := range []account.Input{
				{Name: "acct-token", AuthType: "token", Token: token, Domain: srv.URL, Headers: hdrs},
				{Name: "acct-basic", AuthType: "basic", Username: "ada", Password: password, Domain: srv.URL, Headers: hdrs},
				{Name: "acct-key", AuthType: "apiKey", APIKey: &account.APIKey{In: "query", Name: "key", Value: key}, Domain: srv.URL, Headers: hdrs},
			} {
				v, err := e.svc.Create(ctx, alice, in)
				if err != nil {
					t.Fatal(err)
				}
				note("create", v, nil)
				ids = append(ids, v.ID)
			}
			// Input errors with secrets in them.
			_, err := e.svc.Create(ctx, alice, account.Input{Name: "bad", AuthType: "token", Token: token + "\n", Domain: "https://u:" + password + "@h"})
			note("bad create", nil, err)
			_, err = e.svc.Create(ctx, alice, account.Input{Name: "bad", AuthType: "token", Token: token, Domain: "https://h/?" + key})
			note("bad create 2", nil, err)
			for _, id := range ids {
				for _, req := range []account.Request{
					{Path: "/ok"}, {Path: "/fail"}, {Path: "/../x"}, {Path: "/%2e%2e/x"},
					{Path: "/x", Headers: map[string]string{"X-Bad": token + "\n"}},
				} {
					res, err := e.svc.Do(ctx, alice, id, req, "api")
					note("do", res, err)
				}
				reqID, err := e.svc.Enqueue(ctx, alice, id, account.Request{Path: "/fail"}, "api")
				if err != nil {
					t.Fatal(err)
				}
				eventually(t, "a failed attempt", func() bool {
					rv, _ := e.svc.RequestResult(ctx, alice, id, reqID)
					return rv != nil && rv.Attempts > 0
				})
				rv, err := e.svc.RequestResult(ctx, alice, id, reqID)
				note("request result", rv, err)
				v, err := e.svc.Get(ctx, alice, id)
				note("get", v, err)
				audit, err := e.svc.Audit(ctx, alice, id, "", 0)
				note("audit", audit, err)
			}
			list, err := e.svc.List(ctx, admin, "", true, "", 0)
			note("list", list, err)
			rotated := token + "-rotated"
			v, err := e.svc.Update(ctx, alice, ids[0], account.Patch{Token: &rotated})
			note("update", v, err)
			_, err = e.svc.Do(ctx, alice, ids[0], account.Request{Path: "/ok"}, "api")
			note("do after rotation", nil, err)
			if err := e.svc.Revoke(ctx, alice, ids[1]); err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.Do(ctx, alice, ids[1], account.Request{Path: "/ok"}, "api")
			note("do after revoke", nil, err)
			if err := e.svc.Close(ctx); err != nil {
				t.Fatal(err)
			}

			// The API did get them: the test would prove nothing otherwise.
			if got := srv.last(t).Header.Get("Authorization"); got != "Bearer "+rotated {
				t.Fatalf("the API got Authorization %q", got)
			}
			raw := storetest.Dump(t, e.cfg)
			if !strings.Contains(raw, "acct-token") {
				t.Fatal("the raw database does not hold the accounts: the check below proves nothing")
			}
			if !strings.Contains(e.logs.String(), `"account used"`) {
				t.Fatal("nothing was logged: the check below proves nothing")
			}
			for _, s := range secrets {
				if strings.Contains(raw, s) {
					t.Errorf("the database holds %q in clear", s)
				}
				if strings.Contains(e.logs.String(), s) {
					t.Errorf("the log holds %q", s)
				}
				for _, text := range texts {
					if strings.Contains(text, s) {
						t.Errorf("%q is in %s", s, text)
					}
				}
			}
		})
	}
}

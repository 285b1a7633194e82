package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store/storetest"
)

// accountResp is an account as the API shows it.
type accountResp struct {
	ID       string            `json:"id"`
	OwnerID  string            `json:"ownerId"`
	Name     string            `json:"name"`
	AuthType string            `json:"authType"`
	Domain   string            `json:"domain"`
	Headers  map[string]string `json:"headers"`
	Username string            `json:"username"`
	APIKey   *struct {
		In    string `json:"in"`
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"apiKey"`
	Hint         string `json:"hint"`
	Status       string `json:"status"`
	StatusReason string `json:"statusReason"`
}

// resultResp is the answer of a call through an account.
type resultResp struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    any               `json:"body"`
}

type problemResp struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// seenRequest is what the fake API received.
type seenRequest struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
}

// fakeAPI stands in for a third-party API: it records every request and
// answers JSON; under /v2/block it answers only once released.
type fakeAPI struct {
	srv     *httptest.Server
	release chan struct{}
	mu      sync.Mutex
	seen    []seenRequest
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	a := &fakeAPI{release: make(chan struct{})}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.seen = append(a.seen, seenRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: string(body)})
		a.mu.Unlock()
		if r.URL.Path == "/v2/block" {
			select {
			case <-a.release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Reply", "yes")
		if r.URL.Path == "/v2/missing" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"no such thing"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(func() {
		close(a.release)
		a.srv.Close()
	})
	return a
}

// domain is the account domain that points at the fake API.
func (a *fakeAPI) domain() string { return a.srv.URL + "/v2" }

func (a *fakeAPI) requests() []seenRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seenRequest(nil), a.seen...)
}

func (a *fakeAPI) last(t *testing.T) seenRequest {
	t.Helper()
	seen := a.requests()
	if len(seen) == 0 {
		t.Fatal("the API received no request")
	}
	return seen[len(seen)-1]
}

func (e *env) createAccount(token string, in map[string]any) accountResp {
	e.t.Helper()
	var a accountResp
	e.do("POST", "/api/v1/accounts", token, in, http.StatusCreated, &a)
	if a.ID == "" {
		e.t.Fatal("the created account has no id")
	}
	return a
}

func (e *env) callAccount(token, id string, req map[string]any, wantStatus int) (resultResp, []byte) {
	e.t.Helper()
	var res resultResp
	data := e.do("POST", "/api/v1/accounts/"+id+"/request", token, req, wantStatus, nil)
	if wantStatus == http.StatusOK {
		if err := json.Unmarshal(data, &res); err != nil {
			e.t.Fatalf("decoding %s: %v", data, err)
		}
	}
	return res, data
}

// TestAccountAuthTypes calls an API through a token account: the answer
// is the API's status, headers and body, and the caller cannot replace
// the account's credentials or headers (the account package tests every
// auth type).
func TestAccountAuthTypes(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newFakeAPI(t)
			_, alice := e.user("alice@example.com")
			acc := e.createAccount(alice, map[string]any{"name": "crm", "authType": "token", "domain": api.domain(),
				"token": "tok-Qm7fX2pL9vR4sK8w", "headers": map[string]string{"X-Tenant": "acme"}})

			// The caller tries to set the credential and the account's own
			// header; neither may reach the API.
			res, _ := e.callAccount(alice, acc.ID, map[string]any{
				"method": "POST", "path": "/items", "query": map[string]any{"q": "shoes"},
				"headers": map[string]any{
					"Authorization": "Bearer caller", "X-Tenant": "caller", "Connection": "close, X-Tenant", "X-Caller": "kept",
				},
				"body": map[string]any{"n": 1},
			}, http.StatusOK)
			r := api.last(t)
			if r.Method != "POST" || r.Path != "/v2/items" || r.Query.Get("q") != "shoes" || r.Body != `{"n":1}` {
				t.Errorf("the API got %s %s?%s %s", r.Method, r.Path, r.Query.Encode(), r.Body)
			}
			if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != "Bearer tok-Qm7fX2pL9vR4sK8w" {
				t.Errorf("Authorization = %q, want only the account's token", got)
			}
			if got := r.Header.Values("X-Tenant"); len(got) != 1 || got[0] != "acme" {
				t.Errorf("X-Tenant = %q, want the account's [acme]", got)
			}
			if got := r.Header.Get("X-Caller"); got != "kept" {
				t.Errorf("the caller's own header X-Caller = %q, want kept", got)
			}
			// The answer is the API's: status, headers and JSON body.
			body, _ := res.Body.(map[string]any)
			if res.Status != http.StatusCreated || res.Headers["X-Reply"] != "yes" || body["ok"] != true || body["path"] != "/v2/items" {
				t.Errorf("answer %+v", res)
			}

			// The API's own error status comes back in the answer, with 200.
			res, _ = e.callAccount(alice, acc.ID, map[string]any{"path": "/missing"}, http.StatusOK)
			if body, _ := res.Body.(map[string]any); res.Status != http.StatusNotFound || body["error"] != "no such thing" {
				t.Errorf("answer %+v, want the API's 404", res)
			}
			if r := api.last(t); r.Method != "GET" {
				t.Errorf("default method %s, want GET", r.Method)
			}
		})
	}
}

func TestAccountValidation(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			_, alice := e.user("alice@example.com")
			good := func(change map[string]any) map[string]any {
				in := map[string]any{"name": "crm", "authType": "token", "domain": "https://api.example.com/v2", "token": "tok-1234567890"}
				for k, v := range change {
					if v == nil {
						delete(in, k)
						continue
					}
					in[k] = v
				}
				return in
			}
			tests := []struct {
				name  string
				in    map[string]any
				field string // a problem names this field (a JSON pointer)
			}{
				{"ftp domain", good(map[string]any{"domain": "ftp://x"}), "/domain"},
				{"domain not a URL", good(map[string]any{"domain": "not a url"}), "/domain"},
				{"no domain", good(map[string]any{"domain": nil}), "/domain"},
				{"token missing", good(map[string]any{"token": nil}), "/token"},
				{"unknown auth type", good(map[string]any{"authType": "magic"}), "/authType"},
				{"basic without password", good(map[string]any{"authType": "basic", "username": "ada", "token": nil}), "/password"},
				{"bad apiKey.in", good(map[string]any{"authType": "apiKey", "token": nil,
					"apiKey": map[string]any{"in": "cookie", "name": "k", "value": "v-1234567890"}}), "/apiKey/in"},
				{"apiKey without value", good(map[string]any{"authType": "apiKey", "token": nil,
					"apiKey": map[string]any{"in": "header", "name": "X-Key"}}), "/apiKey/value"},
			}
			for _, tc := range tests {
				var p problemResp
				e.do("POST", "/api/v1/accounts", alice, tc.in, http.StatusUnprocessableEntity, &p)
				var fields []string
				for _, fp := range p.Errors {
					fields = append(fields, fp.Field)
				}
				if p.Detail == "" || !slices.Contains(fields, tc.field) {
					t.Errorf("%s: problem %+v, want a detail and an error at %s", tc.name, p, tc.field)
				}
			}
			// Malformed bodies are 400s.
			e.do("POST", "/api/v1/accounts", alice, `{"name":`, http.StatusBadRequest, nil)
			e.do("POST", "/api/v1/accounts", alice, good(map[string]any{"colour": "blue"}), http.StatusBadRequest, nil)

			// Nothing was stored.
			var l struct{ Items []accountResp }
			e.do("GET", "/api/v1/accounts?includeRevoked=true", e.admin, nil, http.StatusOK, &l)
			if len(l.Items) != 0 {
				t.Fatalf("%d accounts stored after refused input", len(l.Items))
			}
			// A good one passes, so the cases above failed for their own reason.
			e.createAccount(alice, good(nil))
		})
	}
}

// accountSecrets are the secret values TestAccountSecretsNeverShown stores;
// none may come out.
var accountSecrets = []string{
	"tok-Qm7fX2pL9vR4sK8w", "tok-Ny5hG8dF3sA0pZ7e", "pw-Hn3yT6uJ1bV5cE0z", "key-Wd4gM9kP2rS7xL3q", "hdr-Ua8nB1vC6zX5mQ2j",
}

func TestAccountSecretsNeverShown(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newFakeAPI(t)
			_, alice := e.user("alice@example.com")
			var answers []string
			keep := func(data []byte) { answers = append(answers, string(data)) }

			var tok, basic, key accountResp
			keep(e.do("POST", "/api/v1/accounts", alice, map[string]any{"name": "token", "authType": "token", "domain": api.domain(),
				"token": accountSecrets[0], "headers": map[string]string{"X-Secret-Header": accountSecrets[4]}}, http.StatusCreated, &tok))
			keep(e.do("POST", "/api/v1/accounts", alice, map[string]any{"name": "basic", "authType": "basic", "domain": api.domain(),
				"username": "ada", "password": accountSecrets[2]}, http.StatusCreated, &basic))
			// The key goes in the query: a URL quoted in an error would show it.
			dead := httptest.NewServer(http.NotFoundHandler())
			dead.Close()
			keep(e.do("POST", "/api/v1/accounts", alice, map[string]any{"name": "key", "authType": "apiKey", "domain": dead.URL + "/v2",
				"apiKey": map[string]any{"in": "query", "name": "api_key", "value": accountSecrets[3]}}, http.StatusCreated, &key))
			if tok.Headers["X-Secret-Header"] == "" {
				t.Errorf("the account's headers %v do not name X-Secret-Header", tok.Headers)
			}

			for _, id := range []string{tok.ID, basic.ID, key.ID} {
				keep(e.do("GET", "/api/v1/accounts/"+id, alice, nil, http.StatusOK, nil))
				keep(e.do("GET", "/api/v1/accounts/"+id, e.admin, nil, http.StatusOK, nil))
			}
			keep(e.do("GET", "/api/v1/accounts", alice, nil, http.StatusOK, nil))
			keep(e.do("GET", "/api/v1/accounts", e.admin, nil, http.StatusOK, nil))
			_, data := e.callAccount(alice, tok.ID, map[string]any{"path": "/items", "query": map[string]any{"x": "1"}}, http.StatusOK)
			keep(data)
			_, data = e.callAccount(alice, basic.ID, map[string]any{"path": "/items"}, http.StatusOK)
			keep(data)
			// Problem documents: an unreachable API, a path escape, a timeout.
			_, data = e.callAccount(alice, key.ID, map[string]any{"path": "/items", "query": map[string]any{"x": "1"}}, http.StatusBadGateway)
			keep(data)
			_, data = e.callAccount(alice, key.ID, map[string]any{"path": "/../admin"}, http.StatusUnprocessableEntity)
			keep(data)
			_, data = e.callAccount(alice, tok.ID, map[string]any{"path": "/block", "timeout": "50ms"}, http.StatusGatewayTimeout)
			keep(data)
			// Rotation answers no secret either, old or new.
			keep(e.do("PATCH", "/api/v1/accounts/"+tok.ID, alice, map[string]any{"token": accountSecrets[1]}, http.StatusOK, nil))
			_, data = e.callAccount(alice, tok.ID, map[string]any{"path": "/items"}, http.StatusOK)
			keep(data)
			if got := api.last(t).Header.Get("Authorization"); got != "Bearer "+accountSecrets[1] {
				t.Fatalf("after rotation the API got %q", got)
			}
			// Every call is in the audit log (written in batches).
			eventually(t, 10*time.Second, "audit entries", func() bool {
				var l struct{ Items []map[string]any }
				data := e.do("GET", "/api/v1/accounts/"+tok.ID+"/audit", alice, nil, http.StatusOK, &l)
				keep(data)
				return len(l.Items) >= 3
			})
			var l struct{ Items []map[string]any }
			eventually(t, 10*time.Second, "audit entries of the unreachable API", func() bool {
				data := e.do("GET", "/api/v1/accounts/"+key.ID+"/audit", alice, nil, http.StatusOK, &l)
				keep(data)
				return len(l.Items) >= 1
			})
			keep(e.do("DELETE", "/api/v1/accounts/"+basic.ID, alice, nil, http.StatusNoContent, nil))
			_, data = e.callAccount(alice, basic.ID, map[string]any{"path": "/items"}, http.StatusGone)
			keep(data)

			// The API did receive the secrets, so their absence below means
			// something.
			var sent strings.Builder
			for _, r := range api.requests() {
				fmt.Fprintf(&sent, "%v %v\n", r.Header, r.Query)
			}
			for _, s := range []string{accountSecrets[0], accountSecrets[1], accountSecrets[4]} {
				if !strings.Contains(sent.String(), s) {
					t.Fatalf("the API never received %s", s)
				}
			}

			resp, err := http.Get(e.srv.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			places := map[string]string{"API answers": strings.Join(answers, "\n"), "logs": e.logs.String(), "metrics": string(metrics),
				"database": storetest.Dump(t, e.cfg)}
			for place, text := range places {
				for _, s := range accountSecrets {
					if strings.Contains(text, s) {
						t.Errorf("the %s hold the secret %s", place, s)
					}
				}
			}
			if !strings.Contains(places["database"], tok.ID) {
				t.Fatal("the raw database does not hold the account: the check above read the wrong place")
			}
		})
	}
}

func TestAccountRotateAndRevoke(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newFakeAPI(t)
			_, alice := e.user("alice@example.com")
			acc := e.createAccount(alice, map[string]any{"name": "crm", "authType": "token", "domain": api.domain(), "token": "tok-first-AAAA"})
			if acc.Hint == "" || strings.Contains(acc.Hint, "tok-first") || acc.Status != "active" || acc.OwnerID == "" {
				t.Fatalf("created %+v", acc)
			}

			var rotated accountResp
			e.do("PATCH", "/api/v1/accounts/"+acc.ID, alice, map[string]any{"token": "tok-second-BBBB", "name": "crm 2"}, http.StatusOK, &rotated)
			if rotated.Hint == acc.Hint || strings.Contains(rotated.Hint, "tok-second") || rotated.Name != "crm 2" {
				t.Errorf("after rotation %+v (hint before %q)", rotated, acc.Hint)
			}
			e.callAccount(alice, acc.ID, map[string]any{"path": "/items"}, http.StatusOK)
			if got := api.last(t).Header.Get("Authorization"); got != "Bearer tok-second-BBBB" {
				t.Errorf("after rotation the API got %q", got)
			}
			// A patch is checked like a creation.
			e.do("PATCH", "/api/v1/accounts/"+acc.ID, alice, map[string]any{"domain": "ftp://x"}, http.StatusUnprocessableEntity, nil)
			e.do("PATCH", "/api/v1/accounts/"+acc.ID, alice, map[string]any{"secret": "x"}, http.StatusBadRequest, nil)

			e.do("DELETE", "/api/v1/accounts/"+acc.ID, alice, nil, http.StatusNoContent, nil)
			// Revoking is idempotent: a second DELETE (a retried one) is
			// also a 204.
			e.do("DELETE", "/api/v1/accounts/"+acc.ID, alice, nil, http.StatusNoContent, nil)
			calls := len(api.requests())
			var p problemResp
			_, data := e.callAccount(alice, acc.ID, map[string]any{"path": "/items"}, http.StatusGone)
			if err := json.Unmarshal(data, &p); err != nil || !strings.Contains(p.Detail, "revoked") {
				t.Errorf("request through a revoked account: %s", data)
			}
			e.do("POST", "/api/v1/accounts/"+acc.ID+"/request", alice, map[string]any{"path": "/items", "wait": false}, http.StatusGone, nil)
			e.do("PATCH", "/api/v1/accounts/"+acc.ID, alice, map[string]any{"token": "tok-third-CCCC"}, http.StatusGone, nil)
			if n := len(api.requests()); n != calls {
				t.Errorf("the API was called %d times through a revoked account", n-calls)
			}

			// Revoked accounts leave the list unless asked for.
			var l struct{ Items []accountResp }
			e.do("GET", "/api/v1/accounts", alice, nil, http.StatusOK, &l)
			if len(l.Items) != 0 {
				t.Errorf("the list holds %+v", l.Items)
			}
			e.do("GET", "/api/v1/accounts?includeRevoked=true", alice, nil, http.StatusOK, &l)
			if len(l.Items) != 1 || l.Items[0].Status != "revoked" {
				t.Errorf("includeRevoked lists %+v", l.Items)
			}
			e.do("GET", "/api/v1/accounts?includeRevoked=maybe", alice, nil, http.StatusBadRequest, nil)
		})
	}
}

func TestAccountPathEscapes(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newFakeAPI(t)
			_, alice := e.user("alice@example.com")
			acc := e.createAccount(alice, map[string]any{"name": "crm", "authType": "token", "domain": api.domain(), "token": "tok-1234567890"})
			// The account package tests every kind of escape; here, that
			// the API refuses them with a detail, waiting or not.
			for _, p := range []string{"/../admin", "//evil.example/x"} {
				var pr problemResp
				e.do("POST", "/api/v1/accounts/"+acc.ID+"/request", alice, map[string]any{"path": p}, http.StatusUnprocessableEntity, &pr)
				if pr.Detail == "" {
					t.Errorf("%q: no detail", p)
				}
				e.do("POST", "/api/v1/accounts/"+acc.ID+"/request", alice, map[string]any{"path": p, "wait": false}, http.StatusUnprocessableEntity, nil)
			}
			if n := len(api.requests()); n != 0 {
				t.Fatalf("the API was called %d times", n)
			}
			// Bad requests are refused before any call too.
			e.do("POST", "/api/v1/accounts/"+acc.ID+"/request", alice, map[string]any{"path": "/x", "timeout": "soon"}, http.StatusUnprocessableEntity, nil)
			e.do("POST", "/api/v1/accounts/"+acc.ID+"/request", alice, map[string]any{"path": "/x", "url": "http://evil.example"}, http.StatusBadRequest, nil)
			e.do("POST", "/api/v1/accounts/"+acc.ID+"/request", alice, `{"path": "/x"`, http.StatusBadRequest, nil)
			if n := len(api.requests()); n != 0 {
				t.Fatalf("the API was called %d times", n)
			}
			// A path inside the domain passes.
			e.callAccount(alice, acc.ID, map[string]any{"path": "/a/../items"}, http.StatusOK)
			if r := api.last(t); r.Path != "/v2/items" {
				t.Errorf("the API got %s", r.Path)
			}
		})
	}
}

func TestAccountRequestWithoutWaiting(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newFakeAPI(t)
			_, alice := e.user("alice@example.com")
			acc := e.createAccount(alice, map[string]any{"name": "crm", "authType": "token", "domain": api.domain(), "token": "tok-1234567890"})

			resp := e.send("POST", "/api/v1/accounts/"+acc.ID+"/request", alice,
				map[string]any{"method": "PUT", "path": "/items/7", "body": map[string]any{"n": 7}, "wait": false})
			var accepted struct{ RequestID string }
			if e.expect(resp, http.StatusAccepted, &accepted); accepted.RequestID == "" {
				t.Fatalf("accepted %+v, want a request id", accepted)
			}
			loc := resp.Header.Get("Location")
			if loc != "/api/v1/accounts/"+acc.ID+"/requests/"+accepted.RequestID {
				t.Errorf("Location %q", loc)
			}

			var v struct {
				ID, AccountID, State string
				Result               *resultResp
			}
			eventually(t, 20*time.Second, "the request to run", func() bool {
				e.do("GET", loc, alice, nil, http.StatusOK, &v)
				return v.State == "done"
			})
			if v.ID != accepted.RequestID || v.AccountID != acc.ID || v.Result == nil || v.Result.Status != http.StatusCreated {
				t.Fatalf("request %+v", v)
			}
			if r := api.last(t); r.Method != "PUT" || r.Path != "/v2/items/7" || r.Body != `{"n":7}` ||
				r.Header.Get("Authorization") != "Bearer tok-1234567890" {
				t.Errorf("the API got %+v", r)
			}
			e.do("GET", "/api/v1/accounts/"+acc.ID+"/requests/no-such-request", alice, nil, http.StatusNotFound, nil)

			// A call that outlasts its timeout is a 504.
			var p problemResp
			_, data := e.callAccount(alice, acc.ID, map[string]any{"path": "/block", "timeout": "50ms"}, http.StatusGatewayTimeout)
			if err := json.Unmarshal(data, &p); err != nil || p.Detail == "" {
				t.Errorf("timeout problem %s", data)
			}
		})
	}
}

func TestAccountIsolation(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newFakeAPI(t)
			aliceID, alice := e.user("alice@example.com")
			_, bob := e.user("bob@example.com")
			acc := e.createAccount(alice, map[string]any{"name": "crm", "authType": "token", "domain": api.domain(), "token": "tok-1234567890"})
			var accepted struct{ RequestID string }
			e.do("POST", "/api/v1/accounts/"+acc.ID+"/request", alice, map[string]any{"path": "/items", "wait": false}, http.StatusAccepted, &accepted)
			eventually(t, 20*time.Second, "the request to run", func() bool { return len(api.requests()) == 1 })

			base := "/api/v1/accounts/" + acc.ID
			e.do("GET", base, bob, nil, http.StatusNotFound, nil)
			e.do("PATCH", base, bob, map[string]any{"token": "tok-bobs-own"}, http.StatusNotFound, nil)
			e.do("DELETE", base, bob, nil, http.StatusNotFound, nil)
			e.do("POST", base+"/request", bob, map[string]any{"path": "/items"}, http.StatusNotFound, nil)
			e.do("POST", base+"/request", bob, map[string]any{"path": "/items", "wait": false}, http.StatusNotFound, nil)
			e.do("GET", base+"/requests/"+accepted.RequestID, bob, nil, http.StatusNotFound, nil)
			e.do("GET", base+"/audit", bob, nil, http.StatusNotFound, nil)
			var l struct{ Items []accountResp }
			e.do("GET", "/api/v1/accounts", bob, nil, http.StatusOK, &l)
			if len(l.Items) != 0 {
				t.Errorf("bob lists %+v", l.Items)
			}
			e.do("GET", "/api/v1/accounts?ownerId="+aliceID, bob, nil, http.StatusForbidden, nil)
			if n := len(api.requests()); n != 1 {
				t.Errorf("bob's calls reached the API: %d requests", n)
			}
			// Without a token nothing is served.
			e.do("GET", base, "", nil, http.StatusUnauthorized, nil)

			// Alice's account is untouched; an admin sees it too.
			var got accountResp
			e.do("GET", base, alice, nil, http.StatusOK, &got)
			if got.Status != "active" || got.Hint != acc.Hint {
				t.Errorf("alice's account after bob: %+v", got)
			}
			e.do("GET", base, e.admin, nil, http.StatusOK, nil)
			e.do("GET", "/api/v1/accounts?ownerId="+aliceID, e.admin, nil, http.StatusOK, &l)
			if len(l.Items) != 1 || l.Items[0].ID != acc.ID {
				t.Errorf("the admin lists %+v for alice", l.Items)
			}
			// The connectors' OAuth2 clients are for admins.
			e.do("PUT", "/api/v1/connectors/crm/oauth2-client", bob, map[string]any{"clientId": "a", "clientSecret": "b"}, http.StatusForbidden, nil)
			e.do("GET", "/api/v1/connectors/crm/oauth2-client", bob, nil, http.StatusForbidden, nil)
			e.do("DELETE", "/api/v1/connectors/crm/oauth2-client", bob, nil, http.StatusForbidden, nil)
		})
	}
}

func TestAccountAudit(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newFakeAPI(t)
			aliceID, alice := e.user("alice@example.com")
			acc := e.createAccount(alice, map[string]any{"name": "crm", "authType": "token", "domain": api.domain(), "token": "tok-1234567890"})
			e.callAccount(alice, acc.ID, map[string]any{"method": "POST", "path": "/items?sig=q-Vv3bB4nN5", "query": map[string]any{"email": "ada@example.com"}}, http.StatusOK)
			e.callAccount(alice, acc.ID, map[string]any{"path": "/missing"}, http.StatusOK)
			e.callAccount(e.admin, acc.ID, map[string]any{"path": "/items"}, http.StatusOK)

			type entry struct {
				ID, UserID, Source, At, Method, Host, Path, Error string
				Status                                            int
				DurationMS                                        *int64 `json:"durationMs"`
			}
			var l struct {
				Items      []entry
				NextCursor string
			}
			var data []byte
			eventually(t, 10*time.Second, "three audit entries", func() bool {
				data = e.do("GET", "/api/v1/accounts/"+acc.ID+"/audit", alice, nil, http.StatusOK, &l)
				return len(l.Items) == 3
			})
			for _, leak := range []string{"q-Vv3bB4nN5", "ada@example.com", "ada%40example.com", "tok-1234567890"} {
				if strings.Contains(string(data), leak) {
					t.Errorf("the audit log holds %q: %s", leak, data)
				}
			}
			host := strings.TrimPrefix(api.srv.URL, "http://")
			// Newest first.
			admin, missing, first := l.Items[0], l.Items[1], l.Items[2]
			if first.UserID != aliceID || first.Source != "api" || first.Method != "POST" || first.Path != "/v2/items" ||
				first.Host != host || first.Status != http.StatusCreated || first.DurationMS == nil {
				t.Errorf("first call %+v", first)
			}
			if at, err := time.Parse(time.RFC3339, first.At); err != nil || time.Since(at) > time.Minute {
				t.Errorf("at %q: %v", first.At, err)
			}
			if missing.Status != http.StatusNotFound || missing.Path != "/v2/missing" || missing.Method != "GET" {
				t.Errorf("second call %+v", missing)
			}
			if admin.UserID == aliceID || admin.UserID == "" {
				t.Errorf("the admin's call is recorded as %q", admin.UserID)
			}

			// Paging: two, then the rest.
			e.do("GET", "/api/v1/accounts/"+acc.ID+"/audit?limit=2", alice, nil, http.StatusOK, &l)
			if len(l.Items) != 2 || l.NextCursor == "" {
				t.Fatalf("first page %+v", l)
			}
			e.do("GET", "/api/v1/accounts/"+acc.ID+"/audit?limit=2&before="+url.QueryEscape(l.NextCursor), alice, nil, http.StatusOK, &l)
			if len(l.Items) != 1 || l.Items[0].ID != first.ID {
				t.Fatalf("second page %+v", l.Items)
			}
			e.do("GET", "/api/v1/accounts/"+acc.ID+"/audit?limit=0", alice, nil, http.StatusBadRequest, nil)
		})
	}
}

func TestAccountOAuth2CallbackRefusesBadState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	for _, q := range []string{"", "?code=abc", "?state=never-issued&code=abc", "?state=never-issued&error=access_denied"} {
		var p problemResp
		e.do("GET", "/api/v1/accounts/oauth2/callback"+q, "", nil, http.StatusBadRequest, &p)
		if p.Detail == "" {
			t.Errorf("%q: no detail", q)
		}
	}
}

func TestAccountRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	api := newFakeAPI(t)
	_, alice := e.user("alice@example.com")
	acc := e.createAccount(alice, map[string]any{"name": "crm", "authType": "token", "domain": api.domain(),
		"token": "tok-1234567890", "rateLimit": 0.5})
	e.callAccount(alice, acc.ID, map[string]any{"path": "/items"}, http.StatusOK)

	// One request every two seconds: the next passes in at most 2s.
	resp := e.send("POST", "/api/v1/accounts/"+acc.ID+"/request", alice, map[string]any{"path": "/items"})
	e.expect(resp, http.StatusTooManyRequests, nil)
	if ra := resp.Header.Get("Retry-After"); ra != "1" && ra != "2" {
		t.Errorf("Retry-After = %q, want whole seconds up to 2", ra)
	}
	if n := len(api.requests()); n != 1 {
		t.Errorf("the API got %d requests, want 1", n)
	}
}

// fakeProvider is an OAuth2 provider's token endpoint: it trades code
// for tokens when the PKCE verifier matches the challenge of the
// authorization URL.
type fakeProvider struct {
	srv       *httptest.Server
	mu        sync.Mutex
	challenge string
	redirect  string
	exchanges int
}

const (
	providerClientID     = "plugboard-client"
	providerClientSecret = "cs-Pq1wE2rT3yU4iO5p"
	providerAccessToken  = "at-Lk9jH8gF7dS6aQ5w"
	providerRefreshToken = "rt-Mn2bV3cX4zL5kJ6h"
)

func newFakeProvider(t *testing.T) *fakeProvider {
	t.Helper()
	p := &fakeProvider{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" || r.ParseForm() != nil {
			http.NotFound(w, r)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		w.Header().Set("Content-Type", "application/json")
		if id != providerClientID || secret != providerClientSecret || r.PostForm.Get("grant_type") != "authorization_code" ||
			r.PostForm.Get("code") != "code-1" || r.PostForm.Get("redirect_uri") != p.redirect ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != p.challenge {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		p.exchanges++
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"token_type":"Bearer","expires_in":3600}`, providerAccessToken, providerRefreshToken)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// noRedirect sends a request without following redirects.
func noRedirect(t *testing.T, url string) *http.Response {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestAccountOAuth2Connect connects an account of an oauth2 connector
// through the API: the admin registers the client, the user starts, the
// provider sends the browser back, and calls then carry the access token.
func TestAccountOAuth2Connect(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newFakeAPI(t)
			prov := newFakeProvider(t)
			archive := packExampleWith(t, api.domain(), "1.0.0", func(m map[string]any) {
				m["auth"] = map[string]any{"type": "oauth2", "authorizationUrl": prov.srv.URL + "/authorize",
					"tokenUrl": prov.srv.URL + "/token", "scopes": []string{"contacts.read"}}
			})
			if code, body := e.publish(e.admin, archive); code != http.StatusCreated {
				t.Fatalf("publish: %d %s", code, body)
			}
			e.do("POST", "/api/v1/connectors/acme-crm/install", e.admin, nil, http.StatusOK, nil)
			var answers []string
			keep := func(data []byte) { answers = append(answers, string(data)) }
			aliceID, alice := e.user("alice@example.com")
			start := map[string]any{"connector": "acme-crm", "name": "CRM", "returnTo": "https://app.example.com/connected?tab=crm"}

			// Without a client nothing can start.
			keep(e.do("POST", "/api/v1/accounts/oauth2/start", alice, start, http.StatusUnprocessableEntity, nil))
			e.do("GET", "/api/v1/connectors/acme-crm/oauth2-client", e.admin, nil, http.StatusNotFound, nil)
			var cl struct{ Connector, ClientID, ClientSecretHint string }
			keep(e.do("PUT", "/api/v1/connectors/acme-crm/oauth2-client", e.admin,
				map[string]any{"clientId": providerClientID, "clientSecret": providerClientSecret}, http.StatusOK, &cl))
			if cl.Connector != "acme-crm" || cl.ClientID != providerClientID {
				t.Errorf("client %+v", cl)
			}
			keep(e.do("GET", "/api/v1/connectors/acme-crm/oauth2-client", e.admin, nil, http.StatusOK, nil))

			var started struct{ URL, State string }
			keep(e.do("POST", "/api/v1/accounts/oauth2/start", alice, start, http.StatusOK, &started))
			au, err := url.Parse(started.URL)
			if err != nil {
				t.Fatal(err)
			}
			q := au.Query()
			callback := e.srv.URL + "/api/v1/accounts/oauth2/callback"
			if au.Scheme+"://"+au.Host+au.Path != prov.srv.URL+"/authorize" || q.Get("state") != started.State || q.Get("client_id") != providerClientID ||
				q.Get("redirect_uri") != callback || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
				q.Get("response_type") != "code" || !strings.Contains(q.Get("scope"), "contacts.read") {
				t.Fatalf("authorization URL %s", started.URL)
			}
			prov.mu.Lock()
			prov.challenge, prov.redirect = q.Get("code_challenge"), callback
			prov.mu.Unlock()

			// The provider sends the browser back; no Plugboard token.
			resp := noRedirect(t, callback+"?state="+url.QueryEscape(started.State)+"&code=code-1")
			if resp.StatusCode != http.StatusSeeOther {
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("callback: %d %s", resp.StatusCode, body)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || loc.Host != "app.example.com" || loc.Path != "/connected" || loc.Query().Get("tab") != "crm" || loc.Query().Get("accountId") == "" {
				t.Fatalf("callback sent the browser to %q", resp.Header.Get("Location"))
			}
			id := loc.Query().Get("accountId")
			var acc accountResp
			keep(e.do("GET", "/api/v1/accounts/"+id, alice, nil, http.StatusOK, &acc))
			if acc.OwnerID != aliceID || acc.AuthType != "oauth2" || acc.Status != "active" || acc.Domain != api.domain() || acc.Name != "CRM" {
				t.Errorf("connected account %+v", acc)
			}
			// The state is single-use.
			var p problemResp
			e.do("GET", "/api/v1/accounts/oauth2/callback?state="+url.QueryEscape(started.State)+"&code=code-1", "", nil, http.StatusBadRequest, &p)
			if !strings.Contains(p.Detail, "state") {
				t.Errorf("replayed state: %+v", p)
			}
			prov.mu.Lock()
			if prov.exchanges != 1 {
				t.Errorf("%d code exchanges, want 1", prov.exchanges)
			}
			prov.mu.Unlock()

			_, data := e.callAccount(alice, id, map[string]any{"path": "/contacts"}, http.StatusOK)
			keep(data)
			if got := api.last(t).Header.Get("Authorization"); got != "Bearer "+providerAccessToken {
				t.Errorf("the API got Authorization %q", got)
			}
			// A user who declines at the provider gets a clear 400.
			keep(e.do("POST", "/api/v1/accounts/oauth2/start", alice, map[string]any{"connector": "acme-crm", "name": "CRM 2"}, http.StatusOK, &started))
			e.do("GET", "/api/v1/accounts/oauth2/callback?state="+url.QueryEscape(started.State)+"&error=access_denied", "", nil, http.StatusBadRequest, &p)
			if !strings.Contains(p.Detail, "access_denied") {
				t.Errorf("declined: %+v", p)
			}

			e.do("DELETE", "/api/v1/connectors/acme-crm/oauth2-client", e.admin, nil, http.StatusNoContent, nil)
			e.do("GET", "/api/v1/connectors/acme-crm/oauth2-client", e.admin, nil, http.StatusNotFound, nil)

			all := strings.Join(answers, "\n") + e.logs.String()
			for _, s := range []string{providerClientSecret, providerAccessToken, providerRefreshToken} {
				if strings.Contains(all, s) {
					t.Errorf("an answer or a log line holds %s", s)
				}
			}
		})
	}
}

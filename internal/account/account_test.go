package account_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/vault"
)

// credentialLike are the headers and query parameters a test checks that
// nothing but the account sets.
var (
	credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key"}
	credentialParams  = []string{"api_key"}
)

// TestAuthTypes: each auth type sends exactly its credentials, the
// account's extra headers are added, and the caller can override none of
// them.
func TestAuthTypes(t *testing.T) {
	t.Parallel()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("ada:pa55-w0rd-of-ada"))
	tests := []struct {
		name    string
		in      account.Input
		headers map[string]string // credential headers expected (others absent)
		params  map[string]string // credential parameters expected
	}{
		{"basic", account.Input{AuthType: "basic", Username: "ada", Password: "pa55-w0rd-of-ada"},
			map[string]string{"Authorization": basic}, nil},
		{"token", account.Input{AuthType: "token", Token: "tok-0123456789abcdef"},
			map[string]string{"Authorization": "Bearer tok-0123456789abcdef"}, nil},
		{"token with prefix", account.Input{AuthType: "token", AuthPrefix: "Session", Token: "tok-0123456789abcdef"},
			map[string]string{"Authorization": "Session tok-0123456789abcdef"}, nil},
		{"apiKey in header", account.Input{AuthType: "apiKey", APIKey: &account.APIKey{In: "header", Name: "X-Api-Key", Value: "key-0123456789abcdef"}},
			map[string]string{"X-Api-Key": "key-0123456789abcdef"}, nil},
		{"apiKey in query", account.Input{AuthType: "apiKey", APIKey: &account.APIKey{In: "query", Name: "api_key", Value: "key-0123456789abcdef"}},
			nil, map[string]string{"api_key": "key-0123456789abcdef"}},
	}
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			srv := newAPI(t, nil)
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					in := tc.in
					in.Name, in.Domain = tc.name, srv.URL+"/v2"
					in.Headers = map[string]string{"X-Tenant": "tenant-1"}
					v := e.create(t, alice, in)
					res, err := e.svc.Do(context.Background(), alice, v.ID, account.Request{
						Method: "post", Path: "/contacts/c_1?page=2",
						Query: map[string]any{"api_key": "caller-key", "tag": []any{"a", 7.0, true}},
						Headers: map[string]string{
							"Authorization": "Bearer caller", "Proxy-Authorization": "Basic caller", "Cookie": "session=caller",
							"X-Api-Key": "caller-key", "x-tenant": "caller-tenant", "X-Caller": "kept", "Connection": "close",
						},
						Body: []byte(`{"first":"Ada"}`),
					}, "api")
					if err != nil {
						t.Fatal(err)
					}
					if res.Status != http.StatusOK || res.Value().(map[string]any)["path"] != "/v2/contacts/c_1" {
						t.Fatalf("result = %+v", res)
					}
					got := srv.last(t)
					if got.Method != http.MethodPost || got.Path != "/v2/contacts/c_1" || got.Body != `{"first":"Ada"}` ||
						got.Header.Get("Content-Type") != "application/json" {
						t.Errorf("request = %s %s %q (%s)", got.Method, got.Path, got.Body, got.Header.Get("Content-Type"))
					}
					if got.Header.Get("X-Tenant") != "tenant-1" || len(got.Header.Values("X-Tenant")) != 1 {
						t.Errorf("X-Tenant = %q, want the account's only", got.Header.Values("X-Tenant"))
					}
					if got.Header.Get("X-Caller") != "kept" {
						t.Errorf("the caller's own header was dropped")
					}
					for _, h := range credentialHeaders {
						want, set := tc.headers[h]
						if !set && h == "X-Api-Key" {
							want, set = "caller-key", true // not a credential of this account: the caller's own
						}
						if vals := got.Header.Values(h); (set && (len(vals) != 1 || vals[0] != want)) || (!set && len(vals) != 0) {
							t.Errorf("header %s = %q, want %q", h, vals, want)
						}
					}
					if q := got.Query; q.Get("page") != "2" || !slices.Equal(q["tag"], []string{"a", "7", "true"}) {
						t.Errorf("query = %v", q)
					}
					for _, p := range credentialParams {
						want, set := tc.params[p]
						if !set {
							want = "caller-key" // not a credential of this account: the caller's own
						}
						if vals := got.Query[p]; len(vals) != 1 || vals[0] != want {
							t.Errorf("query %s = %q, want %q", p, vals, want)
						}
					}
				})
			}
		})
	}
}

// TestBodiesAndResults: a JSON string goes as text, JSON as JSON, the
// caller's Content-Type wins; an answer is JSON when it is JSON, else
// text.
func TestBodiesAndResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, store.BackendSQLite)
	srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		switch r.URL.Path {
		case "/text":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("plain words"))
		case "/untyped":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write([]byte(`[1,2]`))
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			_, _ = w.Write([]byte(`{"n":12345678901}`))
		}
	})
	v := e.create(t, alice, account.Input{Name: "bodies", AuthType: "token", Token: "tok-bodies-0123456789", Domain: srv.URL})
	ctx := context.Background()

	res, err := e.svc.Do(ctx, alice, v.ID, account.Request{Method: "PUT", Path: "/json", Body: []byte(`"hello"`)}, "api")
	if err != nil {
		t.Fatal(err)
	}
	got := srv.last(t)
	if got.Body != "hello" || !strings.HasPrefix(got.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("a JSON string was sent as %q (%s)", got.Body, got.Header.Get("Content-Type"))
	}
	if m, ok := res.Value().(map[string]any); !ok || m["n"] != 12345678901.0 || res.Headers["X-Multi"] != "a, b" {
		t.Errorf("result = %#v", res)
	}
	if _, err := e.svc.Do(ctx, alice, v.ID, account.Request{Method: "POST", Path: "/json", Body: []byte(`[1]`),
		Headers: map[string]string{"Content-Type": "application/vnd.api+json"}}, "api"); err != nil {
		t.Fatal(err)
	}
	if ct := srv.last(t).Header.Get("Content-Type"); ct != "application/vnd.api+json" {
		t.Errorf("Content-Type = %q, want the caller's", ct)
	}
	for path, want := range map[string]any{"/text": "plain words", "/untyped": []any{1.0, 2.0}, "/missing": nil} {
		res, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: path}, "api")
		if err != nil {
			t.Fatal(err)
		}
		if mustJSON(t, res.Value()) != mustJSON(t, want) {
			t.Errorf("%s: body = %s, want %#v", path, res.Body, want)
		}
	}
}

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, store.BackendSQLite)
	const secret = "tok-never-echoed-0123"
	ok := account.Input{Name: "crm", AuthType: "token", Token: secret, Domain: "https://api.example.com/v2"}
	tests := []struct {
		name  string
		edit  func(in *account.Input)
		field string
	}{
		{"no name", func(in *account.Input) { in.Name = " " }, "/name"},
		{"long name", func(in *account.Input) { in.Name = strings.Repeat("n", 201) }, "/name"},
		{"unknown auth type", func(in *account.Input) { in.AuthType = "digest" }, "/authType"},
		{"no auth type", func(in *account.Input) { in.AuthType = ""; in.Token = "" }, "/authType"},
		{"relative domain", func(in *account.Input) { in.Domain = "api.example.com" }, "/domain"},
		{"ftp domain", func(in *account.Input) { in.Domain = "ftp://api.example.com" }, "/domain"},
		{"domain with user", func(in *account.Input) { in.Domain = "https://u:" + secret + "@api.example.com" }, "/domain"},
		{"domain with query", func(in *account.Input) { in.Domain = "https://api.example.com/?k=" + secret }, "/domain"},
		{"no domain", func(in *account.Input) { in.Domain = "" }, "/domain"},
		{"no token", func(in *account.Input) { in.Token = "" }, "/token"},
		{"token with a newline", func(in *account.Input) { in.Token = secret + "\r\nX-Evil: 1" }, "/token"},
		{"basic without password", func(in *account.Input) { in.AuthType, in.Token, in.Username = "basic", "", "ada" }, "/password"},
		{"basic without username", func(in *account.Input) { in.AuthType, in.Token, in.Password = "basic", "", secret }, "/username"},
		{"password for a token account", func(in *account.Input) { in.Password = secret }, "/password"},
		{"apiKey without value", func(in *account.Input) {
			in.AuthType, in.Token, in.APIKey = "apiKey", "", &account.APIKey{In: "header", Name: "X-Key"}
		}, "/apiKey/value"},
		{"apiKey in body", func(in *account.Input) {
			in.AuthType, in.Token, in.APIKey = "apiKey", "", &account.APIKey{In: "body", Name: "k", Value: secret}
		}, "/apiKey/in"},
		{"apiKey without name", func(in *account.Input) {
			in.AuthType, in.Token, in.APIKey = "apiKey", "", &account.APIKey{In: "query", Value: secret}
		}, "/apiKey/name"},
		{"apiKey in Host", func(in *account.Input) {
			in.AuthType, in.Token, in.APIKey = "apiKey", "", &account.APIKey{In: "header", Name: "Host", Value: secret}
		}, "/apiKey/name"},
		{"Authorization header", func(in *account.Input) { in.Headers = map[string]string{"authorization": secret} }, "/headers/authorization"},
		{"Cookie header", func(in *account.Input) { in.Headers = map[string]string{"Cookie": secret} }, "/headers/Cookie"},
		{"hop-by-hop header", func(in *account.Input) { in.Headers = map[string]string{"Transfer-Encoding": "chunked"} }, "/headers/Transfer-Encoding"},
		{"bad header name", func(in *account.Input) { in.Headers = map[string]string{"X Bad/Name": "1"} }, "/headers/X Bad~1Name"},
		{"header value with newline", func(in *account.Input) { in.Headers = map[string]string{"X-Ok": secret + "\n"} }, "/headers/X-Ok"},
		{"bad prefix", func(in *account.Input) { in.AuthPrefix = "Bear er" }, "/authPrefix"},
		{"negative rate limit", func(in *account.Input) { in.RateLimit = -1 }, "/rateLimit"},
		{"oauth2 without connector", func(in *account.Input) { in.AuthType, in.Token = "oauth2", "" }, "/connector"},
	}
	for _, tc := range tests {
		in := ok
		tc.edit(&in)
		_, err := e.svc.Create(context.Background(), alice, in)
		ie, isInput := errors.AsType[*account.InputError](err)
		if !isInput {
			t.Errorf("%s: err = %v, want an InputError", tc.name, err)
			continue
		}
		fields := make([]string, 0, len(ie.Problems))
		for _, p := range ie.Problems {
			fields = append(fields, p.Field)
			if strings.Contains(p.Message, secret) {
				t.Errorf("%s: the message %q quotes the secret", tc.name, p.Message)
			}
		}
		if !slices.Contains(fields, tc.field) {
			t.Errorf("%s: problems at %v, want %s", tc.name, fields, tc.field)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error quotes the secret", tc.name)
		}
	}
	list, err := e.svc.List(context.Background(), alice, "", true, "", 0)
	if err != nil || len(list) != 0 {
		t.Errorf("refused inputs stored accounts: %d, %v", len(list), err)
	}
}

func TestUpdateRotates(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			srv := newAPI(t, nil)
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-old-0123456789", Domain: srv.URL,
				Headers: map[string]string{"X-Tenant": "t-1", "X-Drop": "gone soon"}})
			if v.Hint != "…6789" || v.Headers["X-Tenant"] != "…" || v.AuthPrefix != "Bearer" {
				t.Errorf("view = %+v", v)
			}
			name, token := "crm 2", "tok-new-abcdefghijk"
			headers := map[string]string{"X-Drop": "", "X-Region": "eu-west-1-region"}
			rate := 50.0
			v, err := e.svc.Update(ctx, alice, v.ID, account.Patch{Name: &name, Token: &token, Headers: &headers, RateLimit: &rate})
			if err != nil {
				t.Fatal(err)
			}
			if v.Name != name || v.Hint != "…hijk" || v.RateLimit != 50 || mustJSON(t, v.Headers) != `{"X-Region":"…gion","X-Tenant":"…"}` {
				t.Errorf("updated view = %+v", v)
			}
			if _, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/"}, "api"); err != nil {
				t.Fatal(err)
			}
			got := srv.last(t).Header
			if got.Get("Authorization") != "Bearer "+token || got.Get("X-Tenant") != "t-1" || got.Get("X-Region") != "eu-west-1-region" || got.Get("X-Drop") != "" {
				t.Errorf("after the update the API got %v", got)
			}
			if raw := storetest.Dump(t, e.cfg); strings.Contains(raw, "tok-old-0123456789") || strings.Contains(raw, token) {
				t.Error("a token is in the database in clear")
			}
			// A patch that does not fit the account changes nothing.
			pw := "password"
			if _, err := e.svc.Update(ctx, alice, v.ID, account.Patch{Password: &pw}); inputField(err) != "/password" {
				t.Errorf("a password for a token account: %v", err)
			}
			empty := ""
			if _, err := e.svc.Update(ctx, alice, v.ID, account.Patch{Token: &empty, Name: &pw}); inputField(err) != "/token" {
				t.Errorf("an empty token: %v", err)
			}
			if got, _ := e.svc.Get(ctx, alice, v.ID); got.Name != name || got.Hint != "…hijk" {
				t.Errorf("a refused patch changed the account: %+v", got)
			}
		})
	}
}

// TestUpdateHeaderSpellings: a patched header replaces the account's
// header that a server would read as the same one (case, '_' for '-'),
// rather than sitting next to it.
func TestUpdateHeaderSpellings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, store.BackendSQLite)
	ctx := context.Background()
	v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-spell-0123456789", Domain: "https://api.example.com",
		Headers: map[string]string{"X-Tenant": "t-1"}})
	headers := map[string]string{"X_Tenant": "t-2"}
	v, err := e.svc.Update(ctx, alice, v.ID, account.Patch{Headers: &headers})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, v.Headers); got != `{"X_Tenant":"…"}` {
		t.Errorf("headers after patching X_Tenant onto X-Tenant: %s, want X_Tenant alone", got)
	}
	headers = map[string]string{"x-tenant": ""}
	if v, err = e.svc.Update(ctx, alice, v.ID, account.Patch{Headers: &headers}); err != nil || len(v.Headers) != 0 {
		t.Errorf("headers after removing x-tenant: %v, %v", v, err)
	}
}

// TestRevoked: a revoked account fails every later use with a clear
// error, stays readable, and its secret is gone.
func TestRevoked(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			srv := newAPI(t, nil)
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-revoked-0123456789", Domain: srv.URL})
			if err := e.svc.Revoke(ctx, alice, v.ID); err != nil {
				t.Fatal(err)
			}
			_, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/x"}, "api")
			if !errors.Is(err, account.ErrRevoked) || !strings.Contains(err.Error(), "revoked by u-alice") || !strings.Contains(err.Error(), v.ID) {
				t.Errorf("Do after revoke: %v", err)
			}
			if _, err := e.svc.Enqueue(ctx, alice, v.ID, account.Request{Path: "/x"}, "api"); !errors.Is(err, account.ErrRevoked) {
				t.Errorf("Enqueue after revoke: %v", err)
			}
			build := func(base *url.URL) (*http.Request, error) { return http.NewRequest("GET", base.String(), nil) }
			if _, err := e.svc.Send(ctx, alice, v.ID, "", "api", build); !errors.Is(err, account.ErrRevoked) {
				t.Errorf("Send after revoke: %v", err)
			}
			name := "renamed"
			if _, err := e.svc.Update(ctx, alice, v.ID, account.Patch{Name: &name}); !errors.Is(err, account.ErrRevoked) {
				t.Errorf("Update after revoke: %v", err)
			}
			first, err := e.svc.Get(ctx, alice, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			// Revoking again is no error and keeps the first revocation;
			// for another user, or for no account, there is nothing.
			if err := e.svc.Revoke(ctx, admin, v.ID); err != nil {
				t.Errorf("revoking twice: %v", err)
			}
			if again, err := e.svc.Get(ctx, alice, v.ID); err != nil || again.StatusReason != first.StatusReason ||
				!again.RevokedAt.Equal(*first.RevokedAt) || !strings.Contains(again.StatusReason, "revoked by u-alice") {
				t.Errorf("after revoking twice: %+v, %v (first %+v)", again, err, first)
			}
			if err := e.svc.Revoke(ctx, bob, v.ID); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("another user revoking a revoked account: %v", err)
			}
			if err := e.svc.Revoke(ctx, alice, "no-such-account"); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("revoking a missing account: %v", err)
			}
			if n := srv.hits.Load(); n != 0 {
				t.Errorf("the API was called %d times", n)
			}
			got, err := e.svc.Get(ctx, alice, v.ID)
			if err != nil || got.Status != store.AccountRevoked || got.RevokedAt == nil {
				t.Errorf("Get after revoke = %+v, %v", got, err)
			}
			if list, _ := e.svc.List(ctx, alice, "", false, "", 0); len(list) != 0 {
				t.Errorf("List without revoked shows %d accounts", len(list))
			}
			if list, _ := e.svc.List(ctx, alice, "", true, "", 0); len(list) != 1 {
				t.Errorf("List with revoked shows %d accounts", len(list))
			}
			audit, err := e.svc.Audit(ctx, alice, v.ID, "", 0)
			if err != nil || len(audit) != 2 || !strings.Contains(audit[0].Error, "revoked") {
				t.Errorf("audit after revoke = %+v, %v", audit, err)
			}
			if strings.Contains(storetest.Dump(t, e.cfg), "tok-revoked-0123456789") {
				t.Error("the revoked secret is in the database")
			}
		})
	}
}

// TestOtherUsersAccount: for a user who is not its owner (nor an admin)
// an account does not exist, whatever they ask.
func TestOtherUsersAccount(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			srv := newAPI(t, nil)
			e.startEngine(t)
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "alice's", AuthType: "token", Token: "tok-alice-0123456789", Domain: srv.URL})
			other := e.create(t, alice, account.Input{Name: "alice's other", AuthType: "token", Token: "tok-alice-0123456789", Domain: srv.URL})
			reqID, err := e.svc.Enqueue(ctx, alice, v.ID, account.Request{Path: "/"}, "api")
			if err != nil {
				t.Fatal(err)
			}
			name := "mine now"
			build := func(base *url.URL) (*http.Request, error) { return http.NewRequest("GET", base.String(), nil) }
			for what, call := range map[string]func(account.Caller) error{
				"Get": func(c account.Caller) error { _, err := e.svc.Get(ctx, c, v.ID); return err },
				"Update": func(c account.Caller) error {
					_, err := e.svc.Update(ctx, c, v.ID, account.Patch{Name: &name})
					return err
				},
				"Do": func(c account.Caller) error {
					_, err := e.svc.Do(ctx, c, v.ID, account.Request{Path: "/"}, "api")
					return err
				},
				"Do with a bad path": func(c account.Caller) error {
					_, err := e.svc.Do(ctx, c, v.ID, account.Request{Path: "../x"}, "api")
					return err
				},
				"Enqueue": func(c account.Caller) error {
					_, err := e.svc.Enqueue(ctx, c, v.ID, account.Request{Path: "/"}, "api")
					return err
				},
				"RequestResult": func(c account.Caller) error { _, err := e.svc.RequestResult(ctx, c, v.ID, reqID); return err },
				"Audit":         func(c account.Caller) error { _, err := e.svc.Audit(ctx, c, v.ID, "", 0); return err },
				"Send":          func(c account.Caller) error { _, err := e.svc.Send(ctx, c, v.ID, "", "api", build); return err },
				"Revoke":        func(c account.Caller) error { return e.svc.Revoke(ctx, c, v.ID) },
			} {
				if err := call(bob); !errors.Is(err, account.ErrNotFound) {
					t.Errorf("%s by another user: %v", what, err)
				}
			}
			if _, err := e.svc.RequestResult(ctx, alice, other.ID, reqID); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("a request read through another account: %v", err)
			}
			if list, _ := e.svc.List(ctx, bob, "", true, "", 0); len(list) != 0 {
				t.Errorf("bob lists %d accounts", len(list))
			}
			if list, _ := e.svc.List(ctx, bob, alice.UserID, true, "", 0); len(list) != 0 {
				t.Errorf("bob lists %d of alice's accounts", len(list))
			}
			// The owner's account is intact, and an admin may use it.
			got, err := e.svc.Get(ctx, alice, v.ID)
			if err != nil || got.Name != "alice's" || got.Status != store.AccountActive {
				t.Fatalf("the owner's view = %+v, %v", got, err)
			}
			if _, err := e.svc.Do(ctx, admin, v.ID, account.Request{Path: "/"}, "api"); err != nil {
				t.Errorf("an admin's Do: %v", err)
			}
			if list, _ := e.svc.List(ctx, admin, alice.UserID, false, "", 0); len(list) != 2 {
				t.Errorf("the admin lists %d of alice's accounts, want 2", len(list))
			}
			audit, _ := e.svc.Audit(ctx, alice, v.ID, "", 0)
			for _, a := range audit {
				if a.UserID == bob.UserID {
					t.Errorf("another user's refused attempt was recorded on the account: %+v", a)
				}
			}
		})
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
			ctx := context.Background()
			v := e.create(t, alice, account.Input{Name: "crm", AuthType: "apiKey", Domain: srv.URL + "/v2",
				APIKey: &account.APIKey{In: "query", Name: "key", Value: "key-audited-0123456789"}})
			if _, err := e.svc.Do(ctx, alice, v.ID, account.Request{Method: "POST", Path: "/contacts?email=ada@example.com",
				Query: map[string]any{"q": "private words"}}, "api"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Do(ctx, admin, v.ID, account.Request{Path: "/../../etc?x=private words"}, "flow:f1/c1"); inputField(err) != "/path" {
				t.Fatalf("a path above the domain: %v", err)
			}
			host := strings.TrimPrefix(srv.URL, "http://")
			entries, err := e.svc.Audit(ctx, alice, v.ID, "", 0)
			if err != nil || len(entries) != 2 {
				t.Fatalf("audit = %+v, %v", entries, err)
			}
			refused, ok := entries[0], entries[1] // newest first
			if ok.UserID != alice.UserID || ok.Source != "api" || ok.Method != "POST" || ok.Host != host ||
				ok.Path != "/v2/contacts" || ok.Status != http.StatusCreated || ok.Error != "" || ok.At == 0 {
				t.Errorf("entry of a use = %+v", ok)
			}
			if refused.UserID != admin.UserID || refused.Source != "flow:f1/c1" || refused.Method != "GET" ||
				refused.Status != 0 || !strings.Contains(refused.Error, "/path") {
				t.Errorf("entry of a refused use = %+v", refused)
			}
			for _, a := range entries {
				if s := mustJSON(t, a); strings.Contains(s, "private") || strings.Contains(s, "ada@example.com") || strings.Contains(s, "key-audited") {
					t.Errorf("the audit holds query values: %s", s)
				}
			}
			// Paging: before the newest, the older one.
			page, err := e.svc.Audit(ctx, alice, v.ID, refused.ID, 10)
			if err != nil || len(page) != 1 || page[0].ID != ok.ID {
				t.Errorf("the page before %s = %+v, %v", refused.ID, page, err)
			}
		})
	}
}

// TestConnectorAccount: a connector's account takes its auth from the
// connector and must agree with it; Send adds its credentials to the
// requests the connector builds.
func TestConnectorAccount(t *testing.T) {
	t.Parallel()
	srv := newAPI(t, nil)
	auth := map[string]*account.ConnectorAuth{
		"crm":   {Type: "apiKey", In: "header", Name: "X-Api-Key", BaseURL: srv.URL + "/api"},
		"token": {Type: "token", Prefix: "Token"},
		"open":  nil, // installed, no auth: Installer.AccountAuth gives nil
	}
	e := newEnv(t, store.BackendSQLite, func(c *account.Config) {
		c.ConnectorAuth = func(_ context.Context, name string) (*account.ConnectorAuth, error) { return auth[name], nil }
	})
	ctx := context.Background()
	v := e.create(t, alice, account.Input{Name: "crm", Connector: "crm", APIKey: &account.APIKey{Value: "key-connector-0123456789"}})
	if v.AuthType != "apiKey" || v.Domain != srv.URL+"/api" || v.APIKey.In != "header" || v.APIKey.Name != "X-Api-Key" || v.Connector != "crm" {
		t.Errorf("connector account = %+v", v)
	}
	tv := e.create(t, alice, account.Input{Name: "tok", Connector: "token", Token: "tok-connector-0123456789", Domain: srv.URL})
	if tv.AuthPrefix != "Token" {
		t.Errorf("prefix = %q, want the connector's", tv.AuthPrefix)
	}
	for what, in := range map[string]account.Input{
		"/connector": {Name: "x", Connector: "missing", Token: "t", Domain: srv.URL},
		"/authType":  {Name: "x", Connector: "crm", AuthType: "token", Token: "t"},
		"/apiKey/in": {Name: "x", Connector: "crm", APIKey: &account.APIKey{In: "query", Value: "k"}},
	} {
		if _, err := e.svc.Create(ctx, alice, in); inputField(err) != what {
			t.Errorf("%+v: err = %v, want a problem at %s", in, err, what)
		}
	}
	if _, err := e.svc.Create(ctx, alice, account.Input{Name: "x", Connector: "open", Token: "t", Domain: srv.URL}); inputField(err) != "/connector" {
		t.Errorf("an account for a connector without auth: %v", err)
	}

	build := func(base *url.URL) (*http.Request, error) {
		u, err := outbound.JoinPath(base, "/contacts?limit=5")
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
		req.Header.Set("X-Api-Key", "forged")
		req.Header.Set("Authorization", "forged")
		return req, err
	}
	resp, err := e.svc.Send(ctx, alice, v.ID, "crm", "flow:f/c", build)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := srv.last(t)
	if resp.StatusCode != 200 || got.Path != "/api/contacts" || got.Query.Get("limit") != "5" ||
		got.Header.Get("X-Api-Key") != "key-connector-0123456789" || got.Header.Get("Authorization") != "" {
		t.Errorf("Send: %d, the API got %+v", resp.StatusCode, got)
	}
	if _, err := e.svc.Send(ctx, alice, v.ID, "token", "flow:f/c", build); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("Send for another connector: %v", err)
	}
	elsewhere := func(*url.URL) (*http.Request, error) {
		return http.NewRequest("GET", "https://other.example.com/", nil)
	}
	hits := srv.hits.Load()
	if _, err := e.svc.Send(ctx, alice, v.ID, "crm", "flow:f/c", elsewhere); inputField(err) != "/url" {
		t.Errorf("Send to another host: %v", err)
	}
	if srv.hits.Load() != hits {
		t.Error("a refused Send reached the API")
	}
	// The connector decides where the key goes.
	in := "query"
	if _, err := e.svc.Update(ctx, alice, v.ID, account.Patch{APIKey: &account.APIKey{In: in}}); inputField(err) != "/apiKey" {
		t.Errorf("moving a connector's key: %v", err)
	}
}

// TestRevokedOnAnotherNode revokes an account through one service while
// another on the same database (another node, with its own row cache) has
// just used it: that node refuses it within the cache's second.
func TestRevokedOnAnotherNode(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			v, err := vault.New(testKey)
			if err != nil {
				t.Fatal(err)
			}
			other, err := account.New(account.Config{Store: e.st, Vault: v, HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true})})
			if err != nil {
				t.Fatal(err)
			}
			srv := newAPI(t, nil)
			ctx := context.Background()
			acc := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-other-node-0123456789", Domain: srv.URL})
			if _, err := e.svc.Do(ctx, alice, acc.ID, account.Request{Path: "/x"}, "api"); err != nil {
				t.Fatal(err) // the row is now in this node's cache
			}
			if err := other.Revoke(ctx, alice, acc.ID); err != nil {
				t.Fatal(err)
			}
			revoked := time.Now()
			eventually(t, "the revocation to reach the other node", func() bool {
				_, err := e.svc.Do(ctx, alice, acc.ID, account.Request{Path: "/x"}, "api")
				return errors.Is(err, account.ErrRevoked)
			})
			if d := time.Since(revoked); d > 1500*time.Millisecond {
				t.Errorf("the other node used the revoked account for %s, want at most about a second", d)
			}
		})
	}
}

// TestIsFinal: the errors of a use of an account that will not pass if
// the use is made again.
func TestIsFinal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"not found", fmt.Errorf("loading: %w", account.ErrNotFound), true},
		{"revoked", fmt.Errorf("using: %w", account.ErrRevoked), true},
		{"invalid", fmt.Errorf("using: %w", account.ErrInvalid), true},
		{"input", &account.InputError{Problems: []account.FieldProblem{{Field: "/path", Message: "bad"}}}, true},
		{"too large", &account.UpstreamError{Err: fmt.Errorf("reading: %w", outbound.ErrResponseTooLarge)}, true},
		{"unreachable", &account.UpstreamError{Err: errors.New("connection refused")}, false},
		{"timeout", fmt.Errorf("calling: %w", account.ErrTimeout), false},
		{"rate limited", &account.RateLimitedError{AccountID: "a", RetryAfter: time.Second}, false},
		{"nil", nil, false},
	} {
		if got := account.IsFinal(tt.err); got != tt.want {
			t.Errorf("%s: IsFinal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

package account_test

import (
	"context"
	"net/http"
	"path"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/store"
)

// TestMethodsAllowed: only the methods of an API call pass. TRACE would
// have the server echo the request, credentials included, back to the
// caller.
func TestMethodsAllowed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, store.BackendSQLite)
	srv := newAPI(t, nil)
	v := e.create(t, alice, account.Input{Name: "crm", AuthType: "token", Token: "tok-methods-0123456789", Domain: srv.URL})
	for _, m := range []string{"TRACE", "trace", "TRACK", "CONNECT", "PROPFIND", "DEBUG", "FOO"} {
		req := account.Request{Method: m, Path: "/"}
		if _, err := e.svc.Do(ctx, alice, v.ID, req, "api"); inputField(err) != "/method" {
			t.Errorf("%s: err = %v, want a problem at /method", m, err)
		}
		if _, err := e.svc.Enqueue(ctx, alice, v.ID, req, "api"); inputField(err) != "/method" {
			t.Errorf("Enqueue %s: err = %v, want a problem at /method", m, err)
		}
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("the API was called %d times", n)
	}
	for _, m := range []string{"GET", "head", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		res, err := e.svc.Do(ctx, alice, v.ID, account.Request{Method: m, Path: "/"}, "api")
		if err != nil || res.Status != http.StatusOK {
			t.Errorf("%s: %+v, %v", m, res, err)
			continue
		}
		if got := srv.last(t).Method; got != strings.ToUpper(m) {
			t.Errorf("%s reached the API as %s", m, got)
		}
	}
}

// TestRedirectStaysBelowDomain: a redirect on the same origin but above
// the domain's path (another tenant's API) is not followed with the
// credentials: its 3xx answer is the result.
func TestRedirectStaysBelowDomain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/tenant-a/up":
			http.Redirect(w, r, "/tenant-b/secret", http.StatusFound)
		case "/tenant-a/sibling":
			http.Redirect(w, r, "/tenant-ab/secret", http.StatusFound)
		case "/tenant-a/encoded":
			w.Header().Set("Location", "/tenant-a/%2e%2e/tenant-b/secret")
			w.WriteHeader(http.StatusFound)
		case "/tenant-a/dots":
			w.Header().Set("Location", "/tenant-a/../tenant-b/secret")
			w.WriteHeader(http.StatusFound)
		case "/tenant-a/slash":
			w.Header().Set("Location", "/tenant-a/..%2ftenant-b/secret")
			w.WriteHeader(http.StatusFound)
		case "/tenant-a/within":
			http.Redirect(w, r, "/tenant-a/landed", http.StatusFound)
		default:
			_, _ = w.Write([]byte("at " + r.URL.Path))
		}
	})
	e := newEnv(t, store.BackendSQLite)
	v := e.create(t, alice, account.Input{Name: "a", AuthType: "token", Token: "tok-tenant-a-0123456789", Domain: srv.URL + "/tenant-a"})
	for _, p := range []string{"/up", "/sibling", "/encoded", "/dots", "/slash"} {
		res, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: p}, "api")
		if err != nil || res.Status != http.StatusFound {
			t.Errorf("%s: %+v, %v; want the 302 answer", p, res, err)
		}
	}
	srv.mu.Lock()
	for _, r := range srv.reqs {
		if !strings.HasPrefix(path.Clean(r.Path), "/tenant-a/") {
			t.Errorf("a request reached %s with Authorization %q", r.Path, r.Header.Get("Authorization"))
		}
	}
	srv.mu.Unlock()

	res, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/within"}, "api")
	if err != nil || res.Status != http.StatusOK || res.Value() != "at /tenant-a/landed" {
		t.Fatalf("a redirect below the domain: %+v, %v", res, err)
	}
	if got := srv.last(t).Header.Get("Authorization"); got != "Bearer tok-tenant-a-0123456789" {
		t.Errorf("the redirected request carried Authorization %q", got)
	}
}

// TestCallerCannotShadowAccountHeaders: a caller's header that a server
// could read as a credential or as one of the account's headers once '_'
// is taken for '-' (CGI merges X_Api_Key with X-Api-Key) never reaches
// the API; the account's values do.
func TestCallerCannotShadowAccountHeaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newAPI(t, nil)
	e := newEnv(t, store.BackendSQLite)
	v := e.create(t, alice, account.Input{Name: "k", AuthType: "apiKey", Domain: srv.URL,
		APIKey:  &account.APIKey{In: "header", Name: "X-Api-Key", Value: "key-real-0123456789"},
		Headers: map[string]string{"X-Tenant": "tenant-1"}})
	_, err := e.svc.Do(ctx, alice, v.ID, account.Request{Path: "/", Headers: map[string]string{
		"X_Api_Key":           "key-of-the-caller",
		"x_api_KEY":           "key-of-the-caller",
		"X_Tenant":            "tenant-2",
		"Proxy_Authorization": "Basic Y2FsbGVy",
		"AUTHORIZATION":       "Bearer caller",
		"X-Other_Name":        "kept",
	}}, "api")
	if err != nil {
		t.Fatal(err)
	}
	got := srv.last(t).Header
	byKey := map[string][]string{}
	for name, values := range got {
		k := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		byKey[k] = append(byKey[k], values...)
	}
	for k, want := range map[string]string{"x-api-key": "key-real-0123456789", "x-tenant": "tenant-1", "x-other-name": "kept"} {
		if vals := byKey[k]; len(vals) != 1 || vals[0] != want {
			t.Errorf("the API got %s = %q, want only %q", k, vals, want)
		}
	}
	for _, k := range []string{"proxy-authorization", "authorization"} {
		if vals := byKey[k]; len(vals) != 0 {
			t.Errorf("the API got the caller's %s %q", k, vals)
		}
	}

	// Nor can an account's own extra header shadow its API key or a
	// credential header.
	for _, name := range []string{"X_Api_Key", "Proxy_Authorization", "authorization"} {
		_, err := e.svc.Create(ctx, alice, account.Input{Name: "k2", AuthType: "apiKey", Domain: srv.URL,
			APIKey:  &account.APIKey{In: "header", Name: "X-Api-Key", Value: "key-real-0123456789"},
			Headers: map[string]string{name: "x"}})
		if inputField(err) != "/headers/"+name {
			t.Errorf("extra header %s: err = %v, want a problem at /headers/%s", name, err, name)
		}
	}
}

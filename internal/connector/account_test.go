package connector_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connector"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/vault"
)

// acctSecret is the secret of every account here: no output or error may
// hold it.
const acctSecret = "sk-live-Q9v2-connector-secret-Zt7"

// acctEnv is a server's connector side: a store, installed connectors
// loaded into a registry, and an account service that reads connectors'
// auth from the installer.
type acctEnv struct {
	st       *store.Store
	reg      *component.Registry
	in       *connector.Installer
	accounts *account.Service
}

func newAcctEnv(t *testing.T, backend string) *acctEnv {
	t.Helper()
	st := storetest.Open(t, backend)
	v, err := vault.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	client := outbound.NewClient(outbound.Options{AllowPrivate: true})
	e := &acctEnv{st: st, reg: component.NewRegistry()}
	e.in = &connector.Installer{Store: st, Registry: e.reg}
	e.accounts, err = account.New(account.Config{Store: st, Vault: v, HTTP: client, ConnectorAuth: e.in.AccountAuth,
		AuditFlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.in.Runtime = &connector.Runtime{HTTP: client, Accounts: e.accounts}
	ctx, cancel := context.WithCancel(context.Background())
	e.accounts.Start(ctx)
	t.Cleanup(func() {
		cancel()
		_ = e.accounts.Close(context.Background())
	})
	return e
}

// install publishes and installs the connector of manifest, then loads it.
func (e *acctEnv) install(t *testing.T, manifest map[string]any) {
	t.Helper()
	ctx := context.Background()
	raw, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range map[string][]byte{connector.ManifestFile: raw, connector.ChangelogFile: []byte("# 1.0.0\n\nFirst.\n")} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	pkg, err := connector.ReadArchive(buf.Bytes())
	if err != nil {
		t.Fatalf("the test connector is refused: %v", err)
	}
	m := pkg.Manifest
	if err := e.st.PutConnectorVersion(ctx, &store.ConnectorVersion{Name: m.Name, Version: m.Version, Manifest: pkg.ManifestJSON,
		Changelog: pkg.Changelog, Archive: buf.Bytes(), Digest: pkg.Digest}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Submit(ctx, func(tx *store.Tx) error { return tx.InstallConnector(ctx, m.Name, m.Version) }); err != nil {
		t.Fatal(err)
	}
	if err := e.in.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *acctEnv) lookup(t *testing.T, typ string) component.Component {
	t.Helper()
	c, ok := e.reg.Lookup(typ)
	if !ok {
		t.Fatalf("%s is not loaded", typ)
	}
	return c
}

// acctManifest is a connector of name with the auth block auth (nil for
// none) whose API is at baseURL: an action, an action with an absolute
// URL, a polling trigger and a subscription trigger.
func acctManifest(name, baseURL string, auth map[string]any, absoluteURL string) map[string]any {
	m := map[string]any{
		"name": name, "version": "1.0.0", "label": "Test", "description": "A connector with accounts.", "baseUrl": baseURL,
		"components": []any{
			map[string]any{"name": "CreateContact", "kind": "action", "description": "Creates a contact.",
				"properties": map[string]any{"type": "object", "required": []any{"email"},
					"properties": map[string]any{"email": map[string]any{"type": "string"}}},
				"http": map[string]any{"method": "POST", "url": "/contacts", "body": map[string]any{"email": "{{ $.properties.email }}"}}},
			map[string]any{"name": "Absolute", "kind": "action", "description": "Calls an absolute URL.",
				"http": map[string]any{"method": "GET", "url": absoluteURL}},
			map[string]any{"name": "NewContact", "kind": "trigger", "description": "New contacts.",
				"polling": map[string]any{"interval": "1m", "request": map[string]any{"method": "GET", "url": "/contacts"}, "itemsPath": "data", "idField": "id"}},
			map[string]any{"name": "ContactEvents", "kind": "trigger", "description": "Contact events.",
				"subscription": map[string]any{
					"subscribe":   map[string]any{"method": "POST", "url": "/webhooks", "body": map[string]any{"url": "{{ $.webhookUrl }}"}},
					"unsubscribe": map[string]any{"method": "DELETE", "url": "/webhooks/{{ $.subscriptionId }}"},
					"idPath":      "id"}},
		},
	}
	if auth != nil {
		m["auth"] = auth
	}
	return m
}

// acctAPI is a connector's API under /v2: it records each request.
type acctAPI struct {
	srv *httptest.Server

	mu       sync.Mutex
	reqs     []*http.Request
	contacts []any
}

func newAcctAPI(t *testing.T) *acctAPI {
	a := &acctAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.reqs = append(a.reqs, r.Clone(context.Background()))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/v2/contacts":
			var b map[string]any
			_ = json.Unmarshal(data, &b)
			c := map[string]any{"id": "c" + string(rune('0'+len(a.contacts))), "email": b["email"]}
			a.contacts = append(a.contacts, c)
			_ = json.NewEncoder(w).Encode(c)
		case r.Method == "GET" && r.URL.Path == "/v2/contacts":
			_ = json.NewEncoder(w).Encode(map[string]any{"data": append([]any{}, a.contacts...)})
		case r.Method == "POST" && r.URL.Path == "/v2/webhooks":
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "w1"})
		case r.Method == "DELETE" && r.URL.Path == "/v2/webhooks/w1":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// last returns the last request and how many came.
func (a *acctAPI) last() (*http.Request, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		return nil, 0
	}
	return a.reqs[len(a.reqs)-1], len(a.reqs)
}

func acctNoSecret(t *testing.T, what string, v any) {
	t.Helper()
	s := ""
	if err, ok := v.(error); ok {
		s = err.Error()
	} else {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	if strings.Contains(s, acctSecret) {
		t.Errorf("%s holds the secret: %s", what, s)
	}
}

func TestInstallerAccountAuth(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newAcctEnv(t, backend)
			ctx := context.Background()
			e.install(t, acctManifest("tokened", "https://api.example.com/v2", map[string]any{"type": "token", "prefix": "Session"}, "https://api.example.com/v2/x"))
			e.install(t, acctManifest("keyed", "https://api.example.com", map[string]any{"type": "apiKey", "in": "query", "name": "api_key"}, "https://api.example.com/x"))
			e.install(t, acctManifest("machine", "https://api.example.com", map[string]any{"type": "oauth2", "grant": "clientCredentials",
				"tokenUrl": "https://auth.example.com/token", "scopes": []any{"read", "write"}}, "https://api.example.com/x"))
			e.install(t, acctManifest("open", "https://api.example.com", map[string]any{"type": "none"}, "https://api.example.com/x"))
			e.install(t, acctManifest("bare", "https://api.example.com", nil, "https://api.example.com/x"))

			for _, c := range []struct {
				name string
				want *account.ConnectorAuth
			}{
				{"tokened", &account.ConnectorAuth{Type: "token", Prefix: "Session", BaseURL: "https://api.example.com/v2"}},
				{"keyed", &account.ConnectorAuth{Type: "apiKey", In: "query", Name: "api_key", BaseURL: "https://api.example.com"}},
				{"machine", &account.ConnectorAuth{Type: "oauth2", Grant: "clientCredentials", TokenURL: "https://auth.example.com/token",
					Scopes: []string{"read", "write"}, BaseURL: "https://api.example.com"}},
				{"open", nil},
				{"bare", nil},
				{"missing", nil},
			} {
				for range 2 { // read, then cached
					got, err := e.in.AccountAuth(ctx, c.name)
					if err != nil {
						t.Fatalf("%s: %v", c.name, err)
					}
					gj, _ := json.Marshal(got)
					wj, _ := json.Marshal(c.want)
					if !bytes.Equal(gj, wj) {
						t.Errorf("%s: auth = %s, want %s", c.name, gj, wj)
					}
					if got != nil {
						got.Scopes = append(got.Scopes, "changed by the caller")
					}
				}
			}
			// An uninstalled connector has no auth any more.
			if err := e.st.RemoveInstalledConnector(ctx, "keyed"); err != nil {
				t.Fatal(err)
			}
			if got, err := e.in.AccountAuth(ctx, "keyed"); got != nil || err != nil {
				t.Errorf("an uninstalled connector: %+v, %v, want nil", got, err)
			}
		})
	}
}

func TestConnectorThroughAccount(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newAcctEnv(t, backend)
			api := newAcctAPI(t)
			var elsewhere sync.Map
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				elsewhere.Store(r.URL.Path, r.Header.Get("Authorization"))
			}))
			defer other.Close()
			ctx := context.Background()
			e.install(t, acctManifest("acme", api.srv.URL+"/v2", map[string]any{"type": "token"}, other.URL+"/steal"))
			alice := account.Caller{UserID: "alice"}
			v, err := e.accounts.Create(ctx, alice, account.Input{Name: "acme", AuthType: account.AuthToken, Domain: api.srv.URL + "/v2",
				Token: acctSecret, Connector: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			id := v.ID

			// Every component needs an account.
			for _, name := range []string{"CreateContact", "Absolute", "NewContact", "ContactEvents"} {
				spec := e.lookup(t, "acme."+name).Spec()
				p, ok := spec.Property(connector.AccountProperty)
				if !ok || !p.Required || p.Type != component.TypeString || !strings.Contains(p.Description, "acme") {
					t.Errorf("acme.%s: account property %+v, want a required string naming the connector", name, p)
				}
			}

			create := e.lookup(t, "acme.CreateContact").(component.Action)
			inv := component.Invocation{FlowID: "f1", ComponentID: "create", OwnerID: "alice", MessageID: "m1",
				Properties: map[string]any{"account": id, "email": "ada@example.com"}}
			emits, err := create.Invoke(ctx, inv)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := api.last()
			if r.URL.Path != "/v2/contacts" || r.Header.Get("Authorization") != "Bearer "+acctSecret || r.Header.Get("Idempotency-Key") != "m1" {
				t.Errorf("the API got %s %s with %v", r.Method, r.URL, r.Header)
			}
			if out := emits[0].Value.(map[string]any); out["email"] != "ada@example.com" {
				t.Errorf("output = %v", out)
			}
			acctNoSecret(t, "the output", emits[0].Value)

			// Without an account, or with another user's, nothing is sent.
			_, before := api.last()
			noAccount := inv
			noAccount.Properties = map[string]any{"email": "x@example.com"}
			if _, err := create.Invoke(ctx, noAccount); !component.IsPermanent(err) {
				t.Errorf("no account: %v, want a permanent error", err)
			}
			bobs := inv
			bobs.OwnerID = "bob"
			if _, err := create.Invoke(ctx, bobs); !component.IsPermanent(err) || !errors.Is(err, account.ErrNotFound) {
				t.Errorf("bob's flow with alice's account: %v, want a permanent not found", err)
			}
			if _, n := api.last(); n != before {
				t.Errorf("%d requests reached the API without a usable account", n-before)
			}

			// An absolute URL on another host never gets the credentials.
			abs := e.lookup(t, "acme.Absolute").(component.Action)
			_, err = abs.Invoke(ctx, component.Invocation{FlowID: "f1", ComponentID: "abs", OwnerID: "alice", Properties: map[string]any{"account": id}})
			if !component.IsPermanent(err) || !strings.Contains(err.Error(), "domain") {
				t.Errorf("an absolute URL on another host: %v, want a permanent refusal", err)
			}
			elsewhere.Range(func(k, v any) bool {
				t.Errorf("the other host got %v (Authorization %q)", k, v)
				return true
			})

			// A polling trigger polls through the account.
			poller := e.lookup(t, "acme.NewContact").(component.Poller)
			pinv := component.PollInvocation{FlowID: "f1", ComponentID: "new", OwnerID: "alice", Properties: map[string]any{"account": id}}
			items, state, err := poller.Poll(ctx, pinv)
			if err != nil || len(items) != 0 {
				t.Fatalf("first poll: %v, %v", items, err)
			}
			if _, err := create.Invoke(ctx, component.Invocation{FlowID: "f1", ComponentID: "create", OwnerID: "alice",
				Properties: map[string]any{"account": id, "email": "grace@example.com"}}); err != nil {
				t.Fatal(err)
			}
			pinv.State = state
			items, _, err = poller.Poll(ctx, pinv)
			if err != nil || len(items) != 1 || items[0].(map[string]any)["email"] != "grace@example.com" {
				t.Fatalf("second poll: %v, %v", items, err)
			}
			if r, _ := api.last(); r.Method != "GET" || r.Header.Get("Authorization") != "Bearer "+acctSecret {
				t.Errorf("the poll sent %s %s with Authorization %q", r.Method, r.URL, r.Header.Get("Authorization"))
			}

			// A subscription trigger subscribes and unsubscribes through it.
			sub := e.lookup(t, "acme.ContactEvents").(component.Subscriber)
			sinv := component.SubscribeInvocation{FlowID: "f1", ComponentID: "events", OwnerID: "alice",
				Properties: map[string]any{"account": id}, WebhookURL: "https://plugboard.example/hooks/x"}
			if sinv.State, err = sub.Subscribe(ctx, sinv); err != nil {
				t.Fatal(err)
			}
			if r, _ := api.last(); r.URL.Path != "/v2/webhooks" || r.Header.Get("Authorization") != "Bearer "+acctSecret {
				t.Errorf("subscribe sent %s %s with Authorization %q", r.Method, r.URL, r.Header.Get("Authorization"))
			}
			if err := sub.Unsubscribe(ctx, sinv); err != nil {
				t.Fatal(err)
			}
			if r, _ := api.last(); r.Method != "DELETE" || r.URL.Path != "/v2/webhooks/w1" || r.Header.Get("Authorization") != "Bearer "+acctSecret {
				t.Errorf("unsubscribe sent %s %s with Authorization %q", r.Method, r.URL, r.Header.Get("Authorization"))
			}

			// Each use is audited with the step it came from.
			deadline := time.Now().Add(5 * time.Second)
			for {
				list, err := e.accounts.Audit(ctx, alice, id, "", 100)
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, a := range list {
					found = found || a.Source == "flow:f1/events"
				}
				if found {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no audit entry from flow:f1/events in %d entries", len(list))
				}
				time.Sleep(10 * time.Millisecond)
			}

			// Once revoked, steps fail for good, saying why.
			if err := e.accounts.Revoke(ctx, alice, id); err != nil {
				t.Fatal(err)
			}
			_, err = create.Invoke(ctx, inv)
			if !component.IsPermanent(err) || !errors.Is(err, account.ErrRevoked) || !strings.Contains(err.Error(), id) {
				t.Errorf("a revoked account: %v, want a permanent error naming the account", err)
			}
			acctNoSecret(t, "the error", err)
			if _, _, err := poller.Poll(ctx, pinv); !component.IsPermanent(err) || !errors.Is(err, account.ErrRevoked) {
				t.Errorf("a poll through a revoked account: %v, want a permanent error", err)
			}
		})
	}
}

func TestConnectorAPIKeyInQuery(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newAcctEnv(t, backend)
			api := newAcctAPI(t)
			ctx := context.Background()
			e.install(t, acctManifest("keyed", api.srv.URL+"/v2", map[string]any{"type": "apiKey", "in": "query", "name": "api_key"},
				api.srv.URL+"/v2/contacts"))
			v, err := e.accounts.Create(ctx, account.Caller{UserID: "alice"}, account.Input{Name: "keyed", AuthType: account.AuthAPIKey,
				Domain: api.srv.URL + "/v2", APIKey: &account.APIKey{In: account.InQuery, Name: "api_key", Value: acctSecret}, Connector: "keyed"})
			if err != nil {
				t.Fatal(err)
			}
			// An absolute URL on the account's origin is fine.
			abs := e.lookup(t, "keyed.Absolute").(component.Action)
			emits, err := abs.Invoke(ctx, component.Invocation{FlowID: "f", ComponentID: "a", OwnerID: "alice", Properties: map[string]any{"account": v.ID}})
			if err != nil {
				t.Fatal(err)
			}
			r, _ := api.last()
			if r.URL.Path != "/v2/contacts" || r.URL.Query().Get("api_key") != acctSecret || r.Header.Get("Authorization") != "" {
				t.Errorf("the API got %s with Authorization %q", r.URL, r.Header.Get("Authorization"))
			}
			acctNoSecret(t, "the output", emits[0].Value)
		})
	}
}

func TestConnectorWithoutAuthNeedsNoAccount(t *testing.T) {
	t.Parallel()
	api := newAcctAPI(t)
	rt := &connector.Runtime{HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true})} // no account service at all
	comps, err := rt.Components(&connector.Package{Manifest: connector.Manifest{
		Name: "plain", Version: "1.0.0", BaseURL: api.srv.URL + "/v2",
		Components: []connector.ComponentDef{{Name: "CreateContact", Kind: "action",
			HTTP: &connector.HTTPDef{RequestDef: connector.RequestDef{Method: "POST", URL: "/contacts", Body: map[string]any{"email": "{{ $.properties.email }}"}}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := comps[0].(component.Action)
	if _, ok := a.Spec().Property(connector.AccountProperty); ok {
		t.Error("a connector without auth asks for an account")
	}
	if _, err := a.Invoke(context.Background(), component.Invocation{OwnerID: "alice", Properties: map[string]any{"email": "ada@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if r, n := api.last(); n != 1 || r.URL.Path != "/v2/contacts" || r.Header.Get("Authorization") != "" {
		t.Errorf("the API got %d requests, the last %v", n, r)
	}
}

func TestAccountError(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err       error
		permanent bool
	}{
		{account.ErrNotFound, true},
		{account.ErrRevoked, true},
		{account.ErrInvalid, true},
		{&account.InputError{Problems: []account.FieldProblem{{Field: "/path", Message: "leaves the domain"}}}, true},
		{&account.UpstreamError{Err: outbound.ErrResponseTooLarge}, true},
		{&account.UpstreamError{Err: errors.New("connection refused")}, false},
		{account.ErrTimeout, false},
		{&account.RateLimitedError{AccountID: "a1", RetryAfter: time.Second}, false},
	} {
		err := connector.AccountError("a1", c.err)
		if component.IsPermanent(err) != c.permanent || !errors.Is(err, c.err) || !strings.Contains(err.Error(), "a1") {
			t.Errorf("%v: %v (permanent %v), want permanent %v, naming the account", c.err, err, component.IsPermanent(err), c.permanent)
		}
	}
}

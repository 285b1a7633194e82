package core_test

import (
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
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/vault"
)

// activityToken is the account's secret: no output or error may hold it.
const activityToken = "tok-7Hq2-never-shown-9xZ4"

// accountsService makes an account service over a fresh store of backend.
func accountsService(t *testing.T, backend string) (*account.Service, *store.Store) {
	t.Helper()
	st := storetest.Open(t, backend)
	v, err := vault.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := account.New(account.Config{Store: st, Vault: v, HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	t.Cleanup(func() {
		cancel()
		_ = svc.Close(context.Background())
	})
	return svc, st
}

// activityAPI records the last request it got and answers with status
// (200 unless set) and {"id":7}; /slow answers when the caller gives up.
type activityAPI struct {
	srv *httptest.Server

	mu     sync.Mutex
	status int
	last   *http.Request
	body   map[string]any
	calls  int
}

func newActivityAPI(t *testing.T) *activityAPI {
	a := &activityAPI{status: http.StatusOK}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.calls++
		a.last, a.body = r.Clone(context.Background()), nil
		_ = json.Unmarshal(data, &a.body)
		status := a.status
		a.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/slow") {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"id":7}`))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *activityAPI) setStatus(s int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status = s
}

func (a *activityAPI) got() (*http.Request, map[string]any, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last, a.body, a.calls
}

func serverActivity(t *testing.T, svc *account.Service) component.Action {
	t.Helper()
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{Accounts: connector.StepAccounts(svc)})
	c, ok := reg.Lookup(core.ServerActivityType)
	if !ok {
		t.Fatal("core.ServerActivity is not registered although accounts are given")
	}
	return c.(component.Action)
}

// tokenAccount stores a token account of owner on the API, with an extra
// header.
func tokenAccount(t *testing.T, svc *account.Service, owner string, api *activityAPI) string {
	t.Helper()
	v, err := svc.Create(context.Background(), account.Caller{UserID: owner}, account.Input{
		Name: "crm", AuthType: account.AuthToken, Domain: api.srv.URL + "/v2", Token: activityToken,
		Headers: map[string]string{"X-Tenant": "t-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v.ID
}

// noSecret fails when v, encoded, holds the account's token.
func noSecret(t *testing.T, what string, v any) {
	t.Helper()
	s := ""
	if err, ok := v.(error); ok {
		s = err.Error()
	} else {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	if strings.Contains(s, activityToken) {
		t.Errorf("%s holds the secret: %s", what, s)
	}
}

func TestServerActivityIsRegisteredWithAccountsOnly(t *testing.T) {
	t.Parallel()
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{})
	if _, ok := reg.Lookup(core.ServerActivityType); ok {
		t.Error("core.ServerActivity is registered without an account service")
	}
	spec := (&core.ServerActivity{}).Spec()
	for _, name := range []string{"account", "path"} {
		if p, ok := spec.Property(name); !ok || !p.Required {
			t.Errorf("property %s: %+v, want it required", name, p)
		}
	}
	if !spec.IO {
		t.Error("core.ServerActivity must run as a job of its own (it does I/O)")
	}
}

func TestServerActivity(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			svc, _ := accountsService(t, backend)
			api := newActivityAPI(t)
			id := tokenAccount(t, svc, "alice", api)
			sa := serverActivity(t, svc)
			ctx := context.Background()
			inv := component.Invocation{FlowID: "f1", ComponentID: "crm", OwnerID: "alice", MessageID: "msg-1", Attempt: 1,
				Properties: map[string]any{
					"account": id, "method": "POST", "path": "/contacts", "query": map[string]any{"tag": "vip"},
					"headers": map[string]any{"Authorization": "Bearer forged", "X-Extra": "yes"},
					"body":    map[string]any{"email": "a@example.com"},
				}}

			emits, err := sa.Invoke(ctx, inv)
			if err != nil {
				t.Fatal(err)
			}
			r, body, _ := api.got()
			if r.Method != "POST" || r.URL.Path != "/v2/contacts" || r.URL.Query().Get("tag") != "vip" {
				t.Errorf("the API got %s %s", r.Method, r.URL)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer "+activityToken {
				t.Errorf("Authorization = %q, want the account's token (the flow cannot replace it)", got)
			}
			if r.Header.Get("X-Tenant") != "t-1" || r.Header.Get("X-Extra") != "yes" || r.Header.Get("Idempotency-Key") != "msg-1" {
				t.Errorf("headers = %v, want the account's, the step's and the message id as Idempotency-Key", r.Header)
			}
			if body["email"] != "a@example.com" {
				t.Errorf("body = %v", body)
			}
			if len(emits) != 1 || emits[0].Port != component.PortOut {
				t.Fatalf("emits = %v", emits)
			}
			out := emits[0].Value.(map[string]any)
			if out["status"] != 200 || out["body"].(map[string]any)["id"] != float64(7) ||
				out["headers"].(map[string]any)["Content-Type"] != "application/json" {
				t.Errorf("output = %v", out)
			}
			noSecret(t, "the output", out)

			// Like core.HttpRequest: 408, 429 and 5xx are retried, other
			// 4xx fail at once.
			for _, c := range []struct {
				status    int
				permanent bool
			}{{503, false}, {429, false}, {408, false}, {404, true}, {400, true}} {
				api.setStatus(c.status)
				_, err := sa.Invoke(ctx, inv)
				if err == nil || component.IsPermanent(err) != c.permanent {
					t.Errorf("status %d: %v, permanent %v, want permanent %v", c.status, err, component.IsPermanent(err), c.permanent)
				} else {
					noSecret(t, "the error", err)
				}
			}
			api.setStatus(http.StatusOK)

			// Paths that leave the domain fail at once, and reach nothing.
			_, _, before := api.got()
			for _, p := range []string{"/../admin", "//evil.example/x", "http://evil.example/x", "/%2e%2e/admin"} {
				bad := inv
				bad.Properties = map[string]any{"account": id, "path": p}
				if _, err := sa.Invoke(ctx, bad); !component.IsPermanent(err) {
					t.Errorf("path %q: %v, want a permanent error", p, err)
				}
			}
			if _, _, after := api.got(); after != before {
				t.Errorf("paths leaving the domain reached the API %d times", after-before)
			}

			// A call longer than its timeout is retried.
			slow := inv
			slow.Properties = map[string]any{"account": id, "path": "/slow", "timeout": "100ms"}
			if _, err := sa.Invoke(ctx, slow); err == nil || component.IsPermanent(err) || !errors.Is(err, account.ErrTimeout) {
				t.Errorf("a timeout: %v, want a retryable ErrTimeout", err)
			}

			// Bad properties fail at once.
			for _, props := range []map[string]any{
				{"path": "/contacts"}, {"account": id}, {"account": id, "path": "/x", "method": "BREW"},
				{"account": id, "path": "/x", "wait": "maybe"},
			} {
				bad := inv
				bad.Properties = props
				if _, err := sa.Invoke(ctx, bad); !component.IsPermanent(err) {
					t.Errorf("props %v: %v, want a permanent error", props, err)
				}
			}
		})
	}
}

func TestServerActivityWaitFalse(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			svc, _ := accountsService(t, backend)
			api := newActivityAPI(t)
			id := tokenAccount(t, svc, "alice", api)
			sa := serverActivity(t, svc)
			ctx := context.Background()
			emits, err := sa.Invoke(ctx, component.Invocation{FlowID: "f1", ComponentID: "later", OwnerID: "alice", MessageID: "m-2",
				Properties: map[string]any{"account": id, "method": "POST", "path": "/contacts", "body": map[string]any{"n": 1}, "wait": false}})
			if err != nil {
				t.Fatal(err)
			}
			out, _ := emits[0].Value.(map[string]any)
			reqID, _ := out["requestId"].(string)
			if len(emits) != 1 || reqID == "" || len(out) != 1 {
				t.Fatalf("emits = %v, want only a requestId", emits)
			}
			view, err := svc.RequestResult(ctx, account.Caller{UserID: "alice"}, id, reqID)
			if err != nil {
				t.Fatalf("the queued request %s: %v", reqID, err)
			}
			if view.AccountID != id {
				t.Errorf("the queued request = %+v", view)
			}
			// Another user cannot read it.
			if _, err := svc.RequestResult(ctx, account.Caller{UserID: "bob"}, id, reqID); !errors.Is(err, account.ErrNotFound) {
				t.Errorf("bob reading alice's request: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestServerActivityRefusedAccounts(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			svc, _ := accountsService(t, backend)
			api := newActivityAPI(t)
			id := tokenAccount(t, svc, "alice", api)
			sa := serverActivity(t, svc)
			ctx := context.Background()
			invoke := func(owner string, wait bool) error {
				_, err := sa.Invoke(ctx, component.Invocation{FlowID: "f1", ComponentID: "crm", OwnerID: owner, MessageID: "m",
					Properties: map[string]any{"account": id, "path": "/contacts", "wait": wait}})
				return err
			}

			// Another user's flow cannot use it: not found, for good, and
			// the API is never called.
			for _, wait := range []bool{true, false} {
				err := invoke("bob", wait)
				if !component.IsPermanent(err) || !errors.Is(err, account.ErrNotFound) || !strings.Contains(err.Error(), id) {
					t.Errorf("bob's flow (wait %v): %v, want a permanent not found naming the account", wait, err)
				}
			}
			if _, _, calls := api.got(); calls != 0 {
				t.Errorf("the API was called %d times through another user's account", calls)
			}
			// A flow without an owner reaches nobody's account.
			if err := invoke("", true); !component.IsPermanent(err) {
				t.Errorf("a flow without owner: %v, want a permanent error", err)
			}

			// A revoked account fails at once, saying so.
			if err := svc.Revoke(ctx, account.Caller{UserID: "alice"}, id); err != nil {
				t.Fatal(err)
			}
			for _, wait := range []bool{true, false} {
				err := invoke("alice", wait)
				if !component.IsPermanent(err) || !errors.Is(err, account.ErrRevoked) || !strings.Contains(err.Error(), id) {
					t.Errorf("a revoked account (wait %v): %v, want a permanent error naming the account and its revocation", wait, err)
				} else {
					noSecret(t, "the error", err)
				}
			}
			if _, _, calls := api.got(); calls != 0 {
				t.Errorf("the API was called %d times through a revoked account", calls)
			}
		})
	}
}

// TestServerActivityInAFlow runs core.ServerActivity steps through the
// engine: they act as the flow's owner; a wait=false call is done by the
// account request job; once the account is revoked, the steps are set
// aside at once with that reason; the flow's logs never hold the secret.
func TestServerActivityInAFlow(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			svc, st := accountsService(t, backend)
			ctx := context.Background()
			if err := st.CreateUser(ctx, &store.User{ID: "alice", Email: "alice@example.com", Role: store.RoleUser}); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seen := map[string]string{} // path -> Authorization
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen[r.URL.Path] = r.Header.Get("Authorization")
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"ok":true}`))
			}))
			defer api.Close()
			v, err := svc.Create(ctx, account.Caller{UserID: "alice"}, account.Input{Name: "crm", AuthType: account.AuthToken,
				Domain: api.URL + "/v2", Token: activityToken})
			if err != nil {
				t.Fatal(err)
			}

			reg := component.NewRegistry()
			core.Register(reg, core.Deps{HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true}), Accounts: connector.StepAccounts(svc)})
			eng, err := engine.New(ctx, engine.Config{Store: st, Registry: reg, FetchPollInterval: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			svc.Register(eng)
			if err := eng.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = eng.Stop(context.Background()) })

			doc, _ := json.Marshal(map[string]any{
				"name": "crm",
				"components": map[string]any{
					"hook": map[string]any{"type": core.WebhookType},
					"now": map[string]any{"type": core.ServerActivityType, "properties": map[string]any{
						"account": v.ID, "method": "POST", "path": "/now", "body": map[string]any{"email": "{{ $.hook.body.email }}"}}},
					"later": map[string]any{"type": core.ServerActivityType, "properties": map[string]any{
						"account": v.ID, "method": "POST", "path": "/later", "wait": false}},
				},
				"links": []any{map[string]any{"from": "hook", "to": "now"}, map[string]any{"from": "hook", "to": "later"}},
			})
			f := &store.Flow{ID: "flow-1", OwnerID: "alice", Name: "crm", Stage: store.StageRunning, Document: doc}
			if err := st.CreateFlow(ctx, f); err != nil {
				t.Fatal(err)
			}
			accept := func() {
				t.Helper()
				if _, err := eng.Accept(ctx, engine.Event{FlowID: f.ID, ComponentID: "hook",
					Output: map[string]any{"body": map[string]any{"email": "ada@example.com"}}}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor := func(what string, done func() bool) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for !done() {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s", what)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}

			accept()
			waitFor("both calls", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return seen["/v2/now"] != "" && seen["/v2/later"] != ""
			})
			mu.Lock()
			for path, auth := range seen {
				if auth != "Bearer "+activityToken {
					t.Errorf("%s got Authorization %q, want the account's token", path, auth)
				}
			}
			mu.Unlock()

			if err := svc.Revoke(ctx, account.Caller{UserID: "alice"}, v.ID); err != nil {
				t.Fatal(err)
			}
			accept()
			var dead []*store.UnprocessedMessage
			waitFor("both steps to be set aside", func() bool {
				dead, err = st.ListUnprocessed(ctx, store.UnprocessedFilter{FlowID: f.ID, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				return len(dead) == 2
			})
			for _, m := range dead {
				if m.Attempts != 1 || !strings.Contains(m.Error, "revoked") || !strings.Contains(m.Error, v.ID) ||
					strings.Contains(m.Error, activityToken) {
					t.Errorf("%s set aside after %d attempts with %q, want one attempt and the revocation naming the account",
						m.ComponentID, m.Attempts, m.Error)
				}
			}

			// The flow's invocation logs (inputs, outputs and errors of
			// every step) never hold the secret.
			logs, err := st.FlowLogs(ctx, store.LogFilter{FlowID: f.ID, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) == 0 {
				t.Fatal("the flow has no invocation logs to check")
			}
			noSecret(t, "the flow's invocation logs", logs)
		})
	}
}

package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/api"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connector"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/syswebhook"
	"github.com/plugboard/plugboard/internal/vault"
)

// testVaultKey is the secret key of every test node; nodes on one
// database share it, as they must.
var testVaultKey = []byte("plugboard-test-vault-key-32bytes")

// env is a running Plugboard (store, engine, HTTP API) on a fresh database.
type env struct {
	t     *testing.T
	cfg   store.Config // the database
	store *store.Store
	srv   *httptest.Server
	admin string // admin token
	// logs holds what the node logged, as JSON lines.
	logs *logBuffer
	// shutdown stops the node (server, engine, store); it also runs when
	// the test ends.
	shutdown func()
}

func newEnv(t *testing.T, backend string) *env {
	t.Helper()
	e := newNode(t, storetest.Config(t, backend), "test")
	if _, err := createAdmin(e); err != nil {
		t.Fatal(err)
	}
	e.signInAdmin()
	return e
}

func (e *env) signInAdmin() {
	var tok struct{ Token string }
	e.do("POST", "/api/v1/auth/sign-in", "", map[string]string{"email": "admin@example.com", "password": "admin-password"}, http.StatusOK, &tok)
	e.admin = tok.Token
}

// newNode starts one Plugboard node (store, engine, account service,
// HTTP API) on the database cfg names; each option may register test
// components. What the node logs is kept in env.logs.
func newNode(t *testing.T, cfg store.Config, nodeID string, opts ...func(*component.Registry)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	vlt, err := vault.Load(ctx, vault.Config{Key: testVaultKey, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	sysHooks, err := syswebhook.New(syswebhook.Config{Store: st, Vault: vlt, HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true}),
		InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sysHooks.SealStoredSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	// The server's URL is the webhook base, so the handler is set once the
	// listener exists.
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	installer := &connector.Installer{Store: st, Runtime: &connector.Runtime{
		HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true}), PollInterval: 100 * time.Millisecond}}
	accounts, err := account.New(account.Config{
		Store: st, Vault: vlt, HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true}), Logger: logger,
		ConnectorAuth: installer.AccountAuth, PublicURL: srv.URL, Events: sysHooks, AuditFlushInterval: 10 * time.Millisecond,
		ReturnOrigins: []string{"https://app.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	installer.Runtime.Accounts = accounts
	comps := component.NewRegistry()
	replies := engine.NewReplies(st)
	core.Register(comps, core.Deps{HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true}), MaxResponseBytes: 1 << 20, Replies: replies,
		Accounts: connector.StepAccounts(accounts)})
	for _, o := range opts {
		o(comps)
	}
	installer.Registry = comps
	eng, err := engine.New(ctx, engine.Config{
		Store: st, Registry: comps, Metrics: reg, NodeID: nodeID, Workers: 32, FetchPollInterval: 10 * time.Millisecond,
		SchedulePoll: 20 * time.Millisecond, Events: sysHooks, PublicURL: srv.URL, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	sysHooks.Register(eng)
	accounts.Register(eng)
	if err := installer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Config{Store: st, Engine: eng, Registry: comps, Metrics: reg, Gatherer: reg, PublicURL: srv.URL, Replies: replies,
		SystemWebhooks: sysHooks, Connectors: installer, Accounts: accounts, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	handler = a.Handler()
	a.SetReady(true)
	accountsCtx, stopAccounts := context.WithCancel(ctx)
	accounts.Start(accountsCtx)
	if err := eng.Start(ctx); err != nil {
		stopAccounts()
		t.Fatal(err)
	}
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			srv.Close()
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = eng.Stop(stopCtx)
			stopAccounts()
			_ = accounts.Close(stopCtx)
			_ = st.Close()
		})
	}
	t.Cleanup(shutdown)
	return &env{t: t, cfg: cfg, store: st, srv: srv, logs: logs, shutdown: shutdown}
}

// logBuffer collects a node's log lines; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// do sends a JSON request and checks the status; out, if not nil, receives
// the decoded answer.
func (e *env) do(method, path, token string, body any, wantStatus int, out any) []byte {
	e.t.Helper()
	return e.expect(e.send(method, path, token, body), wantStatus, out)
}

// send sends a JSON request (body encoded unless already []byte or a
// string) to path, on the node when it starts with '/', and returns the
// answer; the caller closes its body, or passes it to expect.
func (e *env) send(method, path, token string, body any) *http.Response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	url := path
	if path[0] == '/' {
		url = e.srv.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// expect reads and closes the answer's body, checks its status (and that
// errors are problem documents) and returns the body; out, if not nil,
// receives it decoded.
func (e *env) expect(resp *http.Response, wantStatus int, out any) []byte {
	e.t.Helper()
	defer resp.Body.Close()
	method, path := resp.Request.Method, resp.Request.URL.Path
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, wantStatus, data)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		e.t.Fatalf("%s %s: error answered with %q, want application/problem+json", method, path, resp.Header.Get("Content-Type"))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, data, err)
		}
	}
	return data
}

// user creates a user and returns its token.
func (e *env) user(email string) (id, token string) {
	e.t.Helper()
	var u struct{ ID string }
	e.do("POST", "/api/v1/users", e.admin, map[string]any{"email": email, "role": "user", "virtual": true}, http.StatusCreated, &u)
	var tok struct{ Token string }
	e.do("POST", "/api/v1/users/"+u.ID+"/tokens", e.admin, nil, http.StatusCreated, &tok)
	return u.ID, tok.Token
}

type flowResp struct {
	ID         string `json:"id"`
	Stage      string `json:"stage"`
	Components map[string]struct {
		WebhookURL string `json:"webhookUrl"`
	} `json:"components"`
}

// forwardFlow is the flow "webhook -> map fields -> call an HTTP API".
func forwardFlow(sinkURL string, maxAttempts int) map[string]any {
	return map[string]any{
		"name": "Forward signups",
		"components": map[string]any{
			"hook": map[string]any{"type": "core.Webhook", "properties": map[string]any{}},
			"map": map[string]any{"type": "core.Set", "properties": map[string]any{"values": map[string]any{
				"email": "{{ $.hook.body.user.email }}", "n": "{{ $.hook.body.n }}", "source": "web"}}},
			"call": map[string]any{"type": "core.HttpRequest",
				"properties": map[string]any{"method": "POST", "url": sinkURL, "body": "{{ $.map }}"},
				"retry":      map[string]any{"maxAttempts": maxAttempts, "initialInterval": "10ms", "maxInterval": "50ms"}},
		},
		"links": []map[string]any{{"from": "hook", "to": "map"}, {"from": "map", "to": "call"}},
	}
}

// startFlow creates and starts a flow, returning it.
func (e *env) startFlow(token string, doc any) flowResp {
	e.t.Helper()
	var f flowResp
	e.do("POST", "/api/v1/flows", token, doc, http.StatusCreated, &f)
	e.do("POST", "/api/v1/flows/"+f.ID, token, map[string]string{"command": "start"}, http.StatusOK, nil)
	return f
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func createAdmin(e *env) (*store.User, error) {
	return api.CreateUser(context.Background(), e.store, "admin@example.com", "admin-password", store.RoleAdmin, false)
}

package account_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/vault"
)

var (
	alice = account.Caller{UserID: "u-alice"}
	bob   = account.Caller{UserID: "u-bob"}
	admin = account.Caller{UserID: "u-admin", Admin: true}
)

// testKey is the vault key of every test (32 bytes).
var testKey = []byte("account-test-key-of-32-bytes-ok!")

// env is a service on a fresh database of one backend, logging JSON at
// debug level into logs.
type env struct {
	cfg  store.Config
	st   *store.Store
	svc  *account.Service
	logs *logBuffer
}

func newEnv(t testing.TB, backend string, tweak ...func(*account.Config)) *env {
	t.Helper()
	cfg := storetest.Config(t, backend)
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("opening %s store: %v", backend, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	v, err := vault.New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	c := account.Config{
		Store: st, Vault: v,
		HTTP:               outbound.NewClient(outbound.Options{AllowPrivate: true}),
		Logger:             slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AuditFlushInterval: 10 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&c)
	}
	svc, err := account.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	t.Cleanup(func() {
		cancel()
		_ = svc.Close(context.Background())
	})
	return &env{cfg: cfg, st: st, svc: svc, logs: logs}
}

// startEngine runs an engine that works the service's wait=false
// requests; call it when the test wants jobs to start running.
func (e *env) startEngine(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Config{Store: e.st, Registry: component.NewRegistry(), NodeID: "n", Workers: 4,
		FetchPollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Register(eng)
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Stop(stopCtx)
	})
}

// create makes an account of c and fails the test on error.
func (e *env) create(t testing.TB, c account.Caller, in account.Input) *account.View {
	t.Helper()
	v, err := e.svc.Create(context.Background(), c, in)
	if err != nil {
		t.Fatalf("Create(%s): %v", in.Name, err)
	}
	return v
}

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// seen is a request as the fake API received it.
type seen struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
}

// api is a fake third-party API that records what it receives and
// answers with h (by default a JSON echo of the request).
type api struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	reqs []seen
}

func newAPI(t testing.TB, h http.HandlerFunc) *api {
	t.Helper()
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		s := seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: string(body)}
		a.mu.Lock()
		a.reqs = append(a.reqs, s)
		a.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"method": s.Method, "path": s.Path, "body": s.Body})
	}))
	t.Cleanup(a.Close)
	return a
}

// last returns the last request the API received.
func (a *api) last(t testing.TB) seen {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		t.Fatal("the API received no request")
	}
	return a.reqs[len(a.reqs)-1]
}

// requests returns every request the API received, oldest first.
func (a *api) requests() []seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seen(nil), a.reqs...)
}

// eventually polls cond until it holds or 10 seconds pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// inputField returns the field of the first problem of an *InputError,
// or "" when err is none.
func inputField(err error) string {
	ie, ok := errors.AsType[*account.InputError](err)
	if !ok || len(ie.Problems) == 0 {
		return ""
	}
	return ie.Problems[0].Field
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

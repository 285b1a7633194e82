package syswebhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/syswebhook"
)

func TestSign(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	body := []byte(`{"type":"FLOW_STOPPED"}`)
	got, err := syswebhook.Sign(secret, "msg_1", 1700000000, body)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("msg_1.1700000000." + string(body)))
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if _, err := syswebhook.Sign("whsec_%%%", "msg_1", 1, body); err == nil {
		t.Fatal("Sign accepted a secret that is not base64")
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, err := syswebhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := syswebhook.NewSecret()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) < 24 || a == b {
		t.Fatalf("secrets %q and %q", a, b)
	}
}

// node is a store, an engine and a service on a fresh database.
type node struct {
	st  *store.Store
	svc *syswebhook.Service
}

func newNode(t *testing.T, backend string) *node {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, backend)
	svc, err := syswebhook.New(syswebhook.Config{
		Store: st, HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true}),
		InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Store: st, Registry: component.NewRegistry(), NodeID: "n", Workers: 4,
		FetchPollInterval: 5 * time.Millisecond, Events: svc})
	if err != nil {
		t.Fatal(err)
	}
	svc.Register(eng)
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Stop(stopCtx)
	})
	return &node{st: st, svc: svc}
}

func TestSubscribeValidates(t *testing.T) {
	t.Parallel()
	n := newNode(t, store.BackendSQLite)
	for _, tc := range []struct {
		event, url string
		ok         bool
	}{
		{"FLOW_STOPPED", "https://example.com/hook", true},
		{"*", "http://127.0.0.1:9/x", true},
		{"MESSAGE_UNPROCESSED", "https://example.com", true},
		{"flow_stopped", "https://example.com/hook", false},
		{"", "https://example.com/hook", false},
		{"COMPONENT_ERROR", "example.com/hook", false},
		{"COMPONENT_ERROR", "ftp://example.com/hook", false},
		{"COMPONENT_ERROR", "https://user:pw@example.com/hook", false},
		{"COMPONENT_ERROR", "https:///path", false},
	} {
		sub, err := n.svc.Subscribe(context.Background(), tc.event, tc.url)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, syswebhook.ErrInvalid)) {
			t.Errorf("Subscribe(%q, %q) = %v", tc.event, tc.url, err)
		}
		if err == nil && (!strings.HasPrefix(sub.Secret, "whsec_") || sub.ID == "") {
			t.Errorf("Subscribe(%q, %q) = %+v", tc.event, tc.url, sub)
		}
	}
}

// TestEmitIsTransactional: an event exists exactly when the transaction
// that emitted it commits, and only matching subscriptions get it.
func TestEmitIsTransactional(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			n := newNode(t, backend)
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got = append(got, string(b))
				mu.Unlock()
			}))
			t.Cleanup(srv.Close)
			all, err := n.svc.Subscribe(ctx, "*", srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.svc.Subscribe(ctx, engine.EventFlowStopped, srv.URL); err != nil {
				t.Fatal(err)
			}
			errRollback := errors.New("rolled back")
			err = n.st.InTx(ctx, func(tx *store.Tx) error {
				if err := n.svc.Emit(ctx, tx, engine.EventComponentError, map[string]any{"n": "rolled back"}); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
			err = n.st.Submit(ctx, func(tx *store.Tx) error {
				return n.svc.Emit(ctx, tx, engine.EventComponentError, map[string]any{"n": "committed"})
			})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				ds, err := n.svc.Deliveries(ctx, all.ID, "", 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) == 1 && ds[0].Status == store.DeliveryDelivered {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("deliveries = %+v", ds)
				}
				time.Sleep(5 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || !strings.Contains(got[0], `"committed"`) || !strings.Contains(got[0], `"type":"COMPONENT_ERROR"`) {
				t.Fatalf("received %q", got)
			}
		})
	}
}

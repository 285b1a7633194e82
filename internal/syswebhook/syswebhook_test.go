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
	"github.com/plugboard/plugboard/internal/vault"
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

// node is a store, a vault, an engine and a service on a fresh database.
type node struct {
	st    *store.Store
	vault *vault.Vault
	svc   *syswebhook.Service
}

func newNode(t *testing.T, backend string) *node {
	t.Helper()
	return startNode(t, storetest.Open(t, backend))
}

// startNode starts a node on st as serve does: the vault checks its key,
// secrets stored in clear are sealed, then the engine starts.
func startNode(t *testing.T, st *store.Store) *node {
	t.Helper()
	ctx := context.Background()
	v, err := vault.Load(ctx, vault.Config{Key: []byte("syswebhook-test-key-of-32-bytes!"), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := syswebhook.New(syswebhook.Config{
		Store: st, Vault: v, HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true}),
		InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SealStoredSecrets(ctx); err != nil {
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
	return &node{st: st, vault: v, svc: svc}
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
		sub, secret, err := n.svc.Subscribe(context.Background(), tc.event, tc.url)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, syswebhook.ErrInvalid)) {
			t.Errorf("Subscribe(%q, %q) = %v", tc.event, tc.url, err)
		}
		if err == nil && (!strings.HasPrefix(secret, "whsec_") || sub.ID == "" || strings.Contains(sub.Secret, "whsec_")) {
			t.Errorf("Subscribe(%q, %q) = %+v, %q", tc.event, tc.url, sub, secret)
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
			all, _, err := n.svc.Subscribe(ctx, "*", srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := n.svc.Subscribe(ctx, engine.EventFlowStopped, srv.URL); err != nil {
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

// receiver records the deliveries it gets and whether their signature is
// right for secret (computed here, not with syswebhook.Sign).
type receiver struct {
	srv *httptest.Server

	mu        sync.Mutex
	good, bad int
	secrets   map[string]string // path -> secret
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{secrets: map[string]string{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(rc.secrets[r.URL.Path], "whsec_"))
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
		if err != nil || len(key) == 0 || r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			rc.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rc.good++
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// expect makes path answer 2xx only to deliveries signed with secret.
func (rc *receiver) expect(path, secret string) string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets[path] = secret
	return rc.srv.URL + path
}

func (rc *receiver) counts() (good, bad int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.good, rc.bad
}

// TestSecretsSealedAtRest: the stored secret is sealed for its own row;
// the plaintext is only in Subscribe's answer, and deliveries are signed
// with it.
func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			n := newNode(t, backend)
			rc := newReceiver(t)
			a, secretA, err := n.svc.Subscribe(ctx, engine.EventFlowStopped, rc.srv.URL+"/a")
			if err != nil {
				t.Fatal(err)
			}
			rc.expect("/a", secretA)
			b, _, err := n.svc.Subscribe(ctx, engine.EventFlowStopped, rc.srv.URL+"/b")
			if err != nil {
				t.Fatal(err)
			}
			stored, err := n.st.SystemWebhook(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			keyPart := strings.TrimPrefix(secretA, "whsec_")
			if !strings.HasPrefix(stored.Secret, "v1:") || strings.Contains(stored.Secret, keyPart) || stored.Secret != a.Secret {
				t.Fatalf("stored secret %q (secret %q)", stored.Secret, secretA)
			}
			if got, err := n.vault.Open(stored.Secret, []byte(a.ID)); err != nil || string(got) != secretA {
				t.Fatalf("opening the stored secret: %q, %v", got, err)
			}
			if _, err := n.vault.Open(stored.Secret, []byte(b.ID)); !errors.Is(err, vault.ErrNotAuthentic) {
				t.Fatalf("opening a's secret for b: %v", err)
			}

			if err := n.st.Submit(ctx, func(tx *store.Tx) error {
				return n.svc.Emit(ctx, tx, engine.EventFlowStopped, map[string]any{"flowId": "f"})
			}); err != nil {
				t.Fatal(err)
			}
			waitDelivered(t, n, a.ID, store.DeliveryDelivered)
			// b's receiver knows no secret: its delivery is refused (401), so
			// it fails at once, which shows a refused signature is seen.
			waitDelivered(t, n, b.ID, store.DeliveryFailed)
			if good, bad := rc.counts(); good != 1 || bad != 1 {
				t.Fatalf("receiver: %d well signed, %d badly signed, want 1 and 1", good, bad)
			}
		})
	}
}

// TestSealStoredSecrets: secrets stored in clear by a version before
// encryption at rest are sealed when a node starts, in place, and
// deliveries are still signed with them.
func TestSealStoredSecrets(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			rc := newReceiver(t)
			// What the previous version stored: the secret in clear.
			var old []*store.SystemWebhook
			for _, path := range []string{"/one", "/two"} {
				secret, err := syswebhook.NewSecret()
				if err != nil {
					t.Fatal(err)
				}
				w := &store.SystemWebhook{ID: "old" + path[1:], Event: "*", URL: rc.expect(path, secret), Secret: secret}
				if err := st.CreateSystemWebhook(ctx, w); err != nil {
					t.Fatal(err)
				}
				old = append(old, w)
			}
			n := startNode(t, st)
			if again, err := n.svc.SealStoredSecrets(ctx); err != nil || again != 0 {
				t.Fatalf("sealing again: %d, %v", again, err)
			}
			for _, w := range old {
				stored, err := st.SystemWebhook(ctx, w.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !vault.IsSealed(stored.Secret) || strings.Contains(stored.Secret, strings.TrimPrefix(w.Secret, "whsec_")) {
					t.Fatalf("stored secret of %s = %q", w.ID, stored.Secret)
				}
				if got, err := n.vault.Open(stored.Secret, []byte(w.ID)); err != nil || string(got) != w.Secret {
					t.Fatalf("opening the secret of %s: %q, %v", w.ID, got, err)
				}
			}
			if err := n.st.Submit(ctx, func(tx *store.Tx) error {
				return n.svc.Emit(ctx, tx, engine.EventComponentError, map[string]any{"flowId": "f"})
			}); err != nil {
				t.Fatal(err)
			}
			for _, w := range old {
				waitDelivered(t, n, w.ID, store.DeliveryDelivered)
			}
			if good, bad := rc.counts(); good != 2 || bad != 0 {
				t.Fatalf("receiver: %d well signed, %d badly signed, want 2 and 0", good, bad)
			}
		})
	}
}

// waitDelivered waits until subscription id's only delivery has status.
func waitDelivered(t *testing.T, n *node, id, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, err := n.svc.Deliveries(context.Background(), id, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s = %+v, want one %s", id, ds, status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

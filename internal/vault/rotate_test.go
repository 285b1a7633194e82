package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/vault"
)

var keyC = bytes.Repeat([]byte{0xc3}, vault.KeySize)

// secrets is a database's sealed values, as a rotation must keep them:
// where they are and what they hold in clear.
type secrets struct {
	hooks    map[string]string // system webhook id → signing secret
	accounts map[string]string // account id → secret JSON
	clients  map[string]string // connector → client secret
}

// seed stores system webhooks, accounts (one revoked, without a secret)
// and an OAuth2 client, their secrets sealed by v.
func seed(t *testing.T, st *store.Store, v *vault.Vault) secrets {
	t.Helper()
	ctx := context.Background()
	s := secrets{hooks: map[string]string{}, accounts: map[string]string{}, clients: map[string]string{}}
	for i := range 3 {
		id, secret := fmt.Sprintf("wh-%d", i), fmt.Sprintf("whsec_hook%d", i)
		w := &store.SystemWebhook{ID: id, Event: "*", URL: "https://hooks.example.com", Secret: v.Seal([]byte(secret), []byte(id))}
		if err := st.CreateSystemWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
		s.hooks[id] = secret
	}
	for i := range 3 {
		id, secret := fmt.Sprintf("acc-%d", i), fmt.Sprintf(`{"token":"tok-%d"}`, i)
		a := &store.Account{ID: id, OwnerID: "user-1", Name: id, AuthType: "token", Domain: "https://api.example.com",
			Secret: v.Seal([]byte(secret), []byte(id)), Hint: "…" + id[len(id)-1:]}
		if err := st.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		s.accounts[id] = secret
	}
	if err := st.RevokeAccount(ctx, "acc-2", "revoked by its owner"); err != nil {
		t.Fatal(err)
	}
	delete(s.accounts, "acc-2")
	if err := st.SetOAuthClient(ctx, &store.OAuthClient{Connector: "acme", ClientID: "client-1",
		ClientSecret: v.Seal([]byte("client-secret-1"), []byte("acme"))}); err != nil {
		t.Fatal(err)
	}
	s.clients["acme"] = "client-secret-1"
	return s
}

// stored returns the sealed values as the database holds them.
func (s secrets) stored(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for id := range s.hooks {
		w, err := st.SystemWebhook(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		out["system_webhooks/"+id] = w.Secret
	}
	for id := range s.accounts {
		a, err := st.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		out["accounts/"+id] = a.Secret
	}
	for name := range s.clients {
		c, err := st.OAuthClient(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		out["oauth_clients/"+name] = c.ClientSecret
	}
	return out
}

// open checks that v alone opens every value with what it held.
func (s secrets) open(t *testing.T, st *store.Store, v *vault.Vault) {
	t.Helper()
	want := map[string]string{}
	for id, p := range s.hooks {
		want["system_webhooks/"+id] = p
	}
	for id, p := range s.accounts {
		want["accounts/"+id] = p
	}
	for name, p := range s.clients {
		want["oauth_clients/"+name] = p
	}
	for where, sealed := range s.stored(t, st) {
		_, ad, _ := strings.Cut(where, "/")
		plain, err := v.Open(sealed, []byte(ad))
		if err != nil || string(plain) != want[where] {
			t.Errorf("%s opens with key %s as %q, %v; want %q", where, v.CurrentKeyID(), plain, err, want[where])
		}
	}
}

// TestRotate: every sealed value moves from key A to key B and the check
// value follows, so that key B alone opens everything and key A alone no
// longer starts; a rerun changes nothing.
func TestRotate(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			vA, err := vault.Load(ctx, vault.Config{Key: keyA, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			s := seed(t, st, vA)

			rep, err := vault.Rotate(ctx, st, vA, keyB)
			if err != nil {
				t.Fatal(err)
			}
			if rep.From != vault.KeyID(keyA) || rep.To != vault.KeyID(keyB) || !rep.CheckReplaced {
				t.Errorf("report %+v", rep)
			}
			counts := map[string]int{}
			for _, c := range rep.Columns {
				counts[c.Table+"."+c.Column] = c.Resealed
			}
			want := map[string]int{"system_webhooks.secret": 3, "accounts.secret": 2, "oauth_states.verifier": 0, "oauth_clients.client_secret": 1}
			if fmt.Sprint(counts) != fmt.Sprint(want) || rep.Resealed() != 6 {
				t.Errorf("re-sealed %v (%d in all), want %v", counts, rep.Resealed(), want)
			}
			vB := mustNew(t, keyB)
			s.open(t, st, vB)
			check, err := st.VaultCheck(ctx)
			if err != nil || !strings.HasPrefix(check, "v1:"+vault.KeyID(keyB)+":") {
				t.Fatalf("check value %q, %v", check, err)
			}
			if _, err := vault.Load(ctx, vault.Config{Key: keyB, Store: st}); err != nil {
				t.Fatalf("start with the new key alone: %v", err)
			}

			// A rerun (as after a crash once everything was done) finds
			// nothing to do.
			before := s.stored(t, st)
			rep, err = vault.Rotate(ctx, st, mustNew(t, keyA), keyB)
			if err != nil || rep.Resealed() != 0 || rep.CheckReplaced {
				t.Fatalf("rerun: %+v, %v", rep, err)
			}
			if after := s.stored(t, st); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("a rerun changed the values:\n%v\n%v", before, after)
			}
			if got, _ := st.VaultCheck(ctx); got != check {
				t.Error("a rerun changed the check value")
			}
			// The check value is replaced only over the one read.
			if ok, err := st.ReplaceVaultCheck(ctx, "v1:"+vault.KeyID(keyA)+":stale", "v1:"+vault.KeyID(keyC)+":x"); ok || err != nil {
				t.Errorf("replacing a check value that is not the stored one: %v, %v", ok, err)
			}
			if got, _ := st.VaultCheck(ctx); got != check {
				t.Error("a stale replace changed the check value")
			}

			// A node with the old key alone refuses to start.
			_, err = vault.Load(ctx, vault.Config{Key: keyA, Store: st})
			if !errors.Is(err, vault.ErrWrongKey) || !strings.Contains(err.Error(), vault.KeyID(keyB)) {
				t.Fatalf("start with the old key alone: %v", err)
			}
			// One with the new key and the old one as older starts.
			if _, err := vault.Load(ctx, vault.Config{Key: keyB, OldKeys: [][]byte{keyA}, Store: st}); err != nil {
				t.Fatalf("start with the new key and the old one: %v", err)
			}
		})
	}
}

// TestRotateResumes: a rotation interrupted half-way (some values under
// the new key, the check value under the old one) leaves nodes with both
// keys working, and a rerun re-seals only what is left.
func TestRotateResumes(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			vA, err := vault.Load(ctx, vault.Config{Key: keyA, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			s := seed(t, st, vA)
			// The interrupted run re-sealed the accounts only.
			vB := mustNew(t, keyB, keyA)
			accounts := store.SealedColumn{Table: "accounts", KeyColumn: "id", Column: "secret"}
			n, err := st.ResealColumn(ctx, accounts, func(key, sealed string) (string, error) {
				plain, err := vB.Open(sealed, []byte(key))
				return vB.Seal(plain, []byte(key)), err
			})
			if err != nil || n != 2 {
				t.Fatalf("sealing the accounts with key B: %d, %v", n, err)
			}

			// A node started with the new key and the old one works, and
			// says the rotation is unfinished.
			var logs bytes.Buffer
			v, err := vault.Load(ctx, vault.Config{Key: keyB, OldKeys: [][]byte{keyA}, Store: st, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "rotation is unfinished") || !strings.Contains(logs.String(), vault.KeyID(keyA)) ||
				strings.Contains(logs.String(), vault.EncodeKey(keyA)) || strings.Contains(logs.String(), vault.EncodeKey(keyB)) {
				t.Errorf("log: %s", logs.String())
			}
			s.open(t, st, v)

			rep, err := vault.Rotate(ctx, st, vA, keyB)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Resealed() != 4 || !rep.CheckReplaced {
				t.Errorf("the rerun: %+v, want 4 values (3 webhooks, 1 client) and the check value", rep)
			}
			s.open(t, st, mustNew(t, keyB))
		})
	}
}

// TestRotateStopsOnBadValue: a value that does not open stops the
// rotation with an error naming its table, row and key id (never the
// value), and leaves the check value to the old key; with the missing key
// given as an older one, the rerun finishes.
func TestRotateStopsOnBadValue(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			vA, err := vault.Load(ctx, vault.Config{Key: keyA, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			s := seed(t, st, vA)
			vC := mustNew(t, keyC)
			stray := &store.Account{ID: "acc-stray", OwnerID: "user-1", Name: "stray", AuthType: "token", Domain: "https://api.example.com",
				Secret: vC.Seal([]byte(`{"token":"stray-token"}`), []byte("acc-stray"))}
			if err := st.CreateAccount(ctx, stray); err != nil {
				t.Fatal(err)
			}
			check, _ := st.VaultCheck(ctx)

			_, err = vault.Rotate(ctx, st, vA, keyB)
			if !errors.Is(err, vault.ErrUnknownKey) {
				t.Fatalf("Rotate = %v, want ErrUnknownKey", err)
			}
			for _, want := range []string{"accounts", "acc-stray", vault.KeyID(keyC), vault.EnvOldKeys} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			for _, secret := range []string{"stray-token", stray.Secret, vault.EncodeKey(keyA), vault.EncodeKey(keyB), vault.EncodeKey(keyC)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows a secret", err)
				}
			}
			if got, _ := st.VaultCheck(ctx); got != check {
				t.Fatal("a failed rotation replaced the check value")
			}
			if _, err := vault.Load(ctx, vault.Config{Key: keyA, Store: st}); err != nil {
				t.Fatalf("the old key no longer starts after a failed rotation: %v", err)
			}

			// With key C among the older keys, the rotation finishes.
			s.accounts["acc-stray"] = `{"token":"stray-token"}`
			if _, err := vault.Rotate(ctx, st, mustNew(t, keyA, keyC), keyB); err != nil {
				t.Fatal(err)
			}
			s.open(t, st, mustNew(t, keyB))

			// A value that is no sealed value at all (a secret stored in
			// clear) is named too, and not shown.
			if err := st.CreateSystemWebhook(ctx, &store.SystemWebhook{ID: "wh-clear", Event: "*", URL: "https://hooks.example.com", Secret: "whsec_in_clear"}); err != nil {
				t.Fatal(err)
			}
			_, err = vault.Rotate(ctx, st, mustNew(t, keyB), keyA)
			if !errors.Is(err, vault.ErrMalformed) || !strings.Contains(err.Error(), "system_webhooks") ||
				!strings.Contains(err.Error(), "wh-clear") || strings.Contains(err.Error(), "whsec_in_clear") {
				t.Fatalf("Rotate over a value in clear = %v", err)
			}
		})
	}
}

// TestRotateRefusesOtherDatabase: keys that do not open the database's
// check value re-seal nothing.
func TestRotateRefusesOtherDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.Open(t, store.BackendSQLite)
	vA, err := vault.Load(ctx, vault.Config{Key: keyA, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	s := seed(t, st, vA)
	before := s.stored(t, st)
	_, err = vault.Rotate(ctx, st, mustNew(t, keyC), keyB)
	if !errors.Is(err, vault.ErrWrongKey) || !strings.Contains(err.Error(), vault.KeyID(keyC)) {
		t.Fatalf("Rotate with another database's key = %v", err)
	}
	if after := s.stored(t, st); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("a refused rotation changed values")
	}
}

// TestKeyFileRotation: the next key file is written before anything is
// sealed with it and kept over a rerun; promoting it keeps the old key
// beside it, and a node started from the key files opens values sealed
// with either key.
func TestKeyFileRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := storetest.Config(t, store.BackendSQLite)
	dir := cfg.DataDir
	st := openStore(t, cfg)
	vA, err := vault.Load(ctx, vault.Config{DataDir: dir, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := vault.LoadKeyFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealedOld := vA.Seal([]byte("whsec_old"), []byte("id"))

	if k, resumed, err := vault.StageKeyFile(dir, nil); k != nil || resumed || err != nil {
		t.Fatalf("looking for a next key file in a fresh directory: %v %v", resumed, err)
	}
	k, resumed, err := vault.StageKeyFile(dir, keyB)
	if err != nil || resumed || !bytes.Equal(k, keyB) {
		t.Fatalf("staging: %v %v", resumed, err)
	}
	// An interrupted rotation: the rerun gets the key staged first.
	k, resumed, err = vault.StageKeyFile(dir, keyC)
	if err != nil || !resumed || !bytes.Equal(k, keyB) {
		t.Fatalf("staging again: key %s, resumed %v, %v", vault.KeyID(k), resumed, err)
	}
	if _, err := vault.Rotate(ctx, st, mustNew(t, old, keyB), keyB); err != nil {
		t.Fatal(err)
	}
	// Before the key files are swapped, the node with the old key file
	// is told where the right key is.
	_, err = vault.Load(ctx, vault.Config{DataDir: dir, Store: st})
	if !errors.Is(err, vault.ErrWrongKey) || !strings.Contains(err.Error(), "rotation was interrupted") ||
		!strings.Contains(err.Error(), vault.NextKeyFileName) {
		t.Fatalf("start between the rotation and the key file swap: %v", err)
	}

	if err := vault.PromoteKeyFile(dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{vault.KeyFileName: keyB, vault.OldKeyFileName: old} {
		path := filepath.Join(dir, name)
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := vault.ParseKey(string(text)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s holds the key of id %s, want %s (%v)", name, vault.KeyID(got), vault.KeyID(want), err)
		}
		if fi, err := os.Stat(path); runtime.GOOS != "windows" && (err != nil || fi.Mode().Perm() != 0o600) {
			t.Errorf("%s: mode %v, %v; want 0600", name, fi.Mode(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, vault.NextKeyFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the next key file is still there: %v", err)
	}
	v, err := vault.Load(ctx, vault.Config{DataDir: dir, Store: st})
	if err != nil || v.CurrentKeyID() != vault.KeyID(keyB) {
		t.Fatalf("start with the new key file: %v", err)
	}
	if plain, err := v.Open(sealedOld, []byte("id")); err != nil || string(plain) != "whsec_old" {
		t.Errorf("a value sealed with the old key: %q, %v", plain, err)
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	keys, err := vault.ParseKeys(" " + vault.EncodeKey(keyA) + ",," + vault.EncodeKey(keyB) + " ,")
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], keyA) || !bytes.Equal(keys[1], keyB) {
		t.Fatalf("ParseKeys: %d keys, %v", len(keys), err)
	}
	if keys, err := vault.ParseKeys(""); err != nil || len(keys) != 0 {
		t.Fatalf("ParseKeys(\"\") = %d keys, %v", len(keys), err)
	}
	bad := vault.EncodeKey(keyA)[:20]
	_, err = vault.ParseKeys(vault.EncodeKey(keyA) + "," + bad)
	if err == nil || !strings.Contains(err.Error(), "key 2 of 2") || strings.Contains(err.Error(), bad) ||
		strings.Contains(err.Error(), vault.EncodeKey(keyA)) {
		t.Fatalf("ParseKeys with a bad key = %v", err)
	}
}

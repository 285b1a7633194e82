package vault_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/vault"
)

func openStore(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestLoadChecksKey: the first start writes the key check value; a start
// with the same key passes, one with another key fails with a message
// naming both keys, and one that also holds the old key (a rotation under
// way) passes.
func TestLoadChecksKey(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			cfg := storetest.Config(t, backend)
			st := openStore(t, cfg)
			if _, err := st.VaultCheck(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a fresh database has a check value: %v", err)
			}
			if _, err := vault.Load(ctx, vault.Config{Key: keyA, Store: st}); err != nil {
				t.Fatal(err)
			}
			check, err := st.VaultCheck(ctx)
			if err != nil || !strings.HasPrefix(check, "v1:"+vault.KeyID(keyA)+":") {
				t.Fatalf("check value %q, %v", check, err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			// A restart with the same key.
			st = openStore(t, cfg)
			v, err := vault.Load(ctx, vault.Config{Key: keyA, Store: st})
			if err != nil {
				t.Fatalf("restart with the same key: %v", err)
			}
			if got, _ := st.VaultCheck(ctx); got != check {
				t.Fatalf("the check value changed from %q to %q", check, got)
			}
			sealed := v.Seal([]byte("whsec_x"), []byte("id"))

			// Another key fails, and says why.
			_, err = vault.Load(ctx, vault.Config{Key: keyB, Store: st})
			if !errors.Is(err, vault.ErrWrongKey) {
				t.Fatalf("Load with another key = %v, want ErrWrongKey", err)
			}
			for _, want := range []string{vault.KeyID(keyA), vault.KeyID(keyB), "PLUGBOARD_SECRET_KEY", "every node of one database must use the same key"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), vault.EncodeKey(keyA)) || strings.Contains(err.Error(), vault.EncodeKey(keyB)) {
				t.Errorf("error %q shows a key", err)
			}

			// A rotation under way: the new key seals, the old one still opens.
			v2, err := vault.Load(ctx, vault.Config{Key: keyB, OldKeys: [][]byte{keyA}, Store: st})
			if err != nil {
				t.Fatalf("Load with the old key among older keys: %v", err)
			}
			if got, err := v2.Open(sealed, []byte("id")); err != nil || string(got) != "whsec_x" {
				t.Fatalf("opening a value of the old key: %q, %v", got, err)
			}
		})
	}
}

// TestNodesShareKey: on PostgreSQL a second node with its own key file (no
// PLUGBOARD_SECRET_KEY) refuses to start, and of two nodes starting at
// once on a fresh database with different keys, exactly one starts.
func TestNodesShareKey(t *testing.T) {
	t.Parallel()
	if !strings.Contains(strings.Join(storetest.Backends(), ","), store.BackendPostgres) {
		t.Skip(storetest.EnvPostgres + " is not set")
	}
	ctx := context.Background()
	cfg := storetest.Config(t, store.BackendPostgres)
	a, b := openStore(t, cfg), openStore(t, cfg)
	if _, err := vault.Load(ctx, vault.Config{DataDir: t.TempDir(), Store: a}); err != nil {
		t.Fatal(err)
	}
	dirB := t.TempDir()
	_, err := vault.Load(ctx, vault.Config{DataDir: dirB, Store: b})
	if !errors.Is(err, vault.ErrWrongKey) || !strings.Contains(err.Error(), filepath.Join(dirB, vault.KeyFileName)) ||
		!strings.Contains(err.Error(), "set PLUGBOARD_SECRET_KEY") {
		t.Fatalf("second node with its own key file: %v", err)
	}

	cfg = storetest.Config(t, store.BackendPostgres)
	stores := []*store.Store{openStore(t, cfg), openStore(t, cfg)}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, k := range [][]byte{keyA, keyB} {
		wg.Go(func() { _, errs[i] = vault.Load(ctx, vault.Config{Key: k, Store: stores[i]}) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), vault.ErrWrongKey) {
		t.Fatalf("two nodes with different keys starting at once: %v", errs)
	}
}

// TestLoadKeyFile: without PLUGBOARD_SECRET_KEY the first start creates
// the key file (and says to back it up) and later starts use it; a lost
// key file gets the wrong-key error, not a fresh start.
func TestLoadKeyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := storetest.Config(t, store.BackendSQLite)
	st := openStore(t, cfg)
	var logs bytes.Buffer
	v, err := vault.Load(ctx, vault.Config{DataDir: cfg.DataDir, Store: st, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, vault.KeyFileName)
	k, _, err := vault.LoadKeyFile(cfg.DataDir)
	if err != nil || vault.KeyID(k) != v.CurrentKeyID() {
		t.Fatalf("key file: %v (key %s, vault %s)", err, vault.KeyID(k), v.CurrentKeyID())
	}
	if !strings.Contains(logs.String(), "back it up") || !strings.Contains(logs.String(), path) || strings.Contains(logs.String(), vault.EncodeKey(k)) {
		t.Fatalf("log: %s", logs.String())
	}
	if v, err := vault.Load(ctx, vault.Config{DataDir: cfg.DataDir, Store: st}); err != nil || v.CurrentKeyID() != vault.KeyID(k) {
		t.Fatalf("second start: %v", err)
	}

	// PLUGBOARD_SECRET_KEY set to another key: the error points at the file.
	_, err = vault.Load(ctx, vault.Config{Key: keyB, DataDir: cfg.DataDir, Store: st})
	if !errors.Is(err, vault.ErrWrongKey) || !strings.Contains(err.Error(), "the key file "+path+" holds it") {
		t.Fatalf("another key in PLUGBOARD_SECRET_KEY: %v", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err = vault.Load(ctx, vault.Config{DataDir: cfg.DataDir, Store: st})
	if !errors.Is(err, vault.ErrWrongKey) || !strings.Contains(err.Error(), "put back the key file from your backup") ||
		!strings.Contains(err.Error(), vault.KeyID(k)) {
		t.Fatalf("start after losing the key file: %v", err)
	}
}

func TestLoadRefusesLooseKeyFile(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits on Windows")
	}
	cfg := storetest.Config(t, store.BackendSQLite)
	st := openStore(t, cfg)
	path := filepath.Join(cfg.DataDir, vault.KeyFileName)
	if err := os.WriteFile(path, []byte(vault.EncodeKey(keyA)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Load(context.Background(), vault.Config{DataDir: cfg.DataDir, Store: st}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Load with a world-readable key file = %v", err)
	}
	if _, err := st.VaultCheck(context.Background()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused start wrote the check value: %v", err)
	}
}

// TestLoadHintDefaultDataDir: with DataDir empty, the wrong-key hint looks
// for the key file in the default data directory, where Load keeps it.
// Not parallel: it changes the working directory.
func TestLoadHintDefaultDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx := context.Background()
	st := openStore(t, storetest.Config(t, store.BackendSQLite))
	if _, err := vault.Load(ctx, vault.Config{Store: st}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("data", vault.KeyFileName)
	_, err := vault.Load(ctx, vault.Config{Key: keyB, Store: st})
	if !errors.Is(err, vault.ErrWrongKey) || !strings.Contains(err.Error(), "the key file "+path+" holds it") {
		t.Fatalf("a node with another key: %v", err)
	}
}

// TestLoadNoCreate: with NoCreate, a missing key file is the wrong-key
// error, and none is created.
func TestLoadNoCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t, storetest.Config(t, store.BackendSQLite))
	if _, err := vault.Load(ctx, vault.Config{DataDir: t.TempDir(), Store: st}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err := vault.Load(ctx, vault.Config{DataDir: dir, NoCreate: true, Store: st})
	if !errors.Is(err, vault.ErrWrongKey) || !strings.Contains(err.Error(), "no key file") {
		t.Fatalf("Load without a key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, vault.KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load with NoCreate created a key file: %v", err)
	}
}

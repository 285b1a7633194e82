package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/vault"
)

// runPlugboard runs the binary with args and only the PLUGBOARD_*
// variables given, and returns its output.
func runPlugboard(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PLUGBOARD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// withStore opens the SQLite database of dir while no server runs.
func withStore(t *testing.T, dir string, fn func(*store.Store)) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fn(st)
}

// readKey reads a key file.
func readKey(t *testing.T, path string) []byte {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := vault.ParseKey(string(text))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// opensWith checks that the stored secret of system webhook id opens
// with key alone and holds want.
func opensWith(t *testing.T, dir, id string, key []byte, want string) {
	t.Helper()
	v, err := vault.New(key)
	if err != nil {
		t.Fatal(err)
	}
	withStore(t, dir, func(st *store.Store) {
		w, err := st.SystemWebhook(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if plain, err := v.Open(w.Secret, []byte(id)); err != nil || string(plain) != want {
			t.Errorf("the secret of %s does not open with the key of id %s: %v", id, vault.KeyID(key), err)
		}
	})
}

// TestVaultRotateKeyFile rotates the key of a server in key-file mode: the
// command refuses while the server runs, then replaces the key file and
// keeps the old one; the server starts with the new key file and opens the
// secrets, and the old key alone no longer starts it.
func TestVaultRotateKeyFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	dataDir := "PLUGBOARD_DATA_DIR=" + dir
	srv := startServer(t, bin, addr, dataDir)
	base := "http://" + addr
	var hook struct{ ID, Secret string }
	postJSON(t, base+"/api/v1/system-webhooks", signIn(t, base), map[string]string{"event": "*", "url": "https://hooks.example.com/in"}, 201, &hook)
	keyPath := filepath.Join(dir, vault.KeyFileName)
	oldKey := readKey(t, keyPath)

	_, stderr, err := runPlugboard(t, bin, []string{dataDir}, "vault", "rotate", "--new-key")
	if err == nil || !strings.Contains(stderr, "in use by another plugboard process") {
		t.Fatalf("rotate while the server runs: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, vault.NextKeyFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused rotation staged a key: %v", err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-srv.exited

	stdout, stderr, err := runPlugboard(t, bin, []string{dataDir}, "vault", "rotate", "--new-key")
	if err != nil {
		t.Fatalf("rotate: %v\n%s%s", err, stdout, stderr)
	}
	newKey := readKey(t, keyPath)
	if bytes.Equal(newKey, oldKey) {
		t.Fatal("the key file still holds the old key")
	}
	if !strings.Contains(stdout, "to id "+vault.KeyID(newKey)) || !strings.Contains(stdout, "system_webhooks.secret 1") ||
		strings.Contains(stdout+stderr, vault.EncodeKey(newKey)) || strings.Contains(stdout+stderr, vault.EncodeKey(oldKey)) {
		t.Errorf("rotate said:\n%s%s", stdout, stderr)
	}
	if got := readKey(t, filepath.Join(dir, vault.OldKeyFileName)); !bytes.Equal(got, oldKey) {
		t.Errorf("%s holds the key of id %s, want the old one %s", vault.OldKeyFileName, vault.KeyID(got), vault.KeyID(oldKey))
	}
	for _, name := range []string{vault.KeyFileName, vault.OldKeyFileName} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", name, fi.Mode(), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, vault.NextKeyFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is left: %v", vault.NextKeyFileName, err)
	}
	opensWith(t, dir, hook.ID, newKey, hook.Secret)

	// The old key alone fails start-up at once, naming both key ids.
	_, stderr, err = runPlugboard(t, bin, []string{dataDir, "PLUGBOARD_ADDR=" + freeAddr(t), "PLUGBOARD_SECRET_KEY=" + vault.EncodeKey(oldKey)}, "serve")
	if err == nil || !strings.Contains(stderr, "wrong secret key") || !strings.Contains(stderr, vault.KeyID(newKey)) ||
		!strings.Contains(stderr, vault.KeyID(oldKey)) || strings.Contains(stderr, vault.EncodeKey(oldKey)) {
		t.Fatalf("serve with the old key: %v\n%s", err, stderr)
	}
	// The rotated key file starts it.
	startServer(t, bin, addr, dataDir)
}

// TestVaultRotateResumes: a rotation interrupted after it staged its key
// and re-sealed part of the secrets is finished by the next run, with the
// staged key.
func TestVaultRotateResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	ctx := context.Background()
	staged := vault.NewKey()
	var oldKey []byte
	withStore(t, dir, func(st *store.Store) {
		v, err := vault.Load(ctx, vault.Config{DataDir: dir, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"wh-1", "wh-2"} {
			if err := st.CreateSystemWebhook(ctx, &store.SystemWebhook{ID: id, Event: "*", URL: "https://hooks.example.com",
				Secret: v.Seal([]byte("whsec_"+id), []byte(id))}); err != nil {
				t.Fatal(err)
			}
		}
		// The interrupted run: the key staged, wh-1 re-sealed with it.
		if _, _, err := vault.StageKeyFile(dir, staged); err != nil {
			t.Fatal(err)
		}
		vNew, err := vault.New(staged, readKey(t, filepath.Join(dir, vault.KeyFileName)))
		if err != nil {
			t.Fatal(err)
		}
		col := store.SealedColumn{Table: "system_webhooks", KeyColumn: "id", Column: "secret"}
		if _, err := st.ResealColumn(ctx, col, func(key, sealed string) (string, error) {
			if key != "wh-1" {
				return sealed, nil
			}
			plain, err := vNew.Open(sealed, []byte(key))
			return vNew.Seal(plain, []byte(key)), err
		}); err != nil {
			t.Fatal(err)
		}
	})
	oldKey = readKey(t, filepath.Join(dir, vault.KeyFileName))
	dataDir := "PLUGBOARD_DATA_DIR=" + dir

	// Another new key than the staged one is refused.
	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, []byte(vault.EncodeKey(vault.NewKey())), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runPlugboard(t, bin, []string{dataDir}, "vault", "rotate", "--new-key-file", other)
	if err == nil || !strings.Contains(stderr, "interrupted rotation") || !strings.Contains(stderr, vault.KeyID(staged)) {
		t.Fatalf("rotate to another key over an interrupted rotation: %v\n%s", err, stderr)
	}

	stdout, stderr, err := runPlugboard(t, bin, []string{dataDir}, "vault", "rotate", "--new-key")
	if err != nil {
		t.Fatalf("rotate: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "Resuming") || !strings.Contains(stdout, "system_webhooks.secret 1,") {
		t.Errorf("rotate said:\n%s", stdout)
	}
	if got := readKey(t, filepath.Join(dir, vault.KeyFileName)); !bytes.Equal(got, staged) {
		t.Fatalf("the key file holds the key of id %s, want the staged %s", vault.KeyID(got), vault.KeyID(staged))
	}
	if got := readKey(t, filepath.Join(dir, vault.OldKeyFileName)); !bytes.Equal(got, oldKey) {
		t.Fatalf("the old key file holds the key of id %s, want %s", vault.KeyID(got), vault.KeyID(oldKey))
	}
	opensWith(t, dir, "wh-1", staged, "whsec_wh-1")
	opensWith(t, dir, "wh-2", staged, "whsec_wh-2")
}

// TestVaultRotateEnvKey rotates a key given in PLUGBOARD_SECRET_KEY: the
// new key is printed once; a node with the new key and the old one in
// PLUGBOARD_OLD_SECRET_KEYS starts, --finish re-seals what an old node
// sealed meanwhile, and a malformed old key fails start-up without being
// shown.
func TestVaultRotateEnvKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	ctx := context.Background()
	oldKey := vault.NewKey()
	withStore(t, dir, func(st *store.Store) {
		v, err := vault.Load(ctx, vault.Config{Key: oldKey, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSystemWebhook(ctx, &store.SystemWebhook{ID: "wh-1", Event: "*", URL: "https://hooks.example.com",
			Secret: v.Seal([]byte("whsec_1"), []byte("wh-1"))}); err != nil {
			t.Fatal(err)
		}
	})
	dataDir := "PLUGBOARD_DATA_DIR=" + dir
	stdout, stderr, err := runPlugboard(t, bin, []string{dataDir, "PLUGBOARD_SECRET_KEY=" + vault.EncodeKey(oldKey)}, "vault", "rotate", "--new-key")
	if err != nil {
		t.Fatalf("rotate: %v\n%s%s", err, stdout, stderr)
	}
	printed := regexp.MustCompile(`(?m)^[A-Za-z0-9+/]{43}=$`).FindAllString(stdout, -1)
	if len(printed) != 1 {
		t.Fatalf("rotate printed %d keys:\n%s", len(printed), stdout)
	}
	newKey, err := vault.ParseKey(printed[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PLUGBOARD_SECRET_KEY", "PLUGBOARD_OLD_SECRET_KEYS", vault.KeyID(newKey), vault.KeyID(oldKey)} {
		if !strings.Contains(stdout, want) {
			t.Errorf("rotate does not say %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout+stderr, vault.EncodeKey(oldKey)) {
		t.Errorf("rotate printed the old key:\n%s%s", stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, vault.KeyFileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rotate wrote a key file in env mode: %v", err)
	}
	opensWith(t, dir, "wh-1", newKey, "whsec_1")

	// A node that had not restarted sealed a value with the old key.
	withStore(t, dir, func(st *store.Store) {
		v, err := vault.New(oldKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSystemWebhook(ctx, &store.SystemWebhook{ID: "wh-2", Event: "*", URL: "https://hooks.example.com",
			Secret: v.Seal([]byte("whsec_2"), []byte("wh-2"))}); err != nil {
			t.Fatal(err)
		}
	})
	keys := []string{dataDir, "PLUGBOARD_SECRET_KEY=" + vault.EncodeKey(newKey), "PLUGBOARD_OLD_SECRET_KEYS=" + vault.EncodeKey(oldKey)}
	srv := startServer(t, bin, freeAddr(t), keys...)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	stdout, stderr, err = runPlugboard(t, bin, keys, "vault", "rotate", "--finish")
	if err != nil || !strings.Contains(stdout, "Re-sealed 1 values with the key of id "+vault.KeyID(newKey)) {
		t.Fatalf("rotate --finish: %v\n%s%s", err, stdout, stderr)
	}
	opensWith(t, dir, "wh-2", newKey, "whsec_2")

	bad := vault.EncodeKey(oldKey)[:30]
	_, stderr, err = runPlugboard(t, bin, []string{dataDir, "PLUGBOARD_ADDR=" + freeAddr(t), "PLUGBOARD_SECRET_KEY=" + vault.EncodeKey(newKey),
		"PLUGBOARD_OLD_SECRET_KEYS=" + vault.EncodeKey(oldKey) + "," + bad}, "serve")
	if err == nil || !strings.Contains(stderr, "PLUGBOARD_OLD_SECRET_KEYS: key 2 of 2") || strings.Contains(stderr, bad) {
		t.Fatalf("serve with a malformed old key: %v\n%s", err, stderr)
	}
}

// TestVaultRotateWrongKeyFile: a rotation with a key file that does not
// open the database, or with none, fails without writing any key file,
// so that a later run does not take a key staged by the failed one.
func TestVaultRotateWrongKeyFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	withStore(t, dir, func(st *store.Store) {
		if _, err := vault.Load(context.Background(), vault.Config{DataDir: dir, Store: st}); err != nil {
			t.Fatal(err)
		}
	})
	keyPath := filepath.Join(dir, vault.KeyFileName)
	nextPath := filepath.Join(dir, vault.NextKeyFileName)
	right := readKey(t, keyPath)
	dataDir := "PLUGBOARD_DATA_DIR=" + dir

	if err := os.WriteFile(keyPath, []byte(vault.EncodeKey(vault.NewKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runPlugboard(t, bin, []string{dataDir}, "vault", "rotate", "--new-key")
	if err == nil || !strings.Contains(stderr, "wrong secret key") {
		t.Fatalf("rotate with the wrong key file: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(nextPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a rotation refused for its wrong key staged a key: %v", err)
	}

	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = runPlugboard(t, bin, []string{dataDir}, "vault", "rotate", "--new-key")
	if err == nil || !strings.Contains(stderr, "no key file") {
		t.Fatalf("rotate without a key file: %v\n%s", err, stderr)
	}
	for _, path := range []string{keyPath, nextPath} {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a rotation without a key file wrote %s: %v", path, err)
		}
	}

	// The right key back, --finish keeps it.
	if err := os.WriteFile(keyPath, []byte(vault.EncodeKey(right)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runPlugboard(t, bin, []string{dataDir}, "vault", "rotate", "--finish")
	if err != nil || strings.Contains(stdout, "Resuming") {
		t.Fatalf("rotate --finish: %v\n%s%s", err, stdout, stderr)
	}
	if got := readKey(t, keyPath); !bytes.Equal(got, right) {
		t.Fatalf("the key file holds the key of id %s, want %s", vault.KeyID(got), vault.KeyID(right))
	}
}

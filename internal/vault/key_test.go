package vault_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/vault"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	k := vault.NewKey()
	enc := vault.EncodeKey(k)
	for _, s := range []string{enc, enc + "\n", "  " + enc + " "} {
		if got, err := vault.ParseKey(s); err != nil || !bytes.Equal(got, k) {
			t.Fatalf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "is empty"},
		{"   ", "is empty"},
		{"not base64 at all!", "is not base64"},
		{base64.StdEncoding.EncodeToString(make([]byte, 16)), "decodes to 16 bytes, not 32"},
		{base64.StdEncoding.EncodeToString(make([]byte, 33)), "decodes to 33 bytes, not 32"},
		{hex.EncodeToString(k), "decodes to 48 bytes, not 32"}, // hex is not what is asked for
		{base64.RawURLEncoding.EncodeToString(k), "is not base64"},
	} {
		_, err := vault.ParseKey(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKey(%q) = %v, want %q", tc.in, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), "openssl rand -base64 32") || (strings.TrimSpace(tc.in) != "" && strings.Contains(err.Error(), tc.in)) {
			t.Errorf("ParseKey(%q): %v, want advice and not the value", tc.in, err)
		}
	}
}

// TestKeyFile: the first load creates the key file with mode 0600; later
// loads read the same key.
func TestKeyFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data") // not there yet
	k, created, err := vault.LoadKeyFile(dir)
	if err != nil || !created || len(k) != vault.KeySize {
		t.Fatalf("first LoadKeyFile = %x, %v, %v", k, created, err)
	}
	path := filepath.Join(dir, vault.KeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	text, _ := os.ReadFile(path)
	if strings.TrimSpace(string(text)) != vault.EncodeKey(k) {
		t.Fatalf("key file holds %q", text)
	}
	again, created, err := vault.LoadKeyFile(dir)
	if err != nil || created || !bytes.Equal(again, k) {
		t.Fatalf("second LoadKeyFile = %x, %v, %v; want the first key", again, created, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data directory holds %d files, want only the key file", len(entries))
	}
}

func TestKeyFileRefused(t *testing.T) {
	t.Parallel()
	good := vault.EncodeKey(vault.NewKey()) + "\n"
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"world readable", good, 0o644, "may be read or written by group or others (mode 0644)"},
		{"group readable", good, 0o640, "(mode 0640)"},
		{"group writable", good, 0o620, "(mode 0620)"},
		{"empty", "", 0o600, "is malformed"},
		{"short key", base64.StdEncoding.EncodeToString(make([]byte, 16)), 0o600, "decodes to 16 bytes"},
		{"garbage", "not a key\n", 0o600, "is malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if runtime.GOOS == "windows" && tc.mode != 0o600 {
				t.Skip("no mode bits on Windows")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, vault.KeyFileName)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, _, err := vault.LoadKeyFile(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadKeyFile = %v, want an error with %q and the path", err, tc.want)
			}
			if tc.content == good && strings.Contains(err.Error(), strings.TrimSpace(good)) {
				t.Fatalf("error repeats the key: %v", err)
			}
			// The file is left as it was.
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Fatalf("key file changed to %q", b)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, vault.KeyFileName), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, _, err := vault.LoadKeyFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("LoadKeyFile = %v", err)
		}
	})
}

package vault

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeyFileName is the key file in the data directory, used when
// PLUGBOARD_SECRET_KEY is not set.
const KeyFileName = "secret.key"

// errKeyFormat says what a key must look like, without repeating it.
var errKeyFormat = errors.New("must be the base64 of 32 random bytes (make one with: openssl rand -base64 32)")

// NewKey returns a random key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand aborts the program instead)
	return k
}

// EncodeKey writes a key as PLUGBOARD_SECRET_KEY and the key file hold it:
// standard base64 with padding.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// ParseKey reads a key written as EncodeKey writes it; spaces around it
// are ignored. Its errors never repeat the text.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("is empty: it %w", errKeyFormat)
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("is not base64: it %w", errKeyFormat)
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("decodes to %d bytes, not %d: it %w", len(k), KeySize, errKeyFormat)
	}
	return k, nil
}

// LoadKeyFile reads the key file in dir. When there is none, it creates
// one holding a new random key, readable by its owner only (mode 0600),
// and reports created. A key file that group or others may read or write,
// or that does not hold a key, is refused.
func LoadKeyFile(dir string) (k []byte, created bool, err error) {
	path := filepath.Join(dir, KeyFileName)
	for range 2 {
		k, err = readKeyFile(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return k, false, err
		}
		k, err = createKeyFile(path)
		if !errors.Is(err, fs.ErrExist) {
			return k, err == nil, err
		}
		// Another process created it meanwhile: read that one.
	}
	return nil, false, fmt.Errorf("creating key file %s: it appeared and vanished again", path)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	// Windows has no such mode bits; its ACLs are the operator's job.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s may be read or written by group or others (mode %04o): "+
			"restrict it with chmod 600 %s", path, perm, path)
	}
	text, err := io.ReadAll(io.LimitReader(f, 1024)) // a key is 44 characters
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	k, err := ParseKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("key file %s is malformed: its content %w", path, err)
	}
	return k, nil
}

// createKeyFile writes a new key to a temporary file and links it into
// place, so that the key file is never seen half written; it fails with
// fs.ErrExist when a key file is already there.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating key file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+KeyFileName+"-*")
	if err != nil {
		return nil, fmt.Errorf("creating key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	k := NewKey()
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(EncodeKey(k) + "\n")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("creating key file %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("creating key file %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// The new name is durable before anything is sealed with the key.
		err = d.Sync()
		_ = d.Close()
		if err != nil && runtime.GOOS != "windows" {
			return nil, fmt.Errorf("creating key file %s: syncing its directory: %w", path, err)
		}
	}
	return k, nil
}

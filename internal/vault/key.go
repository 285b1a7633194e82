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

// Key files in the data directory, used when PLUGBOARD_SECRET_KEY is not
// set.
const (
	// KeyFileName holds the current key.
	KeyFileName = "secret.key"
	// NextKeyFileName holds the new key while a rotation runs.
	NextKeyFileName = KeyFileName + ".next"
	// OldKeyFileName keeps the key before the last rotation; nodes still
	// open values sealed with it.
	OldKeyFileName = KeyFileName + ".old"
)

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

// ParseKeys reads a comma-separated list of keys, as
// PLUGBOARD_OLD_SECRET_KEYS holds them; empty items are skipped. Its
// errors name the item by its position, never by its text.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	items := strings.Split(s, ",")
	for i, item := range items {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, err := ParseKey(item)
		if err != nil {
			return nil, fmt.Errorf("key %d of %d %w", i+1, len(items), err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// LoadKeyFile reads the key file in dir. When there is none, it creates
// one holding a new random key, readable by its owner only (mode 0600),
// and reports created. A key file that group or others may read or write,
// or that does not hold a key, is refused.
func LoadKeyFile(dir string) (k []byte, created bool, err error) {
	return readOrCreate(filepath.Join(dir, KeyFileName), NewKey())
}

// readOrCreate reads the key file at path. When there is none, it writes
// k there and reports created; when another process wrote one meanwhile,
// it reads that one instead.
func readOrCreate(path string, k []byte) ([]byte, bool, error) {
	for range 2 {
		have, err := readKeyFile(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return have, false, err
		}
		err = writeKeyFile(path, k, false)
		if !errors.Is(err, fs.ErrExist) {
			if err != nil {
				return nil, false, err
			}
			return k, true, nil
		}
		// Another process created it meanwhile: read that one.
	}
	return nil, false, fmt.Errorf("writing key file %s: it appeared and vanished again", path)
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

// writeKeyFile writes k to a temporary file readable by its owner only
// (mode 0600) and moves it into place, so that a key file is never seen
// half written. Without replace it fails with fs.ErrExist when path is
// there already; with it, it replaces path.
func writeKeyFile(path string, k []byte, replace bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
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
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	// The new name is durable before anything is sealed with the key.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	return nil
}

// syncDir makes the names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil // nothing to sync on systems that cannot open directories
	}
	err = d.Sync()
	_ = d.Close()
	if err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// StageKeyFile prepares a key rotation in key-file mode: it writes k as
// the next key file (NextKeyFileName, mode 0600) in dir, before anything
// is sealed with it. When a next key file is there already, a rotation
// was interrupted: it returns the key that file holds instead, and
// resumed true, so that the rotation finishes with the key some values
// may already be sealed with.
//
// With k nil it only looks: it returns nil and no error when there is no
// next key file.
func StageKeyFile(dir string, k []byte) (staged []byte, resumed bool, err error) {
	path := filepath.Join(dir, NextKeyFileName)
	if k == nil {
		staged, err = readKeyFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return staged, err == nil, err
	}
	staged, created, err := readOrCreate(path, k)
	if err != nil {
		return nil, false, err
	}
	return staged, !created, nil
}

// PromoteKeyFile ends a key rotation in key-file mode, once every secret
// is sealed with the next key: it keeps the current key as
// OldKeyFileName (mode 0600, replacing an older one) and moves the next
// key file into place as KeyFileName. The key file is there at every
// moment, so an interruption leaves either the old key with the next one
// beside it (StageKeyFile resumes) or the new key.
func PromoteKeyFile(dir string) error {
	path := filepath.Join(dir, KeyFileName)
	next := filepath.Join(dir, NextKeyFileName)
	if _, err := readKeyFile(next); err != nil {
		return fmt.Errorf("promoting the next key file: %w", err)
	}
	cur, err := readKeyFile(path)
	if err != nil {
		return fmt.Errorf("keeping the current key file: %w", err)
	}
	if err := writeKeyFile(filepath.Join(dir, OldKeyFileName), cur, true); err != nil {
		return err
	}
	if err := os.Rename(next, path); err != nil {
		return fmt.Errorf("promoting the next key file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("promoting the next key file: %w", err)
	}
	return nil
}

package vault

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/plugboard/plugboard/internal/store"
)

// Environment variables of the keys.
const (
	// EnvKey holds the current key.
	EnvKey = "PLUGBOARD_SECRET_KEY"
	// EnvOldKeys holds older keys, comma-separated, that still open
	// values sealed before a key rotation.
	EnvOldKeys = "PLUGBOARD_OLD_SECRET_KEYS"
)

// ErrWrongKey marks a start-up refused because the node's key is not the
// key the database's secrets are sealed with.
var ErrWrongKey = errors.New("wrong secret key")

// The key check value: a known text, sealed with the key on a database's
// first start and opened on every later one.
var (
	checkPlain = []byte("plugboard vault key check")
	checkAD    = []byte("vault/check")
)

// Config says where a node's key comes from and which database it must
// match.
type Config struct {
	// Key is the current key, decoded from EnvKey. When nil, the key file
	// in DataDir is read, or created on the first start.
	Key []byte
	// OldKeys, decoded from EnvOldKeys, still open values sealed before
	// a key rotation. In key-file mode the key of OldKeyFileName, when
	// there is one, is added to them.
	OldKeys [][]byte
	// DataDir holds the key files when Key is nil (default: "data").
	DataDir string
	// NoCreate refuses to start without a key file when Key is nil,
	// rather than creating one: for commands that must find the key a
	// database is sealed with, never a new one.
	NoCreate bool
	// Store is the database whose key check value the key must open.
	Store *store.Store
	// Logger is told when a key file is created or a key rotation is
	// unfinished (default: discarded).
	Logger *slog.Logger
}

// Load makes this node's vault and checks its key against the database:
// the first node to start writes the key check value, and every start
// must open it. A node with another key fails here with ErrWrongKey,
// before it serves or reads any secret.
func Load(ctx context.Context, cfg Config) (*Vault, error) {
	if cfg.Store == nil {
		return nil, errors.New("vault: Store is required")
	}
	log := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	key, source, older := cfg.Key, EnvKey, cfg.OldKeys
	dir := cmp.Or(cfg.DataDir, "data")
	if key == nil {
		path := filepath.Join(dir, KeyFileName)
		source = "the key file " + path
		var created bool
		var err error
		if cfg.NoCreate {
			if key, err = readKeyFile(path); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: there is no key file %s; put back the key file from your backup", ErrWrongKey, path)
			}
		} else {
			key, created, err = LoadKeyFile(dir)
		}
		if err != nil {
			return nil, err
		}
		if created {
			log.LogAttrs(ctx, slog.LevelWarn, "created a secret key file: back it up, as the secrets in the database cannot be read without it",
				slog.String("path", path), slog.String("keyId", KeyID(key)))
		}
		// The key before the last rotation still opens what a node that
		// had not restarted yet sealed with it.
		switch old, err := readKeyFile(filepath.Join(dir, OldKeyFileName)); {
		case err == nil:
			older = append(slices.Clip(older), old)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	v, err := New(key, older...)
	if err != nil {
		return nil, fmt.Errorf("loading the secret key from %s: %w", source, err)
	}
	if err := v.check(ctx, cfg.Store, log, source, dir); err != nil {
		return nil, err
	}
	return v, nil
}

// check opens the database's key check value, writing it first if the
// database has none.
func (v *Vault) check(ctx context.Context, st *store.Store, log *slog.Logger, source, dataDir string) error {
	sealed, err := st.VaultCheck(ctx)
	if errors.Is(err, store.ErrNotFound) {
		sealed, err = st.CreateVaultCheck(ctx, v.Seal(checkPlain, checkAD))
	}
	if err != nil {
		return err
	}
	switch err := v.openCheck(sealed); {
	case errors.Is(err, ErrUnknownKey):
		want, _ := SealedKeyID(sealed)
		return fmt.Errorf("%w: this database's secrets are sealed with the key of id %s, but this node's key (from %s) has id %s; "+
			"every node of one database must use the same key: set %s to the key the database was set up with%s",
			ErrWrongKey, want, source, v.current.id, EnvKey, v.keyFileHint(source, dataDir, want))
	case err != nil:
		return fmt.Errorf("%w: the database's key check value does not open with this node's key (from %s, id %s): %w",
			ErrWrongKey, source, v.current.id, err)
	}
	if id, _ := SealedKeyID(sealed); id != v.current.id {
		// It opened with an older key: the database has not moved to
		// this node's key yet, or not entirely.
		log.LogAttrs(ctx, slog.LevelWarn, "a secret key rotation is unfinished: the database's key check value is sealed with an older key of this node, not its current one; "+
			"values sealed with the older key still open, and the current key seals new ones; run \"plugboard vault rotate --finish\" with this node's keys to re-seal everything with the current key",
			slog.String("keyId", v.current.id), slog.String("checkKeyId", id))
	}
	return nil
}

// keyFileHint says where the right key may be: the data directory's key
// file when the key came from EnvKey and that file holds the key the
// database wants, else a backup.
func (v *Vault) keyFileHint(source, dataDir, want string) string {
	if source != EnvKey {
		path := filepath.Join(dataDir, NextKeyFileName)
		if k, err := readKeyFile(path); err == nil && KeyID(k) == want {
			return fmt.Sprintf("; a key rotation was interrupted (%s holds the key): run \"plugboard vault rotate --finish\" to finish it", path)
		}
		return ", or put back the key file from your backup"
	}
	path := filepath.Join(dataDir, KeyFileName)
	if k, err := readKeyFile(path); err == nil && KeyID(k) == want {
		return fmt.Sprintf(" (the key file %s holds it: copy its content to %s, or unset %s to use the file)", path, EnvKey, EnvKey)
	}
	return " (restore it from your backup)"
}

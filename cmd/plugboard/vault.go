package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/syswebhook"
	"github.com/plugboard/plugboard/internal/vault"
)

const vaultUsage = `Usage: plugboard vault <command> [flags]

Commands:
  rotate    re-seal every secret with a new key (see "plugboard vault rotate -h")

See docs/vault.md for the whole procedure.
`

// vaultCmd runs "plugboard vault ...".
func vaultCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, vaultUsage)
		return errors.New("no vault command given")
	}
	switch args[0] {
	case "rotate":
		return vaultRotate(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stderr, vaultUsage)
		return nil
	}
	fmt.Fprint(stderr, vaultUsage)
	return fmt.Errorf("unknown vault command %q", args[0])
}

// vaultRotate re-seals every secret with a new key, then makes the
// database's key check value need it. With PLUGBOARD_SECRET_KEY set, the
// operator moves every node to the new key; otherwise the key file is
// replaced here, the old one kept beside it.
func vaultRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s := &settings{}
	fs := flag.NewFlagSet("vault rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s.storeFlags(fs)
	generate := fs.Bool("new-key", false, "rotate to a new random key")
	keyPath := fs.String("new-key-file", "", "rotate to the key this file holds (base64 of 32 bytes), rather than a random one")
	finish := fs.Bool("finish", false, "re-seal with the current key what is still sealed with an older one (after nodes moved to a new key, or to finish an interrupted rotation)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: plugboard vault rotate (--new-key | --new-key-file PATH | --finish) [flags]

Re-seals every secret in the database with a new key. The current key comes
from PLUGBOARD_SECRET_KEY or, when it is unset, the key file in the data
directory; older keys from PLUGBOARD_OLD_SECRET_KEYS. In key-file mode the
new key replaces the key file and the old one is kept as secret.key.old; with
PLUGBOARD_SECRET_KEY, set it to the new key on every node afterwards.

`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("vault rotate takes no arguments, got %q", fs.Args())
	}
	modes := 0
	for _, set := range []bool{*generate, *keyPath != "", *finish} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		fs.Usage()
		return errors.New("vault rotate needs exactly one of --new-key, --new-key-file and --finish")
	}
	if err := s.readSecretKeys(); err != nil {
		return err
	}
	var newKey []byte
	switch {
	case *generate:
		newKey = vault.NewKey()
	case *keyPath != "":
		text, err := os.ReadFile(*keyPath)
		if err != nil {
			return fmt.Errorf("reading the new key: %w", err)
		}
		if newKey, err = vault.ParseKey(string(text)); err != nil {
			return fmt.Errorf("the new key file %s %w", *keyPath, err)
		}
	}

	st, err := store.Open(ctx, store.Config{DatabaseURL: s.databaseURL, DataDir: s.dataDir})
	if err != nil {
		return err
	}
	defer st.Close()
	// A database no server started on has nothing to rotate: more likely
	// the settings point to the wrong place than not.
	if _, err := st.VaultCheck(ctx); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("this database has no secret key yet (no server has started on it): check --data-dir and --database-url")
	} else if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	keyFileMode := s.secretKey == nil
	staged := false // the new key is in the next key file, to promote
	if keyFileMode {
		// Only look for now: nothing is written before the current key
		// is known to open the database.
		next, _, err := vault.StageKeyFile(s.dataDir, nil)
		if err != nil {
			return err
		}
		if next != nil {
			if *keyPath != "" && !bytes.Equal(next, newKey) {
				return fmt.Errorf("an interrupted rotation left %s, which holds another key (id %s) than %s (id %s): "+
					"finish that rotation first (plugboard vault rotate --finish)",
					filepath.Join(s.dataDir, vault.NextKeyFileName), vault.KeyID(next), *keyPath, vault.KeyID(newKey))
			}
			fmt.Fprintf(stdout, "Resuming the interrupted rotation to the key of id %s (%s).\n", vault.KeyID(next), vault.NextKeyFileName)
			newKey, staged = next, true
		}
	}
	// An interrupted rotation may have moved the key check value to the
	// new key already: it must open with it too.
	older := s.oldSecretKeys
	if newKey != nil {
		older = append(older, newKey)
	}
	v, err := vault.Load(ctx, vault.Config{Key: s.secretKey, OldKeys: older, DataDir: s.dataDir, NoCreate: true, Store: st, Logger: log})
	if err != nil {
		return err
	}
	if keyFileMode && newKey != nil && !staged {
		// The current key opens the database: the new one may be staged.
		if _, resumed, err := vault.StageKeyFile(s.dataDir, newKey); err != nil {
			return err
		} else if resumed {
			return fmt.Errorf("another rotation staged %s meanwhile: let it finish, or run plugboard vault rotate --finish",
				filepath.Join(s.dataDir, vault.NextKeyFileName))
		}
		staged = true
	}
	if *generate && !keyFileMode {
		// Shown before anything is sealed with it, so that it is not lost
		// if the rotation is interrupted.
		fmt.Fprintf(stdout, "New secret key (id %s), shown only this once; keep it safe now, as the secrets are being sealed with it:\n%s\n",
			vault.KeyID(newKey), vault.EncodeKey(newKey))
	}
	// Secrets a version before the vault stored in clear are sealed, as
	// serve does at start-up, so that they are rotated too.
	hooks, err := syswebhook.New(syswebhook.Config{Store: st, Vault: v, HTTP: &http.Client{}, Logger: log})
	if err != nil {
		return err
	}
	if _, err := hooks.SealStoredSecrets(ctx); err != nil {
		return err
	}
	rep, err := vault.Rotate(ctx, st, v, newKey) // nil with --finish: the current key stays
	if err != nil {
		switch {
		case keyFileMode:
			return fmt.Errorf("%w\nThe key files are unchanged and every node keeps working with them; fix the cause and run plugboard vault rotate again: it resumes with %s",
				err, vault.NextKeyFileName)
		case *generate:
			return fmt.Errorf("%w\nKeep the new key printed above (some secrets may be sealed with it): write it to a file readable only by you and run plugboard vault rotate --new-key-file with that file to finish",
				err)
		default:
			return fmt.Errorf("%w\nFix the cause and run the same command again: it finishes the rotation", err)
		}
	}
	if staged {
		if err := vault.PromoteKeyFile(s.dataDir); err != nil {
			return fmt.Errorf("%w\nEvery secret is sealed with the key of id %s, which is in %s: run plugboard vault rotate --finish to put it in place",
				err, rep.To, filepath.Join(s.dataDir, vault.NextKeyFileName))
		}
	}
	printRotation(stdout, rep)
	switch {
	case rep.From == rep.To:
		fmt.Fprintf(stdout, "Every secret is sealed with the key of id %s; older keys are needed no more.\n", rep.To)
	case keyFileMode:
		fmt.Fprintf(stdout, "The new key (id %s) is in %s; the old one (id %s) is kept in %s.\n"+
			"Back up the new key file. Nodes with a key file of their own need a copy of it; restart every node.\n",
			rep.To, filepath.Join(s.dataDir, vault.KeyFileName), rep.From, filepath.Join(s.dataDir, vault.OldKeyFileName))
	default:
		fmt.Fprintf(stdout, "Now, on every node, set %s to the new key (id %s) and %s to the old one (id %s), and restart it; "+
			"nodes still running with the old key alone cannot read the re-sealed secrets.\n"+
			"Once every node runs with the new key, run plugboard vault rotate --finish (with the same settings) and remove %s.\n",
			vault.EnvKey, rep.To, vault.EnvOldKeys, rep.From, vault.EnvOldKeys)
	}
	return nil
}

// printRotation writes what a rotation re-sealed.
func printRotation(w io.Writer, rep vault.Report) {
	cols := make([]string, 0, len(rep.Columns))
	for _, c := range rep.Columns {
		cols = append(cols, fmt.Sprintf("%s.%s %d", c.Table, c.Column, c.Resealed))
	}
	if rep.From == rep.To {
		fmt.Fprintf(w, "Re-sealed %d values with the key of id %s (%s).\n", rep.Resealed(), rep.To, strings.Join(cols, ", "))
		return
	}
	fmt.Fprintf(w, "Rotated the secret key from id %s to id %s: re-sealed %d values (%s).\n",
		rep.From, rep.To, rep.Resealed(), strings.Join(cols, ", "))
}

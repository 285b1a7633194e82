// Package storetest opens fresh databases for tests: a SQLite file in a
// temporary directory, and, when PLUGBOARD_TEST_POSTGRES holds a URL, a
// PostgreSQL schema of its own that is dropped afterwards.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/plugboard/plugboard/internal/store"
)

// EnvPostgres names the variable holding the test PostgreSQL URL.
const EnvPostgres = "PLUGBOARD_TEST_POSTGRES"

// Backends lists the backends to test: SQLite always, PostgreSQL when
// configured.
func Backends() []string {
	if os.Getenv(EnvPostgres) != "" {
		return []string{store.BackendSQLite, store.BackendPostgres}
	}
	return []string{store.BackendSQLite}
}

// Config returns a store configuration for a fresh, empty database of the
// backend.
func Config(t testing.TB, backend string) store.Config {
	t.Helper()
	if backend == store.BackendSQLite {
		return store.Config{DataDir: t.TempDir()}
	}
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skip(EnvPostgres + " is not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to %s: %v", EnvPostgres, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return store.Config{DatabaseURL: u.String(), DataDir: t.TempDir()}
}

// Open opens a fresh store of the backend, closed when the test ends.
func Open(t testing.TB, backend string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), Config(t, backend))
	if err != nil {
		t.Fatalf("opening %s store: %v", backend, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

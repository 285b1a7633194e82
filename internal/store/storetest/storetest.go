// Package storetest opens fresh databases for tests: a SQLite file in a
// temporary directory, and, when PLUGBOARD_TEST_POSTGRES holds a URL, a
// PostgreSQL schema of its own that is dropped afterwards.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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

// Dump returns everything the database cfg names holds, as a test reading
// it from outside the store would see it: on PostgreSQL every table of
// the schema, row by row as text; on SQLite the bytes of every file in
// the data directory (database, write-ahead log and any other). Tests
// search it for what must never be stored in clear.
func Dump(t testing.TB, cfg store.Config) string {
	t.Helper()
	if !store.IsPostgresURL(cfg.DatabaseURL) {
		var all bytes.Buffer
		err := filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if os.IsNotExist(err) { // a journal removed meanwhile
				return nil
			}
			all.Write(b)
			return err
		})
		if err != nil {
			t.Fatalf("reading the data directory: %v", err)
		}
		return all.String()
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		t.Fatalf("connecting to the test database: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatalf("listing tables: %v", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("listing tables: %v", err)
	}
	var all strings.Builder
	for _, name := range tables {
		var text *string
		q := `SELECT string_agg(t::text, E'\n') FROM ` + pgx.Identifier{name}.Sanitize() + ` t`
		if err := conn.QueryRow(ctx, q).Scan(&text); err != nil {
			t.Fatalf("reading table %s: %v", name, err)
		}
		all.WriteString("-- " + name + "\n")
		if text != nil {
			all.WriteString(*text + "\n")
		}
	}
	return all.String()
}

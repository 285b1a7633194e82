package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
)

// freshSchema creates an empty schema on the PostgreSQL server at dsn so that
// each run starts from a clean database. It returns a DSN that makes the
// schema the search path and a function that drops the schema.
func freshSchema(ctx context.Context, dsn string) (string, func(context.Context) error, error) {
	name := "bench_" + strings.ToLower(rand.Text()[:12])
	ident := pgx.Identifier{name}.Sanitize()
	if err := execOnce(ctx, dsn, "CREATE SCHEMA "+ident); err != nil {
		return "", nil, fmt.Errorf("creating schema %s: %w", name, err)
	}
	drop := func(ctx context.Context) error {
		if err := execOnce(ctx, dsn, "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			return fmt.Errorf("dropping schema %s: %w", name, err)
		}
		return nil
	}
	scoped, err := withSearchPath(dsn, name)
	if err != nil {
		_ = drop(ctx)
		return "", nil, err
	}
	return scoped, drop, nil
}

// execOnce runs one statement on a connection of its own.
func execOnce(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// withSearchPath adds search_path=schema to a URL or keyword/value DSN. The
// server passes unknown parameters on as run-time parameters.
func withSearchPath(dsn, schema string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return strings.TrimSpace(dsn) + " search_path=" + schema, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parsing -pg URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

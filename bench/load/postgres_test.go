package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ dsn, want string }{
		{"postgres://u:p@db:5432/app", "postgres://u:p@db:5432/app?search_path=bench_x"},
		{"postgresql://u@db/app?sslmode=disable", "postgresql://u@db/app?search_path=bench_x&sslmode=disable"},
		{"postgres://u@db/app?search_path=public", "postgres://u@db/app?search_path=bench_x"},
		{"host=db dbname=app ", "host=db dbname=app search_path=bench_x"},
	}
	for _, tt := range tests {
		got, err := withSearchPath(tt.dsn, "bench_x")
		if err != nil || got != tt.want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", tt.dsn, got, err, tt.want)
		}
	}
}

// TestFreshSchema needs a PostgreSQL server: set PLUGBOARD_TEST_POSTGRES.
func TestFreshSchema(t *testing.T) {
	t.Parallel()
	dsn := os.Getenv("PLUGBOARD_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PLUGBOARD_TEST_POSTGRES not set")
	}
	ctx := t.Context()
	scoped, drop, err := freshSchema(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, scoped)
	if err != nil {
		_ = drop(context.Background())
		t.Fatal(err)
	}
	var schema string
	err = conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema)
	conn.Close(ctx)
	if err != nil {
		_ = drop(context.Background())
		t.Fatal(err)
	}
	if !strings.HasPrefix(schema, "bench_") {
		t.Errorf("current_schema() = %q, want the fresh bench_ schema", schema)
	}
	if err := drop(ctx); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := execCount(ctx, dsn, schema, &left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("schema %s still exists after drop", schema)
	}
}

func execCount(ctx context.Context, dsn, schema string, n *int) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(n)
}

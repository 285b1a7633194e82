package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/plugboard/plugboard/migrations"
)

// migrationLockKey is the advisory lock taken while migrating.
const migrationLockKey = 0x706c7567 // "plug"

type postgresBackend struct {
	pool *pgxpool.Pool
}

func openPostgres(ctx context.Context, cfg Config) (backend, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	if pcfg.MaxConns < 16 {
		pcfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	b := &postgresBackend{pool: pool}
	err = b.withLock(ctx, func(ctx context.Context) error {
		db := stdlib.OpenDBFromPool(pool)
		defer db.Close()
		return migrate(ctx, goose.DialectPostgres, db, migrations.Postgres, "postgres")
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return b, nil
}

func (b *postgresBackend) withLock(ctx context.Context, fn func(ctx context.Context) error) error {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring migration lock: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("acquiring migration lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}()
	return fn(ctx)
}

func (b *postgresBackend) writer() querier { return pgxQ{b.pool} }
func (b *postgresBackend) reader() querier { return pgxQ{b.pool} }
func (b *postgresBackend) close() error    { b.pool.Close(); return nil }

func (b *postgresBackend) begin(ctx context.Context) (txHandle, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgxTx{pgxQ{tx}, tx}, nil
}

func (b *postgresBackend) isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// pgxRunner is what pgxpool.Pool and pgx.Tx have in common.
type pgxRunner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgxQ struct{ r pgxRunner }

func (q pgxQ) exec(ctx context.Context, s string, args ...any) (int64, error) {
	tag, err := q.r.Exec(ctx, s, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q pgxQ) query(ctx context.Context, s string, args ...any) (rows, error) {
	r, err := q.r.Query(ctx, s, args...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (q pgxQ) queryRow(ctx context.Context, s string, args ...any) row {
	return q.r.QueryRow(ctx, s, args...)
}

type pgxTx struct {
	pgxQ
	tx pgx.Tx
}

func (t pgxTx) commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgxTx) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

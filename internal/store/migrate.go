package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// migrate applies the embedded migrations in dir of fsys.
func migrate(ctx context.Context, dialect goose.Dialect, db *sql.DB, fsys fs.FS, dir string) error {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		return fmt.Errorf("reading %s migrations: %w", dir, err)
	}
	p, err := goose.NewProvider(dialect, db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("preparing %s migrations: %w", dir, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("applying %s migrations: %w", dir, err)
	}
	return nil
}

// WithMigrationLock runs fn while holding the schema migration lock, so
// that several nodes starting together on one PostgreSQL database migrate
// once. On SQLite the data directory lock already excludes other processes.
func (s *Store) WithMigrationLock(ctx context.Context, fn func(ctx context.Context) error) error {
	if l, ok := s.backend.(interface {
		withLock(ctx context.Context, fn func(ctx context.Context) error) error
	}); ok {
		return l.withLock(ctx, fn)
	}
	return fn(ctx)
}

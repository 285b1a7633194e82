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

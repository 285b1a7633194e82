package store

import (
	"context"
	"fmt"
)

// vaultCheck names the row of the vault table that holds the key check
// value.
const vaultCheck = "check"

// VaultCheck returns the key check value the vault wrote when it first
// started on this database, or ErrNotFound before that.
func (s *Store) VaultCheck(ctx context.Context) (string, error) {
	var v string
	err := s.backend.writer().queryRow(ctx, `SELECT value FROM vault WHERE name = $1`, vaultCheck).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("reading the vault check value: %w", notFound(err))
	}
	return v, nil
}

// CreateVaultCheck writes the key check value unless one is there already
// (another node may have written its own first) and returns the value
// stored.
func (s *Store) CreateVaultCheck(ctx context.Context, sealed string) (string, error) {
	_, err := s.backend.writer().exec(ctx,
		`INSERT INTO vault (name, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		vaultCheck, sealed, s.nowMS())
	if err != nil {
		return "", fmt.Errorf("writing the vault check value: %w", err)
	}
	return s.VaultCheck(ctx)
}

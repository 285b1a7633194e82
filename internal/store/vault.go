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

// ReplaceVaultCheck writes sealed as the key check value if the stored
// one is still old, and reports whether it did: a key rotation replaces
// the check value only once every secret opens with the new key, and
// never over a check value another rotation wrote meanwhile.
func (s *Store) ReplaceVaultCheck(ctx context.Context, old, sealed string) (bool, error) {
	n, err := s.backend.writer().exec(ctx,
		`UPDATE vault SET value = $1, updated_at = $2 WHERE name = $3 AND value = $4`,
		sealed, s.nowMS(), vaultCheck, old)
	if err != nil {
		return false, fmt.Errorf("replacing the vault check value: %w", err)
	}
	return n == 1, nil
}

// Package migrations holds the numbered schema migrations of each storage
// backend. They are embedded into the binary and applied at start-up; a
// migration that has landed is never edited.
package migrations

import "embed"

// SQLite holds the migrations for the embedded SQLite backend.
//
//go:embed sqlite/*.sql
var SQLite embed.FS

// Postgres holds the migrations for the PostgreSQL backend.
//
//go:embed postgres/*.sql
var Postgres embed.FS

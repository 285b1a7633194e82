// Package store is the storage seam. One Store type speaks to either the
// embedded SQLite database or PostgreSQL; driver types and errors stay inside
// this package, and both backends pass the same conformance suite.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors returned at the seam instead of driver errors.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Backend names.
const (
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// Config selects and tunes a backend.
type Config struct {
	// DatabaseURL selects PostgreSQL when it starts with postgres:// or
	// postgresql://; otherwise the SQLite database in DataDir is used.
	DatabaseURL string
	// DataDir holds the SQLite database file.
	DataDir string
	// ReadConns is the size of the SQLite read pool (default 4).
	ReadConns int
	// Logger receives the store's warnings (default: discarded).
	Logger *slog.Logger
	// Clock is this node's clock (default time.Now); tests skew it. The
	// store corrects it to the database's clock (see Store.Now).
	Clock func() time.Time
}

// Store is the application's storage.
type Store struct {
	backend backend
	name    string
	group   *groupCommitter
	clock   *clock
	// stopClock ends the PostgreSQL clock measurements.
	stopClock context.CancelFunc
}

// backend is what differs between SQLite and PostgreSQL: how connections
// and transactions are made.
type backend interface {
	// writer runs queries outside a transaction on the write path.
	writer() querier
	// reader runs read-only queries (SQLite has a separate read pool).
	reader() querier
	begin(ctx context.Context) (txHandle, error)
	close() error
	// isUniqueViolation reports a unique-constraint error.
	isUniqueViolation(err error) bool
}

type txHandle interface {
	querier
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// querier is the common surface of a connection, pool or transaction.
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) row
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type row interface {
	Scan(dest ...any) error
}

// Open connects to the configured backend and applies migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	var (
		b    backend
		name string
		err  error
	)
	if IsPostgresURL(cfg.DatabaseURL) {
		name = BackendPostgres
		b, err = openPostgres(ctx, cfg)
	} else {
		name = BackendSQLite
		b, err = openSQLite(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{backend: b, name: name, clock: newClock(cfg.Clock), stopClock: func() {}}
	if name == BackendPostgres {
		if err := s.clock.sync(ctx, s.databaseNow); err != nil {
			_ = b.close()
			return nil, err
		}
		log := cfg.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		var cctx context.Context
		cctx, s.stopClock = context.WithCancel(context.WithoutCancel(ctx))
		go s.clock.keepSynced(cctx, log, s.databaseNow)
	}
	s.group = newGroupCommitter(s)
	return s, nil
}

// IsPostgresURL reports whether u selects the PostgreSQL backend.
func IsPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// Collectors returns the store's metrics.
func (s *Store) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.group.batchSize, s.group.commitSecs}
}

// Backend returns BackendSQLite or BackendPostgres.
func (s *Store) Backend() string { return s.name }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.backend.reader().queryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("pinging database: %w", err)
	}
	return nil
}

// Close stops the group committer and closes every connection.
func (s *Store) Close() error {
	s.stopClock()
	s.group.close()
	return s.backend.close()
}

// Tx is a database transaction. Domain writes hang off it so that a state
// change and the jobs it enqueues commit together.
type Tx struct {
	q     querier
	h     txHandle
	store *Store
	heads map[string]FlowHead // FlowStage answers in this transaction

	// deferred collects inserted logs and jobs of a whole group and writes
	// them in a few multi-row statements before the commit.
	deferred         bool
	logArgs, jobArgs []any
}

// InTx runs fn in its own transaction, committing if fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	h, err := s.backend.begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	tx := &Tx{q: h, h: h, store: s}
	if err := fn(tx); err != nil {
		_ = h.rollback(ctx)
		return err
	}
	if err := h.commit(ctx); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// Submit runs fn inside a shared transaction together with other concurrent
// submissions (group commit) and returns once that transaction is durable.
// An error from fn undoes only fn's changes and is returned to its caller.
// fn may run more than once (the group is run again when a submission
// fails), so it must only write through tx.
func (s *Store) Submit(ctx context.Context, fn func(tx *Tx) error) error {
	return s.group.submit(ctx, fn)
}

// databaseNow reads the database server's clock (PostgreSQL).
func (s *Store) databaseNow(ctx context.Context) (time.Time, error) {
	var us int64
	err := s.backend.reader().queryRow(ctx, `SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT`).Scan(&us)
	return time.UnixMicro(us), err
}

// FromMillis converts a stored timestamp.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// queryCounts runs a query returning (label, count) rows.
func (s *Store) queryCounts(ctx context.Context, q string, args ...any) (map[string]int64, error) {
	rs, err := s.backend.reader().query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]int64{}
	for rs.Next() {
		var k string
		var n int64
		if err := rs.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rs.Err()
}

// collect runs a query and scans every row with scan.
func collect[T any](ctx context.Context, q querier, what string, scan func(row) (T, error), query string, args ...any) ([]T, error) {
	rs, err := q.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rs.Close()
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/plugboard/plugboard/migrations"
)

// SQLiteFile is the database file name inside the data directory.
const SQLiteFile = "plugboard.db"

type sqliteBackend struct {
	w  *sql.DB // exactly one connection: SQLite has one writer at a time
	r  *sql.DB // read-only pool
	ws *stmtCache
	rs *stmtCache

	unlock func() // releases the data directory
}

func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	// Larger pages: fewer WAL frames (and write calls) per commit. Takes
	// effect when the database file is created.
	q.Add("_pragma", "page_size(16384)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: a commit is on disk before we answer 2xx.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Statement journals (a multi-row insert may have to undo itself) and
	// temporary tables in memory, not in temporary files.
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

func openSQLite(ctx context.Context, cfg Config) (backend, error) {
	dir := cfg.DataDir
	if dir == "" {
		dir = "data"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory %s: %w", dir, err)
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	b, err := openSQLiteFiles(ctx, cfg, filepath.Join(dir, SQLiteFile))
	if err != nil {
		unlock()
		return nil, err
	}
	b.unlock = unlock
	return b, nil
}

func openSQLiteFiles(ctx context.Context, cfg Config, path string) (*sqliteBackend, error) {
	w, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := migrate(ctx, goose.DialectSQLite3, w, migrations.SQLite, "sqlite"); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("opening read pool on %s: %w", path, err)
	}
	n := cfg.ReadConns
	if n <= 0 {
		n = 4
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &sqliteBackend{w: w, r: r, ws: newStmtCache(w), rs: newStmtCache(r)}, nil
}

func (b *sqliteBackend) writer() querier { return sqlDB{b.w, b.ws} }
func (b *sqliteBackend) reader() querier { return sqlDB{b.r, b.rs} }

func (b *sqliteBackend) begin(ctx context.Context) (txHandle, error) {
	tx, err := b.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqlTx{tx, b.ws}, nil
}

func (b *sqliteBackend) close() error {
	b.rs.close()
	b.ws.close()
	err := errors.Join(b.r.Close(), b.w.Close())
	if b.unlock != nil {
		b.unlock()
	}
	return err
}

func (b *sqliteBackend) isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// sqlDB and sqlTx adapt database/sql to querier. Statements are prepared
// once and reused: SQLite spends most of a small statement's time parsing.
type sqlDB struct {
	db    *sql.DB
	cache *stmtCache
}

func (d sqlDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	st, err := d.cache.get(ctx, q)
	if err != nil {
		return 0, err
	}
	var res sql.Result
	if st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = d.db.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d sqlDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	st, err := d.cache.get(ctx, q)
	if err != nil {
		return nil, err
	}
	var r *sql.Rows
	if st != nil {
		r, err = st.QueryContext(ctx, args...)
	} else {
		r, err = d.db.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (d sqlDB) queryRow(ctx context.Context, q string, args ...any) row {
	st, err := d.cache.get(ctx, q)
	if err != nil {
		return errRow{err}
	}
	if st == nil {
		return d.db.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type sqlTx struct {
	tx    *sql.Tx
	cache *stmtCache
}

// stmt returns the prepared statement for q bound to the transaction, or
// nil to run q unprepared.
func (t sqlTx) stmt(ctx context.Context, q string) *sql.Stmt {
	if st := t.cache.lookup(q); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	return nil
}

func (t sqlTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if st := t.stmt(ctx, q); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = t.tx.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t sqlTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	var r *sql.Rows
	var err error
	if st := t.stmt(ctx, q); st != nil {
		r, err = st.QueryContext(ctx, args...)
	} else {
		r, err = t.tx.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

func (t sqlTx) queryRow(ctx context.Context, q string, args ...any) row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

func (t sqlTx) commit(ctx context.Context) error {
	err := t.tx.Commit()
	t.cache.prepareWanted(ctx)
	return err
}
func (t sqlTx) rollback(context.Context) error { return t.tx.Rollback() }

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the statement cache; statements built for a
// varying number of rows could otherwise grow it without end.
const maxCachedStmts = 512

// stmtCache keeps prepared statements by SQL text.
//
// On the single writer connection a statement cannot be prepared while a
// transaction holds the connection, so a statement first met inside a
// transaction runs unprepared and is prepared once the transaction ends.
type stmtCache struct {
	db   *sql.DB
	mu   sync.RWMutex
	m    map[string]*sql.Stmt
	want map[string]struct{}
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, want: map[string]struct{}{}}
}

// lookup returns a prepared statement without preparing one; a miss is
// remembered for prepareWanted.
func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[q]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	c.mu.Lock()
	if len(c.m)+len(c.want) < maxCachedStmts {
		c.want[q] = struct{}{}
	}
	c.mu.Unlock()
	return nil
}

// prepareWanted prepares the statements met inside transactions. Call it
// when no transaction holds the connection.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.RLock()
	n := len(c.want)
	c.mu.RUnlock()
	if n == 0 {
		return
	}
	c.mu.Lock()
	qs := make([]string, 0, len(c.want))
	for q := range c.want {
		qs = append(qs, q)
	}
	clear(c.want)
	c.mu.Unlock()
	for _, q := range qs {
		_, _ = c.get(ctx, q)
	}
}

// get returns the prepared statement for q, preparing it if need be, or
// nil when the cache is full (the caller runs q unprepared). No lock is
// held while preparing: on the single writer connection, preparing waits
// for the connection, whose holder may itself be looking up a statement.
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.RLock()
	st, full := c.m[q], len(c.m) >= maxCachedStmts
	c.mu.RUnlock()
	if st != nil || full {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if existing := c.m[q]; existing != nil {
		_ = st.Close()
		return existing, nil
	}
	c.m[q] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.m {
		_ = st.Close()
		delete(c.m, k)
	}
}

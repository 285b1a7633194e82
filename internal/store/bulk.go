package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// chunks are the row counts of multi-row inserts: a handful of statement
// shapes serve any number of rows and stay prepared.
var chunks = []int{64, 16, 4, 1}

var valuesSQL sync.Map // head + row count + style -> statement

// insertSQL builds a multi-row insert. With positional, parameters are
// plain "?": SQLite looks a named or numbered parameter up by a linear
// scan when binding, which is quadratic in a statement of hundreds.
func insertSQL(head string, cols, rows int, positional bool) string {
	key := fmt.Sprintf("%s/%d/%t", head, rows, positional)
	if q, ok := valuesSQL.Load(key); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(head)
	b.WriteString(" VALUES ")
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			if positional {
				b.WriteByte('?')
			} else {
				fmt.Fprintf(&b, "$%d", r*cols+c+1)
			}
		}
		b.WriteByte(')')
	}
	q := b.String()
	valuesSQL.Store(key, q)
	return q
}

// bulkInsert inserts rows of cols values each (args holds them in order).
func bulkInsert(ctx context.Context, q querier, positional bool, head string, cols int, args []any) error {
	rows := len(args) / cols
	for rows > 0 {
		n := 1
		for _, c := range chunks {
			if c <= rows {
				n = c
				break
			}
		}
		if _, err := q.exec(ctx, insertSQL(head, cols, n, positional), args[:n*cols]...); err != nil {
			return err
		}
		args = args[n*cols:]
		rows -= n
	}
	return nil
}

// flush writes the rows deferred by a group of submissions.
func (tx *Tx) flush(ctx context.Context) error {
	if err := bulkInsert(ctx, tx.q, tx.positional(), logCols, logColCount, tx.logArgs); err != nil {
		return fmt.Errorf("writing invocation logs: %w", err)
	}
	if err := bulkInsert(ctx, tx.q, tx.positional(), jobCols, 9, tx.jobArgs); err != nil {
		return fmt.Errorf("enqueueing jobs: %w", err)
	}
	return nil
}

// positional reports whether plain "?" parameters suit the backend.
func (tx *Tx) positional() bool { return tx.store.name == BackendSQLite }

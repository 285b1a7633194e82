package store

import (
	"context"
	"fmt"
)

// UnprocessedMessage is a message whose step failed for the last time (the
// dead-letter store). Message holds the step's job payload, so a retry
// enqueues exactly what failed, with the same idempotency key.
type UnprocessedMessage struct {
	ID          string
	FlowID      string
	OwnerID     string
	ComponentID string
	Attempts    int
	Error       string
	Message     []byte
	CreatedAt   int64
}

// PutUnprocessed stores m inside tx (replacing an earlier entry of the same
// message, should a step be dead-lettered twice after a crash).
func (tx *Tx) PutUnprocessed(ctx context.Context, m *UnprocessedMessage) error {
	m.CreatedAt = tx.store.nowMS()
	_, err := tx.q.exec(ctx,
		`INSERT INTO unprocessed_messages (id, flow_id, owner_id, component_id, attempts, error, message, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		 ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, error = excluded.error, message = excluded.message, created_at = excluded.created_at`,
		m.ID, m.FlowID, m.OwnerID, m.ComponentID, m.Attempts, m.Error, string(m.Message), m.CreatedAt)
	if err != nil {
		return fmt.Errorf("storing unprocessed message %s: %w", m.ID, err)
	}
	return nil
}

const unprocessedCols = `id, flow_id, owner_id, component_id, attempts, error, message, created_at`

func scanUnprocessed(r row) (*UnprocessedMessage, error) {
	m := &UnprocessedMessage{}
	var msg string
	if err := r.Scan(&m.ID, &m.FlowID, &m.OwnerID, &m.ComponentID, &m.Attempts, &m.Error, &msg, &m.CreatedAt); err != nil {
		return nil, notFound(err)
	}
	m.Message = []byte(msg)
	return m, nil
}

// UnprocessedFilter narrows ListUnprocessed.
type UnprocessedFilter struct {
	OwnerID string // "" for every owner
	FlowID  string
	After   string
	Limit   int
}

// ListUnprocessed lists dead-lettered messages in order.
func (s *Store) ListUnprocessed(ctx context.Context, f UnprocessedFilter) ([]*UnprocessedMessage, error) {
	return collect(ctx, s.backend.reader(), "listing unprocessed messages", scanUnprocessed,
		`SELECT `+unprocessedCols+` FROM unprocessed_messages
		  WHERE id > $1 AND ($2 = '' OR owner_id = $2) AND ($3 = '' OR flow_id = $3) ORDER BY id LIMIT $4`,
		f.After, f.OwnerID, f.FlowID, f.Limit)
}

// TakeUnprocessed deletes the owner's message inside tx and returns it, so a
// retry can enqueue it in the same transaction.
func (tx *Tx) TakeUnprocessed(ctx context.Context, ownerID, id string) (*UnprocessedMessage, error) {
	m, err := scanUnprocessed(tx.q.queryRow(ctx,
		`SELECT `+unprocessedCols+` FROM unprocessed_messages WHERE id = $1 AND ($2 = '' OR owner_id = $2)`, id, ownerID))
	if err != nil {
		return nil, fmt.Errorf("loading unprocessed message %s: %w", id, err)
	}
	n, err := tx.q.exec(ctx, `DELETE FROM unprocessed_messages WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("deleting unprocessed message %s: %w", id, err)
	}
	if n == 0 { // a concurrent retry took it
		return nil, fmt.Errorf("taking unprocessed message %s: %w", id, ErrNotFound)
	}
	return m, nil
}

// DeleteUnprocessed removes the owner's message.
func (s *Store) DeleteUnprocessed(ctx context.Context, ownerID, id string) error {
	n, err := s.backend.writer().exec(ctx,
		`DELETE FROM unprocessed_messages WHERE id = $1 AND ($2 = '' OR owner_id = $2)`, id, ownerID)
	if err != nil {
		return fmt.Errorf("deleting unprocessed message %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("deleting unprocessed message %s: %w", id, ErrNotFound)
	}
	return nil
}

// CountUnprocessed counts dead-lettered messages (for metrics).
func (s *Store) CountUnprocessed(ctx context.Context) (int64, error) {
	var n int64
	if err := s.backend.reader().queryRow(ctx, `SELECT COUNT(*) FROM unprocessed_messages`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting unprocessed messages: %w", err)
	}
	return n, nil
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// WebhookReply is what a core.Response step answers to a webhook that
// waits for its run.
type WebhookReply struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// PutWebhookReply stores the reply of the run correlationID unless the run
// already has one (the first Response wins). It reports whether r was kept.
func (s *Store) PutWebhookReply(ctx context.Context, correlationID string, r WebhookReply) (bool, error) {
	h, err := json.Marshal(r.Headers)
	if err != nil {
		return false, fmt.Errorf("storing webhook reply: %w", err)
	}
	var n int64
	err = s.Submit(ctx, func(tx *Tx) error {
		var err error
		n, err = tx.q.exec(ctx,
			`INSERT INTO webhook_replies (correlation_id, status, headers, body, created_at) VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (correlation_id) DO NOTHING`,
			correlationID, r.Status, string(h), r.Body, tx.store.nowMS())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("storing webhook reply of %s: %w", correlationID, err)
	}
	return n == 1, nil
}

// TakeWebhookReply returns and deletes the reply of run correlationID, or
// ErrNotFound when there is none yet.
func (s *Store) TakeWebhookReply(ctx context.Context, correlationID string) (WebhookReply, error) {
	var r WebhookReply
	var h string
	err := s.backend.reader().queryRow(ctx,
		`SELECT status, headers, body FROM webhook_replies WHERE correlation_id = $1`, correlationID).Scan(&r.Status, &h, &r.Body)
	if err != nil {
		return r, notFound(err)
	}
	if err := json.Unmarshal([]byte(h), &r.Headers); err != nil {
		return r, fmt.Errorf("reading webhook reply of %s: %w", correlationID, err)
	}
	if _, err := s.backend.writer().exec(ctx, `DELETE FROM webhook_replies WHERE correlation_id = $1`, correlationID); err != nil {
		return r, fmt.Errorf("taking webhook reply of %s: %w", correlationID, err)
	}
	return r, nil
}

// DeleteWebhookRepliesBefore removes replies nobody took before cutoff.
func (s *Store) DeleteWebhookRepliesBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.backend.writer().exec(ctx, `DELETE FROM webhook_replies WHERE created_at < $1`, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("pruning webhook replies: %w", err)
	}
	return n, nil
}

package store

import (
	"context"
	"fmt"
)

// SystemWebhook is a URL subscribed to a system event ("*" for every
// event). Secret is the secret that signs the deliveries, sealed by the
// vault (rows from before secrets were encrypted hold it in clear until
// the next start seals it); the API shows it only once, when created.
type SystemWebhook struct {
	ID        string
	Event     string
	URL       string
	Secret    string
	CreatedAt int64
}

const systemWebhookCols = `id, event, url, secret, created_at`

func scanSystemWebhook(r row) (*SystemWebhook, error) {
	w := &SystemWebhook{}
	if err := r.Scan(&w.ID, &w.Event, &w.URL, &w.Secret, &w.CreatedAt); err != nil {
		return nil, notFound(err)
	}
	return w, nil
}

// CreateSystemWebhook inserts w, setting its creation time.
func (s *Store) CreateSystemWebhook(ctx context.Context, w *SystemWebhook) error {
	w.CreatedAt = s.nowMS()
	_, err := s.backend.writer().exec(ctx,
		`INSERT INTO system_webhooks (`+systemWebhookCols+`) VALUES ($1, $2, $3, $4, $5)`,
		w.ID, w.Event, w.URL, w.Secret, w.CreatedAt)
	if err != nil {
		return fmt.Errorf("creating system webhook: %w", err)
	}
	return nil
}

// SystemWebhook loads one subscription.
func (s *Store) SystemWebhook(ctx context.Context, id string) (*SystemWebhook, error) {
	w, err := scanSystemWebhook(s.backend.reader().queryRow(ctx,
		`SELECT `+systemWebhookCols+` FROM system_webhooks WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("loading system webhook %s: %w", id, err)
	}
	return w, nil
}

// ListSystemWebhooks lists subscriptions in id order, after the cursor.
func (s *Store) ListSystemWebhooks(ctx context.Context, after string, limit int) ([]*SystemWebhook, error) {
	return collect(ctx, s.backend.reader(), "listing system webhooks", scanSystemWebhook,
		`SELECT `+systemWebhookCols+` FROM system_webhooks WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

// SystemWebhooks reads every subscription inside tx, so that events are
// matched against the subscriptions the transaction sees.
func (tx *Tx) SystemWebhooks(ctx context.Context) ([]*SystemWebhook, error) {
	return collect(ctx, tx.q, "reading system webhooks", scanSystemWebhook,
		`SELECT `+systemWebhookCols+` FROM system_webhooks ORDER BY id`)
}

// ReplaceSystemWebhookSecret sets the secret of subscription id to
// secret if it still is old, and reports whether it was.
func (tx *Tx) ReplaceSystemWebhookSecret(ctx context.Context, id, old, secret string) (bool, error) {
	n, err := tx.q.exec(ctx, `UPDATE system_webhooks SET secret = $1 WHERE id = $2 AND secret = $3`, secret, id, old)
	if err != nil {
		return false, fmt.Errorf("replacing the secret of system webhook %s: %w", id, err)
	}
	return n == 1, nil
}

// DeleteSystemWebhook removes a subscription and its delivery log. Its
// queued deliveries fail when they next run.
func (s *Store) DeleteSystemWebhook(ctx context.Context, id string) error {
	n, err := s.backend.writer().exec(ctx, `DELETE FROM system_webhooks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("deleting system webhook %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("deleting system webhook %s: %w", id, ErrNotFound)
	}
	return nil
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryRetrying  = "retrying"
	DeliveryFailed    = "failed"
)

// SystemWebhookDelivery is the log of one event sent to one subscription.
type SystemWebhookDelivery struct {
	ID             string
	SubscriptionID string
	Event          string
	Status         string
	Attempts       int
	LastStatusCode int
	LastError      string
	CreatedAt      int64
	UpdatedAt      int64
}

const deliveryCols = `id, subscription_id, event, status, attempts, last_status_code, last_error, created_at, updated_at`

func scanDelivery(r row) (*SystemWebhookDelivery, error) {
	d := &SystemWebhookDelivery{}
	if err := r.Scan(&d.ID, &d.SubscriptionID, &d.Event, &d.Status, &d.Attempts, &d.LastStatusCode, &d.LastError,
		&d.CreatedAt, &d.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	return d, nil
}

// InsertSystemWebhookDelivery logs a new, pending delivery inside tx (the
// transaction that enqueues its job).
func (tx *Tx) InsertSystemWebhookDelivery(ctx context.Context, d *SystemWebhookDelivery) error {
	d.CreatedAt = tx.store.nowMS()
	d.UpdatedAt = d.CreatedAt
	d.Status = DeliveryPending
	_, err := tx.q.exec(ctx,
		`INSERT INTO system_webhook_deliveries (`+deliveryCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.SubscriptionID, d.Event, d.Status, d.Attempts, d.LastStatusCode, d.LastError, d.CreatedAt, d.UpdatedAt)
	if err != nil {
		return fmt.Errorf("logging system webhook delivery: %w", err)
	}
	return nil
}

// RecordSystemWebhookAttempt writes the outcome of a delivery attempt
// inside tx. A delivery whose subscription was deleted is gone: nothing
// is written.
func (tx *Tx) RecordSystemWebhookAttempt(ctx context.Context, id, status string, attempts, statusCode int, lastError string) error {
	_, err := tx.q.exec(ctx,
		`UPDATE system_webhook_deliveries SET status = $1, attempts = $2, last_status_code = $3, last_error = $4, updated_at = $5
		  WHERE id = $6`, status, attempts, statusCode, lastError, tx.store.nowMS(), id)
	if err != nil {
		return fmt.Errorf("recording attempt of delivery %s: %w", id, err)
	}
	return nil
}

// ListSystemWebhookDeliveries lists a subscription's deliveries, newest
// first; before is the id the page starts after ("" for the newest).
func (s *Store) ListSystemWebhookDeliveries(ctx context.Context, subscriptionID, before string, limit int) ([]*SystemWebhookDelivery, error) {
	return collect(ctx, s.backend.reader(), "listing system webhook deliveries", scanDelivery,
		`SELECT `+deliveryCols+` FROM system_webhook_deliveries
		  WHERE subscription_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`,
		subscriptionID, before, limit)
}

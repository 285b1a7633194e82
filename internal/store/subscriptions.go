package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Subscription is one webhook-subscription trigger (component.Subscriber)
// of a flow, as the store keeps it between subscribe and unsubscribe.
type Subscription struct {
	FlowID      string
	ComponentID string
	OwnerID     string
	// Gone is true once the component left its flow or the flow was
	// deleted: the subscription is to be removed, then the row.
	Gone bool
	// Type, Properties and WebhookURL are what the subscription was made
	// with, so it can be removed even when the flow is gone.
	Type       string
	Properties json.RawMessage
	WebhookURL string
	// State is what the provider answered; nil while not subscribed.
	State json.RawMessage
	// DueAt is when a node should next look at the row; zero when nothing
	// is to be done.
	DueAt time.Time
	// LeaseUntil, when set, is how long the node that claimed the row
	// may record what the provider did.
	LeaseUntil time.Time
	Attempts   int
	LastError  string
	// Stage is the flow's stage, "" when the flow is gone (read, not
	// written).
	Stage string
}

// Subscribed reports whether the provider holds a subscription.
func (s *Subscription) Subscribed() bool { return s.State != nil }

// Wanted reports whether the trigger should be subscribed: its flow runs
// and still has it.
func (s *Subscription) Wanted() bool { return !s.Gone && s.Stage == StageRunning }

const subscriptionCols = `s.flow_id, s.component_id, s.owner_id, s.gone, s.type, s.properties, s.webhook_url, s.state,
	s.due_at, s.lease_until, s.attempts, s.last_error, COALESCE(f.stage, '')`

func scanSubscription(r row) (*Subscription, error) {
	s := &Subscription{}
	var props, state *string
	var due, lease *int64
	var gone int
	if err := r.Scan(&s.FlowID, &s.ComponentID, &s.OwnerID, &gone, &s.Type, &props, &s.WebhookURL, &state,
		&due, &lease, &s.Attempts, &s.LastError, &s.Stage); err != nil {
		return nil, err
	}
	s.Gone = gone != 0
	if props != nil {
		s.Properties = json.RawMessage(*props)
	}
	if state != nil {
		s.State = json.RawMessage(*state)
	}
	if due != nil {
		s.DueAt = time.UnixMilli(*due)
	}
	if lease != nil {
		s.LeaseUntil = time.UnixMilli(*lease)
	}
	return s, nil
}

// DueSubscriptions lists the subscriptions due by now that no node holds,
// the longest due first.
func (s *Store) DueSubscriptions(ctx context.Context, now time.Time, limit int) ([]*Subscription, error) {
	return collect(ctx, s.backend.reader(), "listing due subscriptions", scanSubscription,
		`SELECT `+subscriptionCols+` FROM subscriptions s LEFT JOIN flows f ON f.id = s.flow_id
		 WHERE s.due_at <= $1 AND (s.lease_until IS NULL OR s.lease_until <= $1) ORDER BY s.due_at LIMIT $2`, now.UnixMilli(), limit)
}

// Subscriptions lists the subscription triggers of a flow by component id.
func (s *Store) Subscriptions(ctx context.Context, flowID string) ([]*Subscription, error) {
	return collect(ctx, s.backend.reader(), "listing subscriptions of flow "+flowID, scanSubscription,
		`SELECT `+subscriptionCols+` FROM subscriptions s LEFT JOIN flows f ON f.id = s.flow_id
		 WHERE s.flow_id = $1 ORDER BY s.component_id`, flowID)
}

// MoveSubscription writes to over from and reports whether it could.
//
// When from holds a lease (from.LeaseUntil is set, by a claim), it writes
// only while the row still holds that lease and from's state; if the due
// time changed meanwhile (the flow was started or stopped), the row is
// left due at once instead of at to.DueAt. Otherwise it writes only if
// the row still holds from's due time and state and no live lease. A
// zero to.DueAt settles the row; a zero to.LeaseUntil frees it.
func (tx *Tx) MoveSubscription(ctx context.Context, from, to *Subscription) (bool, error) {
	now := tx.store.nowMS()
	set := `UPDATE subscriptions SET type = $1, properties = $2, webhook_url = $3, state = $4, attempts = $5, last_error = $6,
		 lease_until = $7, `
	args := []any{to.Type, nullJSON(to.Properties), to.WebhookURL, nullJSON(to.State), to.Attempts, to.LastError, nullTime(to.LeaseUntil)}
	var q string
	if !from.LeaseUntil.IsZero() {
		q = set + `due_at = CASE WHEN due_at IS NOT DISTINCT FROM CAST($8 AS BIGINT) THEN CAST($9 AS BIGINT) ELSE CAST($10 AS BIGINT) END
		 WHERE flow_id = $11 AND component_id = $12 AND lease_until = $13 AND state IS NOT DISTINCT FROM $14`
		args = append(args, nullTime(from.DueAt), nullTime(to.DueAt), now, from.FlowID, from.ComponentID,
			from.LeaseUntil.UnixMilli(), nullJSON(from.State))
	} else {
		q = set + `due_at = $8
		 WHERE flow_id = $9 AND component_id = $10 AND (lease_until IS NULL OR lease_until <= $11)
		 AND due_at IS NOT DISTINCT FROM $12 AND state IS NOT DISTINCT FROM $13`
		args = append(args, nullTime(to.DueAt), from.FlowID, from.ComponentID, now, nullTime(from.DueAt), nullJSON(from.State))
	}
	n, err := tx.q.exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("moving subscription %s of flow %s: %w", from.ComponentID, from.FlowID, err)
	}
	return n == 1, nil
}

// DropSubscription deletes from's row, if it still holds from's due time
// and state and no live lease.
func (tx *Tx) DropSubscription(ctx context.Context, from *Subscription) (bool, error) {
	n, err := tx.q.exec(ctx, `DELETE FROM subscriptions WHERE flow_id = $1 AND component_id = $2
		 AND due_at IS NOT DISTINCT FROM $3 AND state IS NOT DISTINCT FROM $4 AND (lease_until IS NULL OR lease_until <= $5)`,
		from.FlowID, from.ComponentID, nullTime(from.DueAt), nullJSON(from.State), tx.store.nowMS())
	if err != nil {
		return false, fmt.Errorf("dropping subscription %s of flow %s: %w", from.ComponentID, from.FlowID, err)
	}
	return n == 1, nil
}

func nullJSON(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// putSubscriptions makes the subscription triggers of flow f match
// f.Subscribers: each is looked at again at once (its properties may have
// changed); those removed are marked gone, and dropped at once when they
// hold no subscription.
func (tx *Tx) putSubscriptions(ctx context.Context, f *Flow) error {
	existing, err := collect(ctx, tx.q, "reading subscriptions of flow "+f.ID, func(r row) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT component_id FROM subscriptions WHERE flow_id = $1`, f.ID)
	if err != nil {
		return err
	}
	now := tx.store.nowMS()
	for _, id := range existing {
		if slices.Contains(f.Subscribers, id) {
			_, err = tx.q.exec(ctx, `UPDATE subscriptions SET due_at = $1, gone = 0 WHERE flow_id = $2 AND component_id = $3`, now, f.ID, id)
		} else {
			err = tx.goneSubscription(ctx, f.ID, id)
		}
		if err != nil {
			return fmt.Errorf("updating subscription %s of flow %s: %w", id, f.ID, err)
		}
	}
	for _, id := range f.Subscribers {
		if slices.Contains(existing, id) {
			continue
		}
		if _, err := tx.q.exec(ctx, `INSERT INTO subscriptions (flow_id, component_id, owner_id, due_at) VALUES ($1, $2, $3, $4)`,
			f.ID, id, f.OwnerID, now); err != nil {
			return fmt.Errorf("adding subscription %s of flow %s: %w", id, f.ID, err)
		}
	}
	return nil
}

// goneSubscription marks the subscriptions of a flow (or one of them, when
// componentID is set) as to be removed: those that hold none, and that no
// node is subscribing right now, are dropped.
func (tx *Tx) goneSubscription(ctx context.Context, flowID, componentID string) error {
	if _, err := tx.q.exec(ctx, `DELETE FROM subscriptions WHERE flow_id = $1 AND ($2 = '' OR component_id = $2) AND state IS NULL
		 AND (lease_until IS NULL OR lease_until <= $3)`,
		flowID, componentID, tx.store.nowMS()); err != nil {
		return err
	}
	_, err := tx.q.exec(ctx, `UPDATE subscriptions SET gone = 1, due_at = $1 WHERE flow_id = $2 AND ($3 = '' OR component_id = $3)`,
		tx.store.nowMS(), flowID, componentID)
	return err
}

// recheckSubscriptions makes the subscriptions of a flow due at once: its
// stage changed.
func (tx *Tx) recheckSubscriptions(ctx context.Context, flowID string) error {
	if _, err := tx.q.exec(ctx, `UPDATE subscriptions SET due_at = $1, attempts = 0 WHERE flow_id = $2`, tx.store.nowMS(), flowID); err != nil {
		return fmt.Errorf("rechecking subscriptions of flow %s: %w", flowID, err)
	}
	return nil
}

// RecheckMovedSubscriptions makes due the subscriptions made for an
// inbound URL that does not start with prefix (the public URL changed), so
// that they are made again at the new one.
func (s *Store) RecheckMovedSubscriptions(ctx context.Context, prefix string) error {
	_, err := s.backend.writer().exec(ctx, `UPDATE subscriptions SET due_at = $1
		 WHERE state IS NOT NULL AND (due_at IS NULL OR due_at > $1) AND substr(webhook_url, 1, $2) <> $3`,
		s.nowMS(), len(prefix), prefix)
	if err != nil {
		return fmt.Errorf("rechecking subscriptions made for another URL: %w", err)
	}
	return nil
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// PollRow is one polling trigger (component.Poller) of a flow.
type PollRow struct {
	FlowID      string
	ComponentID string
	// State is what the poller kept after its last good poll; nil before
	// the first.
	State json.RawMessage
	// NextPollAt is when the trigger polls next; zero to poll at once.
	NextPollAt time.Time
	// LastError is the error of the last poll, "" after a good one.
	LastError string
}

const pollCols = `p.flow_id, p.component_id, p.state, p.next_poll_at, p.last_error`

func scanPoll(r row) (PollRow, error) {
	var pr PollRow
	var state *string
	var next *int64
	if err := r.Scan(&pr.FlowID, &pr.ComponentID, &state, &next, &pr.LastError); err != nil {
		return pr, err
	}
	if state != nil {
		pr.State = json.RawMessage(*state)
	}
	if next != nil {
		pr.NextPollAt = time.UnixMilli(*next)
	}
	return pr, nil
}

// DuePolls lists the polling triggers of running flows that are due by
// now or have never polled since they were saved or started, the longest
// due first.
func (s *Store) DuePolls(ctx context.Context, now time.Time, limit int) ([]PollRow, error) {
	return collect(ctx, s.backend.reader(), "listing due polls", scanPoll,
		`SELECT `+pollCols+` FROM polls p JOIN flows f ON f.id = p.flow_id
		 WHERE f.stage = $1 AND (p.next_poll_at IS NULL OR p.next_poll_at <= $2)
		 ORDER BY p.next_poll_at NULLS FIRST LIMIT $3`, StageRunning, now.UnixMilli(), limit)
}

// Polls lists the polling triggers of a flow by component id.
func (s *Store) Polls(ctx context.Context, flowID string) ([]PollRow, error) {
	return collect(ctx, s.backend.reader(), "listing polls of flow "+flowID, scanPoll,
		`SELECT `+pollCols+` FROM polls p WHERE p.flow_id = $1 ORDER BY p.component_id`, flowID)
}

// MovePoll records a poll of from's trigger: its next poll at next, the
// state to keep and the poll's error ("" for none), but only if the row
// still holds the next poll time and state of from. It reports false when
// another node recorded a poll first (or the flow was started again or
// changed): the caller then writes nothing of its poll.
func (tx *Tx) MovePoll(ctx context.Context, from PollRow, next time.Time, state json.RawMessage, lastError string) (bool, error) {
	var fromNext, fromState, newState any
	if !from.NextPollAt.IsZero() {
		fromNext = from.NextPollAt.UnixMilli()
	}
	if from.State != nil {
		fromState = string(from.State)
	}
	if state != nil {
		newState = string(state)
	}
	// The state is compared too: a start between two nodes' reads sets
	// next_poll_at back to NULL, and only the state tells the later read
	// from the earlier one.
	n, err := tx.q.exec(ctx, `UPDATE polls SET next_poll_at = $1, state = $2, last_error = $3
		 WHERE flow_id = $4 AND component_id = $5
		 AND next_poll_at IS NOT DISTINCT FROM $6 AND state IS NOT DISTINCT FROM $7`,
		next.UnixMilli(), newState, lastError, from.FlowID, from.ComponentID, fromNext, fromState)
	if err != nil {
		return false, fmt.Errorf("moving poll %s of flow %s: %w", from.ComponentID, from.FlowID, err)
	}
	return n == 1, nil
}

// putPolls makes the polling triggers of flow f match f.Pollers. Triggers
// that stay keep their state (so no item is emitted again) and poll at
// once with the new document; those removed lose theirs.
func (tx *Tx) putPolls(ctx context.Context, f *Flow) error {
	existing, err := collect(ctx, tx.q, "reading polls of flow "+f.ID, func(r row) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT component_id FROM polls WHERE flow_id = $1`, f.ID)
	if err != nil {
		return err
	}
	for _, id := range existing {
		q := `DELETE FROM polls WHERE flow_id = $1 AND component_id = $2`
		if slices.Contains(f.Pollers, id) {
			q = `UPDATE polls SET next_poll_at = NULL WHERE flow_id = $1 AND component_id = $2`
		}
		if _, err := tx.q.exec(ctx, q, f.ID, id); err != nil {
			return fmt.Errorf("updating poll %s of flow %s: %w", id, f.ID, err)
		}
	}
	for _, id := range f.Pollers {
		if slices.Contains(existing, id) {
			continue
		}
		if _, err := tx.q.exec(ctx, `INSERT INTO polls (flow_id, component_id) VALUES ($1, $2)`, f.ID, id); err != nil {
			return fmt.Errorf("adding poll %s of flow %s: %w", id, f.ID, err)
		}
	}
	return nil
}

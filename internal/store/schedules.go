package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ScheduleTriggerType is the component type whose instances are kept in
// the schedules table (the core connector's Schedule; a test keeps the two
// equal).
const ScheduleTriggerType = "core.Schedule"

// ScheduleRow is one core.Schedule trigger of a running flow.
type ScheduleRow struct {
	FlowID      string
	ComponentID string
	// NextRunAt is the next run to fire; zero when the schedule has not
	// been planned since the flow was saved or started.
	NextRunAt time.Time
}

// DueSchedules lists the schedules of running flows that are due by now
// or not planned yet, the longest due first.
func (s *Store) DueSchedules(ctx context.Context, now time.Time, limit int) ([]ScheduleRow, error) {
	return collect(ctx, s.backend.reader(), "listing due schedules", func(r row) (ScheduleRow, error) {
		var sr ScheduleRow
		var next *int64
		if err := r.Scan(&sr.FlowID, &sr.ComponentID, &next); err != nil {
			return sr, err
		}
		if next != nil {
			sr.NextRunAt = time.UnixMilli(*next)
		}
		return sr, nil
	}, `SELECT s.flow_id, s.component_id, s.next_run_at FROM schedules s JOIN flows f ON f.id = s.flow_id
		 WHERE f.stage = $1 AND (s.next_run_at IS NULL OR s.next_run_at <= $2)
		 ORDER BY s.next_run_at NULLS FIRST LIMIT $3`, StageRunning, now.UnixMilli(), limit)
}

// MoveSchedule sets the next run of a schedule to next if it still is
// from (zero: not planned). It reports false when another node moved it
// first (or the flow changed): the caller then fires nothing.
func (tx *Tx) MoveSchedule(ctx context.Context, flowID, componentID string, from, next time.Time) (bool, error) {
	var n int64
	var err error
	if from.IsZero() {
		n, err = tx.q.exec(ctx, `UPDATE schedules SET next_run_at = $1 WHERE flow_id = $2 AND component_id = $3 AND next_run_at IS NULL`,
			next.UnixMilli(), flowID, componentID)
	} else {
		n, err = tx.q.exec(ctx, `UPDATE schedules SET next_run_at = $1 WHERE flow_id = $2 AND component_id = $3 AND next_run_at = $4`,
			next.UnixMilli(), flowID, componentID, from.UnixMilli())
	}
	if err != nil {
		return false, fmt.Errorf("moving schedule %s of flow %s: %w", componentID, flowID, err)
	}
	return n == 1, nil
}

// putSchedules makes the schedules of flow f match its components, every
// one unplanned (a changed schedule plans anew from now).
func (tx *Tx) putSchedules(ctx context.Context, f *Flow, comps map[string]docComponent) error {
	if _, err := tx.q.exec(ctx, `DELETE FROM schedules WHERE flow_id = $1`, f.ID); err != nil {
		return fmt.Errorf("removing schedules of flow %s: %w", f.ID, err)
	}
	for _, id := range slices.Sorted(maps.Keys(comps)) {
		if comps[id].Type != ScheduleTriggerType {
			continue
		}
		if _, err := tx.q.exec(ctx, `INSERT INTO schedules (flow_id, component_id) VALUES ($1, $2)`, f.ID, id); err != nil {
			return fmt.Errorf("adding schedule %s of flow %s: %w", id, f.ID, err)
		}
	}
	return nil
}

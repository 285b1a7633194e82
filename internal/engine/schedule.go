package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/store"
)

// maxCatchUp bounds how many missed runs of one schedule fire one by one
// (catchUp); older ones fold into the first.
const maxCatchUp = 1000

// maxCatchUpScan bounds how many missed runs are counted.
const maxCatchUpScan = 1_000_000

// schedules fires due core.Schedule runs until ctx ends. Every node runs
// it; a run fires in the transaction that moves its schedule on from the
// time that node read, so each fires once.
func (e *Engine) schedules(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(e.cfg.SchedulePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rows, err := e.store.DueSchedules(ctx, e.store.Now(), 100)
		if err != nil {
			if ctx.Err() == nil {
				e.log.LogAttrs(ctx, slog.LevelWarn, "listing due schedules", slog.String("error", err.Error()))
			}
			continue
		}
		for _, sr := range rows {
			err := e.tick(ctx, sr)
			if err == nil || errors.Is(err, errTaken) || errors.Is(err, errStaleFlow) || errors.Is(err, ErrFlowNotRunning) || ctx.Err() != nil {
				continue // done, or the flow changed: its schedules are planned anew
			}
			e.log.LogAttrs(ctx, slog.LevelWarn, "firing schedule", slog.String("flow", sr.FlowID),
				slog.String("component", sr.ComponentID), slog.String("error", err.Error()))
			// A schedule that cannot fire (its flow no longer compiles, say)
			// tries again a minute later, not at every poll.
			retry := e.store.Now().Add(brokenPollRetry)
			if err := e.store.Submit(ctx, func(tx *store.Tx) error {
				_, err := tx.MoveSchedule(ctx, sr.FlowID, sr.ComponentID, sr.NextRunAt, retry)
				return err
			}); err != nil && ctx.Err() == nil {
				e.log.LogAttrs(ctx, slog.LevelWarn, "putting off a failing schedule", slog.String("error", err.Error()))
			}
		}
	}
}

// tick plans a schedule that has no next run, or fires its due run.
func (e *Engine) tick(ctx context.Context, sr store.ScheduleRow) error {
	cf, err := e.flows.recent(ctx, sr.FlowID)
	if err != nil {
		return err
	}
	n, ok := cf.compiled.Nodes[sr.ComponentID]
	if !ok {
		return nil // the flow changed; its schedules are being rewritten
	}
	ticker, ok := n.Component.(component.Ticker)
	if !ok {
		return fmt.Errorf("%s is not a schedule", n.Type)
	}
	props, err := nodeProps(n)
	if err != nil {
		return err
	}
	now := e.store.Now()
	if sr.NextRunAt.IsZero() {
		next, err := ticker.Next(props, now, time.Time{})
		if err != nil {
			next = now.Add(time.Hour) // a broken schedule must not spin; say why each hour
		}
		perr := e.store.Submit(ctx, func(tx *store.Tx) error {
			_, err := tx.MoveSchedule(ctx, sr.FlowID, sr.ComponentID, time.Time{}, next)
			return err
		})
		return errors.Join(err, perr)
	}
	due := sr.NextRunAt
	following, err := ticker.Next(props, due, due)
	if err != nil {
		return err
	}
	skipped := 0
	if !ticker.CatchUp(props) {
		// Fold runs missed while no node was up into one: the latest.
		for !following.After(now) {
			skipped++
			due = following
			if following, err = ticker.Next(props, due, due); err != nil {
				return err
			}
		}
	} else if !following.After(now) {
		// Fire missed runs one by one, oldest first, but only the last
		// maxCatchUp of them; older ones fold into the first.
		runs, total := []time.Time{due}, 1
		for at := following; !at.After(now) && total < maxCatchUpScan; total++ {
			if runs = append(runs, at); len(runs) > maxCatchUp {
				runs = runs[1:]
			}
			if at, err = ticker.Next(props, at, at); err != nil {
				return err
			}
		}
		if skipped = total - len(runs); skipped > 0 {
			due = runs[0]
			if following, err = ticker.Next(props, due, due); err != nil {
				return err
			}
		}
	}
	out := map[string]any{
		"scheduledAt": due.UTC().Format(timeFormat),
		"firedAt":     now.UTC().Format(timeFormat),
		"skipped":     float64(skipped),
	}
	_, err = e.acceptAll(ctx, cf, []Event{{FlowID: sr.FlowID, ComponentID: sr.ComponentID, Output: out}}, func(tx *store.Tx) error {
		moved, err := tx.MoveSchedule(ctx, sr.FlowID, sr.ComponentID, sr.NextRunAt, following)
		if err == nil && !moved {
			err = errTaken
		}
		return err
	})
	return err
}

// timeFormat is how trigger outputs write times: RFC 3339, UTC, ms.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// AppEvent is a named event the host product sends for one user.
type AppEvent struct {
	// OwnerID is the user whose flows the event starts; no other user's
	// flow ever starts from it.
	OwnerID string
	// Name is the event name the flows' core.OnAppEvent triggers take.
	Name string
	// Output is the trigger output, the same for every flow.
	Output any
}

// Run is one flow run an app event started.
type Run struct {
	FlowID        string
	ComponentID   string
	CorrelationID string
}

// appEventRounds is how often a flow that changes while an app event is
// being accepted is routed again through its new version.
const appEventRounds = 3

// AcceptAppEvent starts every running flow of ev.OwnerID whose
// core.OnAppEvent trigger takes ev.Name (one run per such trigger) and
// returns the runs, in flow order, once they are durable. No matching flow
// is not an error: the answer is empty.
//
// The first logs and jobs of all the runs commit in one group-committed
// submission: either all are durable or, with an error, none is. Which
// flows start is settled inside that transaction, so a flow that changes
// between the lookup and the commit never fails the others:
//   - stopped, deleted, or saved without this trigger (or with another
//     event name): not started, as if the event had come after the change;
//   - saved with other changes and still taking the event: routed again
//     through its new version and started, up to appEventRounds times; a
//     flow that changes every time is not started;
//   - started (or given the trigger) after the lookup: not started, as the
//     event came before it took events.
func (e *Engine) AcceptAppEvent(ctx context.Context, ev AppEvent) ([]Run, error) {
	targets, err := e.store.AppEventTriggers(ctx, ev.OwnerID, ev.Name)
	if err != nil {
		return nil, fmt.Errorf("accepting app event %q: %w", ev.Name, err)
	}
	runs := make([]*pendingRun, 0, len(targets))
	for _, t := range targets {
		r, err := e.prepareAppEvent(ctx, ev, Event{FlowID: t.FlowID, ComponentID: t.ComponentID, Output: ev.Output}, false)
		if err != nil {
			e.abandonAll(runs)
			return nil, err
		}
		if r != nil {
			runs = append(runs, r)
		}
	}
	for round := 1; ; round++ {
		if len(runs) == 0 {
			return []Run{}, nil
		}
		last := round == appEventRounds
		kept, changed, err := e.commitAppEvent(ctx, ev, runs, last)
		if err != nil {
			e.abandonAll(runs)
			return nil, fmt.Errorf("accepting app event %q: %w", ev.Name, err)
		}
		if kept != nil {
			out := make([]Run, 0, len(runs))
			for i, r := range runs {
				if changed[i] {
					e.log.LogAttrs(ctx, slog.LevelWarn, "app event skips a flow that keeps changing",
						slog.String("flow", r.ev.FlowID), slog.String("event", ev.Name))
				}
				if !kept[i] {
					e.abandon(r)
					e.flows.forget(r.ev.FlowID) // stopped or changed: read it again next time
					continue
				}
				e.started(r)
				out = append(out, Run{FlowID: r.ev.FlowID, ComponentID: r.ev.ComponentID, CorrelationID: r.meta.correlationID})
			}
			return out, nil
		}
		// Nothing was written: route the flows that changed again through
		// their current version and commit the whole event once more.
		next := make([]*pendingRun, 0, len(runs))
		for i, r := range runs {
			if !changed[i] {
				next = append(next, r)
				continue
			}
			e.abandon(r)
			nr, err := e.prepareAppEvent(ctx, ev, r.ev, true)
			if err != nil {
				e.abandonAll(next)
				e.abandonAll(runs[i+1:])
				return nil, err
			}
			if nr != nil {
				next = append(next, nr)
			}
		}
		runs = next
	}
}

// prepareAppEvent routes the event through the flow of ev. It returns nil
// without an error when that flow is not to be started: gone, stopped, no
// longer holding the trigger, or no longer compiling. fresh reads the flow
// from the store instead of the cache.
func (e *Engine) prepareAppEvent(ctx context.Context, app AppEvent, ev Event, fresh bool) (*pendingRun, error) {
	var cf *cachedFlow
	if !fresh {
		cf = e.flows.cached(ev.FlowID)
	}
	for {
		if cf == nil {
			var err error
			if cf, err = e.flows.get(ctx, ev.FlowID); err != nil {
				var ve *flow.ValidationError
				switch {
				case errors.Is(err, store.ErrNotFound):
					return nil, nil
				case errors.As(err, &ve), errors.Is(err, flow.ErrMalformed):
					e.log.LogAttrs(ctx, slog.LevelWarn, "app event skips a flow that no longer compiles",
						slog.String("flow", ev.FlowID), slog.String("event", app.Name), slog.String("error", err.Error()))
					return nil, nil
				}
				return nil, fmt.Errorf("accepting app event %q: %w", app.Name, err)
			}
			fresh = true
		}
		if cf.head.OwnerID != app.OwnerID {
			return nil, nil // never another user's flow
		}
		r, err := e.prepare(ctx, cf, ev)
		switch {
		case err == nil:
			return r, nil
		case !errors.Is(err, ErrFlowNotRunning) && !errors.Is(err, ErrNotTrigger):
			return nil, err
		case fresh:
			return nil, nil
		}
		cf = nil // the cached version may be older than the lookup: read it
	}
}

// commitAppEvent writes the runs whose flow, when the transaction commits,
// runs the version they were routed through and still takes the event;
// kept says which. changed marks the runs whose flow has a new version:
// unless this is the last round, nothing is written then, kept is nil and
// the caller routes those runs again; in the last round they are skipped.
func (e *Engine) commitAppEvent(ctx context.Context, ev AppEvent, runs []*pendingRun, last bool) (kept, changed []bool, err error) {
	err = e.store.Submit(ctx, func(tx *store.Tx) error {
		// Submit may run this more than once: decide afresh each time.
		kept, changed = make([]bool, len(runs)), make([]bool, len(runs))
		anyChanged := false
		for i, r := range runs {
			switch err := r.check(ctx, tx); {
			case errors.Is(err, errStaleFlow):
				changed[i], anyChanged = true, true
				continue
			case errors.Is(err, ErrFlowNotRunning), errors.Is(err, store.ErrNotFound):
				continue
			case err != nil:
				return err
			}
			ok, err := tx.HasAppEventTrigger(ctx, ev.OwnerID, ev.Name, r.ev.FlowID, r.ev.ComponentID)
			if err != nil {
				return err
			}
			kept[i] = ok
		}
		if anyChanged && !last {
			return errStaleFlow
		}
		for i, r := range runs {
			if kept[i] {
				if err := r.write(ctx, tx); err != nil {
					return err
				}
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errStaleFlow):
		return nil, changed, nil
	case err != nil:
		return nil, nil, err
	}
	return kept, changed, nil
}

func (e *Engine) abandonAll(runs []*pendingRun) {
	for _, r := range runs {
		e.abandon(r)
	}
}

package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/store"
)

// Event is one trigger event: the output of a trigger component.
type Event struct {
	FlowID      string
	ComponentID string
	Output      any
	// CorrelationID, when set, is the id of the run this event starts
	// (see NewCorrelationID); otherwise a fresh one is made.
	CorrelationID string
}

// Accept starts a flow run from a trigger event. It returns the run's
// correlation id once the event and the first jobs it causes are durable.
// A flow that is not running refuses the event with ErrFlowNotRunning.
func (e *Engine) Accept(ctx context.Context, ev Event) (string, error) {
	ids, err := e.acceptFlow(ctx, ev.FlowID, func(*cachedFlow) ([]Event, error) { return []Event{ev}, nil })
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

var errStaleFlow = errors.New("flow changed")

// acceptFlow starts a run per event that events makes of flow flowID, all
// in one submission, and returns their correlation ids. The compiled flow
// comes from the cache without a read; the transaction checks the stored
// version, and a stale cache is refreshed and events called again. A
// refusal (the flow is not running, events fails) is decided on the
// stored flow, never on a cached one: providers take some of them as
// "unsubscribe".
func (e *Engine) acceptFlow(ctx context.Context, flowID string, events func(*cachedFlow) ([]Event, error)) ([]string, error) {
	cf := e.flows.cached(flowID)
	if cf != nil && cf.head.Stage != store.StageRunning {
		cf = nil // maybe started since: read it again
	}
	for range 3 {
		read := cf == nil
		if read {
			var err error
			if cf, err = e.flows.get(ctx, flowID); err != nil {
				return nil, err
			}
			if cf.head.Stage != store.StageRunning {
				e.flows.forget(flowID) // read it again next time
				return nil, ErrFlowNotRunning
			}
		}
		evs, err := events(cf)
		if err != nil {
			if read {
				return nil, err
			}
			cf = nil // maybe changed since it was cached: read it again
			continue
		}
		ids, err := e.acceptAll(ctx, cf, evs, nil)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrFlowNotRunning) {
			e.flows.forget(flowID) // read it again next time
		}
		if !errors.Is(err, errStaleFlow) {
			return ids, err
		}
		cf = nil
	}
	return nil, fmt.Errorf("accepting event: flow %s keeps changing", flowID)
}

// acceptAll starts a run per event, all of one flow, in one submission,
// and returns their correlation ids. guard, when set, runs first in that
// submission (a poll or schedule moving on from what it read); its error
// writes nothing. Nothing is written when no event needs it.
func (e *Engine) acceptAll(ctx context.Context, cf *cachedFlow, evs []Event, guard func(tx *store.Tx) error) ([]string, error) {
	if len(evs) == 0 && guard == nil {
		return []string{}, nil
	}
	runs := make([]*pendingRun, 0, len(evs))
	for _, ev := range evs {
		r, err := e.prepare(ctx, cf, ev)
		if err != nil {
			e.abandonAll(runs)
			return nil, err
		}
		runs = append(runs, r)
	}
	err := e.store.Submit(ctx, func(tx *store.Tx) error {
		if guard != nil {
			if err := guard(tx); err != nil {
				return err
			}
		}
		if len(runs) > 0 {
			// One flow: its stage and version are checked once.
			if err := runs[0].check(ctx, tx); err != nil {
				return err
			}
		}
		for _, r := range runs {
			if err := r.write(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.abandonAll(runs)
		return nil, err
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		e.started(r)
		ids[i] = r.meta.correlationID
	}
	return ids, nil
}

// pendingRun is a trigger event routed through its flow: the logs and jobs
// of a new run, ready to commit, and the worker slots reserved for them.
type pendingRun struct {
	ev       Event
	version  int64 // of the flow the event was routed through
	meta     msgMeta
	plan     *plan
	jobs     []store.NewJob
	reserved int
}

// prepare routes ev through the compiled flow cf: inline components run,
// I/O components become jobs. Nothing is written yet.
func (e *Engine) prepare(ctx context.Context, cf *cachedFlow, ev Event) (*pendingRun, error) {
	// A stopped flow is refused before it costs the group commit anything;
	// the transaction checks again.
	if cf.head.Stage != store.StageRunning {
		return nil, ErrFlowNotRunning
	}
	n, ok := cf.compiled.Nodes[ev.ComponentID]
	if !ok || n.Spec.Kind != component.KindTrigger {
		return nil, ErrNotTrigger
	}
	start := time.Now()
	meta := msgMeta{flowID: ev.FlowID, ownerID: cf.head.OwnerID, correlationID: cmp.Or(ev.CorrelationID, newID())}
	p := &plan{}
	out := encodeEmits([]component.Emit{{Port: component.PortOut, Value: ev.Output}})
	p.logs = append(p.logs, e.logEntry(meta, n.ID, newID(), 1, store.StatusAccepted, 0, nil, out[0].raw, nil))
	e.route(ctx, p, meta, n, out, newScope())
	p.logs[0].DurationUS = time.Since(start).Microseconds()
	jobs, reserved := e.newJobs(p.jobs)
	return &pendingRun{ev: ev, version: cf.head.Version, meta: meta, plan: p, jobs: jobs, reserved: reserved}, nil
}

// check makes sure, inside tx, that the flow still runs the version r was
// routed through: errStaleFlow if it changed, ErrFlowNotRunning if it
// stopped, store.ErrNotFound if it is gone.
func (r *pendingRun) check(ctx context.Context, tx *store.Tx) error {
	stage, version, err := tx.FlowStage(ctx, r.ev.FlowID)
	if err != nil {
		return err
	}
	if version != r.version {
		return errStaleFlow
	}
	if stage != store.StageRunning {
		return ErrFlowNotRunning
	}
	return nil
}

// write inserts r's logs and jobs in tx.
func (r *pendingRun) write(ctx context.Context, tx *store.Tx) error {
	if err := tx.InsertLogs(ctx, r.plan.logs); err != nil {
		return err
	}
	return tx.EnqueueJobs(ctx, r.jobs)
}

// started hands r's reserved jobs, now committed, to this node's workers.
func (e *Engine) started(r *pendingRun) {
	e.q.handOff(r.jobs, r.plan.jobs, r.reserved)
	e.metrics.accepted.Inc()
}

// abandon gives back the worker slots of a run that was not committed.
func (e *Engine) abandon(r *pendingRun) {
	e.q.unreserve(r.reserved)
}

// RetryUnprocessed puts a dead-lettered message back on the queue with the
// same message id (so the same idempotency key) and a fresh set of
// attempts. ownerID "" lets an admin retry anyone's message.
func (e *Engine) RetryUnprocessed(ctx context.Context, ownerID, id string) error {
	err := e.store.InTx(ctx, func(tx *store.Tx) error {
		m, err := tx.TakeUnprocessed(ctx, ownerID, id)
		if err != nil {
			return err
		}
		var a stepArgs
		if err := json.Unmarshal(m.Message, &a); err != nil {
			return fmt.Errorf("decoding unprocessed message %s: %w", id, err)
		}
		if a.MessageID == "" {
			return errors.New("unprocessed message has no step")
		}
		return tx.EnqueueJobs(ctx, []store.NewJob{{ID: a.MessageID, MaxAttempts: a.MaxAttempts, Args: a.encode()}})
	})
	if err == nil {
		e.q.notify()
	}
	return err
}

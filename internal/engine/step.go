package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// stepArgs is the durable job of one step: run component ComponentID of
// flow FlowID on one message.
type stepArgs struct {
	MessageID     string          `json:"messageId"`
	CorrelationID string          `json:"correlationId"`
	FlowID        string          `json:"flowId"`
	OwnerID       string          `json:"ownerId"`
	ComponentID   string          `json:"componentId"`
	Input         json.RawMessage `json:"input"`
	// Scope holds the outputs of the components upstream of this step,
	// which its placeholders read as $.<componentId>.
	Scope           json.RawMessage `json:"scope"`
	MaxAttempts     int             `json:"maxAttempts"`
	InitialInterval time.Duration   `json:"initialInterval"`
	MaxInterval     time.Duration   `json:"maxInterval"`

	// A job made on this node and handed straight to a worker keeps its
	// input and scope decoded, so the worker does not decode them again.
	input any
	scope *scope
	// runAt, when set, is when a deferred step (core.Delay) comes due; such
	// a job waits in the table, never on a worker.
	runAt time.Time
}

// newJobs encodes jobs for the queue. As many as there are idle workers
// are reserved for this node and handed over when the transaction commits
// (see queue.handOff); the rest wait in the table for a claim.
func (e *Engine) newJobs(jobs []stepArgs) (nj []store.NewJob, reserved int) {
	if len(jobs) == 0 {
		return nil, 0
	}
	// Steps due now first: those are the ones a worker may take at once.
	// Most plans hold none that are delayed; only those are reordered.
	due := 0
	for i := range jobs {
		if jobs[i].runAt.IsZero() {
			due++
		}
	}
	if due < len(jobs) {
		slices.SortStableFunc(jobs, func(a, b stepArgs) int {
			switch {
			case a.runAt.IsZero() == b.runAt.IsZero():
				return 0
			case a.runAt.IsZero():
				return -1
			}
			return 1
		})
	}
	reserved = e.q.reserve(due)
	lease := e.store.Now().Add(e.q.lease)
	nj = make([]store.NewJob, len(jobs))
	for i := range jobs {
		nj[i] = store.NewJob{ID: jobs[i].MessageID, MaxAttempts: jobs[i].MaxAttempts, Args: jobs[i].encode(), RunAt: jobs[i].runAt}
		if i < reserved {
			nj[i].LockedBy, nj[i].LeaseUntil = e.cfg.NodeID, lease
		}
	}
	return nj, reserved
}

// errNodeLost fails a step whose node stopped during its last attempt.
var errNodeLost = errors.New("the node running the last attempt of this step stopped before it finished; " +
	"the call may or may not have been made")

// settleExhausted moves jobs whose node died during their last attempt to
// the unprocessed store instead of running them once more than allowed.
// The store has handed them to this node.
func (e *Engine) settleExhausted(ctx context.Context, jobs []store.Job) {
	for _, j := range jobs {
		if e.settleExhaustedKind(ctx, j) {
			continue
		}
		var a stepArgs
		if err := json.Unmarshal(j.Args, &a); err != nil {
			a.MessageID = j.ID
		}
		e.fail(ctx, j, a, time.Now(), errNodeLost)
	}
}

// errFlowGone fails the steps of a deleted flow. Their messages still go to
// the unprocessed store, but no log is written for a flow that is gone.
var errFlowGone = errors.New("the flow no longer exists")

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// plan collects what one accept or one step produces: the invocation logs
// and the jobs of the next I/O steps. It is written in one transaction.
type plan struct {
	logs []store.InvocationLog
	jobs []stepArgs
}

// msgMeta is what every step of one trigger event shares.
type msgMeta struct {
	flowID, ownerID, correlationID string
}

// route hands the emits of node from to the components its ports feed.
// Components without I/O run inline right away; I/O components become jobs.
func (e *Engine) route(ctx context.Context, p *plan, meta msgMeta, from *flow.Node, emits []encEmit, sc *scope) {
	for _, em := range emits {
		targets := from.Out[em.port]
		if len(targets) == 0 {
			continue
		}
		next := sc.with(from.ID, em.v, em.raw)
		var scopeJSON json.RawMessage
		for _, t := range targets {
			if !t.Node.Spec.IO {
				if e.runInline(ctx, p, meta, t.Node, em, next) {
					continue
				}
			}
			if scopeJSON == nil {
				scopeJSON = next.encode()
			}
			p.jobs = append(p.jobs, stepArgs{
				MessageID: newID(), CorrelationID: meta.correlationID, FlowID: meta.flowID, OwnerID: meta.ownerID,
				ComponentID: t.Node.ID, Input: em.raw, Scope: scopeJSON,
				MaxAttempts: t.Node.Retry.MaxAttempts, InitialInterval: t.Node.Retry.InitialInterval, MaxInterval: t.Node.Retry.MaxInterval,
				input: em.v, scope: next, runAt: e.deferUntil(t.Node, next),
			})
		}
	}
}

// deferUntil returns when a step of a deferred component (core.Delay)
// comes due, or zero for a step due now. Properties that cannot give a
// wait make the step due now: it then fails for good, with the reason,
// through the usual path.
func (e *Engine) deferUntil(n *flow.Node, sc *scope) time.Time {
	d, ok := n.Component.(component.Deferred)
	if !ok {
		return time.Time{}
	}
	props, err := n.Properties.Eval(sc.vals)
	if err != nil {
		return time.Time{}
	}
	m, _ := props.(map[string]any)
	now := e.store.Now()
	wait, err := d.Delay(m, now)
	if err != nil || wait <= 0 {
		return time.Time{}
	}
	return now.Add(wait)
}

// runInline runs a component without I/O in the current job. It reports
// false when the component failed: the caller then enqueues it as a job of
// its own so that it goes through retries and the unprocessed store.
func (e *Engine) runInline(ctx context.Context, p *plan, meta msgMeta, n *flow.Node, input encEmit, sc *scope) bool {
	msgID := newID()
	start := time.Now()
	emits, err := e.invoke(ctx, n, component.Invocation{
		FlowID: meta.flowID, OwnerID: meta.ownerID, ComponentID: n.ID, MessageID: msgID, CorrelationID: meta.correlationID, Attempt: 1, Input: input.v,
	}, sc.vals)
	if err != nil {
		return false
	}
	enc := encodeEmits(emits)
	e.metrics.steps.WithLabelValues(store.StatusSuccess).Inc()
	p.logs = append(p.logs, e.logEntry(meta, n.ID, msgID, 1, store.StatusSuccess, time.Since(start), input.raw, outputJSON(enc), nil))
	e.route(ctx, p, meta, n, enc, sc)
	return true
}

// invoke resolves n's properties against scope and runs it.
func (e *Engine) invoke(ctx context.Context, n *flow.Node, inv component.Invocation, scope map[string]any) (emits []component.Emit, err error) {
	action, ok := n.Component.(component.Action)
	if !ok {
		return nil, component.Permanent(fmt.Errorf("%s is a trigger and cannot receive messages", n.Type))
	}
	props, err := n.Properties.Eval(scope)
	if err != nil {
		return nil, component.Permanent(fmt.Errorf("resolving properties of %s: %w", n.ID, err))
	}
	inv.Properties, _ = props.(map[string]any)
	inv.Scope = scope
	defer func() {
		if r := recover(); r != nil {
			e.log.LogAttrs(ctx, slog.LevelError, "component panicked", slog.String("component", n.Type),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("%s failed unexpectedly: %v", n.Type, r)
		}
	}()
	return action.Invoke(ctx, inv)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Values come from JSON or from components emitting JSON-friendly
		// values; anything else is a programming error worth seeing.
		b, _ = json.Marshal(map[string]string{"error": "value cannot be encoded as JSON: " + err.Error()})
	}
	return b
}

func (e *Engine) logEntry(meta msgMeta, componentID, msgID string, attempt int, status string, d time.Duration, input, output json.RawMessage, err error) store.InvocationLog {
	l := store.InvocationLog{
		ID: newID(), FlowID: meta.flowID, ComponentID: componentID, CorrelationID: meta.correlationID,
		MessageID: msgID, Attempt: attempt, Status: status, DurationUS: d.Microseconds(),
		Input: e.capped(input), Output: e.capped(output),
	}
	if err != nil {
		l.Error = err.Error()
	}
	return l
}

// capped renders JSON of at most MaxLogBytes.
func (e *Engine) capped(b json.RawMessage) string {
	if len(b) > e.cfg.MaxLogBytes {
		// Cut on a character boundary: PostgreSQL refuses invalid UTF-8.
		cut := e.cfg.MaxLogBytes
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		return string(b[:cut]) + store.TruncatedSuffix
	}
	return string(b)
}

// backoff returns the wait before the next attempt after attempt failed:
// initial·2^(attempt-1), capped at max, with the upper half jittered.
func backoff(attempt int, initial, max time.Duration) time.Duration {
	if initial <= 0 {
		initial = component.DefaultRetry.InitialInterval
	}
	if max <= 0 {
		max = component.DefaultRetry.MaxInterval
	}
	d := initial
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + rand.N(half+1)
}

// work runs one claimed step job.
// local, when not nil, is the job as this node made it (see handOff).
func (e *Engine) work(ctx context.Context, j store.Job, local *stepArgs) {
	start := time.Now()
	var a stepArgs
	if local != nil && local.scope != nil {
		a = *local
	} else {
		if isKindJob(j.Args) {
			e.workKind(ctx, j)
			return
		}
		if err := json.Unmarshal(j.Args, &a); err != nil {
			a.MessageID = j.ID
			e.fail(ctx, j, a, start, component.Permanent(fmt.Errorf("decoding job: %w", err)))
			return
		}
		if err := json.Unmarshal(a.Input, &a.input); err != nil {
			e.fail(ctx, j, a, start, component.Permanent(fmt.Errorf("decoding message: %w", err)))
			return
		}
		var err error
		if a.scope, err = decodeScope(a.Scope); err != nil {
			e.fail(ctx, j, a, start, component.Permanent(fmt.Errorf("decoding message: %w", err)))
			return
		}
	}
	input, sc := a.input, a.scope
	cf, err := e.flows.recent(ctx, a.FlowID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = component.Permanent(fmt.Errorf("flow %s: %w", a.FlowID, errFlowGone))
		}
		e.fail(ctx, j, a, start, err)
		return
	}
	n, ok := cf.compiled.Nodes[a.ComponentID]
	if !ok {
		e.fail(ctx, j, a, start, component.Permanent(fmt.Errorf("component %s was removed from flow %s", a.ComponentID, a.FlowID)))
		return
	}
	emits, err := e.invoke(ctx, n, component.Invocation{
		FlowID: a.FlowID, OwnerID: a.OwnerID, ComponentID: a.ComponentID, MessageID: a.MessageID, CorrelationID: a.CorrelationID,
		Attempt: j.Attempt, Input: input,
	}, sc.vals)
	if err != nil {
		e.fail(ctx, j, a, start, err)
		return
	}
	elapsed := time.Since(start)
	e.metrics.steps.WithLabelValues(store.StatusSuccess).Inc()
	e.metrics.stepSeconds.Observe(elapsed.Seconds())
	meta := msgMeta{flowID: a.FlowID, ownerID: a.OwnerID, correlationID: a.CorrelationID}
	p := &plan{}
	enc := encodeEmits(emits)
	p.logs = append(p.logs, e.logEntry(meta, a.ComponentID, a.MessageID, j.Attempt, store.StatusSuccess, elapsed, a.Input, outputJSON(enc), nil))
	e.route(ctx, p, meta, n, enc, sc)
	jobs, reserved := e.newJobs(p.jobs)
	// The step is done: record it even if its deadline passes meanwhile.
	wctx := context.WithoutCancel(ctx)
	err = e.store.Submit(wctx, func(tx *store.Tx) error {
		if err := tx.FinishJob(wctx, j.ID, e.cfg.NodeID, j.Attempt); err != nil {
			return err
		}
		if err := tx.InsertLogs(wctx, p.logs); err != nil {
			return err
		}
		return tx.EnqueueJobs(wctx, jobs)
	})
	if err != nil {
		e.q.unreserve(reserved)
		// The lease keeps the job; it runs again (same idempotency key).
		e.log.LogAttrs(ctx, slog.LevelWarn, "recording step result", slog.String("flow", a.FlowID),
			slog.String("component", a.ComponentID), slog.String("error", err.Error()))
		return
	}
	e.q.handOff(jobs, p.jobs, reserved)
}

// fail records a failed attempt. The last attempt, or a failure retrying
// cannot fix, moves the message to the unprocessed store in the same
// transaction that finishes the job; otherwise the job is scheduled again
// after a backoff.
func (e *Engine) fail(ctx context.Context, j store.Job, a stepArgs, start time.Time, cause error) {
	// The job's context may have ended (timeout, stop); recording the
	// failure must still happen.
	wctx := context.WithoutCancel(ctx)
	if e.q.interrupted() {
		// A stop ran out of time and cancelled this step: it runs again
		// later and this attempt does not count.
		if err := e.store.ReleaseJob(wctx, j.ID, e.cfg.NodeID, j.Attempt); err != nil {
			e.log.LogAttrs(wctx, slog.LevelWarn, "releasing interrupted step", slog.String("error", err.Error()))
		}
		return
	}
	final := component.IsPermanent(cause) || j.Attempt >= j.MaxAttempts
	status := store.StatusRetrying
	if final {
		status = store.StatusFailed
	}
	elapsed := time.Since(start)
	e.metrics.steps.WithLabelValues(status).Inc()
	e.metrics.stepSeconds.Observe(elapsed.Seconds())
	meta := msgMeta{flowID: a.FlowID, ownerID: a.OwnerID, correlationID: a.CorrelationID}
	entry := e.logEntry(meta, a.ComponentID, a.MessageID, j.Attempt, status, elapsed, a.Input, nil, cause)
	var err error
	if !final {
		e.metrics.retries.Inc()
		next := e.store.Now().Add(backoff(j.Attempt, a.InitialInterval, a.MaxInterval))
		err = e.store.Submit(wctx, func(tx *store.Tx) error {
			if err := tx.RetryJob(wctx, j.ID, e.cfg.NodeID, j.Attempt, next, cause.Error()); err != nil {
				return err
			}
			if err := tx.InsertLogs(wctx, []store.InvocationLog{entry}); err != nil {
				return err
			}
			return e.emit(wctx, tx, EventComponentError, failureEvent(a, j.Attempt, cause, false))
		})
	} else {
		err = e.store.Submit(wctx, func(tx *store.Tx) error {
			if err := tx.FinishJob(wctx, j.ID, e.cfg.NodeID, j.Attempt); err != nil {
				return err
			}
			if !errors.Is(cause, errFlowGone) {
				if err := tx.InsertLogs(wctx, []store.InvocationLog{entry}); err != nil {
					return err
				}
			}
			if err := tx.PutUnprocessed(wctx, &store.UnprocessedMessage{
				ID: a.MessageID, FlowID: a.FlowID, OwnerID: a.OwnerID, ComponentID: a.ComponentID,
				Attempts: j.Attempt, Error: cause.Error(), Message: j.Args,
			}); err != nil {
				return err
			}
			if err := e.emit(wctx, tx, EventComponentError, failureEvent(a, j.Attempt, cause, false)); err != nil {
				return err
			}
			return e.emit(wctx, tx, EventMessageUnprocessed, failureEvent(a, j.Attempt, cause, true))
		})
	}
	if err != nil {
		e.log.LogAttrs(wctx, slog.LevelWarn, "recording step failure", slog.String("flow", a.FlowID),
			slog.String("component", a.ComponentID), slog.String("error", err.Error()))
		return
	}
	if final {
		e.metrics.deadLetters.Inc()
		e.log.LogAttrs(wctx, slog.LevelWarn, "message moved to unprocessed",
			slog.String("flow", a.FlowID), slog.String("component", a.ComponentID), slog.String("message", a.MessageID),
			slog.Int("attempts", j.Attempt), slog.String("error", cause.Error()))
	}
}

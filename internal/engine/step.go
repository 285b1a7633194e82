package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

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
}

// Kind names the job kind in the queue.
func (stepArgs) Kind() string { return "plugboard_step" }

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
func (e *Engine) route(ctx context.Context, p *plan, meta msgMeta, from *flow.Node, emits []component.Emit, scope map[string]any) {
	for _, em := range emits {
		targets := from.Out[em.Port]
		if len(targets) == 0 {
			continue
		}
		next := make(map[string]any, len(scope)+1)
		for k, v := range scope {
			next[k] = v
		}
		next[from.ID] = em.Value
		var scopeJSON, inputJSON json.RawMessage
		for _, t := range targets {
			if !t.Node.Spec.IO {
				if e.runInline(ctx, p, meta, t.Node, em.Value, next) {
					continue
				}
			}
			if scopeJSON == nil {
				scopeJSON = mustJSON(next)
				inputJSON = mustJSON(em.Value)
			}
			p.jobs = append(p.jobs, stepArgs{
				MessageID: newID(), CorrelationID: meta.correlationID, FlowID: meta.flowID, OwnerID: meta.ownerID,
				ComponentID: t.Node.ID, Input: inputJSON, Scope: scopeJSON,
				MaxAttempts: t.Node.Retry.MaxAttempts, InitialInterval: t.Node.Retry.InitialInterval, MaxInterval: t.Node.Retry.MaxInterval,
			})
		}
	}
}

// runInline runs a component without I/O in the current job. It reports
// false when the component failed: the caller then enqueues it as a job of
// its own so that it goes through retries and the unprocessed store.
func (e *Engine) runInline(ctx context.Context, p *plan, meta msgMeta, n *flow.Node, input any, scope map[string]any) bool {
	msgID := newID()
	start := time.Now()
	emits, err := e.invoke(ctx, n, component.Invocation{
		FlowID: meta.flowID, ComponentID: n.ID, MessageID: msgID, CorrelationID: meta.correlationID, Attempt: 1, Input: input,
	}, scope)
	if err != nil {
		return false
	}
	e.metrics.steps.WithLabelValues(store.StatusSuccess).Inc()
	p.logs = append(p.logs, e.logEntry(meta, n.ID, msgID, 1, store.StatusSuccess, time.Since(start), input, emitsValue(emits), nil))
	e.route(ctx, p, meta, n, emits, scope)
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
	defer func() {
		if r := recover(); r != nil {
			e.log.LogAttrs(ctx, slog.LevelError, "component panicked", slog.String("component", n.Type),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("%s failed unexpectedly: %v", n.Type, r)
		}
	}()
	return action.Invoke(ctx, inv)
}

func emitsValue(emits []component.Emit) any {
	if len(emits) == 1 {
		return emits[0].Value
	}
	out := make([]map[string]any, len(emits))
	for i, em := range emits {
		out[i] = map[string]any{"port": em.Port, "value": em.Value}
	}
	return out
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

func (e *Engine) logEntry(meta msgMeta, componentID, msgID string, attempt int, status string, d time.Duration, input, output any, err error) store.InvocationLog {
	l := store.InvocationLog{
		ID: newID(), FlowID: meta.flowID, OwnerID: meta.ownerID, ComponentID: componentID, CorrelationID: meta.correlationID,
		MessageID: msgID, Attempt: attempt, Status: status, DurationUS: d.Microseconds(),
		Input: e.capped(input), Output: e.capped(output),
	}
	if err != nil {
		l.Error = err.Error()
	}
	return l
}

// capped renders v as JSON of at most MaxLogBytes.
func (e *Engine) capped(v any) string {
	if v == nil {
		return ""
	}
	var b []byte
	if raw, ok := v.(json.RawMessage); ok {
		b = raw
	} else {
		b = mustJSON(v)
	}
	if len(b) > e.cfg.MaxLogBytes {
		return string(b[:e.cfg.MaxLogBytes]) + "…(truncated)"
	}
	return string(b)
}

// stepWorker runs step jobs.
type stepWorker struct {
	river.WorkerDefaults[stepArgs]
	e *Engine
}

// Timeout bounds one step.
func (w *stepWorker) Timeout(*river.Job[stepArgs]) time.Duration { return w.e.cfg.JobTimeout }

// NextRetry is exponential backoff with jitter from the component's policy.
func (w *stepWorker) NextRetry(job *river.Job[stepArgs]) time.Time {
	return time.Now().Add(backoff(job.Attempt, job.Args.InitialInterval, job.Args.MaxInterval))
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

// Work runs one step.
func (w *stepWorker) Work(ctx context.Context, job *river.Job[stepArgs]) error {
	e := w.e
	a := job.Args
	meta := msgMeta{flowID: a.FlowID, ownerID: a.OwnerID, correlationID: a.CorrelationID}
	start := time.Now()
	var input any
	scope := map[string]any{}
	if err := json.Unmarshal(a.Input, &input); err != nil {
		return e.fail(ctx, job, meta, start, nil, component.Permanent(fmt.Errorf("decoding message: %w", err)))
	}
	if err := json.Unmarshal(a.Scope, &scope); err != nil {
		return e.fail(ctx, job, meta, start, input, component.Permanent(fmt.Errorf("decoding message: %w", err)))
	}
	cf, err := e.flows.get(ctx, a.FlowID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = component.Permanent(fmt.Errorf("flow %s no longer exists", a.FlowID))
		}
		return e.fail(ctx, job, meta, start, input, err)
	}
	n, ok := cf.compiled.Nodes[a.ComponentID]
	if !ok {
		return e.fail(ctx, job, meta, start, input, component.Permanent(fmt.Errorf("component %s was removed from flow %s", a.ComponentID, a.FlowID)))
	}
	emits, err := e.invoke(ctx, n, component.Invocation{
		FlowID: a.FlowID, ComponentID: a.ComponentID, MessageID: a.MessageID, CorrelationID: a.CorrelationID,
		Attempt: job.Attempt, Input: input,
	}, scope)
	if err != nil {
		return e.fail(ctx, job, meta, start, input, err)
	}
	elapsed := time.Since(start)
	e.metrics.steps.WithLabelValues(store.StatusSuccess).Inc()
	e.metrics.stepSeconds.Observe(elapsed.Seconds())
	p := &plan{}
	p.logs = append(p.logs, e.logEntry(meta, a.ComponentID, a.MessageID, job.Attempt, store.StatusSuccess, elapsed, input, emitsValue(emits), nil))
	e.route(ctx, p, meta, n, emits, scope)
	err = e.store.Submit(ctx, func(tx *store.Tx) error {
		if err := tx.InsertLogs(ctx, p.logs); err != nil {
			return err
		}
		if err := e.q.insertTx(ctx, tx, p.jobs); err != nil {
			return err
		}
		return e.q.completeTx(ctx, tx, job)
	})
	if err != nil {
		return fmt.Errorf("recording step %s of flow %s: %w", a.ComponentID, a.FlowID, err)
	}
	return nil
}

// fail records a failed attempt. The last attempt, or a failure retrying
// cannot fix, moves the message to the unprocessed store in the same
// transaction that completes the job; otherwise the queue retries it.
func (e *Engine) fail(ctx context.Context, job *river.Job[stepArgs], meta msgMeta, start time.Time, input any, cause error) error {
	a := job.Args
	final := component.IsPermanent(cause) || job.Attempt >= job.MaxAttempts
	status := store.StatusRetrying
	if final {
		status = store.StatusFailed
	}
	elapsed := time.Since(start)
	e.metrics.steps.WithLabelValues(status).Inc()
	e.metrics.stepSeconds.Observe(elapsed.Seconds())
	entry := e.logEntry(meta, a.ComponentID, a.MessageID, job.Attempt, status, elapsed, input, nil, cause)
	if !final {
		e.metrics.retries.Inc()
		if err := e.store.Submit(ctx, func(tx *store.Tx) error { return tx.InsertLogs(ctx, []store.InvocationLog{entry}) }); err != nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "writing invocation log", slog.String("error", err.Error()))
		}
		return cause
	}
	msg, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encoding unprocessed message: %w", err)
	}
	err = e.store.Submit(ctx, func(tx *store.Tx) error {
		if err := tx.InsertLogs(ctx, []store.InvocationLog{entry}); err != nil {
			return err
		}
		if err := tx.PutUnprocessed(ctx, &store.UnprocessedMessage{
			ID: a.MessageID, FlowID: a.FlowID, OwnerID: a.OwnerID, ComponentID: a.ComponentID,
			Attempts: job.Attempt, Error: cause.Error(), Message: msg,
		}); err != nil {
			return err
		}
		return e.q.completeTx(ctx, tx, job)
	})
	if err != nil {
		return fmt.Errorf("moving message %s to unprocessed: %w", a.MessageID, err)
	}
	e.metrics.deadLetters.Inc()
	e.log.LogAttrs(ctx, slog.LevelWarn, "message moved to unprocessed",
		slog.String("flow", a.FlowID), slog.String("component", a.ComponentID), slog.String("message", a.MessageID),
		slog.Int("attempts", job.Attempt), slog.String("error", cause.Error()))
	return nil
}

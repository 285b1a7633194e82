package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/store"
)

// System events, which an Emitter records where they happen.
const (
	// EventFlowStopped: a flow was stopped (data: flowId, ownerId, reason).
	EventFlowStopped = "FLOW_STOPPED"
	// EventComponentError: an attempt of a step failed, whether it is
	// retried or not (data: flowId, ownerId, componentId, messageId,
	// correlationId, attempt, error).
	EventComponentError = "COMPONENT_ERROR"
	// EventMessageUnprocessed: a message moved to the unprocessed store
	// (data: flowId, ownerId, componentId, messageId, correlationId,
	// attempts, error).
	EventMessageUnprocessed = "MESSAGE_UNPROCESSED"
)

// Emitter records a system event inside tx, the transaction of the state
// change that caused it: the event exists exactly when the change commits.
// tx may belong to a group commit and fn may run more than once, so Emit
// must only write through tx.
type Emitter interface {
	Emit(ctx context.Context, tx *store.Tx, event string, data any) error
}

// Kind runs durable jobs that are not flow steps (system webhook
// deliveries, ...). They live in the jobs table like steps, are claimed,
// rescued and retried with the same backoff, but never reach the
// unprocessed store: Record decides what a final failure means.
type Kind struct {
	// Name tells the kind's jobs apart; see NewKindJob.
	Name string
	// Run makes one attempt and returns what Record should keep of it
	// (nil for nothing), even when the attempt failed. A
	// component.Permanent error is not retried.
	Run func(ctx context.Context, payload json.RawMessage, attempt int) (json.RawMessage, error)
	// Record, when not nil, writes the outcome of an attempt in the
	// transaction that finishes or reschedules the job: out is what Run
	// returned, err is nil on success; final says no attempt follows. The
	// transaction may belong to a group commit, so Record may run more
	// than once for one attempt: it must only write through tx.
	Record func(ctx context.Context, tx *store.Tx, payload json.RawMessage, attempt int, out json.RawMessage, err error, final bool) error
	// InitialInterval and MaxInterval shape the backoff between attempts
	// (defaults: those of components).
	InitialInterval, MaxInterval time.Duration
}

// kindPrefix starts the arguments of every kind job, so that a claimed
// job's kind is told from a step's (which starts with "messageId") without
// decoding it.
const kindPrefix = `{"kind":`

// kindArgs are the arguments of a kind job.
type kindArgs struct {
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
}

// NewKindJob makes a job of kind for the queue; enqueue it with
// store.Tx.EnqueueJobs in the transaction that makes it due.
func NewKindJob(id, kind string, maxAttempts int, payload json.RawMessage) store.NewJob {
	b := make([]byte, 0, len(kindPrefix)+len(kind)+len(payload)+16)
	b = append(b, kindPrefix...)
	b = strconv.AppendQuote(b, kind)
	b = append(b, `,"payload":`...)
	b = append(b, payload...)
	b = append(b, '}')
	return store.NewJob{ID: id, MaxAttempts: max(maxAttempts, 1), Args: b}
}

// RegisterKind makes the engine run jobs of k.Name. Call it before Start;
// registering a name twice is a programming error and panics.
func (e *Engine) RegisterKind(k Kind) {
	if k.Name == "" || k.Run == nil {
		panic("engine: a job kind needs a Name and Run")
	}
	if e.kinds == nil {
		e.kinds = map[string]*Kind{}
	}
	if _, dup := e.kinds[k.Name]; dup {
		panic("engine: job kind " + k.Name + " registered twice")
	}
	e.kinds[k.Name] = &k
}

func isKindJob(args []byte) bool { return bytes.HasPrefix(args, []byte(kindPrefix)) }

// emit records a system event in tx when an Emitter is configured.
func (e *Engine) emit(ctx context.Context, tx *store.Tx, event string, data any) error {
	if e.cfg.Events == nil {
		return nil
	}
	return e.cfg.Events.Emit(ctx, tx, event, data)
}

// workKind runs one attempt of a kind job and records its outcome.
func (e *Engine) workKind(ctx context.Context, j store.Job) {
	var a kindArgs
	var out json.RawMessage
	var err error
	if uerr := json.Unmarshal(j.Args, &a); uerr != nil {
		err = component.Permanent(fmt.Errorf("decoding job: %w", uerr))
	}
	k := e.kinds[a.Kind]
	switch {
	case err != nil:
	case k == nil:
		// Another node (a newer version) may know it; retry until the
		// attempts run out.
		err = fmt.Errorf("no handler for job kind %q on this node", a.Kind)
	default:
		out, err = k.run(ctx, e.log, a.Payload, j.Attempt)
	}
	e.settleKind(ctx, j, k, a.Payload, out, err)
}

func (k *Kind) run(ctx context.Context, log *slog.Logger, payload json.RawMessage, attempt int) (out json.RawMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.LogAttrs(ctx, slog.LevelError, "job panicked", slog.String("kind", k.Name),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			out, err = nil, fmt.Errorf("job of kind %s failed unexpectedly: %v", k.Name, r)
		}
	}()
	return k.Run(ctx, payload, attempt)
}

// settleKind finishes or reschedules a kind job after an attempt, whose
// Run returned out and cause.
func (e *Engine) settleKind(ctx context.Context, j store.Job, k *Kind, payload, out json.RawMessage, cause error) {
	wctx := context.WithoutCancel(ctx)
	if cause != nil && e.q.interrupted() {
		if err := e.store.ReleaseJob(wctx, j.ID, e.cfg.NodeID, j.Attempt); err != nil {
			e.log.LogAttrs(wctx, slog.LevelWarn, "releasing interrupted job", slog.String("error", err.Error()))
		}
		return
	}
	final := cause == nil || component.IsPermanent(cause) || j.Attempt >= j.MaxAttempts
	var initial, maxInterval time.Duration
	if k != nil {
		initial, maxInterval = k.InitialInterval, k.MaxInterval
	}
	err := e.store.Submit(wctx, func(tx *store.Tx) error {
		if final {
			if err := tx.FinishJob(wctx, j.ID, e.cfg.NodeID, j.Attempt); err != nil {
				return err
			}
		} else {
			next := e.store.Now().Add(backoff(j.Attempt, initial, maxInterval))
			if err := tx.RetryJob(wctx, j.ID, e.cfg.NodeID, j.Attempt, next, cause.Error()); err != nil {
				return err
			}
		}
		if k == nil || k.Record == nil {
			return nil
		}
		return k.Record(wctx, tx, payload, j.Attempt, out, cause, final)
	})
	if err != nil {
		// The lease keeps the job; it runs again.
		e.log.LogAttrs(wctx, slog.LevelWarn, "recording job result", slog.String("job", j.ID), slog.String("error", err.Error()))
		return
	}
	if cause != nil && final {
		e.log.LogAttrs(wctx, slog.LevelWarn, "job failed for good", slog.String("job", j.ID),
			slog.Int("attempts", j.Attempt), slog.String("error", cause.Error()))
	}
}

// settleExhaustedKind fails for good a kind job whose node died during its
// last attempt. It reports false for a step job.
func (e *Engine) settleExhaustedKind(ctx context.Context, j store.Job) bool {
	if !isKindJob(j.Args) {
		return false
	}
	var a kindArgs
	_ = json.Unmarshal(j.Args, &a)
	e.settleKind(ctx, j, e.kinds[a.Kind], a.Payload, nil, errNodeLost)
	return true
}

// failureEvent is the data of COMPONENT_ERROR (attempt) and, when final,
// of MESSAGE_UNPROCESSED (attempts).
func failureEvent(a stepArgs, attempt int, cause error, final bool) map[string]any {
	m := map[string]any{
		"flowId": a.FlowID, "ownerId": a.OwnerID, "componentId": a.ComponentID,
		"messageId": a.MessageID, "correlationId": a.CorrelationID, "error": cause.Error(),
	}
	if final {
		m["attempts"] = attempt
	} else {
		m["attempt"] = attempt
	}
	return m
}

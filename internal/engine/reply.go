package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/store"
)

// ErrNoReply says a waiting webhook got no core.Response in time.
var ErrNoReply = errors.New("the flow did not reply in time")

// replyPoll is how often a waiting webhook looks for a reply that another
// node stored. A reply made on this node wakes its waiter at once.
const replyPoll = 100 * time.Millisecond

// Replies carries the answers of core.Response steps to the webhook
// requests in wait mode that started their runs. A reply is stored (so
// that a Response that runs on another node reaches the waiting one) and
// wakes a waiter on this node at once.
type Replies struct {
	store *store.Store
	// poll is true when other nodes may store replies (PostgreSQL).
	poll bool

	mu      sync.Mutex
	waiters map[string]chan struct{}
}

// NewReplies returns the reply box of this node.
func NewReplies(st *store.Store) *Replies {
	return &Replies{store: st, poll: st.Backend() == store.BackendPostgres, waiters: map[string]chan struct{}{}}
}

// Reply stores the reply of run correlationID (the first reply of a run
// wins) and wakes the request waiting for it on this node.
func (r *Replies) Reply(ctx context.Context, correlationID string, status int, headers map[string]string, body []byte) error {
	kept, err := r.store.PutWebhookReply(ctx, correlationID, store.WebhookReply{Status: status, Headers: headers, Body: body})
	if err != nil || !kept {
		return err
	}
	r.mu.Lock()
	ch := r.waiters[correlationID]
	r.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}

// Waiter waits for the reply of one run.
type Waiter struct {
	r    *Replies
	corr string
	ch   chan struct{}
}

// Expect registers a waiter for run correlationID. Register before the run
// starts, so that a quick reply is not missed; Close it when done.
func (r *Replies) Expect(correlationID string) *Waiter {
	w := &Waiter{r: r, corr: correlationID, ch: make(chan struct{}, 1)}
	r.mu.Lock()
	r.waiters[correlationID] = w.ch
	r.mu.Unlock()
	return w
}

// Close removes the waiter.
func (w *Waiter) Close() {
	w.r.mu.Lock()
	delete(w.r.waiters, w.corr)
	w.r.mu.Unlock()
}

// Wait returns the run's reply, or ErrNoReply once timeout has passed.
func (w *Waiter) Wait(ctx context.Context, timeout time.Duration) (store.WebhookReply, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var tick <-chan time.Time
	if w.r.poll {
		t := time.NewTicker(replyPoll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return store.WebhookReply{}, ctx.Err()
		case <-deadline.C:
			// A reply stored at the last moment still counts.
			if rep, err := w.take(ctx); err == nil || !errors.Is(err, store.ErrNotFound) {
				return rep, err
			}
			return store.WebhookReply{}, ErrNoReply
		case <-w.ch:
		case <-tick:
		}
		rep, err := w.take(ctx)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		return rep, err
	}
}

func (w *Waiter) take(ctx context.Context) (store.WebhookReply, error) {
	rep, err := w.r.store.TakeWebhookReply(ctx, w.corr)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return rep, fmt.Errorf("reading the reply of run %s: %w", w.corr, err)
	}
	return rep, err
}

// NewCorrelationID returns a fresh run id, for a caller that must know it
// before the run starts (a webhook that waits for its reply).
func NewCorrelationID() string { return newID() }

// Trigger returns a trigger of a flow and its constant properties (a
// webhook's mode, say), from the flow as this node last compiled it.
func (e *Engine) Trigger(ctx context.Context, flowID, componentID string) (component.Component, map[string]any, error) {
	cf, err := e.flows.recent(ctx, flowID)
	if err != nil {
		return nil, nil, err
	}
	n, ok := cf.compiled.Nodes[componentID]
	if !ok {
		return nil, nil, fmt.Errorf("flow %s has no component %s: %w", flowID, componentID, store.ErrNotFound)
	}
	props, err := nodeProps(n)
	if err != nil {
		return nil, nil, fmt.Errorf("reading properties of %s: %w", componentID, err)
	}
	return n.Component, props, nil
}

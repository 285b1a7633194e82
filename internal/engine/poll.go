package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// MaxPollItems is the most items one poll may return. A Poller bounds its
// own page and keeps the cursor of what it returned; a poll that returns
// more fails, as cutting it short would lose the rest.
const MaxPollItems = 1000

// maxPolling bounds how many polls run at once on a node. A poll mostly
// waits for the API, so many fit; each holds a goroutine and a connection.
const maxPolling = 256

// duePollsPerLook bounds the due polls one look lists.
const duePollsPerLook = 1000

// brokenPollRetry is when a poll whose component cannot tell its interval
// (its type is not installed, its properties are wrong) is tried again.
const brokenPollRetry = time.Minute

// errTaken says another node recorded a poll (or a subscription) first.
var errTaken = errors.New("taken by another node")

// polls runs due component.Poller triggers until ctx ends. Every node runs
// it; a poll's items start their runs in the transaction that moves the
// trigger on from the next poll time and state that node read, so each
// item is emitted once.
func (e *Engine) polls(ctx context.Context, done chan<- struct{}) {
	dueLoop(ctx, e, done, dueWork[store.PollRow]{
		what: "polls", max: maxPolling,
		list: func(ctx context.Context) ([]store.PollRow, error) {
			return e.store.DuePolls(ctx, e.store.Now(), duePollsPerLook)
		},
		key: func(pr store.PollRow) [2]string { return [2]string{pr.FlowID, pr.ComponentID} },
		run: e.poll,
	})
}

// poll runs one due poll of pr and records it: the runs of its items and
// the new state, or its error.
func (e *Engine) poll(ctx context.Context, pr store.PollRow) error {
	cf, err := e.flows.recent(ctx, pr.FlowID)
	if err != nil {
		var verr *flow.ValidationError
		if !errors.As(err, &verr) {
			return err
		}
		// The stored flow no longer compiles (a removed connector does not
		// do that: its components become flow.Missing; a connector update
		// that changed a component's properties can). Its triggers fail
		// each poll until it is mended.
		head, herr := e.store.FlowHead(ctx, pr.FlowID)
		if herr != nil {
			return herr
		}
		return e.pollFailed(ctx, pr, head.OwnerID, brokenPollRetry, brokenFlowError(verr, pr.ComponentID))
	}
	n, ok := cf.compiled.Nodes[pr.ComponentID]
	if !ok {
		return nil // the flow changed; its polls are being rewritten
	}
	poller, ok := n.Component.(component.Poller)
	if !ok {
		return e.pollFailed(ctx, pr, cf.head.OwnerID, brokenPollRetry, notA(n, "a polling trigger"))
	}
	props, err := nodeProps(n)
	if err != nil {
		return e.pollFailed(ctx, pr, cf.head.OwnerID, brokenPollRetry, fmt.Errorf("resolving properties: %w", err))
	}
	every, err := poller.Interval(props)
	if err == nil && every <= 0 {
		err = fmt.Errorf("interval %s is not positive", every)
	}
	if err != nil {
		return e.pollFailed(ctx, pr, cf.head.OwnerID, brokenPollRetry, fmt.Errorf("reading interval: %w", err))
	}

	// Claim the poll before calling out: its next time moves to the end of
	// a lease, from the value read, so that no other node polls the same
	// items meanwhile (the API is called once, and a poller that consumes
	// what it reads loses nothing). If this node dies, the lease runs out
	// and another node polls.
	// The next poll is planned from when this one was due, not from when
	// it ran, so that a trigger keeps its interval on average (a poll
	// that is late does not push all later ones back).
	due := cmp.Or(pr.NextPollAt, e.store.Now())
	claimed := pr
	claimed.NextPollAt = e.store.Now().Add(e.cfg.JobTimeout)
	var won bool
	if err := e.store.Submit(ctx, func(tx *store.Tx) error {
		var err error
		won, err = tx.MovePoll(ctx, pr, claimed.NextPollAt, pr.State, pr.LastError)
		return err
	}); err != nil {
		return err
	}
	if !won {
		return errTaken
	}
	pr = claimed

	// The poll itself runs outside any transaction.
	pctx, cancel := context.WithTimeout(ctx, e.cfg.JobTimeout)
	items, state, err := poller.Poll(pctx, component.PollInvocation{
		FlowID: pr.FlowID, OwnerID: cf.head.OwnerID, ComponentID: pr.ComponentID, Properties: props, State: pr.State,
	})
	cancel()
	if ctx.Err() != nil {
		e.unclaim(ctx, pr) // stopping: the next node to poll does it again
		return ctx.Err()
	}
	if err == nil && len(items) > MaxPollItems {
		err = fmt.Errorf("poll returned %d items, more than %d: the trigger must page", len(items), MaxPollItems)
	}
	if err != nil {
		return e.pollFailed(ctx, pr, cf.head.OwnerID, every, err)
	}

	evs := make([]Event, len(items))
	for i, item := range items {
		evs[i] = Event{FlowID: pr.FlowID, ComponentID: pr.ComponentID, Output: item}
	}
	next := due.Add(every)
	if now := e.store.Now(); next.Before(now) {
		next = now // far behind (the node was down): once now, not a burst
	}
	_, err = e.acceptAll(ctx, cf, evs, func(tx *store.Tx) error {
		moved, err := tx.MovePoll(ctx, pr, next, state, "")
		if err == nil && !moved {
			err = errTaken
		}
		return err
	})
	if err != nil {
		// Nothing of the poll was written: the state stays where it was,
		// so the items come again with the next poll, at once.
		e.unclaim(ctx, pr)
		if errors.Is(err, errStaleFlow) || errors.Is(err, ErrFlowNotRunning) {
			e.flows.forget(pr.FlowID) // stopped, or the cache is behind a start
			return nil
		}
		return fmt.Errorf("recording poll: %w", err)
	}
	return nil
}

// unclaim gives back a claimed poll of which nothing was recorded: due at
// once, for whichever node comes first.
func (e *Engine) unclaim(ctx context.Context, pr store.PollRow) {
	ctx = context.WithoutCancel(ctx)
	err := e.store.Submit(ctx, func(tx *store.Tx) error {
		_, err := tx.MovePoll(ctx, pr, e.store.Now(), pr.State, pr.LastError)
		return err
	})
	if err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "giving back a poll", slog.String("flow", pr.FlowID), slog.String("error", err.Error()))
	}
}

// pollFailed records a failed poll: the state stays, the trigger polls
// again in retry, and COMPONENT_ERROR is emitted with the record.
func (e *Engine) pollFailed(ctx context.Context, pr store.PollRow, ownerID string, retry time.Duration, cause error) error {
	msg := cause.Error()
	next := e.store.Now().Add(retry)
	err := e.store.Submit(ctx, func(tx *store.Tx) error {
		moved, err := tx.MovePoll(ctx, pr, next, pr.State, msg)
		if err != nil {
			return err
		}
		if !moved {
			return errTaken
		}
		return e.emit(ctx, tx, EventComponentError, map[string]any{
			"flowId": pr.FlowID, "ownerId": ownerID, "componentId": pr.ComponentID, "error": msg, "attempt": 0,
		})
	})
	if err != nil {
		return fmt.Errorf("recording failed poll (%s): %w", msg, err)
	}
	e.log.LogAttrs(ctx, slog.LevelWarn, "poll failed", slog.String("flow", pr.FlowID),
		slog.String("component", pr.ComponentID), slog.String("error", msg))
	return nil
}

// notA says why node n cannot serve as what: its type is not installed,
// or it is something else.
func notA(n *flow.Node, what string) error {
	if m, ok := n.Component.(*flow.Missing); ok {
		return m.Err()
	}
	return fmt.Errorf("%s is not %s", n.Type, what)
}

// nodeProps evaluates the properties of trigger n, which see no message.
func nodeProps(n *flow.Node) (map[string]any, error) {
	v, err := n.Properties.Eval(nil)
	if err != nil {
		return nil, err
	}
	props, _ := v.(map[string]any)
	return props, nil
}

// brokenFlowError says why a stored flow that no longer compiles cannot
// poll with component id: its own problems, or else all of them.
func brokenFlowError(verr *flow.ValidationError, id string) error {
	var own []string
	for _, p := range verr.Problems {
		if p.Component != id {
			continue
		}
		own = append(own, p.Message)
	}
	if len(own) > 0 {
		return fmt.Errorf("component %s: %s", id, strings.Join(own, "; "))
	}
	return fmt.Errorf("flow no longer compiles: %w", verr)
}

package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// maxSubscribing bounds how many subscribe and unsubscribe calls run at
// once on a node.
const maxSubscribing = 8

// maxUnsubscribeAttempts is how often removing a subscription is tried
// before it is given up (and reported), when the provider keeps failing
// or the connector is not installed.
const maxUnsubscribeAttempts = 10

// subscriptionBackoff is the wait before try n+2 after n+1 failed tries:
// four times SchedulePoll (one second by default), doubling, at most five
// minutes.
func (e *Engine) subscriptionBackoff(n int) time.Duration {
	d := 4 * e.cfg.SchedulePoll << min(n, 12)
	return min(d, 5*time.Minute)
}

// subscriptions keeps the webhook subscriptions of component.Subscriber
// triggers in line with their flows until ctx ends: a trigger of a running
// flow is subscribed; one whose flow stopped, was deleted or lost it is
// unsubscribed. Every node runs it; a node claims a row (a lease, taken
// from the due time and state it read) before it calls out.
func (e *Engine) subscriptions(ctx context.Context, done chan<- struct{}) {
	dueLoop(ctx, e, done, dueWork[*store.Subscription]{
		what: "subscriptions", max: maxSubscribing,
		list: func(ctx context.Context) ([]*store.Subscription, error) {
			return e.store.DueSubscriptions(ctx, e.store.Now(), 100)
		},
		key: func(sr *store.Subscription) [2]string { return [2]string{sr.FlowID, sr.ComponentID} },
		run: e.reconcile,
	})
}

// reconcile brings one subscription in line with its flow.
func (e *Engine) reconcile(ctx context.Context, sr *store.Subscription) error {
	if !sr.Wanted() {
		if !sr.Subscribed() {
			return e.settleSubscription(ctx, sr, sr.Gone || sr.Stage == "")
		}
		return e.unsubscribe(ctx, sr)
	}
	// The stored version, not a cached one: a change of the trigger's
	// properties made a moment ago must not be settled as no change.
	cf, err := e.flows.get(ctx, sr.FlowID)
	if err != nil {
		var verr *flow.ValidationError
		if errors.As(err, &verr) {
			err = brokenFlowError(verr, sr.ComponentID)
		}
		return e.subscriptionFailed(ctx, sr, brokenPollRetry, false, err)
	}
	n, ok := cf.compiled.Nodes[sr.ComponentID]
	if !ok {
		return nil // the flow changed; its subscriptions are being rewritten
	}
	sub, ok := n.Component.(component.Subscriber)
	if !ok {
		// Its connector was removed, say: tried again a minute later.
		return e.subscriptionFailed(ctx, sr, brokenPollRetry, false, notA(n, "a subscription trigger"))
	}
	props, err := nodeProps(n)
	if err != nil {
		return e.subscriptionFailed(ctx, sr, brokenPollRetry, false, fmt.Errorf("resolving properties: %w", err))
	}
	rawProps, err := json.Marshal(props)
	if err != nil {
		return e.subscriptionFailed(ctx, sr, brokenPollRetry, false, fmt.Errorf("encoding properties: %w", err))
	}
	token, err := e.store.WebhookToken(ctx, sr.FlowID, sr.ComponentID)
	if err != nil {
		return e.subscriptionFailed(ctx, sr, brokenPollRetry, false, err)
	}
	url := e.cfg.PublicURL + "/hooks/" + token
	if sr.Subscribed() {
		if sr.Type == n.Type && bytes.Equal(sr.Properties, rawProps) && sr.WebhookURL == url {
			return e.settleSubscription(ctx, sr, false) // nothing changed
		}
		// Made with other settings, or for another URL: remove it; the
		// next look makes the new one.
		return e.unsubscribe(ctx, sr)
	}
	claimed, err := e.claimSubscription(ctx, sr)
	if err != nil {
		return err
	}
	sctx, cancel := e.callContext(ctx, claimed)
	state, err := sub.Subscribe(sctx, component.SubscribeInvocation{
		FlowID: sr.FlowID, OwnerID: sr.OwnerID, ComponentID: sr.ComponentID, Properties: props, WebhookURL: url,
	})
	cancel()
	if err != nil {
		return e.subscriptionFailed(ctx, claimed, e.subscriptionBackoff(sr.Attempts), true, err)
	}
	if state == nil {
		state = json.RawMessage("{}")
	}
	// Not due: had the flow changed meanwhile, the row's due time moved
	// under the lease, and it stays due.
	to := &store.Subscription{Type: n.Type, Properties: rawProps, WebhookURL: url, State: state}
	if err := e.moveSubscription(ctx, claimed, to, nil); err != nil {
		// Not recorded (the lease ran out, the database failed): what the
		// provider made is removed again rather than left behind.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.JobTimeout)
		defer cancel()
		if uerr := sub.Unsubscribe(uctx, component.SubscribeInvocation{
			FlowID: sr.FlowID, OwnerID: sr.OwnerID, ComponentID: sr.ComponentID, Properties: props, WebhookURL: url, State: state,
		}); uerr != nil {
			e.log.LogAttrs(ctx, slog.LevelWarn, "removing a subscription that could not be recorded", slog.String("flow", sr.FlowID),
				slog.String("component", sr.ComponentID), slog.String("error", uerr.Error()))
		}
		return err
	}
	return nil
}

// release gives back the claim on sr, if any, due at once.
func (e *Engine) release(sr *store.Subscription) {
	if sr.LeaseUntil.IsZero() {
		return
	}
	to := *sr
	to.LeaseUntil, to.DueAt = time.Time{}, e.store.Now()
	if err := e.moveSubscription(context.Background(), sr, &to, nil); err != nil {
		e.log.LogAttrs(context.Background(), slog.LevelWarn, "giving back a subscription", slog.String("flow", sr.FlowID),
			slog.String("error", err.Error()))
	}
}

// callContext bounds a provider call to the claim's lease, less a margin
// to record its outcome, so that no other node claims the row while the
// call may still succeed.
func (e *Engine) callContext(ctx context.Context, claimed *store.Subscription) (context.Context, context.CancelFunc) {
	d := claimed.LeaseUntil.Sub(e.store.Now()) - e.cfg.JobTimeout/10
	return context.WithTimeout(ctx, max(d, time.Second))
}

// unsubscribe removes sr's subscription at the provider, with the type,
// properties and URL it was made with.
func (e *Engine) unsubscribe(ctx context.Context, sr *store.Subscription) error {
	c, ok := e.reg.Lookup(sr.Type)
	sub, isSub := c.(component.Subscriber)
	if !ok || !isSub {
		// Its connector was removed: tried again every minute, without
		// counting, until it is back.
		return e.subscriptionFailed(ctx, sr, brokenPollRetry, false,
			fmt.Errorf("cannot remove the subscription: component type %s is not installed", sr.Type))
	}
	var props map[string]any
	if len(sr.Properties) > 0 {
		if err := json.Unmarshal(sr.Properties, &props); err != nil {
			return e.unsubscribeFailed(ctx, sr, component.Permanent(fmt.Errorf("reading subscription properties: %w", err)))
		}
	}
	claimed, err := e.claimSubscription(ctx, sr)
	if err != nil {
		return err
	}
	sctx, cancel := e.callContext(ctx, claimed)
	err = sub.Unsubscribe(sctx, component.SubscribeInvocation{
		FlowID: sr.FlowID, OwnerID: sr.OwnerID, ComponentID: sr.ComponentID, Properties: props, WebhookURL: sr.WebhookURL, State: sr.State,
	})
	cancel()
	if ctx.Err() != nil && err != nil {
		e.release(claimed)
		return ctx.Err()
	}
	if err != nil {
		return e.unsubscribeFailed(ctx, claimed, err)
	}
	// Not subscribed any more; looked at again at once, to drop the row
	// or subscribe anew.
	return e.moveSubscription(ctx, claimed, &store.Subscription{DueAt: e.store.Now()}, nil)
}

// unsubscribeFailed records a failed removal: tried again with backoff,
// given up after maxUnsubscribeAttempts (or at once when the provider
// refused it for good), with COMPONENT_ERROR. A given-up removal keeps its
// error for the flow's view.
func (e *Engine) unsubscribeFailed(ctx context.Context, sr *store.Subscription, cause error) error {
	if sr.Attempts+1 < maxUnsubscribeAttempts && !component.IsPermanent(cause) {
		return e.subscriptionFailed(ctx, sr, e.subscriptionBackoff(sr.Attempts), true, cause)
	}
	cause = fmt.Errorf("gave up removing the subscription after %d tries (it may be left at the provider): %w", sr.Attempts+1, cause)
	to := &store.Subscription{DueAt: e.store.Now(), LastError: cause.Error()}
	return e.moveSubscription(ctx, sr, to, cause)
}

// subscriptionFailed records a failed try: the row stays as it is and is
// looked at again after retry, and COMPONENT_ERROR is emitted. count says
// whether the try counts toward giving up (a call the provider failed) or
// not (the connector is not installed, the flow does not compile).
func (e *Engine) subscriptionFailed(ctx context.Context, sr *store.Subscription, retry time.Duration, count bool, cause error) error {
	if ctx.Err() != nil {
		// Stopping: not a failure of the subscription. A claim is given
		// back; the next node to look tries again.
		e.release(sr)
		return ctx.Err()
	}
	to := *sr
	to.DueAt, to.LastError, to.LeaseUntil = e.store.Now().Add(retry), cause.Error(), time.Time{}
	if count {
		to.Attempts++
	}
	return e.moveSubscription(ctx, sr, &to, cause)
}

// settleSubscription marks sr as in line with its flow, or drops its row
// when the trigger is gone.
func (e *Engine) settleSubscription(ctx context.Context, sr *store.Subscription, drop bool) error {
	if !drop {
		to := *sr
		to.DueAt, to.Attempts, to.LeaseUntil = time.Time{}, 0, time.Time{}
		if sr.Subscribed() {
			to.LastError = "" // in line: a past failure is over
		} // not subscribed: why (a given-up removal, say) stays to be seen
		return e.moveSubscription(ctx, sr, &to, nil)
	}
	return e.store.Submit(ctx, func(tx *store.Tx) error {
		ok, err := tx.DropSubscription(ctx, sr)
		if err == nil && !ok {
			err = errTaken
		}
		return err
	})
}

// claimSubscription takes a lease on sr, so that no other node calls the
// provider for it meanwhile.
func (e *Engine) claimSubscription(ctx context.Context, sr *store.Subscription) (*store.Subscription, error) {
	claimed := *sr
	claimed.LeaseUntil = e.store.Now().Add(e.cfg.JobTimeout)
	if err := e.moveSubscription(ctx, sr, &claimed, nil); err != nil {
		return nil, err
	}
	return &claimed, nil
}

// moveSubscription writes to over from; a cause, when set, is logged and
// emitted as COMPONENT_ERROR in the same transaction.
func (e *Engine) moveSubscription(ctx context.Context, from, to *store.Subscription, cause error) error {
	ctx = context.WithoutCancel(ctx) // what the provider did must be recorded
	err := e.store.Submit(ctx, func(tx *store.Tx) error {
		ok, err := tx.MoveSubscription(ctx, from, to)
		if err != nil {
			return err
		}
		if !ok {
			return errTaken
		}
		if cause == nil {
			return nil
		}
		return e.emit(ctx, tx, EventComponentError, map[string]any{
			"flowId": from.FlowID, "ownerId": from.OwnerID, "componentId": from.ComponentID, "error": cause.Error(),
			"attempt": to.Attempts,
		})
	})
	if err != nil {
		return fmt.Errorf("recording subscription: %w", err)
	}
	if cause != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "subscription failed", slog.String("flow", from.FlowID),
			slog.String("component", from.ComponentID), slog.String("error", cause.Error()))
	}
	return nil
}

// Delivery is a request a provider sent to a subscription trigger's
// inbound URL.
type Delivery struct {
	FlowID      string
	ComponentID string
	// Request is the request as a core.Webhook emits it: method, headers,
	// query and body.
	Request map[string]any
}

// ErrBadDelivery wraps a delivery the trigger could not read.
var ErrBadDelivery = errors.New("the delivery could not be read")

// AcceptDelivery turns a delivery into one run per item the trigger makes
// of it, all committed together, and returns their correlation ids. A
// trigger whose connector was removed refuses it with ErrComponentMissing.
func (e *Engine) AcceptDelivery(ctx context.Context, d Delivery) ([]string, error) {
	return e.acceptFlow(ctx, d.FlowID, func(cf *cachedFlow) ([]Event, error) {
		n, ok := cf.compiled.Nodes[d.ComponentID]
		if !ok {
			return nil, ErrNotTrigger
		}
		if m, ok := n.Component.(*flow.Missing); ok {
			return nil, fmt.Errorf("%w: %w", ErrComponentMissing, m.Err())
		}
		sub, ok := n.Component.(component.Subscriber)
		if !ok {
			return nil, ErrNotTrigger
		}
		props, err := nodeProps(n)
		if err != nil {
			return nil, fmt.Errorf("resolving properties of %s: %w", d.ComponentID, err)
		}
		items, err := sub.Receive(ctx, component.ReceiveInvocation{
			FlowID: d.FlowID, ComponentID: d.ComponentID, Properties: props, Request: d.Request,
		})
		if err != nil {
			if component.IsPermanent(err) {
				return nil, fmt.Errorf("%w: %w", ErrBadDelivery, err)
			}
			return nil, err
		}
		if len(items) > MaxPollItems {
			return nil, fmt.Errorf("%w: %d items, more than %d", ErrBadDelivery, len(items), MaxPollItems)
		}
		evs := make([]Event, len(items))
		for i, it := range items {
			evs[i] = Event{FlowID: d.FlowID, ComponentID: d.ComponentID, Output: it}
		}
		return evs, nil
	})
}

package component

import (
	"context"
	"encoding/json"
)

// Subscriber is a trigger fed by a webhook subscription at a third-party
// API: when its flow starts, the engine asks the API to send events to the
// component's own inbound URL (Subscribe), keeps what the API answered,
// and when the flow stops or is deleted asks it to stop (Unsubscribe).
// Each request to the inbound URL becomes zero or more items (Receive),
// each of which starts one run.
type Subscriber interface {
	Trigger
	// Subscribe registers inv.WebhookURL with the API and returns what
	// Unsubscribe will need (the subscription's id).
	Subscribe(ctx context.Context, inv SubscribeInvocation) (state json.RawMessage, err error)
	// Unsubscribe removes the subscription of inv.State. A subscription
	// the API no longer knows counts as removed.
	Unsubscribe(ctx context.Context, inv SubscribeInvocation) error
	// Receive turns a request the API sent to the inbound URL into the
	// items to emit, in order.
	Receive(ctx context.Context, inv ReceiveInvocation) (items []any, err error)
}

// SubscribeInvocation is one subscribe or unsubscribe of a trigger
// instance.
type SubscribeInvocation struct {
	FlowID string
	// OwnerID is the user who owns the flow (for an unsubscribe, the one
	// who owned it when it subscribed); the call acts as that user.
	OwnerID     string
	ComponentID string
	Properties  map[string]any
	// WebhookURL is the instance's inbound URL.
	WebhookURL string
	// State is what Subscribe returned (for Unsubscribe).
	State json.RawMessage
}

// ReceiveInvocation is one request to a trigger instance's inbound URL.
type ReceiveInvocation struct {
	FlowID      string
	ComponentID string
	Properties  map[string]any
	// Request is the request as a core.Webhook emits it: method, headers,
	// query and body.
	Request map[string]any
}

package component

import (
	"context"
	"encoding/json"
	"time"
)

// Poller is a trigger that asks an API for new items every interval. The
// engine keeps each instance's state (a cursor, the ids already seen) in
// the database and starts one flow run per new item, in the transaction
// that saves the new state, so each item is emitted once across nodes,
// restarts and updates.
type Poller interface {
	Trigger
	// Interval is how often an instance with props polls.
	Interval(props map[string]any) (time.Duration, error)
	// Poll fetches what is new since state (nil on the first poll) and
	// returns the items to emit, in order, and the state to keep. A first
	// poll usually returns no items and only records where "now" is.
	Poll(ctx context.Context, inv PollInvocation) (items []any, state json.RawMessage, err error)
}

// PollInvocation is one poll of one trigger instance.
type PollInvocation struct {
	FlowID string
	// OwnerID is the user who owns the flow; the poll acts as that user.
	OwnerID     string
	ComponentID string
	Properties  map[string]any
	State       json.RawMessage
}

package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// AppEventTriggerType is the component type whose triggers are indexed by
// event name (the core connector's OnAppEvent; a test keeps the two equal).
const AppEventTriggerType = "core.OnAppEvent"

// maxIndexedEventName bounds the event names written to the index, which
// keeps its entries well within what PostgreSQL allows. Any name the API
// accepts is far shorter; a flow naming a longer event can never be
// triggered, so it has nothing to index.
const maxIndexedEventName = 1024

// AppEventTrigger is a core.OnAppEvent trigger: component ComponentID of
// flow FlowID.
type AppEventTrigger struct {
	FlowID      string
	ComponentID string
}

// AppEventTriggers lists the triggers, in the running flows of ownerID,
// that take the named app event, ordered by flow and component. One range
// of the (owner_id, event) key is read.
func (s *Store) AppEventTriggers(ctx context.Context, ownerID, event string) ([]AppEventTrigger, error) {
	return collect(ctx, s.backend.reader(), "listing app event triggers", func(r row) (AppEventTrigger, error) {
		var t AppEventTrigger
		return t, r.Scan(&t.FlowID, &t.ComponentID)
	}, `SELECT t.flow_id, t.component_id FROM app_event_triggers t JOIN flows f ON f.id = t.flow_id
		WHERE t.owner_id = $1 AND t.event = $2 AND f.stage = $3
		ORDER BY t.flow_id, t.component_id`,
		ownerID, event, StageRunning)
}

// HasAppEventTrigger reports, inside tx, whether component componentID of
// flow flowID, owned by ownerID, still takes the named app event. The
// index changes in the transaction that changes the flow's document and
// version, so together with FlowStage it says whether the version being
// started subscribes.
func (tx *Tx) HasAppEventTrigger(ctx context.Context, ownerID, event, flowID, componentID string) (bool, error) {
	var one int
	err := tx.q.queryRow(ctx,
		`SELECT 1 FROM app_event_triggers WHERE owner_id = $1 AND event = $2 AND flow_id = $3 AND component_id = $4`,
		ownerID, event, flowID, componentID).Scan(&one)
	switch err = notFound(err); {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("checking app event trigger %s of flow %s: %w", componentID, flowID, err)
}

// putAppEventTriggers makes the index of flow f's app event triggers match
// its components. Only a component's type and its "event" property are
// read; the flow package has validated the rest. An event name that is not
// a plain string (the trigger takes it literally) or that no request could
// send is not indexed.
func (tx *Tx) putAppEventTriggers(ctx context.Context, f *Flow, comps map[string]docComponent) error {
	if _, err := tx.q.exec(ctx, `DELETE FROM app_event_triggers WHERE flow_id = $1`, f.ID); err != nil {
		return fmt.Errorf("removing app event triggers of flow %s: %w", f.ID, err)
	}
	for _, id := range slices.Sorted(maps.Keys(comps)) {
		c := comps[id]
		name, ok := c.Properties.Event.(string)
		if c.Type != AppEventTriggerType || !ok || name == "" || len(name) > maxIndexedEventName || strings.ContainsRune(name, 0) {
			continue
		}
		if _, err := tx.q.exec(ctx,
			`INSERT INTO app_event_triggers (owner_id, event, flow_id, component_id) VALUES ($1, $2, $3, $4)`,
			f.OwnerID, name, f.ID, id); err != nil {
			return fmt.Errorf("indexing app event trigger %s of flow %s: %w", id, f.ID, err)
		}
	}
	return nil
}

package store

import (
	"context"
	"fmt"
)

// Flow stages.
const (
	StageRunning = "running"
	StageStopped = "stopped"
)

// Flow is a stored flow. Document holds the flow's components and links as
// JSON; the flow package gives it meaning.
type Flow struct {
	ID        string
	OwnerID   string
	Name      string
	Stage     string
	Document  []byte
	Version   int64
	CreatedAt int64
	UpdatedAt int64
	// Webhooks maps a core.Webhook component id to its URL token.
	Webhooks map[string]string
	// Pollers lists the ids of the components that are polling triggers
	// (component.Poller), which only the caller can tell; saving the flow
	// keeps a polls row for each. Not read back.
	Pollers []string
	// Subscribers lists the ids of the components that are webhook
	// subscription triggers (component.Subscriber), which the store keeps
	// a subscriptions row for. Not read back.
	Subscribers []string
}

const flowCols = `id, owner_id, name, stage, document, version, created_at, updated_at`

func scanFlow(r row) (*Flow, error) {
	f := &Flow{}
	var doc string
	if err := r.Scan(&f.ID, &f.OwnerID, &f.Name, &f.Stage, &doc, &f.Version, &f.CreatedAt, &f.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	f.Document = []byte(doc)
	return f, nil
}

// CreateFlow inserts f with its webhook tokens and indexes its app event
// triggers.
func (s *Store) CreateFlow(ctx context.Context, f *Flow) error {
	return s.InTx(ctx, func(tx *Tx) error {
		f.CreatedAt = s.nowMS()
		f.UpdatedAt = f.CreatedAt
		f.Version = 1
		_, err := tx.q.exec(ctx,
			`INSERT INTO flows (`+flowCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			f.ID, f.OwnerID, f.Name, f.Stage, string(f.Document), f.Version, f.CreatedAt, f.UpdatedAt)
		if err != nil {
			return fmt.Errorf("creating flow: %w", err)
		}
		if err := tx.indexFlow(ctx, f); err != nil {
			return err
		}
		return tx.putWebhooks(ctx, f.ID, f.Webhooks)
	})
}

// UpdateFlow replaces the name and document of the owner's flow, its set
// of webhook components and its indexed app event triggers. Tokens of kept
// components stay the same; f.Webhooks is filled with the final tokens.
func (s *Store) UpdateFlow(ctx context.Context, f *Flow) error {
	return s.InTx(ctx, func(tx *Tx) error {
		f.UpdatedAt = s.nowMS()
		n, err := tx.q.exec(ctx,
			`UPDATE flows SET name = $1, document = $2, version = version + 1, updated_at = $3 WHERE id = $4 AND owner_id = $5`,
			f.Name, string(f.Document), f.UpdatedAt, f.ID, f.OwnerID)
		if err != nil {
			return fmt.Errorf("updating flow %s: %w", f.ID, err)
		}
		if n == 0 {
			return fmt.Errorf("updating flow %s: %w", f.ID, ErrNotFound)
		}
		if err := tx.indexFlow(ctx, f); err != nil {
			return err
		}
		existing, err := tx.webhooks(ctx, f.ID)
		if err != nil {
			return err
		}
		for comp := range existing {
			if _, keep := f.Webhooks[comp]; !keep {
				if _, err := tx.q.exec(ctx, `DELETE FROM webhooks WHERE flow_id = $1 AND component_id = $2`, f.ID, comp); err != nil {
					return fmt.Errorf("removing webhook %s: %w", comp, err)
				}
			}
		}
		fresh := map[string]string{}
		for comp, tok := range f.Webhooks {
			if old, ok := existing[comp]; ok {
				f.Webhooks[comp] = old
				continue
			}
			fresh[comp] = tok
		}
		return tx.putWebhooks(ctx, f.ID, fresh)
	})
}

func (tx *Tx) putWebhooks(ctx context.Context, flowID string, hooks map[string]string) error {
	for comp, tok := range hooks {
		if _, err := tx.q.exec(ctx,
			`INSERT INTO webhooks (token, flow_id, component_id) VALUES ($1, $2, $3)`, tok, flowID, comp); err != nil {
			return fmt.Errorf("creating webhook for %s: %w", comp, err)
		}
	}
	return nil
}

func (tx *Tx) webhooks(ctx context.Context, flowID string) (map[string]string, error) {
	return loadWebhooks(ctx, tx.q, flowID)
}

func loadWebhooks(ctx context.Context, q querier, flowID string) (map[string]string, error) {
	rs, err := q.query(ctx, `SELECT component_id, token FROM webhooks WHERE flow_id = $1`, flowID)
	if err != nil {
		return nil, fmt.Errorf("loading webhooks of flow %s: %w", flowID, err)
	}
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var comp, tok string
		if err := rs.Scan(&comp, &tok); err != nil {
			return nil, fmt.Errorf("loading webhooks of flow %s: %w", flowID, err)
		}
		out[comp] = tok
	}
	return out, rs.Err()
}

// Flow returns a flow by id, whoever owns it (for the engine).
func (s *Store) Flow(ctx context.Context, id string) (*Flow, error) {
	f, err := scanFlow(s.backend.reader().queryRow(ctx, `SELECT `+flowCols+` FROM flows WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("loading flow %s: %w", id, err)
	}
	return f, nil
}

// OwnedFlow returns the flow if ownerID owns it (ownerID "" for any owner),
// with its webhook tokens.
func (s *Store) OwnedFlow(ctx context.Context, ownerID, id string) (*Flow, error) {
	f, err := s.Flow(ctx, id)
	if err != nil {
		return nil, err
	}
	if ownerID != "" && f.OwnerID != ownerID {
		return nil, fmt.Errorf("loading flow %s: %w", id, ErrNotFound)
	}
	if f.Webhooks, err = loadWebhooks(ctx, s.backend.reader(), id); err != nil {
		return nil, err
	}
	return f, nil
}

// FlowFilter narrows ListFlows.
type FlowFilter struct {
	OwnerID string // "" lists every owner's flows
	Stage   string
	After   string
	Limit   int
}

// ListFlows returns flows ordered by id.
func (s *Store) ListFlows(ctx context.Context, f FlowFilter) ([]*Flow, error) {
	const page = `SELECT id FROM flows WHERE id > $1 AND ($2 = '' OR owner_id = $2) AND ($3 = '' OR stage = $3) ORDER BY id LIMIT $4`
	out, err := collect(ctx, s.backend.reader(), "listing flows", scanFlow,
		`SELECT `+flowCols+` FROM flows WHERE id IN (`+page+`) ORDER BY id`,
		f.After, f.OwnerID, f.Stage, f.Limit)
	if err != nil || len(out) == 0 {
		return out, err
	}
	// The page's webhook tokens in one query, not one per flow.
	type hook struct{ flow, comp, token string }
	hooks, err := collect(ctx, s.backend.reader(), "listing flows", func(r row) (hook, error) {
		var h hook
		return h, r.Scan(&h.flow, &h.comp, &h.token)
	}, `SELECT flow_id, component_id, token FROM webhooks WHERE flow_id IN (`+page+`)`,
		f.After, f.OwnerID, f.Stage, f.Limit)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*Flow, len(out))
	for _, fl := range out {
		fl.Webhooks = map[string]string{}
		byID[fl.ID] = fl
	}
	for _, h := range hooks {
		if fl := byID[h.flow]; fl != nil {
			fl.Webhooks[h.comp] = h.token
		}
	}
	return out, nil
}

// SetFlowStage starts or stops the owner's flow (ownerID "" for any). A
// start plans the flow's schedules anew from now: runs missed while it
// was stopped never fire. Its polls run at once.
func (s *Store) SetFlowStage(ctx context.Context, ownerID, id, stage string) error {
	return s.SetFlowStageThen(ctx, ownerID, id, stage, nil)
}

// SetFlowStageThen is SetFlowStage, then runs then (when not nil) in the
// same transaction with the stage the flow had before, so that what then
// writes (a system event) commits exactly when the change does.
func (s *Store) SetFlowStageThen(ctx context.Context, ownerID, id, stage string, then func(tx *Tx, was string) error) error {
	return s.InTx(ctx, func(tx *Tx) error {
		var was string
		// Locked until the transaction ends (PostgreSQL; SQLite writers are
		// serial), so that two stops cannot both see a running flow and
		// both announce its stop.
		lock := ""
		if s.name == BackendPostgres {
			lock = " FOR UPDATE"
		}
		err := tx.q.queryRow(ctx, `SELECT stage FROM flows WHERE id = $1 AND ($2 = '' OR owner_id = $2)`+lock, id, ownerID).Scan(&was)
		if err != nil {
			return fmt.Errorf("setting stage of flow %s: %w", id, notFound(err))
		}
		if err := tx.setStage(ctx, id, was, stage); err != nil {
			return err
		}
		if then != nil {
			return then(tx, was)
		}
		return nil
	})
}

// setStage moves flow id from stage was to stage, with what a change of
// stage implies: a start plans its schedules anew and polls at once; any
// change makes its subscriptions due.
func (tx *Tx) setStage(ctx context.Context, id, was, stage string) error {
	if _, err := tx.q.exec(ctx, `UPDATE flows SET stage = $1, updated_at = $2 WHERE id = $3`, stage, tx.store.nowMS(), id); err != nil {
		return fmt.Errorf("setting stage of flow %s: %w", id, err)
	}
	if stage == was {
		return nil
	}
	if stage == StageRunning {
		if _, err := tx.q.exec(ctx, `UPDATE schedules SET next_run_at = NULL WHERE flow_id = $1`, id); err != nil {
			return fmt.Errorf("planning schedules of flow %s: %w", id, err)
		}
		// Polls resume at once and keep their state: items seen before
		// the stop are not emitted again.
		if _, err := tx.q.exec(ctx, `UPDATE polls SET next_poll_at = NULL WHERE flow_id = $1`, id); err != nil {
			return fmt.Errorf("resuming polls of flow %s: %w", id, err)
		}
	}
	return tx.recheckSubscriptions(ctx, id)
}

// DeleteFlow removes the owner's flow with its webhooks, app event
// triggers (both by cascade) and logs. Its
// queued messages stay and end in the unprocessed store.
func (s *Store) DeleteFlow(ctx context.Context, ownerID, id string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		n, err := tx.q.exec(ctx, `DELETE FROM flows WHERE id = $1 AND ($2 = '' OR owner_id = $2)`, id, ownerID)
		if err != nil {
			return fmt.Errorf("deleting flow %s: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("deleting flow %s: %w", id, ErrNotFound)
		}
		if _, err := tx.q.exec(ctx, `DELETE FROM invocation_logs WHERE flow_id = $1`, id); err != nil {
			return fmt.Errorf("deleting logs of flow %s: %w", id, err)
		}
		// Its subscriptions at providers are removed by the engine.
		if err := tx.goneSubscription(ctx, id, ""); err != nil {
			return fmt.Errorf("removing subscriptions of flow %s: %w", id, err)
		}
		return nil
	})
}

// WebhookToken returns the token of a flow component's inbound URL.
func (s *Store) WebhookToken(ctx context.Context, flowID, componentID string) (string, error) {
	var tok string
	err := s.backend.reader().queryRow(ctx, `SELECT token FROM webhooks WHERE flow_id = $1 AND component_id = $2`, flowID, componentID).
		Scan(&tok)
	if err != nil {
		return "", fmt.Errorf("reading the inbound URL of %s in flow %s: %w", componentID, flowID, notFound(err))
	}
	return tok, nil
}

// WebhookTarget is the flow component a webhook token points at.
type WebhookTarget struct {
	FlowID      string
	ComponentID string
}

// Webhook resolves a webhook token.
func (s *Store) Webhook(ctx context.Context, token string) (WebhookTarget, error) {
	var t WebhookTarget
	err := s.backend.reader().queryRow(ctx, `SELECT flow_id, component_id FROM webhooks WHERE token = $1`, token).
		Scan(&t.FlowID, &t.ComponentID)
	if err != nil {
		return t, fmt.Errorf("resolving webhook: %w", notFound(err))
	}
	return t, nil
}

// FlowStage reads a flow's stage and version inside tx, so that a trigger
// event is only accepted into a flow that is running when it commits.
// The answer is remembered for the rest of the transaction: a group of
// accepts into one flow reads it once.
func (tx *Tx) FlowStage(ctx context.Context, id string) (stage string, version int64, err error) {
	if h, ok := tx.heads[id]; ok {
		return h.Stage, h.Version, nil
	}
	err = tx.q.queryRow(ctx, `SELECT stage, version FROM flows WHERE id = $1`, id).Scan(&stage, &version)
	if err != nil {
		return "", 0, fmt.Errorf("reading stage of flow %s: %w", id, notFound(err))
	}
	if tx.heads == nil {
		tx.heads = map[string]FlowHead{}
	}
	tx.heads[id] = FlowHead{Stage: stage, Version: version}
	return stage, version, nil
}

// FlowHead is what the engine checks on every step: whether the flow still
// exists and which version of its document is current.
type FlowHead struct {
	OwnerID string
	Stage   string
	Version int64
}

// FlowHead reads a flow's owner, stage and version.
func (s *Store) FlowHead(ctx context.Context, id string) (FlowHead, error) {
	var h FlowHead
	err := s.backend.reader().queryRow(ctx, `SELECT owner_id, stage, version FROM flows WHERE id = $1`, id).
		Scan(&h.OwnerID, &h.Stage, &h.Version)
	if err != nil {
		return h, fmt.Errorf("loading flow %s: %w", id, notFound(err))
	}
	return h, nil
}

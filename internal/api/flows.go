package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// flowView is a flow as the API returns it.
type flowView struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Stage      string                   `json:"stage"`
	OwnerID    string                   `json:"ownerId"`
	Version    int64                    `json:"version"`
	CreatedAt  string                   `json:"createdAt"`
	UpdatedAt  string                   `json:"updatedAt"`
	Components map[string]componentView `json:"components"`
	Links      []flow.Link              `json:"links"`
}

type componentView struct {
	flow.ComponentDoc
	WebhookURL string `json:"webhookUrl,omitempty"`
	// Subscription is the webhook subscription of a subscription trigger
	// (in the answer of GET /flows/{id}).
	Subscription *subscriptionView `json:"subscription,omitempty"`
}

// subscriptionView says whether a subscription trigger is subscribed at
// its provider and why the last try failed.
type subscriptionView struct {
	Subscribed bool   `json:"subscribed"`
	Pending    bool   `json:"pending"` // a change is being made
	Attempts   int    `json:"attempts"`
	LastError  string `json:"lastError,omitempty"`
}

// withSubscriptions adds the subscription triggers' state to v.
func (s *Server) withSubscriptions(ctx context.Context, v *flowView) error {
	subs, err := s.store.Subscriptions(ctx, v.ID)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if cv, ok := v.Components[sub.ComponentID]; ok && !sub.Gone {
			cv.Subscription = &subscriptionView{Subscribed: sub.Subscribed(), Pending: !sub.DueAt.IsZero(),
				Attempts: sub.Attempts, LastError: sub.LastError}
			v.Components[sub.ComponentID] = cv
		}
	}
	return nil
}

func (s *Server) view(f *store.Flow) (flowView, error) {
	doc, err := flow.Parse(f.Document)
	if err != nil {
		return flowView{}, err
	}
	v := flowView{
		ID: f.ID, Name: f.Name, Stage: f.Stage, OwnerID: f.OwnerID, Version: f.Version,
		CreatedAt: store.FromMillis(f.CreatedAt).Format(timeFormat), UpdatedAt: store.FromMillis(f.UpdatedAt).Format(timeFormat),
		Components: make(map[string]componentView, len(doc.Components)), Links: doc.Links,
	}
	if v.Links == nil {
		v.Links = []flow.Link{}
	}
	for id, c := range doc.Components {
		cv := componentView{ComponentDoc: c}
		if tok, ok := f.Webhooks[id]; ok {
			cv.WebhookURL = s.cfg.PublicURL + "/hooks/" + tok
		}
		v.Components[id] = cv
	}
	return v, nil
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// readFlow decodes and validates a flow document from the request body.
// The flow it returns holds what the document decides: its name, the
// canonical document, fresh tokens for the components that take requests
// at a URL of their own, and which components poll or subscribe.
func (s *Server) readFlow(r *http.Request) (*flow.Document, *store.Flow, error) {
	body, err := readBody(r, s.cfg.MaxAPIBytes)
	if err != nil {
		return nil, nil, err
	}
	doc, err := flow.Parse(body)
	if err != nil {
		return nil, nil, err
	}
	compiled, err := s.engine.Compile(doc)
	if err != nil {
		return nil, nil, err
	}
	canon, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, err
	}
	f := &store.Flow{Name: doc.Name, Document: canon, Webhooks: map[string]string{}}
	for _, id := range slices.Sorted(maps.Keys(compiled.Nodes)) {
		switch n := compiled.Nodes[id]; n.Component.(type) {
		case component.Poller:
			f.Pollers = append(f.Pollers, id)
		case component.Subscriber:
			f.Subscribers = append(f.Subscribers, id)
			f.Webhooks[id] = auth.RandomString(24)
		default:
			if n.Type == core.WebhookType {
				f.Webhooks[id] = auth.RandomString(24)
			}
		}
	}
	return doc, f, nil
}

func (s *Server) createFlow(w http.ResponseWriter, r *http.Request, p principal) error {
	doc, f, err := s.readFlow(r)
	if err != nil {
		return err
	}
	if err := s.checkFlowACL(r.Context(), p, p.UserID, doc); err != nil { // ACL
		return err
	}
	f.ID, f.OwnerID, f.Stage = uuid.Must(uuid.NewV7()).String(), p.UserID, store.StageStopped
	if err := s.store.CreateFlow(r.Context(), f); err != nil {
		return err
	}
	v, err := s.view(f)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/flows/"+f.ID)
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listFlows(w http.ResponseWriter, r *http.Request, p principal) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	stage := r.URL.Query().Get("stage")
	if stage != "" && stage != store.StageRunning && stage != store.StageStopped {
		return problem(http.StatusBadRequest, "stage must be running or stopped")
	}
	owner := p.ownerScope()
	if u := r.URL.Query().Get("userId"); u != "" && p.admin() {
		owner = u
	}
	flows, err := s.store.ListFlows(r.Context(), store.FlowFilter{OwnerID: owner, Stage: stage, After: after, Limit: limit})
	if err != nil {
		return err
	}
	views := make([]flowView, 0, len(flows))
	for _, f := range flows {
		v, err := s.view(f)
		if err != nil {
			return err
		}
		views = append(views, v)
	}
	return writeJSON(w, http.StatusOK, newList(views, limit, func(v flowView) string { return v.ID }))
}

func (s *Server) getFlow(w http.ResponseWriter, r *http.Request, p principal) error {
	f, err := s.store.OwnedFlow(r.Context(), p.ownerScope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.view(f)
	if err != nil {
		return err
	}
	if err := s.withSubscriptions(r.Context(), &v); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) updateFlow(w http.ResponseWriter, r *http.Request, p principal) error {
	existing, err := s.store.OwnedFlow(r.Context(), p.ownerScope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	doc, f, err := s.readFlow(r)
	if err != nil {
		return err
	}
	if err := s.checkFlowACL(r.Context(), p, existing.OwnerID, doc); err != nil { // ACL
		return err
	}
	f.ID, f.OwnerID = existing.ID, existing.OwnerID
	if err := s.store.UpdateFlow(r.Context(), f); err != nil {
		return err
	}
	updated, err := s.store.OwnedFlow(r.Context(), "", f.ID)
	if err != nil {
		return err
	}
	v, err := s.view(updated)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteFlow(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := s.store.DeleteFlow(r.Context(), p.ownerScope(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type flowCommand struct {
	Command string `json:"command"`
}

func (s *Server) flowCommand(w http.ResponseWriter, r *http.Request, p principal) error {
	var req flowCommand
	if err := s.decode(r, &req); err != nil {
		return err
	}
	f, err := s.store.OwnedFlow(r.Context(), p.ownerScope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	var stage string
	switch req.Command {
	case "start":
		// A flow is checked again when it starts: components may have
		// changed since it was saved.
		doc, err := flow.Parse(f.Document)
		if err != nil {
			return err
		}
		if _, err := s.engine.Compile(doc); err != nil {
			return err
		}
		if err := s.checkFlowACL(r.Context(), p, f.OwnerID, doc); err != nil { // ACL
			return err
		}
		stage = store.StageRunning
	case "stop":
		stage = store.StageStopped
	default:
		return problem(http.StatusUnprocessableEntity, "command must be start or stop")
	}
	// A stop and its FLOW_STOPPED event commit together.
	err = s.store.SetFlowStageThen(r.Context(), p.ownerScope(), f.ID, stage, func(tx *store.Tx, was string) error {
		if stage != store.StageStopped || was == store.StageStopped || s.cfg.SystemWebhooks == nil {
			return nil
		}
		return s.cfg.SystemWebhooks.Emit(r.Context(), tx, engine.EventFlowStopped,
			map[string]any{"flowId": f.ID, "ownerId": f.OwnerID, "reason": "stopped-by-user"})
	})
	if err != nil {
		return err
	}
	f.Stage = stage
	v, err := s.view(f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

type logView struct {
	store.InvocationLog
	CreatedAt string `json:"createdAt"`
}

func (s *Server) flowLogs(w http.ResponseWriter, r *http.Request, p principal) error {
	f, err := s.store.OwnedFlow(r.Context(), p.ownerScope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	logs, err := s.store.FlowLogs(r.Context(), store.LogFilter{
		FlowID: f.ID, CorrelationID: r.URL.Query().Get("correlationId"), After: after, Limit: limit,
	})
	if err != nil {
		return err
	}
	views := make([]logView, len(logs))
	for i, l := range logs {
		views[i] = logView{InvocationLog: l, CreatedAt: store.FromMillis(l.CreatedAt).Format(timeFormat)}
	}
	return writeJSON(w, http.StatusOK, newList(views, limit, func(v logView) string { return v.ID }))
}

// listComponents lists the components of the connectors the caller may
// use (see acl.go).
func (s *Server) listComponents(w http.ResponseWriter, r *http.Request, p principal) error {
	specs, err := s.usableSpecs(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": specs})
}

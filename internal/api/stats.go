package api

import (
	"net/http"

	"github.com/plugboard/plugboard/internal/store"
)

// usageItem is one flow using a component type or connector.
type usageItem struct {
	FlowID     string `json:"flowId"`
	Name       string `json:"name"`
	OwnerID    string `json:"ownerId"`
	Stage      string `json:"stage"`
	Components int    `json:"components"`
}

// componentUsage lists the flows that use a component type
// (componentType=core.Webhook) or any type of a connector
// (componentType=acme), optionally in one stage, one item per flow.
func (s *Server) componentUsage(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	typ := q.Get("componentType")
	if typ == "" {
		return problem(http.StatusBadRequest, "componentType is required: a component type such as core.Webhook or a connector name")
	}
	stage := q.Get("stage")
	if stage != "" && stage != store.StageRunning && stage != store.StageStopped {
		return problem(http.StatusBadRequest, "stage must be running or stopped")
	}
	if g := q.Get("group"); g != "" && g != "flowId" {
		return problem(http.StatusBadRequest, "group must be flowId")
	}
	usage, err := s.store.ComponentUsage(r.Context(), typ, stage)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": usageItems(usage)})
}

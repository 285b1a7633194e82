package api

import (
	"encoding/json"
	"net/http"

	"github.com/plugboard/plugboard/internal/store"
)

type unprocessedView struct {
	ID          string          `json:"id"`
	FlowID      string          `json:"flowId"`
	ComponentID string          `json:"componentId"`
	Attempts    int             `json:"attempts"`
	Error       string          `json:"error"`
	Message     json.RawMessage `json:"message"`
	CreatedAt   string          `json:"createdAt"`
}

// unprocessedMessage is the part of a stored step shown to users.
type unprocessedMessage struct {
	CorrelationID string          `json:"correlationId"`
	Input         json.RawMessage `json:"input"`
}

func (s *Server) listUnprocessed(w http.ResponseWriter, r *http.Request, p principal) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	ms, err := s.store.ListUnprocessed(r.Context(), store.UnprocessedFilter{
		OwnerID: p.ownerScope(), FlowID: r.URL.Query().Get("flowId"), After: after, Limit: limit,
	})
	if err != nil {
		return err
	}
	views := make([]unprocessedView, len(ms))
	for i, m := range ms {
		var um unprocessedMessage
		_ = json.Unmarshal(m.Message, &um)
		msg, _ := json.Marshal(um)
		views[i] = unprocessedView{
			ID: m.ID, FlowID: m.FlowID, ComponentID: m.ComponentID, Attempts: m.Attempts, Error: m.Error,
			Message: msg, CreatedAt: store.FromMillis(m.CreatedAt).Format(timeFormat),
		}
	}
	return writeJSON(w, http.StatusOK, newList(views, limit, func(v unprocessedView) string { return v.ID }))
}

func (s *Server) retryUnprocessed(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := s.engine.RetryUnprocessed(r.Context(), p.ownerScope(), r.PathValue("id")); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]string{"id": r.PathValue("id"), "status": "requeued"})
}

func (s *Server) deleteUnprocessed(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := s.store.DeleteUnprocessed(r.Context(), p.ownerScope(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

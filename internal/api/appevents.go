package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/store"
)

// appEventAccepted is the answer to an app event.
type appEventAccepted struct {
	// Flows counts the flows started.
	Flows int `json:"flows"`
	// CorrelationIDs has one id per run started (a flow with two triggers
	// on the event runs twice).
	CorrelationIDs []string `json:"correlationIds"`
}

// appEvent starts the caller's running flows whose core.OnAppEvent trigger
// takes the event in the path (an admin may name another user with
// ?userId=) and answers 202 once their first messages are durable.
func (s *Server) appEvent(w http.ResponseWriter, r *http.Request, p principal) error {
	owner := p.UserID
	if q := r.URL.Query(); q.Has("userId") {
		if !p.admin() {
			return problem(http.StatusForbidden, "only an admin may send an app event on behalf of a user (userId)")
		}
		if owner = q.Get("userId"); owner == "" {
			return problem(http.StatusBadRequest, "userId must name a user")
		}
	}
	name := r.PathValue("event")
	if err := core.CheckEventName(name); err != nil {
		return problem(http.StatusUnprocessableEntity, "%s", err.Error())
	}
	raw, err := readBody(r, s.cfg.MaxWebhookBytes)
	if err != nil {
		return err
	}
	var data any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &data); err != nil {
			return problem(http.StatusBadRequest, "malformed JSON body: %v", err)
		}
	}
	if owner != p.UserID {
		if _, err := s.store.User(r.Context(), owner); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return problem(http.StatusNotFound, "no such user")
			}
			return err
		}
	}
	out := map[string]any{
		"event":      name,
		"data":       data,
		"userId":     owner,
		"receivedAt": s.store.Now().UTC().Format(timeFormat),
	}
	runs, err := s.engine.AcceptAppEvent(r.Context(), engine.AppEvent{OwnerID: owner, Name: name, Output: out})
	if err != nil {
		return err
	}
	ans := appEventAccepted{CorrelationIDs: make([]string, len(runs))}
	flows := map[string]bool{}
	for i, run := range runs {
		ans.CorrelationIDs[i] = run.CorrelationID
		flows[run.FlowID] = true
	}
	ans.Flows = len(flows)
	return writeJSON(w, http.StatusAccepted, ans)
}

package api

import (
	"errors"
	"net/http"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/syswebhook"
)

// systemWebhookView is a subscription as the API shows it: never with its
// secret, except in the answer that creates it.
type systemWebhookView struct {
	ID        string `json:"id"`
	Event     string `json:"event"`
	URL       string `json:"url"`
	Secret    string `json:"secret,omitempty"`
	CreatedAt string `json:"createdAt"`
}

func viewSystemWebhook(w *store.SystemWebhook) systemWebhookView {
	return systemWebhookView{ID: w.ID, Event: w.Event, URL: w.URL, CreatedAt: store.FromMillis(w.CreatedAt).Format(timeFormat)}
}

type deliveryView struct {
	ID             string `json:"id"`
	SubscriptionID string `json:"subscriptionId"`
	Event          string `json:"event"`
	Status         string `json:"status"`
	Attempts       int    `json:"attempts"`
	LastStatusCode int    `json:"lastStatusCode,omitempty"`
	LastError      string `json:"lastError,omitempty"`
	CreatedAt      string `json:"createdAt"`
	UpdatedAt      string `json:"updatedAt"`
}

// systemWebhooks returns the service, or a 404 when this server has none.
func (s *Server) systemWebhooks() (*syswebhook.Service, error) {
	if s.cfg.SystemWebhooks == nil {
		return nil, problem(http.StatusNotFound, "system webhooks are not enabled on this server")
	}
	return s.cfg.SystemWebhooks, nil
}

type subscribeRequest struct {
	Event string `json:"event"`
	URL   string `json:"url"`
}

func (s *Server) createSystemWebhook(w http.ResponseWriter, r *http.Request, _ principal) error {
	svc, err := s.systemWebhooks()
	if err != nil {
		return err
	}
	var req subscribeRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	sub, secret, err := svc.Subscribe(r.Context(), req.Event, req.URL)
	if errors.Is(err, syswebhook.ErrInvalid) {
		return problem(http.StatusUnprocessableEntity, "%s", err.Error())
	}
	if err != nil {
		return err
	}
	v := viewSystemWebhook(sub)
	v.Secret = secret
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listSystemWebhooks(w http.ResponseWriter, r *http.Request, _ principal) error {
	svc, err := s.systemWebhooks()
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	subs, err := svc.List(r.Context(), after, limit)
	if err != nil {
		return err
	}
	views := make([]systemWebhookView, len(subs))
	for i, sub := range subs {
		views[i] = viewSystemWebhook(sub)
	}
	return writeJSON(w, http.StatusOK, newList(views, limit, func(v systemWebhookView) string { return v.ID }))
}

func (s *Server) getSystemWebhook(w http.ResponseWriter, r *http.Request, _ principal) error {
	svc, err := s.systemWebhooks()
	if err != nil {
		return err
	}
	sub, err := svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, viewSystemWebhook(sub))
}

func (s *Server) deleteSystemWebhook(w http.ResponseWriter, r *http.Request, _ principal) error {
	svc, err := s.systemWebhooks()
	if err != nil {
		return err
	}
	if err := svc.Unsubscribe(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listSystemWebhookDeliveries(w http.ResponseWriter, r *http.Request, _ principal) error {
	svc, err := s.systemWebhooks()
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	ds, err := svc.Deliveries(r.Context(), r.PathValue("id"), after, limit)
	if err != nil {
		return err
	}
	views := make([]deliveryView, len(ds))
	for i, d := range ds {
		views[i] = deliveryView{
			ID: d.ID, SubscriptionID: d.SubscriptionID, Event: d.Event, Status: d.Status, Attempts: d.Attempts,
			LastStatusCode: d.LastStatusCode, LastError: d.LastError,
			CreatedAt: store.FromMillis(d.CreatedAt).Format(timeFormat), UpdatedAt: store.FromMillis(d.UpdatedAt).Format(timeFormat),
		}
	}
	return writeJSON(w, http.StatusOK, newList(views, limit, func(v deliveryView) string { return v.ID }))
}

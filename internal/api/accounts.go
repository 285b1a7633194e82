package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/store"
)

// accounts returns the account service, or a 404 when this server has
// none.
func (s *Server) accounts() (*account.Service, error) {
	if s.cfg.Accounts == nil {
		return nil, problem(http.StatusNotFound, "accounts are not enabled on this server")
	}
	return s.cfg.Accounts, nil
}

// caller is the principal as the account service sees it.
func caller(p principal) account.Caller {
	return account.Caller{UserID: p.UserID, Admin: p.admin()}
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	var in account.Input
	if err := s.decode(r, &in); err != nil {
		return err
	}
	v, err := svc.Create(r.Context(), caller(p), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/accounts/"+v.ID)
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	withRevoked := false
	if v := q.Get("includeRevoked"); v != "" {
		if withRevoked, err = strconv.ParseBool(v); err != nil {
			return problem(http.StatusBadRequest, "includeRevoked must be true or false")
		}
	}
	ownerID := q.Get("ownerId")
	if ownerID != "" && ownerID != p.UserID && !p.admin() {
		return problem(http.StatusForbidden, "only admins may list another user's accounts")
	}
	views, err := svc.List(r.Context(), caller(p), ownerID, withRevoked, after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(views, limit, func(v *account.View) string { return v.ID }))
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	v, err := svc.Get(r.Context(), caller(p), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) updateAccount(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	var patch account.Patch
	if err := s.decode(r, &patch); err != nil {
		return err
	}
	v, err := svc.Update(r.Context(), caller(p), r.PathValue("id"), patch)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) revokeAccount(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	if err := svc.Revoke(r.Context(), caller(p), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// accountRequestSource marks the calls made through the request endpoint
// in the audit log.
const accountRequestSource = "api"

// requestAccepted answers a wait=false request.
type requestAccepted struct {
	RequestID string `json:"requestId"`
}

// accountRequest makes a call through an account. With wait (the default)
// it answers 200 with the API's answer, whatever the API's status; with
// wait false it answers 202 at once and a durable job makes the call.
func (s *Server) accountRequest(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	var req account.Request
	if err := s.decode(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if req.Wait != nil && !*req.Wait {
		reqID, err := svc.Enqueue(r.Context(), caller(p), id, req, accountRequestSource)
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/api/v1/accounts/"+url.PathEscape(id)+"/requests/"+url.PathEscape(reqID))
		return writeJSON(w, http.StatusAccepted, requestAccepted{RequestID: reqID})
	}
	res, err := svc.Do(r.Context(), caller(p), id, req, accountRequestSource)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func (s *Server) accountRequestResult(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	v, err := svc.RequestResult(r.Context(), caller(p), r.PathValue("id"), r.PathValue("requestId"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// auditView is one use of an account as the API shows it.
type auditView struct {
	ID         string `json:"id"`
	UserID     string `json:"userId"`
	Source     string `json:"source"`
	At         string `json:"at"`
	Method     string `json:"method"`
	Host       string `json:"host"`
	Path       string `json:"path"`
	Status     int    `json:"status"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"durationMs"`
}

// accountAudit lists the uses of an account, newest first; ?before takes
// the nextCursor of the page before.
func (s *Server) accountAudit(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	_, limit, err := page(r)
	if err != nil {
		return err
	}
	entries, err := svc.Audit(r.Context(), caller(p), r.PathValue("id"), r.URL.Query().Get("before"), limit)
	if err != nil {
		return err
	}
	views := make([]auditView, len(entries))
	for i, a := range entries {
		views[i] = auditView{
			ID: a.ID, UserID: a.UserID, Source: a.Source, At: store.FromMillis(a.At).Format(timeFormat),
			Method: a.Method, Host: a.Host, Path: a.Path, Status: a.Status, Error: a.Error, DurationMS: a.DurationMS,
		}
	}
	return writeJSON(w, http.StatusOK, newList(views, limit, func(v auditView) string { return v.ID }))
}

func (s *Server) startOAuth2(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	var in account.StartInput
	if err := s.decode(r, &in); err != nil {
		return err
	}
	res, err := svc.StartOAuth2(r.Context(), caller(p), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// oauth2Callback is where the provider sends the user's browser back. It
// carries no access token: the single-use state says whose authorization
// it is. Its input is the query the provider wrote, so what is wrong with
// it (an unknown or expired state, the provider's refusal) is a 400.
func (s *Server) oauth2Callback(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	v, returnTo, err := svc.FinishOAuth2(r.Context(), q.Get("state"), q.Get("code"), q.Get("error"))
	var in *account.InputError
	if errors.As(err, &in) {
		p := accountProblem(in)
		p.Status, p.Title = http.StatusBadRequest, http.StatusText(http.StatusBadRequest)
		return p
	}
	if err != nil {
		return err
	}
	if returnTo == "" {
		return writeJSON(w, http.StatusOK, v)
	}
	// The service added accountId to the returnTo given at the start.
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
	return nil
}

func (s *Server) setOAuthClient(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	var in account.OAuthClientInput
	if err := s.decode(r, &in); err != nil {
		return err
	}
	v, err := svc.SetOAuthClient(r.Context(), caller(p), r.PathValue("name"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) getOAuthClient(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	v, err := svc.OAuthClient(r.Context(), caller(p), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteOAuthClient(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.accounts()
	if err != nil {
		return err
	}
	if err := svc.DeleteOAuthClient(r.Context(), caller(p), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []flow.Problem `json:"errors,omitempty"`
	// Flows lists the flows a refused change concerns (a breaking
	// connector update names the running flows it would stop).
	Flows []usageItem `json:"flows,omitempty"`
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter string `json:"-"`
}

func (p *Problem) Error() string { return p.Detail }

// problem builds a problem with a status and detail.
func problem(status int, detail string, args ...any) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: fmt.Sprintf(detail, args...)}
}

// handlerFunc is an HTTP handler that returns its error; one function
// renders every error as a problem document.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := s.toProblem(err)
	p.Instance = r.URL.Path
	if p.Status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	if p.RetryAfter != "" {
		w.Header().Set("Retry-After", p.RetryAfter)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// toProblem maps typed errors to status codes.
func (s *Server) toProblem(err error) *Problem {
	var p *Problem
	var ve *flow.ValidationError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &ve):
		p := problem(http.StatusUnprocessableEntity, "%s", ve.Error())
		p.Errors = ve.Problems
		return p
	case errors.As(err, &mbe):
		return problem(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, flow.ErrMalformed):
		return problem(http.StatusBadRequest, "%s", err.Error())
	case errors.Is(err, store.ErrNotFound):
		return problem(http.StatusNotFound, "no such resource")
	case errors.Is(err, store.ErrConflict):
		return problem(http.StatusConflict, "%s", err.Error())
	case errors.Is(err, engine.ErrFlowNotRunning):
		return problem(http.StatusGone, "the flow is not running")
	}
	return problem(http.StatusInternalServerError, "internal error")
}

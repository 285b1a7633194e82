package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"

	"github.com/plugboard/plugboard/internal/account"
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
		// An API that fails or is slow behind an account is not this
		// server's fault: a warning, not an error.
		level := slog.LevelError
		if p.Status == http.StatusBadGateway || p.Status == http.StatusGatewayTimeout {
			level = slog.LevelWarn
		}
		// A URL in an error may carry credentials in its query (an API
		// key) or user info: they never reach the log.
		s.log.LogAttrs(r.Context(), level, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", redactURLs(err.Error())))
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
	if p := accountProblem(err); p != nil {
		return p
	}
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

// accountProblem maps the errors of the account service; nil for others.
// Their texts name the account, never a secret; the upstream ones are
// still stripped of URL queries and user info, which a transport error
// quotes.
func accountProblem(err error) *Problem {
	var in *account.InputError
	var rl *account.RateLimitedError
	var up *account.UpstreamError
	switch {
	case errors.As(err, &in):
		p := problem(http.StatusUnprocessableEntity, "%s", in.Error())
		for _, fp := range in.Problems {
			p.Errors = append(p.Errors, flow.Problem{Field: fp.Field, Message: fp.Message})
		}
		return p
	case errors.Is(err, account.ErrNotFound):
		return problem(http.StatusNotFound, "%s", err.Error())
	case errors.Is(err, account.ErrRevoked):
		return problem(http.StatusGone, "%s: the account was revoked and can no longer be used", err.Error())
	case errors.Is(err, account.ErrInvalid):
		return problem(http.StatusConflict, "%s: its credentials stopped working; reconnect it with POST /api/v1/accounts/oauth2/start", err.Error())
	case errors.Is(err, account.ErrForbidden):
		return problem(http.StatusForbidden, "%s", err.Error())
	case errors.Is(err, account.ErrTimeout):
		return problem(http.StatusGatewayTimeout, "%s", redactURLs(err.Error()))
	case errors.As(err, &rl):
		p := problem(http.StatusTooManyRequests, "%s", rl.Error())
		p.RetryAfter = strconv.Itoa(max(1, int(math.Ceil(rl.RetryAfter.Seconds()))))
		return p
	case errors.As(err, &up):
		return problem(http.StatusBadGateway, "the account's API could not be reached: %s", redactURLs(up.Error()))
	}
	return nil
}

// urlSecrets matches the parts of a URL that may hold credentials: the
// query and user info.
var urlSecrets = regexp.MustCompile(`(?i)(\b[a-z][a-z0-9+.-]*://)([^\s/?#"'@]*@)?([^\s?#"']*)(\?[^\s#"']*)?`)

// redactURLs replaces the query and user info of every URL in text.
func redactURLs(text string) string {
	return urlSecrets.ReplaceAllStringFunc(text, func(u string) string {
		m := urlSecrets.FindStringSubmatch(u)
		out := m[1]
		if m[2] != "" {
			out += "***@"
		}
		out += m[3]
		if m[4] != "" {
			out += "?***"
		}
		return out
	})
}

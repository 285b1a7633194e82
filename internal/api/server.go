// Package api serves the REST API under /api/v1, the webhook endpoints
// under /hooks/ and the operational endpoints.
package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/acl"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/syswebhook"
)

// Config configures the API server.
type Config struct {
	Store    *store.Store
	Engine   *engine.Engine
	Registry *component.Registry
	Logger   *slog.Logger
	// Metrics registers the HTTP metrics; Gatherer serves /metrics.
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// PublicURL is the base of webhook URLs, e.g. https://hooks.example.com.
	PublicURL string
	// MaxWebhookBytes caps webhook bodies (default 1 MiB).
	MaxWebhookBytes int64
	// MaxAPIBytes caps API request bodies (default 1 MiB).
	MaxAPIBytes int64
	// Replies brings core.Response answers to webhooks in mode "wait"; the
	// same box must be given to the core components (core.Deps.Replies).
	// Default: a box of its own, which only replies made through it reach.
	Replies *engine.Replies
	// SystemWebhooks serves /api/v1/system-webhooks and records
	// FLOW_STOPPED; without it those routes answer 404.
	SystemWebhooks *syswebhook.Service
	// Installed lists the installed connectors for the ACL (default: the
	// built-in connectors and those installed in Store).
	Installed acl.Installed
	// Connectors loads installed connectors into the component registry;
	// installing, updating and removing one syncs it at once on this node.
	Connectors interface {
		Sync(ctx context.Context) error
	}
	// Accounts serves /api/v1/accounts (the credential vault, server-side
	// requests, OAuth2) and the connectors' OAuth2 clients; without it
	// those routes answer 404.
	Accounts *account.Service
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	store   *store.Store
	engine  *engine.Engine
	log     *slog.Logger
	handler http.Handler
	ready   atomic.Bool
	hooks   hookCache
	// tokens saves reading the caller's token on every call.
	tokens tokenCache
	// aclRules caches the connector access rules; installed lists the
	// connectors that POST /api/v1/acl/rules/installed-connectors grants.
	aclRules  *acl.Cache
	installed acl.Installed
	// apiRoutes lists the "METHOD /api/v1/..." patterns served, which the
	// OpenAPI document must describe.
	apiRoutes []string

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Engine == nil || cfg.Registry == nil {
		return nil, errors.New("api: Store, Engine and Registry are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.MaxWebhookBytes = cmp.Or(cfg.MaxWebhookBytes, 1<<20)
	cfg.MaxAPIBytes = cmp.Or(cfg.MaxAPIBytes, 1<<20)
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.Replies == nil {
		cfg.Replies = engine.NewReplies(cfg.Store)
	}
	s := &Server{cfg: cfg, store: cfg.Store, engine: cfg.Engine, log: cfg.Logger}
	s.aclRules, s.installed = acl.NewCache(cfg.Store, nil), cfg.Installed
	if s.installed == nil {
		s.installed = acl.Connectors(cfg.Registry, cfg.Store)
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plugboard_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "plugboard_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0002, 3, 10),
	}, []string{"route"})
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{s.requests, s.latency} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("registering HTTP metrics: %w", err)
			}
		}
	}
	s.handler = s.instrument(s.routes())
	return s, nil
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady marks the server ready (or not) for /readyz.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h handlerFunc) {
		if strings.Contains(pattern, " /api/v1/") {
			s.apiRoutes = append(s.apiRoutes, pattern)
		}
		mux.Handle(pattern, s.wrap(h))
	}
	authed := func(pattern string, h func(w http.ResponseWriter, r *http.Request, p principal) error) {
		handle(pattern, s.authenticate(h))
	}
	admin := func(pattern string, h func(w http.ResponseWriter, r *http.Request, p principal) error) {
		handle(pattern, s.authenticate(requireAdmin(h)))
	}

	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	handle("GET /api/v1/openapi.json", s.openAPI)

	handle("POST /api/v1/auth/sign-in", s.signIn)
	authed("GET /api/v1/users/me", s.me)
	admin("POST /api/v1/users", s.createUser)
	admin("GET /api/v1/users", s.listUsers)
	admin("POST /api/v1/users/{id}/tokens", s.createToken)

	authed("POST /api/v1/flows", s.createFlow)
	authed("GET /api/v1/flows", s.listFlows)
	authed("GET /api/v1/flows/{id}", s.getFlow)
	authed("PUT /api/v1/flows/{id}", s.updateFlow)
	authed("DELETE /api/v1/flows/{id}", s.deleteFlow)
	authed("POST /api/v1/flows/{id}", s.flowCommand)
	authed("GET /api/v1/flows/{id}/logs", s.flowLogs)
	authed("GET /api/v1/flows/{id}/components/{componentId}/variables", s.flowVariables)

	authed("GET /api/v1/components", s.listComponents)

	admin("GET /api/v1/acl/rules", s.listACLRules)
	admin("PUT /api/v1/acl/rules", s.replaceACLRules)
	admin("POST /api/v1/acl/rules/installed-connectors", s.grantInstalledConnectors)

	admin("GET /api/v1/stats/component-usage", s.componentUsage)
	admin("POST /api/v1/connectors", s.publishConnector)
	admin("GET /api/v1/connectors", s.listConnectors)
	admin("GET /api/v1/connectors/{name}", s.getConnector)
	admin("GET /api/v1/connectors/{name}/versions/{version}/archive", s.connectorArchive)
	admin("POST /api/v1/connectors/{name}/install", s.installConnector)
	admin("POST /api/v1/connectors/{name}/update", s.updateConnector)
	admin("DELETE /api/v1/connectors/{name}", s.removeConnector)

	authed("POST /api/v1/app-events/{event}", s.appEvent)

	authed("GET /api/v1/unprocessed-messages", s.listUnprocessed)
	authed("POST /api/v1/unprocessed-messages/{id}/retry", s.retryUnprocessed)
	authed("DELETE /api/v1/unprocessed-messages/{id}", s.deleteUnprocessed)

	admin("POST /api/v1/system-webhooks", s.createSystemWebhook)
	admin("GET /api/v1/system-webhooks", s.listSystemWebhooks)
	admin("GET /api/v1/system-webhooks/{id}", s.getSystemWebhook)
	admin("DELETE /api/v1/system-webhooks/{id}", s.deleteSystemWebhook)
	admin("GET /api/v1/system-webhooks/{id}/deliveries", s.listSystemWebhookDeliveries)

	authed("POST /api/v1/accounts", s.createAccount)
	authed("GET /api/v1/accounts", s.listAccounts)
	authed("GET /api/v1/accounts/{id}", s.getAccount)
	authed("PATCH /api/v1/accounts/{id}", s.updateAccount)
	authed("DELETE /api/v1/accounts/{id}", s.revokeAccount)
	authed("POST /api/v1/accounts/{id}/request", s.accountRequest)
	authed("GET /api/v1/accounts/{id}/requests/{requestId}", s.accountRequestResult)
	authed("GET /api/v1/accounts/{id}/audit", s.accountAudit)
	authed("POST /api/v1/accounts/oauth2/start", s.startOAuth2)
	// The provider sends the user's browser here: no access token, the
	// single-use state identifies the authorization.
	handle("GET /api/v1/accounts/oauth2/callback", s.oauth2Callback)
	admin("PUT /api/v1/connectors/{name}/oauth2-client", s.setOAuthClient)
	admin("GET /api/v1/connectors/{name}/oauth2-client", s.getOAuthClient)
	admin("DELETE /api/v1/connectors/{name}/oauth2-client", s.deleteOAuthClient)

	mux.Handle("/hooks/{token}", s.wrap(s.webhook))
	mux.Handle("/", s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return problem(http.StatusNotFound, "no route for %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// statusWriter remembers the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSONRaw(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if !s.ready.Load() {
		writeJSONRaw(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
		return
	}
	if err := s.store.Ping(ctx); err != nil {
		writeJSONRaw(w, http.StatusServiceUnavailable, map[string]string{"status": "database unavailable"})
		return
	}
	writeJSONRaw(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSONRaw(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSON writes v; it returns nil so handlers can end with it.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	writeJSONRaw(w, status, v)
	return nil
}

// readBody reads at most limit bytes of the request body; more is a 413.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, problem(http.StatusBadRequest, "reading request body: %v", err)
	}
	return body, nil
}

// decode reads a JSON request body strictly into v.
func (s *Server) decode(r *http.Request, v any) error {
	body, err := readBody(r, s.cfg.MaxAPIBytes)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// decodeOptional is decode for a body that may be left out: an empty body
// leaves v as it is.
func (s *Server) decodeOptional(r *http.Request, v any) error {
	body, err := readBody(r, s.cfg.MaxAPIBytes)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return err
	}
	return decodeJSON(body, v)
}

// decodeJSON decodes one JSON value strictly into v.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return problem(http.StatusBadRequest, "malformed JSON body: trailing data")
	}
	return nil
}

// page reads ?limit= and ?after=.
func page(r *http.Request) (after string, limit int, err error) {
	limit = 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, convErr := strconv.Atoi(v)
		if convErr != nil || n < 1 || n > 500 {
			return "", 0, problem(http.StatusBadRequest, "limit must be a number from 1 to 500")
		}
		limit = n
	}
	return r.URL.Query().Get("after"), limit, nil
}

// list is the envelope of every list endpoint.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

func newList[T any](items []T, limit int, cursor func(T) string) list[T] {
	l := list[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	if len(items) == limit && limit > 0 {
		l.NextCursor = cursor(items[len(items)-1])
	}
	return l
}

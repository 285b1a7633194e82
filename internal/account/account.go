// Package account keeps users' credentials for external APIs (accounts)
// and makes requests through them on the server, so that neither the
// product's front end nor a flow document ever holds a secret.
//
// Secrets are sealed by the vault with the account id as associated data
// and opened only to build a request. Every use is written to the
// account's audit log. Requests go through the outbound client: private
// and loopback addresses are refused (unless the operator allows them),
// answers are capped, and a path can never leave the account's domain.
package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/vault"
)

// Auth types.
const (
	AuthBasic  = "basic"
	AuthToken  = "token"
	AuthAPIKey = "apiKey"
	AuthOAuth2 = "oauth2"
)

// Where an API key goes.
const (
	InHeader = "header"
	InQuery  = "query"
)

// ConnectorAuth is how a connector's accounts authenticate (the manifest's
// auth block, as the server hands it over).
type ConnectorAuth struct {
	// Type is none, apiKey, basic, token or oauth2.
	Type string
	// In and Name place an apiKey.
	In, Name string
	// Prefix goes before a token ("Bearer" when empty).
	Prefix string
	// Grant is "authorizationCode" (the default) or "clientCredentials".
	Grant            string
	AuthorizationURL string
	TokenURL         string
	Scopes           []string
	// BaseURL is the connector's baseUrl, the default domain of its
	// accounts.
	BaseURL string
}

// OAuth2 grants.
const (
	GrantAuthorizationCode = "authorizationCode"
	GrantClientCredentials = "clientCredentials"
)

// Config configures a Service.
type Config struct {
	Store *store.Store
	Vault *vault.Vault
	// HTTP makes the outbound calls: build it with outbound.NewClient so
	// that the address policy and the body cap apply.
	HTTP *http.Client
	// MaxResponseBytes caps an answer's body (default 10 MiB).
	MaxResponseBytes int64
	Logger           *slog.Logger
	// ConnectorAuth returns the auth of installed connector name, or nil
	// when it is not installed (or has no auth).
	ConnectorAuth func(ctx context.Context, name string) (*ConnectorAuth, error)
	// PublicURL is the server's public base URL; the OAuth2 redirect URI
	// is PublicURL + "/api/v1/accounts/oauth2/callback".
	PublicURL string
	// Events records COMPONENT_ERROR when an account turns invalid.
	Events engine.Emitter
	// DefaultTimeout bounds a request that sets none (default 30s);
	// MaxTimeout is the longest a caller may ask for (default 5 min).
	DefaultTimeout, MaxTimeout time.Duration
	// AuditFlushInterval is how long audit entries wait to be written in
	// one batch (default 100ms).
	AuditFlushInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Caller is who asks: a user, possibly an admin. An admin may use and see
// every user's accounts; anyone else only their own.
type Caller struct {
	UserID string
	Admin  bool
}

// Service manages accounts and makes requests through them. It is safe
// for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger
	// The rest is the implementation's (rate limiters, audit writer,
	// refresh single-flight, ...).
}

// New makes a service. Start runs its audit writer.
func New(cfg Config) (*Service, error) {
	return nil, errors.New("not implemented")
}

// Start runs the background audit writer until ctx ends; Close flushes
// what is buffered.
func (s *Service) Start(ctx context.Context) {}

// Close writes the buffered audit entries.
func (s *Service) Close(ctx context.Context) error { return nil }

// APIKey places an API key.
type APIKey struct {
	In    string `json:"in"`
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// Input is a new account (POST /api/v1/accounts).
type Input struct {
	Name       string            `json:"name"`
	AuthType   string            `json:"authType"`
	Domain     string            `json:"domain"`
	Headers    map[string]string `json:"headers,omitempty"`
	AuthPrefix string            `json:"authPrefix,omitempty"`
	Token      string            `json:"token,omitempty"`
	Username   string            `json:"username,omitempty"`
	Password   string            `json:"password,omitempty"`
	APIKey     *APIKey           `json:"apiKey,omitempty"`
	Connector  string            `json:"connector,omitempty"`
	// RateLimit is the most requests per second through the account.
	RateLimit float64 `json:"rateLimit,omitempty"`
}

// Patch changes an account (PATCH /api/v1/accounts/{id}): nil fields stay.
// A new secret (token, password, apiKey.value) rotates it.
type Patch struct {
	Name       *string            `json:"name,omitempty"`
	Domain     *string            `json:"domain,omitempty"`
	Headers    *map[string]string `json:"headers,omitempty"`
	AuthPrefix *string            `json:"authPrefix,omitempty"`
	Token      *string            `json:"token,omitempty"`
	Username   *string            `json:"username,omitempty"`
	Password   *string            `json:"password,omitempty"`
	APIKey     *APIKey            `json:"apiKey,omitempty"`
	RateLimit  *float64           `json:"rateLimit,omitempty"`
}

// View is an account as the API shows it: never a secret, at most a
// masked hint of one.
type View struct {
	ID       string `json:"id"`
	OwnerID  string `json:"ownerId"`
	Name     string `json:"name"`
	AuthType string `json:"authType"`
	Domain   string `json:"domain"`
	// Headers shows the names of the extra headers with masked values.
	Headers    map[string]string `json:"headers"`
	AuthPrefix string            `json:"authPrefix,omitempty"`
	Username   string            `json:"username,omitempty"`
	APIKey     *APIKey           `json:"apiKey,omitempty"` // in and name only
	Connector  string            `json:"connector,omitempty"`
	// Hint is the masked secret: "…" and at most its last four characters.
	Hint           string     `json:"hint,omitempty"`
	RateLimit      float64    `json:"rateLimit,omitempty"`
	Status         string     `json:"status"`
	StatusReason   string     `json:"statusReason,omitempty"`
	TokenExpiresAt *time.Time `json:"tokenExpiresAt,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	RevokedAt      *time.Time `json:"revokedAt,omitempty"`
}

// Create validates and stores a new account of c.UserID. Bad input is an
// *InputError; nothing is stored then.
func (s *Service) Create(ctx context.Context, c Caller, in Input) (*View, error) {
	return nil, errors.New("not implemented")
}

// Get returns account id if c may see it, else ErrNotFound.
func (s *Service) Get(ctx context.Context, c Caller, id string) (*View, error) {
	return nil, errors.New("not implemented")
}

// List returns c's accounts (an admin's list holds every user's, or
// those of ownerID when set), in id order after the cursor.
func (s *Service) List(ctx context.Context, c Caller, ownerID string, withRevoked bool, after string, limit int) ([]*View, error) {
	return nil, errors.New("not implemented")
}

// Update applies p to account id.
func (s *Service) Update(ctx context.Context, c Caller, id string, p Patch) (*View, error) {
	return nil, errors.New("not implemented")
}

// Revoke deletes account id's secret for good: every later use fails
// with ErrRevoked.
func (s *Service) Revoke(ctx context.Context, c Caller, id string) error {
	return errors.New("not implemented")
}

// Request is one call through an account (POST
// /api/v1/accounts/{id}/request, core.ServerActivity).
type Request struct {
	Method string `json:"method,omitempty"` // default GET
	// Path is joined to the account's domain; it may not leave it.
	Path string `json:"path"`
	// Query values are strings, numbers, booleans or arrays of them.
	Query   map[string]any    `json:"query,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body is sent as JSON, or as text when it is a JSON string.
	Body json.RawMessage `json:"body,omitempty"`
	// Timeout is a Go duration ("10s"); default Config.DefaultTimeout.
	Timeout string `json:"timeout,omitempty"`
	// Wait false answers at once and runs the call as a durable job.
	Wait *bool `json:"wait,omitempty"`
}

// Result is the answer of a request.
type Result struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	// Body is the JSON value when the answer is JSON, else its text.
	Body any `json:"body"`
}

// Do sends req through account id for c and returns the answer, whatever
// its status. source says where the call comes from ("api",
// "flow:<flowId>/<componentId>") for the audit log.
func (s *Service) Do(ctx context.Context, c Caller, id string, req Request, source string) (*Result, error) {
	return nil, errors.New("not implemented")
}

// Enqueue checks req and stores it as a durable job; the job's outcome is
// read with RequestResult.
func (s *Service) Enqueue(ctx context.Context, c Caller, id string, req Request, source string) (string, error) {
	return "", errors.New("not implemented")
}

// RequestView is a wait=false request and, once run, its outcome.
type RequestView struct {
	ID        string          `json:"id"`
	AccountID string          `json:"accountId"`
	State     string          `json:"state"` // pending, done, failed
	Attempts  int             `json:"attempts"`
	Result    *Result         `json:"result,omitempty"`
	Error     string          `json:"error,omitempty"`
	Request   json.RawMessage `json:"request"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// RequestResult returns the wait=false request requestID of account id.
func (s *Service) RequestResult(ctx context.Context, c Caller, id, requestID string) (*RequestView, error) {
	return nil, errors.New("not implemented")
}

// Send is for connectors: build makes the request from the account's
// domain (the base URL paths join to); Send adds the credentials and
// headers, applies the rate limit, refreshes OAuth2 tokens before expiry
// and once on a 401 (then build is called again), records the use, and
// returns the answer, whose body the caller closes. When connector is set
// the account must be one of that connector's.
func (s *Service) Send(ctx context.Context, c Caller, id, connector, source string, build func(base *url.URL) (*http.Request, error)) (*http.Response, error) {
	return nil, errors.New("not implemented")
}

// Audit lists the uses of account id, newest first, before the cursor.
func (s *Service) Audit(ctx context.Context, c Caller, id, before string, limit int) ([]*store.AccountAudit, error) {
	return nil, errors.New("not implemented")
}

// KindName names the job kind of wait=false requests.
const KindName = "account-request"

// Kind returns the job kind that runs wait=false requests; Register
// gives it to the engine.
func (s *Service) Kind() engine.Kind { return engine.Kind{} }

// Register makes eng run wait=false requests.
func (s *Service) Register(eng *engine.Engine) { eng.RegisterKind(s.Kind()) }

// Errors. Each error a caller sees names the account, never a secret.
var (
	// ErrNotFound: no such account, or one the caller may not see.
	ErrNotFound = errors.New("account not found")
	// ErrRevoked: the account was revoked (the error says when and why).
	ErrRevoked = errors.New("account revoked")
	// ErrInvalid: the account's credentials stopped working (a failed
	// OAuth2 refresh); the user must reconnect it.
	ErrInvalid = errors.New("account invalid")
	// ErrTimeout: the API did not answer within the request's timeout.
	ErrTimeout = errors.New("request timed out")
)

// InputError lists what is wrong with an account or a request (422).
type InputError struct {
	Problems []FieldProblem
}

// FieldProblem is one wrong field: a JSON pointer and what is wrong.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *InputError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("%s: %s", e.Problems[0].Field, e.Problems[0].Message)
	}
	return fmt.Sprintf("%d problems, first %s: %s", len(e.Problems), e.Problems[0].Field, e.Problems[0].Message)
}

// RateLimitedError says the account's rate limit is reached; RetryAfter is
// when a request would pass.
type RateLimitedError struct {
	AccountID  string
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("account %s: rate limit reached, retry in %s", e.AccountID, e.RetryAfter.Round(time.Millisecond))
}

// UpstreamError says the API could not be reached (connection refused,
// address refused by the outbound policy, answer too large): 502.
type UpstreamError struct {
	Err error
}

func (e *UpstreamError) Error() string { return e.Err.Error() }
func (e *UpstreamError) Unwrap() error { return e.Err }

// secrets is the sealed document of an account.
type secrets struct {
	Token    string            `json:"token,omitempty"`
	Password string            `json:"password,omitempty"`
	APIKey   string            `json:"apiKey,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	// OAuth2.
	AccessToken  string `json:"accessToken,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
	TokenType    string `json:"tokenType,omitempty"`
}

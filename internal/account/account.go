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
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/ttlcache"
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
	// Test, when set, is a request that succeeds only with valid
	// credentials: a new account of the connector is stored only if it
	// passes.
	Test *CredentialTest
}

// CredentialTest is the request that checks a connector's new account: a
// path below the account's domain.
type CredentialTest struct {
	Method, Path string
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
	// ReturnOrigins are the origins ("https://app.example.com") besides
	// PublicURL's to which an OAuth2 connection may send the browser back
	// (StartInput.ReturnTo): the operator's allow-list, so that the
	// callback is no open redirect.
	ReturnOrigins []string
	// Events records COMPONENT_ERROR when an account turns invalid.
	Events engine.Emitter
	// DefaultTimeout bounds a request that sets none (default 30s);
	// MaxTimeout is the longest a caller may ask for (default 5 min).
	DefaultTimeout, MaxTimeout time.Duration
	// AuditFlushInterval is how long audit entries wait to be written in
	// one batch (default 100ms).
	AuditFlushInterval time.Duration
	// AuditRetention is how long the audit log keeps a use of an account
	// (default 90 days); RequestRetention how long a finished wait=false
	// request and its result stay readable (default 7 days). A negative
	// value keeps them for ever.
	AuditRetention, RequestRetention time.Duration
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
	// http is cfg.HTTP with a redirect policy that never leaves the
	// account's origin (see sameOrigin).
	http *http.Client
	// limits holds the rate limiter of each account that has one.
	limits limiters
	// audit batches the uses of accounts.
	audit *auditWriter
	// refreshes joins the OAuth2 refreshes of one account on this node
	// (keyed by account id), so only one runs at a time here; the store's
	// refresh lease does the same across nodes.
	refreshes singleflight.Group
	// returnOrigins holds the outbound.Origin of Config.PublicURL and of
	// each of Config.ReturnOrigins: where an OAuth2 connection may send
	// the browser back.
	returnOrigins map[string]bool
	// rows keeps the account rows requests read, by id, for a second
	// (see loadForUse). Get hands out copies, which callers may change (a
	// refresh writes its new version into its copy).
	rows ttlcache.Cache[string, store.Account]
}

// Defaults of zero Config fields.
const (
	defaultMaxResponseBytes   = 10 << 20
	defaultTimeout            = 30 * time.Second
	defaultMaxTimeout         = 5 * time.Minute
	defaultAuditFlushInterval = 100 * time.Millisecond
	defaultAuditRetention     = 90 * 24 * time.Hour
	defaultRequestRetention   = 7 * 24 * time.Hour
	// pruneInterval is how often Start's loop deletes what is past its
	// retention.
	pruneInterval = time.Hour
)

// New makes a service. Start runs its audit writer.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Vault == nil {
		return nil, errors.New("account: Store and Vault are required")
	}
	if cfg.HTTP == nil {
		cfg.HTTP = outbound.NewClient(outbound.Options{MaxResponseBytes: cfg.MaxResponseBytes})
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = defaultMaxResponseBytes
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.DefaultTimeout = cmp.Or(cfg.DefaultTimeout, defaultTimeout)
	cfg.MaxTimeout = cmp.Or(cfg.MaxTimeout, defaultMaxTimeout)
	if cfg.DefaultTimeout < 0 || cfg.MaxTimeout < cfg.DefaultTimeout {
		return nil, fmt.Errorf("account: DefaultTimeout (%s) must be positive and at most MaxTimeout (%s)", cfg.DefaultTimeout, cfg.MaxTimeout)
	}
	cfg.AuditFlushInterval = cmp.Or(cfg.AuditFlushInterval, defaultAuditFlushInterval)
	cfg.AuditRetention = cmp.Or(cfg.AuditRetention, defaultAuditRetention)
	cfg.RequestRetention = cmp.Or(cfg.RequestRetention, defaultRequestRetention)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	origins, err := parseReturnOrigins(cfg.PublicURL, cfg.ReturnOrigins)
	if err != nil {
		return nil, err
	}
	client := *cfg.HTTP
	client.CheckRedirect = sameOrigin(cfg.HTTP.CheckRedirect)
	s := &Service{cfg: cfg, log: cfg.Logger, http: &client, returnOrigins: origins}
	s.rows.TTL = time.Second
	s.limits.m = map[string]*limiter{}
	s.audit = newAuditWriter(cfg.Store, cfg.Logger)
	return s, nil
}

// Start runs the background audit writer and, once at once and then
// every hour, Prune, until ctx ends; Close flushes what is buffered.
func (s *Service) Start(ctx context.Context) {
	go s.audit.run(ctx, s.cfg.AuditFlushInterval)
	go s.pruneLoop(ctx)
}

// pruneLoop runs Prune now and every pruneInterval until ctx ends. A
// failure is logged; the next round tries again.
func (s *Service) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		if err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "pruning the account audit log and requests", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes the audit entries older than Config.AuditRetention and
// the finished wait=false requests older than Config.RequestRetention.
func (s *Service) Prune(ctx context.Context) error {
	var errs []error
	if r := s.cfg.AuditRetention; r > 0 {
		n, err := s.cfg.Store.DeleteAccountAuditBefore(ctx, s.cfg.Now().Add(-r))
		if err != nil {
			errs = append(errs, err)
		} else if n > 0 {
			s.log.LogAttrs(ctx, slog.LevelInfo, "pruned the account audit log", slog.Int64("deleted", n))
		}
	}
	if r := s.cfg.RequestRetention; r > 0 {
		n, err := s.cfg.Store.DeleteAccountRequestsBefore(ctx, s.cfg.Store.Now().Add(-r))
		if err != nil {
			errs = append(errs, err)
		} else if n > 0 {
			s.log.LogAttrs(ctx, slog.LevelInfo, "pruned finished account requests", slog.Int64("deleted", n))
		}
	}
	return errors.Join(errs...)
}

// Close writes the buffered audit entries.
func (s *Service) Close(ctx context.Context) error {
	return s.audit.flush(ctx)
}

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
// A new secret (token, password, apiKey.value) rotates it. Headers are
// merged into the account's: a header with an empty value is removed.
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
	var probs problems
	var auth *ConnectorAuth
	if in.Connector != "" {
		var err error
		if auth, err = s.connectorAuth(ctx, in.Connector); err != nil {
			return nil, err
		}
		if auth == nil {
			probs.add("/connector", fmt.Sprintf("connector %q is not installed or takes no account", in.Connector))
		} else {
			applyConnector(&probs, &in, auth)
		}
	} else if in.AuthType == AuthOAuth2 {
		probs.add("/connector", "an oauth2 account is made for a connector")
	}
	strays(&probs, in)
	if in.AuthType == AuthToken || in.AuthType == AuthOAuth2 {
		in.AuthPrefix = cmp.Or(in.AuthPrefix, "Bearer")
	}
	a := &store.Account{
		ID: newID(), OwnerID: c.UserID, Name: in.Name, AuthType: in.AuthType, Domain: in.Domain,
		AuthPrefix: in.AuthPrefix, Username: in.Username, Connector: in.Connector,
		RateLimit: in.RateLimit, Status: store.AccountActive,
	}
	sec := &secrets{Token: in.Token, Password: in.Password, Headers: in.Headers}
	if in.APIKey != nil {
		a.APIKeyIn, a.APIKeyName, sec.APIKey = in.APIKey.In, in.APIKey.Name, in.APIKey.Value
	}
	probs = append(probs, checkAccount(a, sec)...)
	if err := probs.err(); err != nil {
		return nil, err
	}
	if in.AuthType == AuthOAuth2 {
		return s.createOAuth2(ctx, c, in, auth)
	}
	a.Hint = hint(mainSecret(a, sec))
	a.Secret = s.seal(a.ID, sec)
	if auth != nil && auth.Test != nil {
		if err := s.testCredentials(ctx, c, a, auth.Test); err != nil {
			return nil, err
		}
	}
	if err := s.cfg.Store.CreateAccount(ctx, a); err != nil {
		return nil, fmt.Errorf("storing account %s: %w", a.ID, err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "account created", slog.String("account", a.ID),
		slog.String("owner", a.OwnerID), slog.String("authType", a.AuthType))
	return s.view(a, sec), nil
}

// testCredentials makes the connector's test request through account a
// before it is stored: an answer of 400 or more means the API refused the
// credentials (422, nothing stored); an API that cannot be reached is an
// *UpstreamError. The call is in the account's audit log.
func (s *Service) testCredentials(ctx context.Context, c Caller, a *store.Account, t *CredentialTest) error {
	p, err := s.prepare(a, Request{Method: t.Method, Path: t.Path})
	if err != nil {
		return fmt.Errorf("the connector's credential test: %w", err)
	}
	res, err := s.do(ctx, c.UserID, a, p, "test")
	if err != nil {
		return err
	}
	if res.Status >= 400 {
		var probs problems
		probs.add("/"+credentialField(a.AuthType), fmt.Sprintf("the API refused these credentials: %s %s answered %d",
			p.method, p.url.EscapedPath(), res.Status))
		return probs.err()
	}
	return nil
}

// credentialField names the input field of an auth type's secret.
func credentialField(authType string) string {
	switch authType {
	case AuthBasic:
		return "password"
	case AuthAPIKey:
		return "apiKey"
	}
	return "token"
}

// connectorAuth asks Config.ConnectorAuth for the auth of connector name;
// nil when it is not installed.
func (s *Service) connectorAuth(ctx context.Context, name string) (*ConnectorAuth, error) {
	if s.cfg.ConnectorAuth == nil {
		return nil, nil
	}
	auth, err := s.cfg.ConnectorAuth(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading the auth of connector %s: %w", name, err)
	}
	return auth, nil
}

// Get returns account id if c may see it, else ErrNotFound.
func (s *Service) Get(ctx context.Context, c Caller, id string) (*View, error) {
	a, err := s.loadAny(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return s.viewOpened(ctx, a), nil
}

// viewOpened shows a with its secrets opened for the header names; a
// secret that does not open (it should not happen: the key is checked at
// start-up) is logged and shown as no headers.
func (s *Service) viewOpened(ctx context.Context, a *store.Account) *View {
	if a.Secret == "" {
		return s.view(a, nil)
	}
	sec, err := s.open(a)
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "opening account secrets", slog.String("account", a.ID), slog.String("error", err.Error()))
		return s.view(a, nil)
	}
	return s.view(a, sec)
}

// List returns c's accounts (an admin's list holds every user's, or
// those of ownerID when set), in id order after the cursor.
func (s *Service) List(ctx context.Context, c Caller, ownerID string, withRevoked bool, after string, limit int) ([]*View, error) {
	if !c.Admin {
		ownerID = c.UserID
	}
	if limit <= 0 || limit > maxListLimit {
		limit = defaultListLimit
	}
	accounts, err := s.cfg.Store.ListAccounts(ctx, ownerID, withRevoked, after, limit)
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	views := make([]*View, 0, len(accounts))
	for _, a := range accounts {
		views = append(views, s.viewOpened(ctx, a))
	}
	return views, nil
}

// List page sizes.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// Update applies p to account id.
func (s *Service) Update(ctx context.Context, c Caller, id string, p Patch) (*View, error) {
	for try := 0; ; try++ {
		a, err := s.loadAny(ctx, c, id)
		if err != nil {
			return nil, err
		}
		if a.Status == store.AccountRevoked {
			return nil, usable(a)
		}
		sec, err := s.open(a)
		if err != nil {
			return nil, err
		}
		if err := applyPatch(a, sec, p); err != nil {
			return nil, err
		}
		a.Hint = hint(mainSecret(a, sec))
		a.Secret = s.seal(a.ID, sec)
		err = s.cfg.Store.UpdateAccount(ctx, a)
		if errors.Is(err, store.ErrConflict) && try == 0 {
			continue // a token refresh landed meanwhile: apply p to it
		}
		if errors.Is(err, store.ErrNotFound) {
			// Revoked meanwhile: say so.
			a, lerr := s.loadAny(ctx, c, id)
			if lerr != nil {
				return nil, lerr
			}
			if uerr := usable(a); uerr != nil {
				return nil, uerr
			}
		}
		s.rows.Forget(id)
		if err != nil {
			return nil, fmt.Errorf("updating account %s: %w", id, err)
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "account updated", slog.String("account", a.ID), slog.String("by", c.UserID))
		return s.view(a, sec), nil
	}
}

// Revoke deletes account id's secret for good: every later use fails
// with ErrRevoked. Revoking a revoked account changes nothing and is no
// error (its first revocation keeps its time and reason); a missing
// account, or another user's, is ErrNotFound.
func (s *Service) Revoke(ctx context.Context, c Caller, id string) error {
	a, err := s.loadAny(ctx, c, id)
	if err != nil {
		return err
	}
	if a.Status == store.AccountRevoked {
		return nil
	}
	err = s.cfg.Store.RevokeAccount(ctx, id, "revoked by "+c.UserID)
	s.rows.Forget(id)
	if errors.Is(err, store.ErrNotFound) {
		// Revoked meanwhile (another request, another node), or gone.
		if _, lerr := s.loadAny(ctx, c, id); lerr != nil {
			return lerr
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoking account %s: %w", id, err)
	}
	s.limits.forget(id)
	s.log.LogAttrs(ctx, slog.LevelInfo, "account revoked", slog.String("account", id), slog.String("by", c.UserID))
	return nil
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

// UnmarshalJSON decodes a request as strictly as the API decodes every
// body (an unknown field is an error) and keeps the numbers of Query as
// written (json.Number), so that 12345678901234567890 reaches the API
// with every digit.
func (r *Request) UnmarshalJSON(b []byte) error {
	type plain Request // without this method
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*r = Request(p)
	return nil
}

// Result is the answer of a request.
type Result struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	// Body is the answer's body as JSON: as the API sent it when it is
	// JSON, so that numbers keep every digit; else its text as a JSON
	// string; null when there is none. Value decodes it.
	Body json.RawMessage `json:"body"`
}

// Value is the answer's body as a value, as outbound.DecodeBody makes
// it: the JSON value (numbers as float64) when the answer is JSON, else
// its text; nil when there is none.
func (r *Result) Value() any {
	var v any
	if json.Unmarshal(r.Body, &v) != nil {
		return nil
	}
	return v
}

// answerBody is an answer's body as Result holds it: b when it is JSON
// by the rules of outbound.DecodeBody (its content type, or an object or
// array) and valid, else its text as a JSON string; nil when empty.
func answerBody(contentType string, b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if t := bytes.TrimSpace(b); (isJSON || (len(t) > 0 && (t[0] == '{' || t[0] == '['))) && json.Valid(b) {
		return b
	}
	text, _ := json.Marshal(string(b)) // a string: it cannot fail
	return text
}

// Do sends req through account id for c and returns the answer, whatever
// its status. source says where the call comes from ("api",
// "flow:<flowId>/<componentId>") for the audit log.
func (s *Service) Do(ctx context.Context, c Caller, id string, req Request, source string) (*Result, error) {
	a, err := s.loadForUse(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return s.call(ctx, c.UserID, a, req, source)
}

// Enqueue checks req and stores it as a durable job; the job's outcome is
// read with RequestResult.
func (s *Service) Enqueue(ctx context.Context, c Caller, id string, req Request, source string) (string, error) {
	a, err := s.load(ctx, c, id)
	if err != nil {
		return "", err
	}
	return s.enqueue(ctx, c, a, req, source)
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
	a, err := s.loadAny(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return s.requestResult(ctx, a, requestID)
}

// Send is for connectors: build makes the request from the account's
// domain (the base URL paths join to); Send adds the credentials and
// headers, applies the rate limit, refreshes OAuth2 tokens before expiry
// and once on a 401 (then build is called again), records the use, and
// returns the answer, whose body the caller closes. When connector is set
// the account must be one of that connector's.
func (s *Service) Send(ctx context.Context, c Caller, id, connector, source string, build func(base *url.URL) (*http.Request, error)) (*http.Response, error) {
	a, err := s.loadForUse(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if connector != "" && a.Connector != connector {
		return nil, fmt.Errorf("account %s is not an account of connector %s: %w", id, connector, ErrNotFound)
	}
	return s.send(ctx, c.UserID, a, source, build)
}

// Audit lists the uses of account id, newest first, before the cursor.
func (s *Service) Audit(ctx context.Context, c Caller, id, before string, limit int) ([]*store.AccountAudit, error) {
	if _, err := s.loadAny(ctx, c, id); err != nil {
		return nil, err
	}
	// The caller reads its own uses: write what is buffered first.
	if err := s.audit.flush(ctx); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "writing account audit", slog.String("error", err.Error()))
	}
	if limit <= 0 || limit > maxListLimit {
		limit = defaultListLimit
	}
	entries, err := s.cfg.Store.ListAccountAudit(ctx, id, before, limit)
	if err != nil {
		return nil, fmt.Errorf("listing the audit of account %s: %w", id, err)
	}
	return entries, nil
}

// KindName names the job kind of wait=false requests.
const KindName = "account-request"

// Kind returns the job kind that runs wait=false requests; Register
// gives it to the engine.
func (s *Service) Kind() engine.Kind {
	return engine.Kind{Name: KindName, Run: s.runJob, Record: s.recordJob}
}

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

// IsFinal reports whether err, from a use of an account, will not pass if
// the use is made again: the account is missing, revoked or invalid, the
// request is not valid (*InputError), or the API was out of reach for
// good (an *UpstreamError of a refused address or an answer too large).
func IsFinal(err error) bool {
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrRevoked) || errors.Is(err, ErrInvalid) {
		return true
	}
	if _, ok := errors.AsType[*InputError](err); ok {
		return true
	}
	up, ok := errors.AsType[*UpstreamError](err)
	return ok && outbound.IsFinal(up.Err)
}

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

// loadAny loads account id if c may see it, whatever its status: a
// missing account and another user's (for a caller who is not an admin)
// are both ErrNotFound, so that existence is not revealed.
func (s *Service) loadAny(ctx context.Context, c Caller, id string) (*store.Account, error) {
	a, err := s.cfg.Store.Account(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.Admin && a.OwnerID != c.UserID) {
		return nil, fmt.Errorf("loading account %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("loading account %s: %w", id, err)
	}
	return a, nil
}

// load loads an account c may use: ErrNotFound when it is missing or
// another user's and c is not an admin; an error wrapping ErrRevoked
// (saying when and why) when it was revoked, and one wrapping ErrInvalid
// (with the reason) when its credentials stopped working.
func (s *Service) load(ctx context.Context, c Caller, id string) (*store.Account, error) {
	a, err := s.loadForUse(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := usable(a); err != nil {
		return nil, err
	}
	return a, nil
}

// loadForUse is loadAny for a request, through a cache: a node reads each
// account at most once a second. Changes made on this node (update,
// revoke, new tokens) reach the next request at once; those made on
// another node within the second.
func (s *Service) loadForUse(ctx context.Context, c Caller, id string) (*store.Account, error) {
	now := time.Now()
	var a *store.Account
	if row, ok := s.rows.Get(id, now); ok {
		a = &row
	} else {
		var err error
		if a, err = s.cfg.Store.Account(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("loading account %s: %w", id, err)
		}
		if err == nil {
			s.rows.Put(id, *a, now)
		}
	}
	if a == nil || (!c.Admin && a.OwnerID != c.UserID) {
		return nil, fmt.Errorf("loading account %s: %w", id, ErrNotFound)
	}
	return a, nil
}

// usable says why a cannot be used, or nil when it can.
func usable(a *store.Account) error {
	switch a.Status {
	case store.AccountRevoked:
		at := ""
		if a.RevokedAt > 0 {
			at = " at " + time.UnixMilli(a.RevokedAt).UTC().Format(time.RFC3339)
		}
		return fmt.Errorf("using account %s: %w%s (%s)", a.ID, ErrRevoked, at, cmp.Or(a.StatusReason, "no reason given"))
	case store.AccountInvalid:
		return fmt.Errorf("using account %s: %w: %s; reconnect it", a.ID, ErrInvalid, cmp.Or(a.StatusReason, "its credentials stopped working"))
	}
	return nil
}

// open opens the sealed secrets of a (the account id is the associated
// data). A revoked account's are empty.
func (s *Service) open(a *store.Account) (*secrets, error) {
	sec := &secrets{}
	if a.Secret == "" {
		return sec, nil
	}
	b, err := s.cfg.Vault.Open(a.Secret, []byte(a.ID))
	if err != nil {
		return nil, fmt.Errorf("opening the secrets of account %s: %w", a.ID, err)
	}
	if err := json.Unmarshal(b, sec); err != nil {
		// Not %w: a JSON error may quote the plaintext.
		return nil, fmt.Errorf("opening the secrets of account %s: not a secrets document", a.ID)
	}
	return sec, nil
}

// seal seals the JSON of sec for account id.
func (s *Service) seal(id string, sec *secrets) string {
	b, _ := json.Marshal(sec) // strings and a map of strings: it cannot fail
	return s.cfg.Vault.Seal(b, []byte(id))
}

// hint masks secret: "…" and its last four characters, or "…" alone for
// a secret shorter than 12 characters (whose end would give too much
// away); "" for no secret.
func hint(secret string) string {
	if secret == "" {
		return ""
	}
	r := []rune(secret)
	if len(r) < 12 {
		return "…"
	}
	return "…" + string(r[len(r)-4:])
}

// mainSecret is the secret of a's auth type, which the hint masks.
func mainSecret(a *store.Account, sec *secrets) string {
	switch a.AuthType {
	case AuthBasic:
		return sec.Password
	case AuthToken:
		return sec.Token
	case AuthAPIKey:
		return sec.APIKey
	case AuthOAuth2:
		return sec.AccessToken
	}
	return ""
}

// view shows a without its secrets: the names of the extra headers with
// masked values (none when sec is nil), the stored hint, where an API key
// goes.
func (s *Service) view(a *store.Account, sec *secrets) *View {
	v := &View{
		ID: a.ID, OwnerID: a.OwnerID, Name: a.Name, AuthType: a.AuthType, Domain: a.Domain,
		Headers: map[string]string{}, AuthPrefix: a.AuthPrefix, Username: a.Username,
		Connector: a.Connector, Hint: a.Hint, RateLimit: a.RateLimit, Status: a.Status,
		StatusReason: a.StatusReason,
		CreatedAt:    time.UnixMilli(a.CreatedAt).UTC(), UpdatedAt: time.UnixMilli(a.UpdatedAt).UTC(),
	}
	if sec != nil {
		for name, value := range sec.Headers {
			v.Headers[name] = cmp.Or(hint(value), "…")
		}
	}
	if a.AuthType == AuthAPIKey {
		v.APIKey = &APIKey{In: a.APIKeyIn, Name: a.APIKeyName}
	}
	if a.TokenExpiresAt > 0 {
		t := time.UnixMilli(a.TokenExpiresAt).UTC()
		v.TokenExpiresAt = &t
	}
	if a.RevokedAt > 0 {
		t := time.UnixMilli(a.RevokedAt).UTC()
		v.RevokedAt = &t
	}
	return v
}

// newID makes a time-ordered id (UUIDv7).
func newID() string { return uuid.Must(uuid.NewV7()).String() }

package store

import (
	"context"
	"encoding/json"
)

// Account statuses.
const (
	// AccountActive accounts are used by requests and flow steps.
	AccountActive = "active"
	// AccountInvalid accounts failed to refresh their OAuth2 tokens (or a
	// provider refused their credentials for good); they are kept so the
	// user can reconnect, but requests through them fail.
	AccountInvalid = "invalid"
	// AccountRevoked accounts were deleted by their owner: the secret is
	// wiped and the row is kept only so that later uses fail with a clear
	// reason and the audit log stays readable.
	AccountRevoked = "revoked"
)

// Account is a user's stored credentials for one external API. Secret
// holds every secret value (token, password, API key value, extra header
// values, OAuth2 access and refresh tokens) as one JSON document sealed by the vault with the
// account id as associated data; "" once revoked. Nothing else in the row
// is secret.
type Account struct {
	ID       string
	OwnerID  string
	Name     string
	AuthType string // basic, token, apiKey or oauth2
	// Domain is the API root URL that request paths are joined to.
	Domain string
	// AuthPrefix goes before the token in the Authorization header
	// ("Bearer", "Session"); token and oauth2 only.
	AuthPrefix string
	// Username is the basic-auth user name (not secret, shown).
	Username string
	// APIKeyIn ("header" or "query") and APIKeyName say where an apiKey
	// goes.
	APIKeyIn   string
	APIKeyName string
	// Connector names the connector the account is for ("" for a plain
	// account used by core.ServerActivity and the request endpoint).
	Connector string
	// Secret is the sealed JSON of the secret values.
	Secret string
	// Hint is a masked hint of the main secret ("…x7Q2"), at most its last
	// four characters.
	Hint string
	// RateLimit is the most requests per second sent through the account
	// (0: no limit).
	RateLimit float64
	Status    string
	// StatusReason says why an account is invalid or revoked.
	StatusReason string
	// TokenExpiresAt is when the OAuth2 access token expires (unix ms;
	// 0 unknown or never).
	TokenExpiresAt int64
	// RefreshLeaseUntil, when in the future, says a node is refreshing the
	// OAuth2 tokens (unix ms).
	RefreshLeaseUntil int64
	// Version grows by one on every change of Secret, so that a refresh or
	// rotation only lands on the secret it read.
	Version   int64
	CreatedAt int64
	UpdatedAt int64
	RevokedAt int64
}

// CreateAccount inserts a (with Version 1), setting CreatedAt and
// UpdatedAt.
func (s *Store) CreateAccount(ctx context.Context, a *Account) error {
	panic("not implemented")
}

// Account loads one account, revoked ones included.
func (s *Store) Account(ctx context.Context, id string) (*Account, error) {
	panic("not implemented")
}

// ListAccounts lists accounts in id order after the cursor: those of
// ownerID, or every user's when ownerID is "". Revoked accounts are left
// out unless withRevoked.
func (s *Store) ListAccounts(ctx context.Context, ownerID string, withRevoked bool, after string, limit int) ([]*Account, error) {
	panic("not implemented")
}

// UpdateAccount writes every field of a except ID, OwnerID, CreatedAt and
// RevokedAt, if the stored row still has version a.Version and is not
// revoked; it then sets a.Version to one more and a.UpdatedAt. A row that
// changed meanwhile is ErrConflict; a missing or revoked one ErrNotFound.
func (s *Store) UpdateAccount(ctx context.Context, a *Account) error {
	panic("not implemented")
}

// RevokeAccount marks account id revoked with reason, wipes its secret
// and ends any refresh lease. Revoking a revoked or missing account is
// ErrNotFound.
func (s *Store) RevokeAccount(ctx context.Context, id, reason string) error {
	panic("not implemented")
}

// ClaimAccountRefresh takes the refresh lease of account id until
// leaseUntil (unix ms) if the account is active, still has version and no
// other lease runs at now (unix ms). It reports whether it took it.
func (s *Store) ClaimAccountRefresh(ctx context.Context, id string, version, now, leaseUntil int64) (bool, error) {
	panic("not implemented")
}

// SetAccountTokens stores refreshed OAuth2 tokens: if the account still
// has version fromVersion and is not revoked, it sets Secret, Hint and
// TokenExpiresAt, makes it active, ends the lease and bumps the version.
// It reports whether it did.
func (s *Store) SetAccountTokens(ctx context.Context, id string, fromVersion int64, secret, hint string, expiresAt int64) (bool, error) {
	panic("not implemented")
}

// MarkAccountInvalid sets an active account invalid with reason and ends
// its refresh lease, in tx so that the COMPONENT_ERROR it causes commits
// with it. It reports whether the account was active.
func (tx *Tx) MarkAccountInvalid(ctx context.Context, id, reason string) (bool, error) {
	panic("not implemented")
}

// AccountAudit is one use of an account.
type AccountAudit struct {
	ID        string
	AccountID string
	// UserID is who made the call (the owner, an admin, or the flow's
	// owner for a flow step).
	UserID string
	// Source is "api", "flow:<flowId>/<componentId>" or "job".
	Source string
	At     int64 // unix ms
	Method string
	Host   string
	// Path is the request path; query values are never recorded.
	Path       string
	Status     int // 0 when no answer came
	Error      string
	DurationMS int64
}

// InsertAccountAudit appends entries (many at once: the writer batches).
func (s *Store) InsertAccountAudit(ctx context.Context, entries []AccountAudit) error {
	panic("not implemented")
}

// ListAccountAudit lists the uses of account id, newest first, before the
// cursor (an entry id; "" starts at the newest).
func (s *Store) ListAccountAudit(ctx context.Context, accountID, before string, limit int) ([]*AccountAudit, error) {
	panic("not implemented")
}

// Account request states.
const (
	AccountRequestPending = "pending"
	AccountRequestDone    = "done"
	AccountRequestFailed  = "failed"
)

// AccountRequest is a server-activity call made with wait=false: a durable
// job (same id) runs it, and the row keeps its outcome.
type AccountRequest struct {
	ID        string
	AccountID string
	OwnerID   string
	State     string
	// Request is the call as the caller gave it (no credentials in it).
	Request json.RawMessage
	// Result is {"status","headers","body"} once done.
	Result    json.RawMessage
	Error     string
	Attempts  int
	CreatedAt int64
	UpdatedAt int64
}

// InsertAccountRequest records a pending request in tx, the transaction
// that enqueues its job.
func (tx *Tx) InsertAccountRequest(ctx context.Context, r *AccountRequest) error {
	panic("not implemented")
}

// AccountRequest loads one request.
func (s *Store) AccountRequest(ctx context.Context, id string) (*AccountRequest, error) {
	panic("not implemented")
}

// RecordAccountRequest writes the outcome of an attempt in tx: state,
// result (nil keeps none), error and attempts.
func (tx *Tx) RecordAccountRequest(ctx context.Context, id, state string, result json.RawMessage, errMsg string, attempts int) error {
	panic("not implemented")
}

// OAuthState is a started OAuth2 authorization, waiting for the provider
// to redirect back with its state.
type OAuthState struct {
	State     string
	UserID    string
	Connector string
	// Name is the name the new account will get.
	Name string
	// Verifier is the PKCE code verifier, sealed with the state as
	// associated data.
	Verifier    string
	RedirectURI string
	// AccountID, when set, is an account to reconnect (an invalid one).
	AccountID string
	ExpiresAt int64 // unix ms
}

// CreateOAuthState inserts st and deletes expired ones.
func (s *Store) CreateOAuthState(ctx context.Context, st *OAuthState) error {
	panic("not implemented")
}

// TakeOAuthState deletes and returns the state named state if it has not
// expired by now (unix ms); a missing or expired state is ErrNotFound. A
// state can be taken once.
func (s *Store) TakeOAuthState(ctx context.Context, state string, now int64) (*OAuthState, error) {
	panic("not implemented")
}

// OAuthClient is the OAuth2 client an admin registered for a connector.
type OAuthClient struct {
	Connector string
	ClientID  string
	// ClientSecret is sealed with the connector name as associated data.
	ClientSecret string
	UpdatedAt    int64
}

// SetOAuthClient inserts or replaces the client of c.Connector.
func (s *Store) SetOAuthClient(ctx context.Context, c *OAuthClient) error {
	panic("not implemented")
}

// OAuthClient loads the client of connector.
func (s *Store) OAuthClient(ctx context.Context, connector string) (*OAuthClient, error) {
	panic("not implemented")
}

// DeleteOAuthClient removes the client of connector.
func (s *Store) DeleteOAuthClient(ctx context.Context, connector string) error {
	panic("not implemented")
}

// SealedColumn names a column that holds values sealed by the vault and
// the column whose value is their associated data.
type SealedColumn struct {
	Table, KeyColumn, Column string
}

// SealedColumns lists every column that holds sealed values; a key
// rotation re-seals them all.
var SealedColumns = []SealedColumn{
	{Table: "system_webhooks", KeyColumn: "id", Column: "secret"},
	{Table: "accounts", KeyColumn: "id", Column: "secret"},
	{Table: "oauth_states", KeyColumn: "state", Column: "verifier"},
	{Table: "oauth_clients", KeyColumn: "connector", Column: "client_secret"},
}

// ResealColumn calls fn for every non-empty value of col, in key order and
// batches, and stores what fn returns if the value is still the one read
// (a value changed meanwhile is read again). fn returning the value
// unchanged skips it. It returns how many values it changed.
func (s *Store) ResealColumn(ctx context.Context, col SealedColumn, fn func(key, sealed string) (string, error)) (int, error) {
	panic("not implemented")
}

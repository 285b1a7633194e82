package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
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

const accountCols = `id, owner_id, name, auth_type, domain, auth_prefix, username, api_key_in, api_key_name, connector,
	secret, hint, rate_limit, status, status_reason, token_expires_at, refresh_lease_until, version,
	created_at, updated_at, revoked_at`

func scanAccount(r row) (*Account, error) {
	a := &Account{}
	if err := r.Scan(&a.ID, &a.OwnerID, &a.Name, &a.AuthType, &a.Domain, &a.AuthPrefix, &a.Username, &a.APIKeyIn,
		&a.APIKeyName, &a.Connector, &a.Secret, &a.Hint, &a.RateLimit, &a.Status, &a.StatusReason, &a.TokenExpiresAt,
		&a.RefreshLeaseUntil, &a.Version, &a.CreatedAt, &a.UpdatedAt, &a.RevokedAt); err != nil {
		return nil, notFound(err)
	}
	return a, nil
}

// CreateAccount inserts a (with Version 1), setting CreatedAt and
// UpdatedAt.
func (s *Store) CreateAccount(ctx context.Context, a *Account) error {
	a.CreatedAt = s.nowMS()
	a.UpdatedAt = a.CreatedAt
	a.Version = 1
	a.Status = cmp.Or(a.Status, AccountActive)
	_, err := s.backend.writer().exec(ctx,
		`INSERT INTO accounts (`+accountCols+`)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
		a.ID, a.OwnerID, a.Name, a.AuthType, a.Domain, a.AuthPrefix, a.Username, a.APIKeyIn, a.APIKeyName, a.Connector,
		a.Secret, a.Hint, a.RateLimit, a.Status, a.StatusReason, a.TokenExpiresAt, a.RefreshLeaseUntil, a.Version,
		a.CreatedAt, a.UpdatedAt, a.RevokedAt)
	if err != nil {
		if s.backend.isUniqueViolation(err) {
			return fmt.Errorf("creating account %s: %w", a.ID, ErrConflict)
		}
		return fmt.Errorf("creating account %s: %w", a.ID, err)
	}
	return nil
}

// Account loads one account, revoked ones included.
func (s *Store) Account(ctx context.Context, id string) (*Account, error) {
	a, err := scanAccount(s.backend.reader().queryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("loading account %s: %w", id, err)
	}
	return a, nil
}

// ListAccounts lists accounts in id order after the cursor: those of
// ownerID, or every user's when ownerID is "". Revoked accounts are left
// out unless withRevoked.
func (s *Store) ListAccounts(ctx context.Context, ownerID string, withRevoked bool, after string, limit int) ([]*Account, error) {
	return collect(ctx, s.backend.reader(), "listing accounts", scanAccount,
		`SELECT `+accountCols+` FROM accounts
		  WHERE ($1 = '' OR owner_id = $1) AND ($2 OR status <> 'revoked') AND id > $3 ORDER BY id LIMIT $4`,
		ownerID, withRevoked, after, limit)
}

// UpdateAccount writes the fields a user edits: Name, Domain,
// AuthPrefix, Username, APIKeyIn, APIKeyName, Secret, Hint and RateLimit,
// if the stored row still has version a.Version and is not revoked; it
// then sets a.Version to one more and a.UpdatedAt. Status, the token's
// expiry and the refresh lease stay as they are in the row (a refresh on
// another node may hold the lease; SetAccountTokens and
// MarkAccountInvalid change them). A row that changed meanwhile is
// ErrConflict; a missing or revoked one ErrNotFound.
func (s *Store) UpdateAccount(ctx context.Context, a *Account) error {
	now := s.nowMS()
	n, err := s.backend.writer().exec(ctx,
		`UPDATE accounts SET name = $1, domain = $2, auth_prefix = $3, username = $4, api_key_in = $5, api_key_name = $6,
		        secret = $7, hint = $8, rate_limit = $9, version = version + 1, updated_at = $10
		  WHERE id = $11 AND version = $12 AND status <> 'revoked'`,
		a.Name, a.Domain, a.AuthPrefix, a.Username, a.APIKeyIn, a.APIKeyName, a.Secret, a.Hint, a.RateLimit,
		now, a.ID, a.Version)
	if err != nil {
		return fmt.Errorf("updating account %s: %w", a.ID, err)
	}
	if n == 0 {
		// Tell a missing or revoked account from one that changed.
		var status string
		err := s.backend.writer().queryRow(ctx, `SELECT status FROM accounts WHERE id = $1`, a.ID).Scan(&status)
		switch {
		case err != nil:
			return fmt.Errorf("updating account %s: %w", a.ID, notFound(err))
		case status == AccountRevoked:
			return fmt.Errorf("updating account %s: %w", a.ID, ErrNotFound)
		default:
			return fmt.Errorf("updating account %s: %w", a.ID, ErrConflict)
		}
	}
	a.Version++
	a.UpdatedAt = now
	return nil
}

// RevokeAccount marks account id revoked with reason, wipes its secret
// and ends any refresh lease. Revoking a revoked or missing account is
// ErrNotFound.
func (s *Store) RevokeAccount(ctx context.Context, id, reason string) error {
	now := s.nowMS()
	n, err := s.backend.writer().exec(ctx,
		`UPDATE accounts SET status = 'revoked', status_reason = $1, secret = '', refresh_lease_until = 0,
		        version = version + 1, updated_at = $2, revoked_at = $2
		  WHERE id = $3 AND status <> 'revoked'`, reason, now, id)
	if err != nil {
		return fmt.Errorf("revoking account %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("revoking account %s: %w", id, ErrNotFound)
	}
	return nil
}

// ClaimAccountRefresh takes the refresh lease of account id until
// leaseUntil (unix ms) if the account is active, still has version and no
// other lease runs at now (unix ms). It reports whether it took it.
func (s *Store) ClaimAccountRefresh(ctx context.Context, id string, version, now, leaseUntil int64) (bool, error) {
	n, err := s.backend.writer().exec(ctx,
		`UPDATE accounts SET refresh_lease_until = $1
		  WHERE id = $2 AND status = 'active' AND version = $3 AND refresh_lease_until <= $4`,
		leaseUntil, id, version, now)
	if err != nil {
		return false, fmt.Errorf("claiming the token refresh of account %s: %w", id, err)
	}
	return n == 1, nil
}

// ReleaseAccountRefresh ends the refresh lease of account id taken at
// version, after a refresh that failed for a passing reason, so that the
// next caller tries again at once instead of waiting for the lease to run
// out.
func (s *Store) ReleaseAccountRefresh(ctx context.Context, id string, version int64) error {
	_, err := s.backend.writer().exec(ctx,
		`UPDATE accounts SET refresh_lease_until = 0 WHERE id = $1 AND version = $2`, id, version)
	if err != nil {
		return fmt.Errorf("releasing the token refresh of account %s: %w", id, err)
	}
	return nil
}

// SetAccountTokens stores refreshed OAuth2 tokens: if the account still
// has version fromVersion and is not revoked, it sets Secret, Hint and
// TokenExpiresAt, makes it active, ends the lease and bumps the version.
// It reports whether it did.
func (s *Store) SetAccountTokens(ctx context.Context, id string, fromVersion int64, secret, hint string, expiresAt int64) (bool, error) {
	n, err := s.backend.writer().exec(ctx,
		`UPDATE accounts SET secret = $1, hint = $2, token_expires_at = $3, status = 'active', status_reason = '',
		        refresh_lease_until = 0, version = version + 1, updated_at = $4
		  WHERE id = $5 AND version = $6 AND status <> 'revoked'`,
		secret, hint, expiresAt, s.nowMS(), id, fromVersion)
	if err != nil {
		return false, fmt.Errorf("storing the tokens of account %s: %w", id, err)
	}
	return n == 1, nil
}

// MarkAccountInvalid sets account id invalid with reason and ends its
// refresh lease if it is active and still has version (the one whose
// refresh failed: once another refresh stored new tokens, the failure
// says nothing about them), in tx so that the COMPONENT_ERROR it causes
// commits with it. It reports whether it marked the account.
func (tx *Tx) MarkAccountInvalid(ctx context.Context, id string, version int64, reason string) (bool, error) {
	n, err := tx.q.exec(ctx,
		`UPDATE accounts SET status = 'invalid', status_reason = $1, refresh_lease_until = 0, updated_at = $2
		  WHERE id = $3 AND status = 'active' AND version = $4`, reason, tx.store.nowMS(), id, version)
	if err != nil {
		return false, fmt.Errorf("marking account %s invalid: %w", id, err)
	}
	return n == 1, nil
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

const (
	accountAuditCols     = `id, account_id, user_id, source, at, method, host, path, status, error, duration_ms`
	accountAuditColCount = 11
)

func scanAccountAudit(r row) (*AccountAudit, error) {
	e := &AccountAudit{}
	if err := r.Scan(&e.ID, &e.AccountID, &e.UserID, &e.Source, &e.At, &e.Method, &e.Host, &e.Path, &e.Status,
		&e.Error, &e.DurationMS); err != nil {
		return nil, notFound(err)
	}
	return e, nil
}

// InsertAccountAudit appends entries (many at once: the writer batches).
func (s *Store) InsertAccountAudit(ctx context.Context, entries []AccountAudit) error {
	if len(entries) == 0 {
		return nil
	}
	args := make([]any, 0, len(entries)*accountAuditColCount)
	for _, e := range entries {
		args = append(args, e.ID, e.AccountID, e.UserID, e.Source, e.At, e.Method, e.Host, e.Path, e.Status, e.Error, e.DurationMS)
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		return bulkInsert(ctx, tx.q, tx.positional(), `INSERT INTO account_audit (`+accountAuditCols+`)`, accountAuditColCount, args)
	})
	if err != nil {
		return fmt.Errorf("recording %d account uses: %w", len(entries), err)
	}
	return nil
}

// ListAccountAudit lists the uses of account id, newest first, before the
// cursor (an entry id; "" starts at the newest).
func (s *Store) ListAccountAudit(ctx context.Context, accountID, before string, limit int) ([]*AccountAudit, error) {
	return collect(ctx, s.backend.reader(), "listing the audit of account "+accountID, scanAccountAudit,
		`SELECT `+accountAuditCols+` FROM account_audit
		  WHERE account_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3`,
		accountID, before, limit)
}

// pruneBatch is how many rows a retention delete removes per statement,
// so that each transaction stays small.
const pruneBatch = 1000

// DeleteAccountAuditBefore deletes the audit entries made before cutoff,
// in batches, and returns how many it deleted. Entry ids are time-ordered
// (UUIDv7), so the primary key finds them.
func (s *Store) DeleteAccountAuditBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.deleteInBatches(ctx,
		`DELETE FROM account_audit WHERE id IN (SELECT id FROM account_audit WHERE id < $1 AND at < $2 ORDER BY id LIMIT $3)`,
		uuidV7Bound(cutoff), cutoff.UnixMilli())
	if err != nil {
		return n, fmt.Errorf("deleting account audit entries before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// DeleteAccountRequestsBefore deletes the wait=false requests that are
// done or failed and were made and last changed before cutoff, in
// batches, and returns how many it deleted. Pending ones stay: their job
// still runs.
func (s *Store) DeleteAccountRequestsBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.deleteInBatches(ctx,
		`DELETE FROM account_requests WHERE id IN (SELECT id FROM account_requests
		  WHERE id < $1 AND updated_at < $2 AND state IN ('done', 'failed') ORDER BY id LIMIT $3)`,
		uuidV7Bound(cutoff), cutoff.UnixMilli())
	if err != nil {
		return n, fmt.Errorf("deleting account requests before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}

// deleteInBatches runs query (whose last argument is the batch size)
// until a batch deletes fewer than pruneBatch rows.
func (s *Store) deleteInBatches(ctx context.Context, query string, args ...any) (int64, error) {
	args = append(args, pruneBatch)
	var total int64
	for {
		n, err := s.backend.writer().exec(ctx, query, args...)
		total += n
		if err != nil {
			return total, err
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}

// uuidV7Bound is the smallest UUIDv7 (as text) made at t or later.
func uuidV7Bound(t time.Time) string {
	ms := uint64(max(t.UnixMilli(), 0))
	return fmt.Sprintf("%08x-%04x-0000-0000-000000000000", ms>>16, ms&0xffff)
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

const accountRequestCols = `id, account_id, state, request, result, error, attempts, created_at, updated_at`

func scanAccountRequest(r row) (*AccountRequest, error) {
	a := &AccountRequest{}
	var req, res *string
	if err := r.Scan(&a.ID, &a.AccountID, &a.State, &req, &res, &a.Error, &a.Attempts,
		&a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, notFound(err)
	}
	if req != nil {
		a.Request = json.RawMessage(*req)
	}
	if res != nil {
		a.Result = json.RawMessage(*res)
	}
	return a, nil
}

// InsertAccountRequest records a pending request in tx, the transaction
// that enqueues its job.
func (tx *Tx) InsertAccountRequest(ctx context.Context, r *AccountRequest) error {
	r.CreatedAt = tx.store.nowMS()
	r.UpdatedAt = r.CreatedAt
	r.State = cmp.Or(r.State, AccountRequestPending)
	_, err := tx.q.exec(ctx,
		`INSERT INTO account_requests (`+accountRequestCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.ID, r.AccountID, r.State, nullJSON(r.Request), nullJSON(r.Result), r.Error, r.Attempts,
		r.CreatedAt, r.UpdatedAt)
	if err != nil {
		return fmt.Errorf("recording account request %s: %w", r.ID, err)
	}
	return nil
}

// AccountRequest loads one request.
func (s *Store) AccountRequest(ctx context.Context, id string) (*AccountRequest, error) {
	r, err := scanAccountRequest(s.backend.reader().queryRow(ctx,
		`SELECT `+accountRequestCols+` FROM account_requests WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("loading account request %s: %w", id, err)
	}
	return r, nil
}

// RecordAccountRequest writes the outcome of an attempt in tx: state,
// result (nil keeps none), error and attempts.
func (tx *Tx) RecordAccountRequest(ctx context.Context, id, state string, result json.RawMessage, errMsg string, attempts int) error {
	n, err := tx.q.exec(ctx,
		`UPDATE account_requests SET state = $1, result = $2, error = $3, attempts = $4, updated_at = $5 WHERE id = $6`,
		state, nullJSON(result), errMsg, attempts, tx.store.nowMS(), id)
	if err != nil {
		return fmt.Errorf("recording the outcome of account request %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("recording the outcome of account request %s: %w", id, ErrNotFound)
	}
	return nil
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

const oauthStateCols = `state, user_id, connector, name, verifier, redirect_uri, account_id, expires_at`

func scanOAuthState(r row) (*OAuthState, error) {
	st := &OAuthState{}
	if err := r.Scan(&st.State, &st.UserID, &st.Connector, &st.Name, &st.Verifier, &st.RedirectURI, &st.AccountID,
		&st.ExpiresAt); err != nil {
		return nil, notFound(err)
	}
	return st, nil
}

// CreateOAuthState inserts st and deletes expired ones.
func (s *Store) CreateOAuthState(ctx context.Context, st *OAuthState) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `DELETE FROM oauth_states WHERE expires_at <= $1`, s.nowMS()); err != nil {
			return fmt.Errorf("deleting expired OAuth2 states: %w", err)
		}
		_, err := tx.q.exec(ctx,
			`INSERT INTO oauth_states (`+oauthStateCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			st.State, st.UserID, st.Connector, st.Name, st.Verifier, st.RedirectURI, st.AccountID, st.ExpiresAt)
		if err != nil {
			if s.backend.isUniqueViolation(err) {
				return ErrConflict
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing an OAuth2 state for connector %s: %w", st.Connector, err)
	}
	return nil
}

// TakeOAuthState deletes and returns the state named state if it has not
// expired by now (unix ms); a missing or expired state is ErrNotFound. A
// state can be taken once.
func (s *Store) TakeOAuthState(ctx context.Context, state string, now int64) (*OAuthState, error) {
	// One statement deletes and reads, so two takers cannot both get it;
	// an expired state is deleted too.
	st, err := scanOAuthState(s.backend.writer().queryRow(ctx,
		`DELETE FROM oauth_states WHERE state = $1 RETURNING `+oauthStateCols, state))
	if err != nil {
		return nil, fmt.Errorf("taking an OAuth2 state: %w", err)
	}
	if st.ExpiresAt <= now {
		return nil, fmt.Errorf("taking an OAuth2 state: expired: %w", ErrNotFound)
	}
	return st, nil
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
	c.UpdatedAt = s.nowMS()
	_, err := s.backend.writer().exec(ctx,
		`INSERT INTO oauth_clients (connector, client_id, client_secret, updated_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (connector) DO UPDATE SET client_id = excluded.client_id, client_secret = excluded.client_secret,
		        updated_at = excluded.updated_at`,
		c.Connector, c.ClientID, c.ClientSecret, c.UpdatedAt)
	if err != nil {
		return fmt.Errorf("setting the OAuth2 client of connector %s: %w", c.Connector, err)
	}
	return nil
}

// OAuthClient loads the client of connector.
func (s *Store) OAuthClient(ctx context.Context, connector string) (*OAuthClient, error) {
	c := &OAuthClient{}
	err := s.backend.reader().queryRow(ctx,
		`SELECT connector, client_id, client_secret, updated_at FROM oauth_clients WHERE connector = $1`, connector).
		Scan(&c.Connector, &c.ClientID, &c.ClientSecret, &c.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("loading the OAuth2 client of connector %s: %w", connector, notFound(err))
	}
	return c, nil
}

// DeleteOAuthClient removes the client of connector.
func (s *Store) DeleteOAuthClient(ctx context.Context, connector string) error {
	n, err := s.backend.writer().exec(ctx, `DELETE FROM oauth_clients WHERE connector = $1`, connector)
	if err != nil {
		return fmt.Errorf("deleting the OAuth2 client of connector %s: %w", connector, err)
	}
	if n == 0 {
		return fmt.Errorf("deleting the OAuth2 client of connector %s: %w", connector, ErrNotFound)
	}
	return nil
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
// unchanged skips it. It returns how many values it changed. A column
// not in SealedColumns is refused. Account versions are left alone: a
// resealed secret holds the same values, so a refresh or update that read
// the old one still lands (sealing with the new key).
func (s *Store) ResealColumn(ctx context.Context, col SealedColumn, fn func(key, sealed string) (string, error)) (int, error) {
	if !slices.Contains(SealedColumns, col) {
		return 0, fmt.Errorf("resealing %s.%s: not a sealed column", col.Table, col.Column)
	}
	what := "resealing " + col.Table + "." + col.Column
	// The names below come only from SealedColumns.
	page := `SELECT ` + col.KeyColumn + `, ` + col.Column + ` FROM ` + col.Table +
		` WHERE ` + col.KeyColumn + ` > $1 AND ` + col.Column + ` <> '' ORDER BY ` + col.KeyColumn + ` LIMIT $2`
	one := `SELECT ` + col.Column + ` FROM ` + col.Table + ` WHERE ` + col.KeyColumn + ` = $1`
	update := `UPDATE ` + col.Table + ` SET ` + col.Column + ` = $1 WHERE ` + col.KeyColumn + ` = $2 AND ` + col.Column + ` = $3`
	changed := 0
	after := ""
	for {
		batch, err := collect(ctx, s.backend.reader(), what, scanSealedValue, page, after, resealBatch)
		if err != nil {
			return changed, err
		}
		for _, v := range batch {
			done, err := s.resealValue(ctx, what, one, update, v, fn)
			if err != nil {
				return changed, err
			}
			if done {
				changed++
			}
		}
		if len(batch) < resealBatch {
			return changed, nil
		}
		after = batch[len(batch)-1].key
	}
}

// resealBatch is how many values ResealColumn reads at a time.
const resealBatch = 200

// resealTries bounds how often a value that keeps changing under
// ResealColumn is read again.
const resealTries = 10

type sealedValue struct{ key, value string }

func scanSealedValue(r row) (sealedValue, error) {
	var v sealedValue
	err := r.Scan(&v.key, &v.value)
	return v, err
}

// resealValue stores what fn makes of v if the stored value is still
// v.value, reading it again while it changed meanwhile. It reports whether
// it stored a new value. It leaves Account.Version alone: the secret a
// reseal writes holds the same values.
func (s *Store) resealValue(ctx context.Context, what, one, update string, v sealedValue,
	fn func(key, sealed string) (string, error)) (bool, error) {
	for range resealTries {
		sealed, err := fn(v.key, v.value)
		if err != nil {
			return false, fmt.Errorf("%s of %s: %w", what, v.key, err)
		}
		if sealed == v.value {
			return false, nil
		}
		n, err := s.backend.writer().exec(ctx, update, sealed, v.key, v.value)
		if err != nil {
			return false, fmt.Errorf("%s of %s: %w", what, v.key, err)
		}
		if n == 1 {
			return true, nil
		}
		err = s.backend.writer().queryRow(ctx, one, v.key).Scan(&v.value)
		if errors.Is(notFound(err), ErrNotFound) {
			return false, nil // deleted meanwhile
		}
		if err != nil {
			return false, fmt.Errorf("%s of %s: %w", what, v.key, err)
		}
		if v.value == "" {
			return false, nil
		}
	}
	return false, fmt.Errorf("%s of %s: the value kept changing: %w", what, v.key, ErrConflict)
}

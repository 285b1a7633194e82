package account

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
)

// OAuth2 timings.
const (
	// oauthStateTTL is how long a started authorization waits for the
	// provider's redirect.
	oauthStateTTL = 10 * time.Minute
	// oauthEarly is how long before its expiry an access token is
	// refreshed.
	oauthEarly = time.Minute
	// oauthLease is how long a node holds an account's refresh lease.
	// A whole shared refresh (waiting for another node's included) is
	// bounded by it, and each token-endpoint call by oauthCallTimeout, so
	// a node's call has ended before another node can claim the same
	// version: a provider that rotates refresh tokens never sees the same
	// one twice.
	oauthLease = 60 * time.Second
	// oauthCallTimeout bounds one call of a token endpoint.
	oauthCallTimeout = 20 * time.Second
	// oauthPollInterval is how often a node waiting for another node's
	// refresh reads the account.
	oauthPollInterval = 50 * time.Millisecond
	// oauthCallbackPath is where the provider sends the browser back.
	oauthCallbackPath = "/api/v1/accounts/oauth2/callback"
)

// ErrForbidden: the call is for admins only.
var ErrForbidden = errors.New("admin only")

// errNoRefreshToken: the access token can no longer be used and the
// provider gave no refresh token to get another.
var errNoRefreshToken = errors.New("the access token expired and the provider gave no refresh token")

// OAuthClientInput is the OAuth2 client an admin registers for a connector
// (PUT /api/v1/connectors/{name}/oauth2-client).
type OAuthClientInput struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

// OAuthClientView shows a registered client without its secret.
type OAuthClientView struct {
	Connector string    `json:"connector"`
	ClientID  string    `json:"clientId"`
	Hint      string    `json:"clientSecretHint"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// SetOAuthClient registers (or replaces) the OAuth2 client of connector.
// Admins only. The client secret is sealed with the connector name as
// associated data; it may be empty for a public client (PKCE alone).
func (s *Service) SetOAuthClient(ctx context.Context, c Caller, connector string, in OAuthClientInput) (*OAuthClientView, error) {
	if !c.Admin {
		return nil, ErrForbidden
	}
	var probs problems
	if connector == "" || len(connector) > 64 {
		probs.add("/connector", "a connector name of 1 to 64 characters is required")
	}
	switch {
	case strings.TrimSpace(in.ClientID) == "":
		probs.add("/clientId", "the client id is required")
	case len(in.ClientID) > 1024:
		probs.add("/clientId", "the client id is longer than 1024 characters")
	}
	if len(in.ClientSecret) > 4096 {
		probs.add("/clientSecret", "the client secret is longer than 4096 characters")
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	cl := &store.OAuthClient{Connector: connector, ClientID: in.ClientID, UpdatedAt: s.cfg.Now().UnixMilli()}
	if in.ClientSecret != "" {
		cl.ClientSecret = s.cfg.Vault.Seal([]byte(in.ClientSecret), []byte(connector))
	}
	if err := s.cfg.Store.SetOAuthClient(ctx, cl); err != nil {
		return nil, fmt.Errorf("storing the OAuth2 client of connector %s: %w", connector, err)
	}
	s.log.InfoContext(ctx, "OAuth2 client set", "connector", connector, "by", c.UserID)
	return oauthClientView(cl, in.ClientSecret), nil
}

// OAuthClient shows the client of connector. Admins only.
func (s *Service) OAuthClient(ctx context.Context, c Caller, connector string) (*OAuthClientView, error) {
	if !c.Admin {
		return nil, ErrForbidden
	}
	cl, secret, err := s.oauthClient(ctx, connector)
	if err != nil {
		return nil, err
	}
	return oauthClientView(cl, secret), nil
}

// DeleteOAuthClient removes the client of connector. Admins only.
func (s *Service) DeleteOAuthClient(ctx context.Context, c Caller, connector string) error {
	if !c.Admin {
		return ErrForbidden
	}
	if err := s.cfg.Store.DeleteOAuthClient(ctx, connector); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no OAuth2 client is set for connector %s: %w", connector, ErrNotFound)
		}
		return fmt.Errorf("deleting the OAuth2 client of connector %s: %w", connector, err)
	}
	s.log.InfoContext(ctx, "OAuth2 client deleted", "connector", connector, "by", c.UserID)
	return nil
}

func oauthClientView(cl *store.OAuthClient, secret string) *OAuthClientView {
	v := &OAuthClientView{Connector: cl.Connector, ClientID: cl.ClientID, UpdatedAt: time.UnixMilli(cl.UpdatedAt).UTC()}
	if secret != "" {
		v.Hint = hint(secret)
	}
	return v
}

// oauthClient loads the client of connector and opens its secret. A
// missing client wraps ErrNotFound.
func (s *Service) oauthClient(ctx context.Context, connector string) (*store.OAuthClient, string, error) {
	cl, err := s.cfg.Store.OAuthClient(ctx, connector)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", fmt.Errorf("no OAuth2 client is set for connector %s: %w", connector, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("loading the OAuth2 client of connector %s: %w", connector, err)
	}
	if cl.ClientSecret == "" {
		return cl, "", nil
	}
	plain, err := s.cfg.Vault.Open(cl.ClientSecret, []byte(connector))
	if err != nil {
		return nil, "", fmt.Errorf("opening the OAuth2 client secret of connector %s: %w", connector, err)
	}
	return cl, string(plain), nil
}

// noClientProblem is the InputError of a connector without a client.
func noClientProblem(connector string) *InputError {
	return oauthProblem("/connector", "no OAuth2 client is set for connector %s; an admin sets it with PUT /api/v1/connectors/%s/oauth2-client", connector, connector)
}

// noBaseURLProblem is the InputError of an oauth2 connector without a
// baseUrl: its token may go to no other domain, so it has no accounts.
func noBaseURLProblem(connector string) *InputError {
	return oauthProblem("/connector", "connector %s has no baseUrl: it cannot have oauth2 accounts", connector)
}

func oauthProblem(field, format string, args ...any) *InputError {
	return &InputError{Problems: []FieldProblem{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// StartInput starts connecting an OAuth2 account (POST
// /api/v1/accounts/oauth2/start).
type StartInput struct {
	Connector string `json:"connector"`
	Name      string `json:"name"`
	// AccountID reconnects an existing (invalid) account instead.
	AccountID string `json:"accountId,omitempty"`
	// ReturnTo is where the browser is sent once the account is stored
	// (with ?accountId=...), an absolute http(s) URL on the origin of
	// Config.PublicURL or on one of Config.ReturnOrigins; without it the
	// callback answers with the account.
	ReturnTo string `json:"returnTo,omitempty"`
}

// StartResult is where to send the user's browser.
type StartResult struct {
	URL       string    `json:"url"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// oauthStateSecret is what the sealed Verifier of a store.OAuthState
// holds: the PKCE verifier, and where to send the browser afterwards.
type oauthStateSecret struct {
	Verifier string `json:"v"`
	ReturnTo string `json:"r,omitempty"`
}

// StartOAuth2 makes the provider URL of an authorization-code flow with
// PKCE (S256) and a single-use state.
func (s *Service) StartOAuth2(ctx context.Context, c Caller, in StartInput) (*StartResult, error) {
	if in.AccountID != "" {
		// An invalid account is the very one to reconnect.
		a, err := s.loadAny(ctx, c, in.AccountID)
		if err != nil {
			return nil, err
		}
		if a.Status == store.AccountRevoked {
			return nil, usable(a)
		}
		if a.AuthType != AuthOAuth2 || a.Connector == "" {
			return nil, oauthProblem("/accountId", "account %s is not an OAuth2 account of a connector", a.ID)
		}
		if in.Connector != "" && in.Connector != a.Connector {
			return nil, oauthProblem("/connector", "account %s belongs to connector %s, not %s", a.ID, a.Connector, in.Connector)
		}
		in.Connector = a.Connector
		in.Name = a.Name
	}
	var probs problems
	if in.Connector == "" {
		probs.add("/connector", "the connector is required")
	}
	in.Name = strings.TrimSpace(in.Name)
	if utf8.RuneCountInString(in.Name) > maxNameLength {
		probs.add("/name", fmt.Sprintf("at most %d characters", maxNameLength))
	}
	if in.ReturnTo != "" {
		if u, err := url.Parse(in.ReturnTo); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			probs.add("/returnTo", "returnTo must be an absolute http or https URL")
		} else if !s.returnOriginAllowed(u) {
			probs.add("/returnTo", "returnTo must be on the origin of this server's public URL or on one the operator allows (PLUGBOARD_OAUTH_RETURN_ORIGINS)")
		}
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	auth, err := s.oauthConnector(ctx, in.Connector)
	if err != nil {
		return nil, err
	}
	if auth.Grant == GrantClientCredentials {
		return nil, oauthProblem("/connector", "connector %s uses the clientCredentials grant: create its accounts with POST /api/v1/accounts", in.Connector)
	}
	if auth.BaseURL == "" {
		return nil, noBaseURLProblem(in.Connector)
	}
	cl, _, err := s.oauthClient(ctx, in.Connector)
	if errors.Is(err, ErrNotFound) {
		return nil, noClientProblem(in.Connector)
	}
	if err != nil {
		return nil, err
	}
	in.Name = cmp.Or(in.Name, in.Connector)

	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails
	state := base64.RawURLEncoding.EncodeToString(raw)
	verifier := oauth2.GenerateVerifier()
	sealed, err := json.Marshal(oauthStateSecret{Verifier: verifier, ReturnTo: in.ReturnTo})
	if err != nil {
		return nil, fmt.Errorf("encoding the OAuth2 state: %w", err)
	}
	redirect := strings.TrimSuffix(s.cfg.PublicURL, "/") + oauthCallbackPath
	expires := s.cfg.Now().Add(oauthStateTTL)
	st := &store.OAuthState{
		State:       state,
		UserID:      c.UserID,
		Connector:   in.Connector,
		Name:        in.Name,
		Verifier:    s.cfg.Vault.Seal(sealed, []byte(state)),
		RedirectURI: redirect,
		AccountID:   in.AccountID,
		ExpiresAt:   expires.UnixMilli(),
	}
	if err := s.cfg.Store.CreateOAuthState(ctx, st); err != nil {
		return nil, fmt.Errorf("storing the OAuth2 state of connector %s: %w", in.Connector, err)
	}
	conf := oauthConfig(auth, cl.ClientID, "", redirect)
	return &StartResult{
		URL:       conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)),
		State:     state,
		ExpiresAt: expires.UTC(),
	}, nil
}

// FinishOAuth2 takes the state, exchanges code for tokens and stores the
// account (or reconnects the one named at start). providerError is the
// error parameter the provider sent instead of a code. It returns the
// account and where to send the browser ("" for none).
func (s *Service) FinishOAuth2(ctx context.Context, state, code, providerError string) (*View, string, error) {
	if state == "" {
		return nil, "", oauthProblem("/state", "the state parameter is missing")
	}
	st, err := s.cfg.Store.TakeOAuthState(ctx, state, s.cfg.Now().UnixMilli())
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", oauthProblem("/state", "unknown or expired state; start again with POST /api/v1/accounts/oauth2/start")
	}
	if err != nil {
		return nil, "", fmt.Errorf("taking the OAuth2 state: %w", err)
	}
	if providerError != "" {
		return nil, "", oauthProblem("/error", "the provider did not authorize the account: %s", oauthErrorCode(providerError))
	}
	if code == "" {
		return nil, "", oauthProblem("/code", "the code parameter is missing")
	}
	plain, err := s.cfg.Vault.Open(st.Verifier, []byte(st.State))
	if err != nil {
		return nil, "", fmt.Errorf("opening the OAuth2 state: %w", err)
	}
	var ss oauthStateSecret
	if err := json.Unmarshal(plain, &ss); err != nil {
		return nil, "", fmt.Errorf("decoding the OAuth2 state: %w", err)
	}
	auth, err := s.oauthConnector(ctx, st.Connector)
	if err != nil {
		return nil, "", err
	}
	cl, secret, err := s.oauthClient(ctx, st.Connector)
	if errors.Is(err, ErrNotFound) {
		return nil, "", noClientProblem(st.Connector)
	}
	if err != nil {
		return nil, "", err
	}
	conf := oauthConfig(auth, cl.ClientID, secret, st.RedirectURI)
	tok, err := conf.Exchange(s.oauthContext(ctx), code, oauth2.VerifierOption(ss.Verifier))
	if err != nil {
		if reason, refused := oauthRefusal(err); refused {
			return nil, "", oauthProblem("/code", "the provider refused the authorization code (%s)", reason)
		}
		return nil, "", &UpstreamError{Err: fmt.Errorf("exchanging the OAuth2 code of connector %s: %w", st.Connector, oauthSafe(err))}
	}
	if tok.AccessToken == "" {
		return nil, "", fmt.Errorf("exchanging the OAuth2 code of connector %s: the provider sent no access token", st.Connector)
	}
	var v *View
	if st.AccountID != "" {
		v, err = s.oauthReconnect(ctx, st.AccountID, tok)
	} else {
		v, err = s.oauthStore(ctx, st.UserID, st.Name, st.Connector, auth, "", nil, 0, tok)
	}
	if err != nil {
		return nil, "", err
	}
	s.log.InfoContext(ctx, "OAuth2 account connected", "account", v.ID, "connector", v.Connector, "owner", v.OwnerID)
	return v, s.oauthReturnTo(ss.ReturnTo, v.ID), nil
}

// returnOriginAllowed reports whether the browser may be sent to u after
// a connection: u's origin is that of Config.PublicURL or one of
// Config.ReturnOrigins. Anything else would make the callback an open
// redirect.
func (s *Service) returnOriginAllowed(u *url.URL) bool {
	return s.returnOrigins[outbound.Origin(u)]
}

// parseReturnOrigins is the set of the outbound.Origin of publicURL
// (unless empty) and of each of returnOrigins, for New; an entry that is
// not an absolute http or https URL is an error naming it.
func parseReturnOrigins(publicURL string, returnOrigins []string) (map[string]bool, error) {
	set := map[string]bool{}
	add := func(field, raw string) error {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("account: %s %q is not an origin such as https://app.example.com", field, raw)
		}
		set[outbound.Origin(u)] = true
		return nil
	}
	if publicURL != "" {
		if err := add("PublicURL", publicURL); err != nil {
			return nil, err
		}
	}
	for _, raw := range returnOrigins {
		if err := add("ReturnOrigins entry", raw); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// oauthReturnTo adds accountId to returnTo ("" stays ""), if returnTo is
// still allowed (the configuration may have changed since the start).
func (s *Service) oauthReturnTo(returnTo, id string) string {
	if returnTo == "" {
		return ""
	}
	u, err := url.Parse(returnTo)
	if err != nil || !s.returnOriginAllowed(u) {
		return ""
	}
	q := u.Query()
	q.Set("accountId", id)
	u.RawQuery = q.Encode()
	return u.String()
}

// oauthStore creates an oauth2 account of owner holding tok. Its domain
// is the connector's baseUrl: the token is the connector's client's.
func (s *Service) oauthStore(ctx context.Context, owner, name, connector string, auth *ConnectorAuth, prefix string, headers map[string]string, rateLimit float64, tok *oauth2.Token) (*View, error) {
	if auth.BaseURL == "" {
		return nil, noBaseURLProblem(connector)
	}
	sec := &secrets{Headers: headers}
	oauthApply(sec, tok)
	id := newID()
	a := &store.Account{
		ID:             id,
		OwnerID:        owner,
		Name:           name,
		AuthType:       AuthOAuth2,
		Domain:         auth.BaseURL,
		AuthPrefix:     cmp.Or(prefix, auth.Prefix, "Bearer"),
		Connector:      connector,
		Secret:         s.seal(id, sec),
		Hint:           hint(sec.AccessToken),
		RateLimit:      rateLimit,
		Status:         store.AccountActive,
		TokenExpiresAt: s.oauthExpiry(tok),
	}
	if err := s.cfg.Store.CreateAccount(ctx, a); err != nil {
		return nil, fmt.Errorf("storing the OAuth2 account of connector %s: %w", connector, err)
	}
	return s.view(a, sec), nil
}

// oauthReconnect gives account id the tokens of a new authorization and
// makes it active again.
func (s *Service) oauthReconnect(ctx context.Context, id string, tok *oauth2.Token) (*View, error) {
	for range 3 {
		a, err := s.cfg.Store.Account(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("account %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("loading account %s: %w", id, err)
		}
		if a.Status == store.AccountRevoked {
			return nil, usable(a)
		}
		sec, err := s.open(a)
		if err != nil {
			// The old tokens are of no use; the extra headers are lost
			// only if the secret cannot be opened at all.
			s.log.WarnContext(ctx, "reconnecting an account whose secret does not open", "account", id, "error", err.Error())
			sec = &secrets{}
		}
		oauthApply(sec, tok)
		sec.RefreshToken = tok.RefreshToken // a new authorization: the old refresh token is void
		exp := s.oauthExpiry(tok)
		ok, err := s.cfg.Store.SetAccountTokens(ctx, id, a.Version, s.seal(id, sec), hint(sec.AccessToken), exp)
		s.rows.Forget(id)
		if err != nil {
			return nil, fmt.Errorf("storing the tokens of account %s: %w", id, err)
		}
		if !ok {
			continue // changed meanwhile: read it again
		}
		a.Status, a.StatusReason, a.TokenExpiresAt, a.Hint = store.AccountActive, "", exp, hint(sec.AccessToken)
		a.Version++
		if b, err := s.cfg.Store.Account(ctx, id); err == nil {
			a = b
		}
		return s.view(a, sec), nil
	}
	return nil, fmt.Errorf("storing the tokens of account %s: it kept changing meanwhile", id)
}

// oauthConnector returns the auth of connector, which must be installed
// and use OAuth2.
func (s *Service) oauthConnector(ctx context.Context, connector string) (*ConnectorAuth, error) {
	if s.cfg.ConnectorAuth == nil {
		return nil, oauthProblem("/connector", "connector %s is not installed", connector)
	}
	auth, err := s.cfg.ConnectorAuth(ctx, connector)
	if err != nil {
		return nil, fmt.Errorf("loading connector %s: %w", connector, err)
	}
	if auth == nil {
		return nil, oauthProblem("/connector", "connector %s is not installed", connector)
	}
	if auth.Type != AuthOAuth2 {
		return nil, oauthProblem("/connector", "connector %s does not use OAuth2 (its auth type is %s)", connector, cmp.Or(auth.Type, "none"))
	}
	if auth.TokenURL == "" {
		return nil, oauthProblem("/connector", "connector %s names no OAuth2 token URL", connector)
	}
	return auth, nil
}

// createOAuth2 stores a new oauth2 account for Create, which has checked
// in (and set its domain and prefix from the connector's). Only the
// client-credentials grant makes one there: the authorization-code grant
// needs the user at the provider (StartOAuth2).
func (s *Service) createOAuth2(ctx context.Context, c Caller, in Input, auth *ConnectorAuth) (*View, error) {
	if auth.Grant != GrantClientCredentials {
		return nil, oauthProblem("/authType", "connect oauth2 accounts with POST /api/v1/accounts/oauth2/start")
	}
	if auth.TokenURL == "" {
		return nil, oauthProblem("/connector", "connector %s names no OAuth2 token URL", in.Connector)
	}
	if auth.BaseURL == "" {
		return nil, noBaseURLProblem(in.Connector)
	}
	cl, secret, err := s.oauthClient(ctx, in.Connector)
	if errors.Is(err, ErrNotFound) {
		return nil, noClientProblem(in.Connector)
	}
	if err != nil {
		return nil, err
	}
	tok, err := oauthCredentials(auth, cl.ClientID, secret).Token(s.oauthContext(ctx))
	if err != nil {
		if reason, refused := oauthRefusal(err); refused {
			return nil, oauthProblem("/connector", "the provider refused the OAuth2 client of connector %s (%s)", in.Connector, reason)
		}
		return nil, &UpstreamError{Err: fmt.Errorf("fetching a token for connector %s: %w", in.Connector, oauthSafe(err))}
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("fetching a token for connector %s: the provider sent no access token", in.Connector)
	}
	return s.oauthStore(ctx, c.UserID, in.Name, in.Connector, auth, in.AuthPrefix, in.Headers, in.RateLimit, tok)
}

// accessToken returns a usable access token of oauth2 account a (whose
// opened secrets are sec): the stored one while it has more than a minute
// left, else a refreshed one; force refreshes anyway (after a 401) unless
// another refresh landed since a was read. Only one refresh of an account
// runs at a time across nodes; a refresh the provider refuses marks the
// account invalid (COMPONENT_ERROR) and returns ErrInvalid.
//
// When the token comes from a refresh (this node's or another's), a's
// Version and TokenExpiresAt and sec.AccessToken are set to it, so that a
// force call after a 401 on it knows which token failed.
func (s *Service) accessToken(ctx context.Context, a *store.Account, sec *secrets, force bool) (string, error) {
	if err := usable(a); err != nil {
		return "", err
	}
	if !force && sec.AccessToken != "" && s.oauthFresh(a.TokenExpiresAt, oauthEarly) {
		return sec.AccessToken, nil
	}
	key := fmt.Sprintf("%s/%d/%t", a.ID, a.Version, force)
	id, read, used := a.ID, a.Version, sec.AccessToken
	ch := s.refreshes.DoChan(key, func() (any, error) {
		// The refresh is shared: one caller giving up must not abandon it
		// for the others, so it gets its own bound, that of the lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), oauthLease)
		defer cancel()
		return s.oauthRefresh(rctx, id, read, used, force)
	})
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("refreshing the OAuth2 tokens of account %s: %w", id, context.Cause(ctx))
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		t := r.Val.(oauthToken)
		a.Version, a.TokenExpiresAt, sec.AccessToken = t.version, t.expiresAt, t.token
		return t.token, nil
	}
}

// oauthToken is an access token and the account version that holds it.
type oauthToken struct {
	token     string
	version   int64
	expiresAt int64
}

// oauthRefresh refreshes the tokens of account id, which the caller read
// at version read and whose token used it holds, unless another refresh
// has landed since; it waits for a refresh another node runs.
func (s *Service) oauthRefresh(ctx context.Context, id string, read int64, used string, force bool) (oauthToken, error) {
	for {
		a, err := s.cfg.Store.Account(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return oauthToken{}, fmt.Errorf("account %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return oauthToken{}, fmt.Errorf("loading account %s: %w", id, err)
		}
		if err := usable(a); err != nil {
			return oauthToken{}, err
		}
		sec, err := s.open(a)
		if err != nil {
			return oauthToken{}, fmt.Errorf("opening account %s: %w", id, err)
		}
		stored := oauthToken{token: sec.AccessToken, version: a.Version, expiresAt: a.TokenExpiresAt}
		if sec.AccessToken != "" {
			// A refresh landed since the caller read the account: its
			// token is the one to try, while it lasts.
			newer := a.Version > read && sec.AccessToken != used && s.oauthFresh(a.TokenExpiresAt, 0)
			if newer || (!force && s.oauthFresh(a.TokenExpiresAt, oauthEarly)) {
				return stored, nil
			}
		}
		auth, err := s.oauthConnector(ctx, a.Connector)
		if err != nil {
			// Not the caller's mistake: the connector was removed or
			// changed (re-installing it mends the account).
			if ie, ok := errors.AsType[*InputError](err); ok {
				err = errors.New(ie.Problems[0].Message)
			}
			return oauthToken{}, fmt.Errorf("refreshing the OAuth2 tokens of account %s: %w", id, err)
		}
		if auth.Grant != GrantClientCredentials && sec.RefreshToken == "" {
			if !force && sec.AccessToken != "" && s.oauthFresh(a.TokenExpiresAt, 0) {
				return stored, nil // nothing to refresh with: use it to the end
			}
			err := s.oauthInvalidate(ctx, a, errNoRefreshToken.Error())
			if errors.Is(err, errRefreshStale) {
				continue // new tokens landed meanwhile
			}
			return oauthToken{}, err
		}
		now := s.cfg.Now()
		ok, err := s.cfg.Store.ClaimAccountRefresh(ctx, id, a.Version, now.UnixMilli(), now.Add(oauthLease).UnixMilli())
		if err != nil {
			return oauthToken{}, fmt.Errorf("claiming the refresh of account %s: %w", id, err)
		}
		if ok {
			t, err := s.oauthRenew(ctx, a, sec, auth)
			if errors.Is(err, errRefreshStale) {
				continue // another refresh landed first: use its tokens
			}
			return t, err
		}
		// Another node refreshes: wait until it has (the version grows),
		// or its lease runs out, then look again.
		if err := s.oauthAwait(ctx, a); err != nil {
			return oauthToken{}, fmt.Errorf("waiting for the refresh of account %s: %w", id, err)
		}
	}
}

// oauthAwait polls account a until it changes or its refresh lease ends.
func (s *Service) oauthAwait(ctx context.Context, a *store.Account) error {
	t := time.NewTicker(oauthPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		b, err := s.cfg.Store.Account(ctx, a.ID)
		if err != nil {
			return err
		}
		if b.Version != a.Version || b.Status != store.AccountActive || b.RefreshLeaseUntil <= s.cfg.Now().UnixMilli() {
			return nil
		}
	}
}

// oauthRenew gets new tokens for account a, whose refresh lease this node
// holds, and stores them.
func (s *Service) oauthRenew(ctx context.Context, a *store.Account, sec *secrets, auth *ConnectorAuth) (oauthToken, error) {
	cl, secret, err := s.oauthClient(ctx, a.Connector)
	if errors.Is(err, ErrNotFound) {
		// The admin removed the client: setting it again mends the account.
		return oauthToken{}, fmt.Errorf("refreshing the OAuth2 tokens of account %s: no OAuth2 client is set for connector %s", a.ID, a.Connector)
	}
	if err != nil {
		return oauthToken{}, fmt.Errorf("refreshing the OAuth2 tokens of account %s: %w", a.ID, err)
	}
	hctx, cancel := context.WithTimeout(s.oauthContext(ctx), oauthCallTimeout)
	defer cancel()
	var tok *oauth2.Token
	if auth.Grant == GrantClientCredentials {
		tok, err = oauthCredentials(auth, cl.ClientID, secret).Token(hctx)
	} else {
		conf := oauthConfig(auth, cl.ClientID, secret, "")
		tok, err = conf.TokenSource(hctx, &oauth2.Token{RefreshToken: sec.RefreshToken}).Token()
	}
	if err == nil && tok.AccessToken == "" {
		err = errors.New("the provider sent no access token")
	}
	if err != nil {
		if reason, refused := oauthRefusal(err); refused {
			return oauthToken{}, s.oauthInvalidate(ctx, a, "the provider refused to renew the OAuth2 tokens ("+reason+")")
		}
		s.log.WarnContext(ctx, "OAuth2 token refresh failed", "account", a.ID, "connector", a.Connector, "error", oauthSafe(err).Error())
		// Let the next caller try again now rather than after the lease.
		if rerr := s.cfg.Store.ReleaseAccountRefresh(context.WithoutCancel(ctx), a.ID, a.Version); rerr != nil {
			s.log.WarnContext(ctx, "releasing the OAuth2 refresh lease", "account", a.ID, "error", rerr.Error())
		}
		return oauthToken{}, fmt.Errorf("refreshing the OAuth2 tokens of account %s: %w", a.ID, oauthSafe(err))
	}
	id := a.ID
	for range 3 {
		oauthApply(sec, tok)
		exp := s.oauthExpiry(tok)
		ok, err := s.cfg.Store.SetAccountTokens(ctx, id, a.Version, s.seal(id, sec), hint(sec.AccessToken), exp)
		s.rows.Forget(id)
		if err != nil {
			return oauthToken{}, fmt.Errorf("storing the refreshed tokens of account %s: %w", id, err)
		}
		if ok {
			s.log.DebugContext(ctx, "OAuth2 tokens refreshed", "account", id, "connector", a.Connector)
			return oauthToken{token: tok.AccessToken, version: a.Version + 1, expiresAt: exp}, nil
		}
		// The account changed meanwhile (renamed, new headers): put the
		// new tokens into what it holds now.
		if a, err = s.cfg.Store.Account(ctx, id); err != nil {
			return oauthToken{}, fmt.Errorf("loading account %s: %w", id, err)
		}
		if a.Status == store.AccountRevoked {
			return oauthToken{}, usable(a)
		}
		if sec, err = s.open(a); err != nil {
			return oauthToken{}, fmt.Errorf("opening account %s: %w", id, err)
		}
	}
	return oauthToken{}, fmt.Errorf("storing the refreshed tokens of account %s: it kept changing meanwhile", id)
}

// errRefreshStale: a refresh failed, but the account has new tokens
// since the version it read: the failure says nothing about them.
var errRefreshStale = errors.New("the account changed since the refresh began")

// oauthInvalidate marks account a invalid with reason if it is still
// active at a.Version (the version whose refresh failed) and then records
// COMPONENT_ERROR in the same transaction. It returns the error callers
// see, or errRefreshStale when the account is active at a newer version
// (another node stored new tokens meanwhile).
func (s *Service) oauthInvalidate(ctx context.Context, a *store.Account, reason string) error {
	var changed bool
	err := s.cfg.Store.InTx(ctx, func(tx *store.Tx) error {
		ok, err := tx.MarkAccountInvalid(ctx, a.ID, a.Version, reason)
		if err != nil {
			return err
		}
		changed = ok
		if !ok || s.cfg.Events == nil {
			return nil
		}
		return s.cfg.Events.Emit(ctx, tx, engine.EventComponentError, map[string]any{
			"accountId": a.ID,
			"ownerId":   a.OwnerID,
			"connector": a.Connector,
			"error":     "account " + a.ID + " is invalid: " + reason,
		})
	})
	s.rows.Forget(a.ID)
	if err != nil {
		return fmt.Errorf("marking account %s invalid: %w", a.ID, err)
	}
	if changed {
		s.log.WarnContext(ctx, "account marked invalid", "account", a.ID, "connector", a.Connector, "owner", a.OwnerID, "reason", reason)
	} else {
		now, err := s.cfg.Store.Account(ctx, a.ID)
		if err != nil {
			return fmt.Errorf("loading account %s: %w", a.ID, err)
		}
		if now.Status == store.AccountActive {
			return errRefreshStale
		}
		if err := usable(now); err != nil {
			return err // invalid or revoked already, with its own reason
		}
	}
	b := *a
	b.Status, b.StatusReason = store.AccountInvalid, reason
	return usable(&b)
}

// oauthRefusal reports whether err says the provider refused the grant
// for good (an error answer other than 408, 429 and 5xx), and how, in
// words free of secrets.
func oauthRefusal(err error) (string, bool) {
	if errors.Is(err, errNoRefreshToken) {
		return err.Error(), true
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return "", false
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	reason := fmt.Sprintf("HTTP %d", status)
	if re.ErrorCode != "" {
		reason += " " + oauthErrorCode(re.ErrorCode)
	}
	return reason, !outbound.RetryableStatus(status)
}

// oauthSafe returns err fit to be shown: a token endpoint's error answer
// is replaced by its status and error code, since its body could echo
// what was sent, and a transport error names the endpoint's host only,
// not its whole URL.
func oauthSafe(err error) error {
	if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		reason, _ := oauthRefusal(err)
		return errors.New("the token endpoint answered " + reason)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		return fmt.Errorf("calling the token endpoint at %s: %w", host, ue.Err)
	}
	return err
}

// oauthErrorCode keeps an OAuth2 error code printable and short: RFC 6749
// error codes are ASCII without '"' and '\'.
func oauthErrorCode(code string) string {
	var b strings.Builder
	for _, r := range code {
		if b.Len() >= 64 {
			b.WriteString("…")
			break
		}
		if r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// oauthApply puts tok into sec, keeping the refresh token when the
// provider sends none.
func oauthApply(sec *secrets, tok *oauth2.Token) {
	sec.AccessToken = tok.AccessToken
	sec.TokenType = tok.TokenType
	if tok.RefreshToken != "" {
		sec.RefreshToken = tok.RefreshToken
	}
}

// oauthExpiry is when tok expires (unix ms), 0 when the provider did not
// say.
func (s *Service) oauthExpiry(tok *oauth2.Token) int64 {
	if tok.ExpiresIn > 0 {
		return s.cfg.Now().Add(time.Duration(tok.ExpiresIn) * time.Second).UnixMilli()
	}
	if !tok.Expiry.IsZero() {
		return tok.Expiry.UnixMilli()
	}
	return 0
}

// oauthFresh reports whether a token expiring at expiresAt (unix ms, 0 for
// never) has more than margin left.
func (s *Service) oauthFresh(expiresAt int64, margin time.Duration) bool {
	return expiresAt == 0 || s.cfg.Now().Add(margin).UnixMilli() < expiresAt
}

// oauthContext makes the library call token endpoints with the outbound
// client, so the address policy and the body cap apply to them too.
func (s *Service) oauthContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTP)
}

// oauthConfig is the library's configuration of a connector's client. The
// client authenticates as the library detects: HTTP Basic first (which
// RFC 6749 2.3.1 makes every provider accept), then form parameters for
// providers that take only those.
func oauthConfig(auth *ConnectorAuth, clientID, secret, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Endpoint:     oauth2.Endpoint{AuthURL: auth.AuthorizationURL, TokenURL: auth.TokenURL},
		RedirectURL:  redirect,
		Scopes:       auth.Scopes,
	}
}

func oauthCredentials(auth *ConnectorAuth, clientID, secret string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: auth.TokenURL, Scopes: auth.Scopes}
}

package account

import (
	"context"
	"errors"
	"time"

	"github.com/plugboard/plugboard/internal/store"
)

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
// Admins only.
func (s *Service) SetOAuthClient(ctx context.Context, c Caller, connector string, in OAuthClientInput) (*OAuthClientView, error) {
	return nil, errors.New("not implemented")
}

// OAuthClient shows the client of connector. Admins only.
func (s *Service) OAuthClient(ctx context.Context, c Caller, connector string) (*OAuthClientView, error) {
	return nil, errors.New("not implemented")
}

// DeleteOAuthClient removes the client of connector. Admins only.
func (s *Service) DeleteOAuthClient(ctx context.Context, c Caller, connector string) error {
	return errors.New("not implemented")
}

// StartInput starts connecting an OAuth2 account (POST
// /api/v1/accounts/oauth2/start).
type StartInput struct {
	Connector string `json:"connector"`
	Name      string `json:"name"`
	// AccountID reconnects an existing (invalid) account instead.
	AccountID string `json:"accountId,omitempty"`
	// ReturnTo is where the browser is sent once the account is stored
	// (with ?accountId=...), an absolute http(s) URL; without it the
	// callback answers with the account.
	ReturnTo string `json:"returnTo,omitempty"`
}

// StartResult is where to send the user's browser.
type StartResult struct {
	URL       string    `json:"url"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// StartOAuth2 makes the provider URL of an authorization-code flow with
// PKCE (S256) and a single-use state.
func (s *Service) StartOAuth2(ctx context.Context, c Caller, in StartInput) (*StartResult, error) {
	return nil, errors.New("not implemented")
}

// FinishOAuth2 takes the state, exchanges code for tokens and stores the
// account (or reconnects the one named at start). providerError is the
// error parameter the provider sent instead of a code. It returns the
// account and where to send the browser ("" for none).
func (s *Service) FinishOAuth2(ctx context.Context, state, code, providerError string) (*View, string, error) {
	return nil, "", errors.New("not implemented")
}

// accessToken returns a usable access token of oauth2 account a (whose
// opened secrets are sec): the stored one while it has more than a minute
// left, else a refreshed one; force refreshes anyway (after a 401) unless
// another refresh landed since a was read. Only one refresh of an account
// runs at a time across nodes; a refresh the provider refuses marks the
// account invalid (COMPONENT_ERROR) and returns ErrInvalid.
func (s *Service) accessToken(ctx context.Context, a *store.Account, sec *secrets, force bool) (string, error) {
	return "", errors.New("not implemented")
}

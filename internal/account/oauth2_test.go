package account

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/vault"
)

// oaProvider is a fake OAuth2 provider: its token endpoint serves the
// authorization_code grant (checking PKCE S256), refresh_token and
// client_credentials, counts the calls of each grant, and can be told to
// refuse refreshes, fail, or issue short-lived tokens. There is no
// authorize page: a test grants a code itself with grant.
type oaProvider struct {
	srv          *httptest.Server
	clientID     string
	clientSecret string
	tag          string // makes every token unique to the test

	mu        sync.Mutex
	codes     map[string]oaCode
	refresh   map[string]bool // refresh tokens that work
	calls     map[string]int  // by grant type
	scopes    map[string]string
	verifiers []string
	seq       int
	// Switches.
	expiresIn    int           // seconds; 0 sends none
	failRefresh  string        // an error code refreshes are refused with
	failStatus   int           // a status every token call fails with
	omitRefresh  bool          // refreshes send no new refresh token
	refreshDelay time.Duration // how long a refresh takes
}

type oaCode struct {
	challenge, redirect string
}

func newOAProvider(t *testing.T) *oaProvider {
	t.Helper()
	p := &oaProvider{
		clientID:     "client-" + oaRandom(),
		clientSecret: "CS" + oaRandom(),
		tag:          oaRandom(),
		codes:        map[string]oaCode{},
		refresh:      map[string]bool{},
		calls:        map[string]int{},
		scopes:       map[string]string{},
		expiresIn:    3600,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func oaRandom() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// grant is the user consenting: the provider issues a code bound to the
// PKCE challenge and redirect URI of the start URL.
func (p *oaProvider) grant(challenge, redirect string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	code := fmt.Sprintf("CODE%s%d", p.tag, p.seq)
	p.codes[code] = oaCode{challenge: challenge, redirect: redirect}
	return code
}

func (p *oaProvider) count(grant string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[grant]
}

func (p *oaProvider) scope(grant string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scopes[grant]
}

func (p *oaProvider) set(fn func(p *oaProvider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

// secrets lists every secret the provider handed out or was given.
func (p *oaProvider) secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []string{p.clientSecret}
	for rt := range p.refresh {
		out = append(out, rt)
	}
	for i := 1; i <= p.seq; i++ {
		out = append(out, fmt.Sprintf("AT%s%d", p.tag, i))
	}
	return append(out, p.verifiers...)
}

func (p *oaProvider) fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func (p *oaProvider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.fail(w, http.StatusBadRequest, "invalid_request")
		return
	}
	grant := r.PostForm.Get("grant_type")
	p.mu.Lock()
	p.calls[grant]++
	p.scopes[grant] = r.PostForm.Get("scope")
	delay := p.refreshDelay
	p.mu.Unlock()
	if grant == "refresh_token" && delay > 0 {
		time.Sleep(delay) // the provider's own latency
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.clientID || secret != p.clientSecret {
		p.fail(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if p.failStatus != 0 {
		w.WriteHeader(p.failStatus)
		_, _ = w.Write([]byte("unavailable; got " + r.PostForm.Get("refresh_token")))
		return
	}
	issueRefresh := true
	switch grant {
	case "authorization_code":
		c, ok := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		verifier := r.PostForm.Get("code_verifier")
		p.verifiers = append(p.verifiers, verifier)
		sum := sha256.Sum256([]byte(verifier))
		if !ok || c.redirect != r.PostForm.Get("redirect_uri") || verifier == "" ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			p.fail(w, http.StatusBadRequest, "invalid_grant")
			return
		}
	case "refresh_token":
		if p.failRefresh != "" {
			p.fail(w, http.StatusBadRequest, p.failRefresh)
			return
		}
		rt := r.PostForm.Get("refresh_token")
		if !p.refresh[rt] {
			p.fail(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		if !p.omitRefresh {
			delete(p.refresh, rt) // rotated
		} else {
			issueRefresh = false
		}
	case "client_credentials":
		issueRefresh = false
	default:
		p.fail(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	p.seq++
	out := map[string]any{"access_token": fmt.Sprintf("AT%s%d", p.tag, p.seq), "token_type": "Bearer"}
	if issueRefresh {
		rt := fmt.Sprintf("RT%s%d", p.tag, p.seq)
		p.refresh[rt] = true
		out["refresh_token"] = rt
	}
	if p.expiresIn > 0 {
		out["expires_in"] = p.expiresIn
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// oaEmitter records system events.
type oaEmitter struct {
	mu     sync.Mutex
	events []oaEvent
}

type oaEvent struct {
	name string
	data map[string]any
}

func (e *oaEmitter) Emit(_ context.Context, _ *store.Tx, event string, data any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, oaEvent{name: event, data: data.(map[string]any)})
	return nil
}

func (e *oaEmitter) list() []oaEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]oaEvent(nil), e.events...)
}

// oaLog is a log sink safe for concurrent writes.
type oaLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *oaLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *oaLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// oaFixture is a service with a real store and vault, the fake provider
// as the token endpoint of connector "fake", and a movable clock.
type oaFixture struct {
	cfg    store.Config
	st     *store.Store
	vault  *vault.Vault
	svc    *Service
	p      *oaProvider
	auth   *ConnectorAuth
	events *oaEmitter
	logs   *oaLog
	// http is the outbound client of the services made next (default:
	// private networks allowed, for the fake provider on loopback).
	http   *http.Client
	offset atomic.Int64 // added to the clock
	// returnOrigins is Config.ReturnOrigins of the services made next.
	returnOrigins []string
}

const oaPublicURL = "https://plugboard.example"

var (
	oaAdmin = Caller{UserID: "admin-1", Admin: true}
	oaUser  = Caller{UserID: "user-1"}
	oaOther = Caller{UserID: "user-2"}
)

func newOAFixture(t *testing.T, backend, grant string) *oaFixture {
	t.Helper()
	f := &oaFixture{p: newOAProvider(t), events: &oaEmitter{}, logs: &oaLog{}, returnOrigins: []string{"https://app.example"}}
	f.cfg = storetest.Config(t, backend)
	st, err := store.Open(context.Background(), f.cfg)
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f.st = st
	f.vault, err = vault.New(bytes.Repeat([]byte{7}, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	f.auth = &ConnectorAuth{
		Type:             AuthOAuth2,
		Grant:            grant,
		AuthorizationURL: f.p.srv.URL + "/authorize",
		TokenURL:         f.p.srv.URL + "/token",
		Scopes:           []string{"read", "write"},
		BaseURL:          "https://api.fake.example/v1",
	}
	f.svc = f.service(t, st)
	if _, err := f.svc.SetOAuthClient(context.Background(), oaAdmin, "fake", OAuthClientInput{ClientID: f.p.clientID, ClientSecret: f.p.clientSecret}); err != nil {
		t.Fatalf("setting the client: %v", err)
	}
	return f
}

// service makes a Service (a "node") on st.
func (f *oaFixture) service(t *testing.T, st *store.Store) *Service {
	t.Helper()
	svc, err := New(Config{
		Store: st,
		Vault: f.vault,
		HTTP:  cmp.Or(f.http, outbound.NewClient(outbound.Options{AllowPrivate: true})),
		ConnectorAuth: func(_ context.Context, name string) (*ConnectorAuth, error) {
			if name != "fake" {
				return nil, nil
			}
			a := *f.auth
			return &a, nil
		},
		PublicURL:     oaPublicURL,
		ReturnOrigins: f.returnOrigins,
		Events:        f.events,
		Logger:        slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) },
	})
	if err != nil {
		t.Fatalf("making the service: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	t.Cleanup(func() {
		cancel()
		_ = svc.Close(context.Background())
	})
	return svc
}

// start begins an authorization and returns its result and the start
// URL's parameters.
func (f *oaFixture) start(t *testing.T, c Caller, in StartInput) (*StartResult, url.Values) {
	t.Helper()
	res, err := f.svc.StartOAuth2(context.Background(), c, in)
	if err != nil {
		t.Fatalf("starting: %v", err)
	}
	u, err := url.Parse(res.URL)
	if err != nil {
		t.Fatalf("start URL %q: %v", res.URL, err)
	}
	return res, u.Query()
}

// connect runs a whole authorization for c and returns the new account.
func (f *oaFixture) connect(t *testing.T, c Caller) *View {
	t.Helper()
	res, q := f.start(t, c, StartInput{Connector: "fake", Name: "Fake CRM"})
	code := f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
	v, _, err := f.svc.FinishOAuth2(context.Background(), res.State, code, "")
	if err != nil {
		t.Fatalf("finishing: %v", err)
	}
	return v
}

// account reads account id and opens its secrets.
func (f *oaFixture) account(t *testing.T, id string) (*store.Account, *secrets) {
	t.Helper()
	a, err := f.st.Account(context.Background(), id)
	if err != nil {
		t.Fatalf("loading account %s: %v", id, err)
	}
	if a.Status == store.AccountRevoked {
		return a, &secrets{}
	}
	sec, err := f.svc.open(a)
	if err != nil {
		t.Fatalf("opening account %s: %v", id, err)
	}
	return a, sec
}

// noSecrets fails if any secret the provider handed out or received is in
// one of the texts.
func (f *oaFixture) noSecrets(t *testing.T, what string, texts ...string) {
	t.Helper()
	for _, s := range f.p.secrets() {
		for _, text := range texts {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q", what, s)
			}
		}
	}
}

func oaField(t *testing.T, err error, field, contains string) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T), want an *InputError at %s", err, err, field)
	}
	for _, p := range ie.Problems {
		if p.Field == field && strings.Contains(p.Message, contains) {
			return
		}
	}
	t.Fatalf("problems %+v, want one at %s containing %q", ie.Problems, field, contains)
}

func TestOAuth2CodeExchange(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			res, q := f.start(t, oaUser, StartInput{Connector: "fake", Name: "My CRM", ReturnTo: "https://app.example/done?tab=1"})
			if !strings.HasPrefix(res.URL, f.p.srv.URL+"/authorize?") {
				t.Errorf("start URL %s is not the provider's authorization URL", res.URL)
			}
			want := map[string]string{
				"client_id":             f.p.clientID,
				"redirect_uri":          oaPublicURL + "/api/v1/accounts/oauth2/callback",
				"state":                 res.State,
				"response_type":         "code",
				"code_challenge_method": "S256",
				"scope":                 "read write",
			}
			for k, v := range want {
				if q.Get(k) != v {
					t.Errorf("start URL %s = %q, want %q", k, q.Get(k), v)
				}
			}
			if len(res.State) < 43 || len(q.Get("code_challenge")) != 43 {
				t.Errorf("state %q or code_challenge %q too short", res.State, q.Get("code_challenge"))
			}
			if time.Until(res.ExpiresAt) < 9*time.Minute || time.Until(res.ExpiresAt) > 11*time.Minute {
				t.Errorf("state expires at %s, want in 10 minutes", res.ExpiresAt)
			}

			code := f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
			v, returnTo, err := f.svc.FinishOAuth2(ctx, res.State, code, "")
			if err != nil {
				t.Fatalf("finishing: %v", err)
			}
			if v.OwnerID != oaUser.UserID || v.AuthType != AuthOAuth2 || v.Connector != "fake" || v.Name != "My CRM" ||
				v.Domain != f.auth.BaseURL || v.AuthPrefix != "Bearer" || v.Status != store.AccountActive || v.TokenExpiresAt == nil {
				t.Errorf("account %+v", v)
			}
			if returnTo != "https://app.example/done?accountId="+v.ID+"&tab=1" {
				t.Errorf("returnTo %q", returnTo)
			}
			if n := f.p.count("authorization_code"); n != 1 {
				t.Errorf("%d code exchanges, want 1", n)
			}

			a, sec := f.account(t, v.ID)
			if sec.AccessToken == "" || sec.RefreshToken == "" || sec.TokenType != "Bearer" {
				t.Fatalf("stored secrets are incomplete (access %t, refresh %t, type %q)", sec.AccessToken != "", sec.RefreshToken != "", sec.TokenType)
			}
			tok, err := f.svc.accessToken(ctx, a, sec, false)
			if err != nil || tok != sec.AccessToken {
				t.Fatalf("access token: %v (same as stored: %t)", err, tok == sec.AccessToken)
			}
			if n := f.p.count("refresh_token"); n != 0 {
				t.Errorf("a fresh token was refreshed %d times", n)
			}

			view, _ := json.Marshal(v)
			got, err := f.svc.Get(ctx, oaUser, v.ID)
			if err != nil {
				t.Fatalf("getting: %v", err)
			}
			view2, _ := json.Marshal(got)
			client, err := f.svc.OAuthClient(ctx, oaAdmin, "fake")
			if err != nil {
				t.Fatal(err)
			}
			clientView, _ := json.Marshal(client)
			if client.ClientID != f.p.clientID || client.Hint == "" {
				t.Errorf("client view %+v", client)
			}
			f.noSecrets(t, "the database", storetest.Dump(t, f.cfg))
			f.noSecrets(t, "the account view", string(view), string(view2))
			f.noSecrets(t, "the client view", string(clientView))
			f.noSecrets(t, "the log", f.logs.String())
		})
	}
}

func TestOAuth2StateIsSingleUseAndExpires(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()

			res, q := f.start(t, oaUser, StartInput{Connector: "fake"})
			code := f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
			v, returnTo, err := f.svc.FinishOAuth2(ctx, res.State, code, "")
			if err != nil {
				t.Fatalf("finishing: %v", err)
			}
			if v.Name != "fake" || returnTo != "" {
				t.Errorf("name %q (want the connector's), returnTo %q (want none)", v.Name, returnTo)
			}
			// The same state again, even with a new code, is refused.
			code = f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
			_, _, err = f.svc.FinishOAuth2(ctx, res.State, code, "")
			oaField(t, err, "/state", "unknown or expired state")

			_, _, err = f.svc.FinishOAuth2(ctx, "not-a-state", code, "")
			oaField(t, err, "/state", "unknown or expired state")

			// An expired state is refused before the provider is called.
			res, q = f.start(t, oaUser, StartInput{Connector: "fake"})
			code = f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
			f.offset.Store(int64(11 * time.Minute))
			exchanges := f.p.count("authorization_code")
			_, _, err = f.svc.FinishOAuth2(ctx, res.State, code, "")
			oaField(t, err, "/state", "unknown or expired state")
			if n := f.p.count("authorization_code"); n != exchanges {
				t.Errorf("an expired state called the provider")
			}
			f.offset.Store(0)

			// The provider's refusal is reported, and uses the state up.
			res, _ = f.start(t, oaUser, StartInput{Connector: "fake"})
			_, _, err = f.svc.FinishOAuth2(ctx, res.State, "", "access_denied")
			oaField(t, err, "/error", "access_denied")
			_, _, err = f.svc.FinishOAuth2(ctx, res.State, code, "")
			oaField(t, err, "/state", "unknown or expired state")

			// A code granted for another PKCE challenge does not exchange.
			res, q = f.start(t, oaUser, StartInput{Connector: "fake"})
			code = f.p.grant("another-challenge", q.Get("redirect_uri"))
			_, _, err = f.svc.FinishOAuth2(ctx, res.State, code, "")
			oaField(t, err, "/code", "invalid_grant")

			list, err := f.svc.List(ctx, oaUser, "", false, "", 10)
			if err != nil || len(list) != 1 {
				t.Errorf("%d accounts (%v), want 1", len(list), err)
			}

			_, err = f.svc.StartOAuth2(ctx, oaUser, StartInput{Connector: "fake", ReturnTo: "javascript:alert(1)"})
			oaField(t, err, "/returnTo", "absolute")
			_, err = f.svc.StartOAuth2(ctx, oaUser, StartInput{Connector: "missing"})
			oaField(t, err, "/connector", "not installed")
		})
	}
}

func TestOAuth2RefreshOnExpiry(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			f.p.set(func(p *oaProvider) { p.expiresIn = 1 })
			v := f.connect(t, oaUser)
			f.p.set(func(p *oaProvider) { p.expiresIn = 3600; p.omitRefresh = true })

			a, sec := f.account(t, v.ID)
			old, oldVersion := *sec, a.Version
			tok, err := f.svc.accessToken(ctx, a, sec, false)
			if err != nil {
				t.Fatalf("access token: %v", err)
			}
			if tok == old.AccessToken || f.p.count("refresh_token") != 1 {
				t.Fatalf("a token expiring in 1s was not refreshed once (refreshes %d)", f.p.count("refresh_token"))
			}
			b, sec2 := f.account(t, v.ID)
			if sec2.AccessToken != tok || sec2.RefreshToken != old.RefreshToken || b.Version <= oldVersion || b.RefreshLeaseUntil != 0 {
				t.Errorf("stored after the refresh: new token %t, refresh token kept %t, version %d→%d, lease %d",
					sec2.AccessToken == tok, sec2.RefreshToken == old.RefreshToken, oldVersion, b.Version, b.RefreshLeaseUntil)
			}
			// The caller's copy follows, so that a 401 on the new token
			// is known to be on the new token.
			if a.Version != b.Version || a.TokenExpiresAt != b.TokenExpiresAt || sec.AccessToken != tok {
				t.Errorf("the caller's account was not updated: version %d (stored %d), token updated %t", a.Version, b.Version, sec.AccessToken == tok)
			}
			if b.Hint != hint(tok) {
				t.Errorf("hint %q, want that of the new token", b.Hint)
			}
			// The new token lasts an hour: no refresh now.
			if tok2, err := f.svc.accessToken(ctx, b, sec2, false); err != nil || tok2 != tok || f.p.count("refresh_token") != 1 {
				t.Errorf("fresh token: %v, same %t, refreshes %d", err, tok2 == tok, f.p.count("refresh_token"))
			}
			// An hour later it is refreshed, with the kept refresh token.
			f.offset.Store(int64(time.Hour))
			tok3, err := f.svc.accessToken(ctx, b, sec2, false)
			if err != nil || tok3 == tok || f.p.count("refresh_token") != 2 {
				t.Errorf("an hour later: %v, new %t, refreshes %d", err, tok3 != tok, f.p.count("refresh_token"))
			}
			f.noSecrets(t, "the log", f.logs.String())
		})
	}
}

func TestOAuth2RefreshOn401HappensOnce(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			v := f.connect(t, oaUser)
			f.p.set(func(p *oaProvider) { p.refreshDelay = 100 * time.Millisecond })
			a, sec := f.account(t, v.ID)

			toks := oaConcurrently(t, 20, func(int) (string, error) {
				ac, sc := *a, *sec
				return f.svc.accessToken(ctx, &ac, &sc, true)
			})
			if n := f.p.count("refresh_token"); n != 1 {
				t.Fatalf("20 forced refreshes of one version called the provider %d times, want 1", n)
			}
			if toks[0] == sec.AccessToken {
				t.Fatal("a forced refresh kept the old token")
			}
			// A caller still holding the old version gets the refreshed
			// token without another refresh.
			if tok, err := f.svc.accessToken(ctx, a, sec, true); err != nil || tok != toks[0] || f.p.count("refresh_token") != 1 {
				t.Fatalf("stale force: %v, same %t, refreshes %d", err, tok == toks[0], f.p.count("refresh_token"))
			}
			// A 401 on that token refreshes again.
			if tok, err := f.svc.accessToken(ctx, a, sec, true); err != nil || tok == toks[0] || f.p.count("refresh_token") != 2 {
				t.Errorf("force after a 401 on the new token: %v, new %t, refreshes %d", err, tok != toks[0], f.p.count("refresh_token"))
			}
			b, sec2 := f.account(t, v.ID)
			if sec2.AccessToken != sec.AccessToken || b.Version != a.Version {
				t.Errorf("the stored token is not the last one returned")
			}
		})
	}
}

// TestOAuth2RefreshOnceAcrossNodes: two services on one database (two
// nodes) forcing a refresh of one account at once call the provider once.
func TestOAuth2RefreshOnceAcrossNodes(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			st2 := f.st
			if backend == store.BackendPostgres {
				var err error
				if st2, err = store.Open(ctx, f.cfg); err != nil {
					t.Fatalf("opening the second node's store: %v", err)
				}
				t.Cleanup(func() { _ = st2.Close() })
			}
			node2 := f.service(t, st2)
			v := f.connect(t, oaUser)
			f.p.set(func(p *oaProvider) { p.refreshDelay = 200 * time.Millisecond })
			a, sec := f.account(t, v.ID)

			nodes := []*Service{f.svc, node2}
			toks := oaConcurrently(t, 10, func(i int) (string, error) {
				ac, sc := *a, *sec
				return nodes[i%2].accessToken(ctx, &ac, &sc, true)
			})
			if n := f.p.count("refresh_token"); n != 1 {
				t.Fatalf("two nodes refreshing at once called the provider %d times, want 1", n)
			}
			if toks[0] == sec.AccessToken {
				t.Fatal("the refresh kept the old token")
			}
		})
	}
}

// oaConcurrently runs fn n times at once and returns what each returned,
// failing if they differ or fail.
func oaConcurrently(t *testing.T, n int, fn func(i int) (string, error)) []string {
	t.Helper()
	out := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	startLine := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-startLine
			out[i], errs[i] = fn(i)
		})
	}
	close(startLine)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if out[i] != out[0] {
			t.Fatalf("calls got different tokens")
		}
	}
	return out
}

func TestOAuth2RefusedRefreshMarksInvalid(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			v := f.connect(t, oaUser)
			a, sec := f.account(t, v.ID)

			// A provider that is down is no reason to give up the account.
			f.p.set(func(p *oaProvider) { p.failStatus = http.StatusServiceUnavailable })
			_, err := f.svc.accessToken(ctx, a, sec, true)
			if err == nil || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "503") {
				t.Fatalf("a 503 from the token endpoint: %v, want a plain error naming the status", err)
			}
			f.noSecrets(t, "the error", err.Error())
			if b, _ := f.account(t, v.ID); b.Status != store.AccountActive || len(f.events.list()) != 0 || b.RefreshLeaseUntil != 0 {
				t.Fatalf("after a 503 the account is %s with %d events and lease %d (want active, none, released)",
					b.Status, len(f.events.list()), b.RefreshLeaseUntil)
			}

			// The failed attempt released its lease, so the next caller
			// tries at once; a refused refresh turns the account invalid.
			f.p.set(func(p *oaProvider) { p.failStatus = 0; p.failRefresh = "invalid_grant" })
			_, err = f.svc.accessToken(ctx, a, sec, true)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("refused refresh: %v, want ErrInvalid naming invalid_grant", err)
			}
			f.noSecrets(t, "the error", err.Error())
			b, _ := f.account(t, v.ID)
			if b.Status != store.AccountInvalid || !strings.Contains(b.StatusReason, "invalid_grant") || b.RefreshLeaseUntil != 0 {
				t.Fatalf("account %s (%q), lease %d; want invalid naming invalid_grant", b.Status, b.StatusReason, b.RefreshLeaseUntil)
			}
			evs := f.events.list()
			if len(evs) != 1 || evs[0].name != engine.EventComponentError {
				t.Fatalf("events %+v, want one COMPONENT_ERROR", evs)
			}
			d := evs[0].data
			if d["accountId"] != v.ID || d["ownerId"] != oaUser.UserID || d["connector"] != "fake" ||
				!strings.Contains(fmt.Sprint(d["error"]), "invalid_grant") {
				t.Errorf("event data %v", d)
			}

			// Later uses fail at once, without calling the provider: with
			// the account as it is now, and after a 401 with the account
			// as it was read before.
			calls := f.p.count("refresh_token")
			if _, err := f.svc.accessToken(ctx, b, sec, false); !errors.Is(err, ErrInvalid) {
				t.Errorf("using the invalid account: %v, want ErrInvalid", err)
			}
			if _, err := f.svc.accessToken(ctx, a, sec, true); !errors.Is(err, ErrInvalid) {
				t.Errorf("refreshing the invalid account: %v, want ErrInvalid", err)
			}
			if n := f.p.count("refresh_token"); n != calls {
				t.Errorf("the provider was called %d more times for an invalid account", n-calls)
			}
			if len(f.events.list()) != 1 {
				t.Errorf("%d events, want still 1", len(f.events.list()))
			}

			// The owner reconnects it: same account, active, new tokens.
			f.p.set(func(p *oaProvider) { p.failRefresh = "" })
			res, q := f.start(t, oaUser, StartInput{AccountID: v.ID})
			code := f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
			rv, _, err := f.svc.FinishOAuth2(ctx, res.State, code, "")
			if err != nil {
				t.Fatalf("reconnecting: %v", err)
			}
			if rv.ID != v.ID || rv.Status != store.AccountActive || rv.Name != v.Name {
				t.Errorf("reconnected %+v", rv)
			}
			c, csec := f.account(t, v.ID)
			if tok, err := f.svc.accessToken(ctx, c, csec, false); err != nil || tok == sec.AccessToken {
				t.Errorf("after reconnecting: %v, new token %t", err, tok != sec.AccessToken)
			}
			f.noSecrets(t, "the log", f.logs.String())
		})
	}
}

func TestOAuth2ClientCredentials(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, GrantClientCredentials)
			ctx := context.Background()
			v, err := f.svc.Create(ctx, oaUser, Input{Name: "Service", AuthType: AuthOAuth2, Connector: "fake"})
			if err != nil {
				t.Fatalf("creating: %v", err)
			}
			if n := f.p.count("client_credentials"); n != 1 || f.p.scope("client_credentials") != "read write" {
				t.Fatalf("%d client-credentials calls with scope %q, want 1 with \"read write\"", n, f.p.scope("client_credentials"))
			}
			if v.AuthType != AuthOAuth2 || v.Connector != "fake" || v.Domain != f.auth.BaseURL || v.Status != store.AccountActive {
				t.Errorf("account %+v", v)
			}
			a, sec := f.account(t, v.ID)
			if sec.AccessToken == "" || sec.RefreshToken != "" {
				t.Fatalf("stored: access token %t, refresh token %t", sec.AccessToken != "", sec.RefreshToken != "")
			}
			if tok, err := f.svc.accessToken(ctx, a, sec, false); err != nil || tok != sec.AccessToken || f.p.count("client_credentials") != 1 {
				t.Errorf("fresh token: %v, same %t, calls %d", err, tok == sec.AccessToken, f.p.count("client_credentials"))
			}
			// Renewal on a 401 and on expiry fetches a new token.
			first := sec.AccessToken
			tok, err := f.svc.accessToken(ctx, a, sec, true)
			if err != nil || tok == first || f.p.count("client_credentials") != 2 {
				t.Errorf("forced: %v, new %t, calls %d", err, tok != first, f.p.count("client_credentials"))
			}
			f.offset.Store(int64(2 * time.Hour))
			b, sec2 := f.account(t, v.ID)
			tok2, err := f.svc.accessToken(ctx, b, sec2, false)
			if err != nil || tok2 == tok || f.p.count("client_credentials") != 3 {
				t.Errorf("expired: %v, new %t, calls %d", err, tok2 != tok, f.p.count("client_credentials"))
			}
			view, _ := json.Marshal(v)
			f.noSecrets(t, "the database", storetest.Dump(t, f.cfg))
			f.noSecrets(t, "the view", string(view))

			// A client-credentials connector has no authorization step,
			// and an authorization-code one makes no account in Create.
			_, err = f.svc.StartOAuth2(ctx, oaUser, StartInput{Connector: "fake"})
			oaField(t, err, "/connector", "clientCredentials")
			f.auth.Grant = GrantAuthorizationCode
			_, err = f.svc.createOAuth2(ctx, oaUser, Input{Name: "x", AuthType: AuthOAuth2, Connector: "fake"}, f.auth)
			oaField(t, err, "/authType", "POST /api/v1/accounts/oauth2/start")
		})
	}
}

func TestOAuth2Access(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			v := f.connect(t, oaUser)

			// Another user cannot reconnect (or learn of) the account.
			if _, err := f.svc.StartOAuth2(ctx, oaOther, StartInput{AccountID: v.ID}); !errors.Is(err, ErrNotFound) {
				t.Errorf("another user's reconnect: %v, want ErrNotFound", err)
			}
			if _, err := f.svc.StartOAuth2(ctx, oaOther, StartInput{AccountID: "no-such-account"}); !errors.Is(err, ErrNotFound) {
				t.Errorf("a missing account's reconnect: %v, want ErrNotFound", err)
			}
			if _, err := f.svc.StartOAuth2(ctx, oaAdmin, StartInput{AccountID: v.ID}); err != nil {
				t.Errorf("an admin's reconnect: %v", err)
			}
			// A revoked account stays revoked.
			if err := f.svc.Revoke(ctx, oaUser, v.ID); err != nil {
				t.Fatalf("revoking: %v", err)
			}
			if _, err := f.svc.StartOAuth2(ctx, oaUser, StartInput{AccountID: v.ID}); !errors.Is(err, ErrRevoked) {
				t.Errorf("reconnecting a revoked account: %v, want ErrRevoked", err)
			}
			a, _ := f.account(t, v.ID)
			if _, err := f.svc.accessToken(ctx, a, &secrets{}, true); !errors.Is(err, ErrRevoked) {
				t.Errorf("a revoked account's token: %v, want ErrRevoked", err)
			}

			// Clients are the admin's.
			in := OAuthClientInput{ClientID: "x", ClientSecret: "y"}
			if _, err := f.svc.SetOAuthClient(ctx, oaUser, "fake", in); !errors.Is(err, ErrForbidden) {
				t.Errorf("a user setting a client: %v, want ErrForbidden", err)
			}
			if _, err := f.svc.OAuthClient(ctx, oaUser, "fake"); !errors.Is(err, ErrForbidden) {
				t.Errorf("a user reading a client: %v, want ErrForbidden", err)
			}
			if err := f.svc.DeleteOAuthClient(ctx, oaUser, "fake"); !errors.Is(err, ErrForbidden) {
				t.Errorf("a user deleting a client: %v, want ErrForbidden", err)
			}
			if _, err := f.svc.SetOAuthClient(ctx, oaAdmin, "fake", OAuthClientInput{ClientSecret: "y"}); err == nil {
				t.Error("a client without id was accepted")
			} else {
				oaField(t, err, "/clientId", "required")
			}
			if err := f.svc.DeleteOAuthClient(ctx, oaAdmin, "fake"); err != nil {
				t.Fatalf("deleting the client: %v", err)
			}
			if _, err := f.svc.OAuthClient(ctx, oaAdmin, "fake"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a deleted client: %v, want ErrNotFound", err)
			}
			_, err := f.svc.StartOAuth2(ctx, oaUser, StartInput{Connector: "fake"})
			oaField(t, err, "/connector", "PUT /api/v1/connectors/fake/oauth2-client")
		})
	}
}

// TestOAuth2TokenEndpointFollowsAddressPolicy: token endpoints are called
// through the outbound client, so a provider on a private address is
// refused unless the operator allows private networks, and the refusal
// leaves the account as it was.
func TestOAuth2TokenEndpointFollowsAddressPolicy(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			v := f.connect(t, oaUser)
			f.http = outbound.NewClient(outbound.Options{})
			strict := f.service(t, f.st)

			a, sec := f.account(t, v.ID)
			_, err := strict.accessToken(ctx, a, sec, true)
			if !outbound.IsBlocked(err) || errors.Is(err, ErrInvalid) {
				t.Fatalf("refreshing at a loopback token endpoint: %v, want a blocked address", err)
			}
			if b, _ := f.account(t, v.ID); b.Status != store.AccountActive {
				t.Errorf("the account turned %s", b.Status)
			}

			res, q := f.start(t, oaUser, StartInput{Connector: "fake"})
			code := f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
			_, _, err = strict.FinishOAuth2(ctx, res.State, code, "")
			if ue, ok := errors.AsType[*UpstreamError](err); !ok || !outbound.IsBlocked(ue) {
				t.Fatalf("exchanging at a loopback token endpoint: %v, want an UpstreamError for a blocked address", err)
			}
			if n := f.p.count("refresh_token") + f.p.count("authorization_code"); n != 1 {
				t.Errorf("the provider was called %d times, want once (the first connection)", n)
			}
		})
	}
}

// TestOAuth2ReturnToIsRestricted: the callback sends the browser only to
// the origin of the public URL or one the operator allows, else it would
// be an open redirect on Plugboard's host.
func TestOAuth2ReturnToIsRestricted(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			for _, returnTo := range []string{
				"https://evil.example/phish",
				"https://app.example.evil.example/",
				"http://app.example/done",       // another scheme
				"https://app.example:8443/done", // another port
				"http://plugboard.example/done",
				"//app.example/done",
			} {
				_, err := f.svc.StartOAuth2(ctx, oaUser, StartInput{Connector: "fake", ReturnTo: returnTo})
				oaField(t, err, "/returnTo", "")
			}
			for _, returnTo := range []string{
				"https://plugboard.example/ui/accounts",
				"https://APP.example:443/done",
			} {
				if _, err := f.svc.StartOAuth2(ctx, oaUser, StartInput{Connector: "fake", ReturnTo: returnTo}); err != nil {
					t.Errorf("returnTo %s: %v", returnTo, err)
				}
			}

			// Once the operator no longer allows the origin, a state started
			// before connects the account but sends the browser nowhere.
			res, q := f.start(t, oaUser, StartInput{Connector: "fake", ReturnTo: "https://app.example/done"})
			f.returnOrigins = nil
			strict := f.service(t, f.st)
			_, err := strict.StartOAuth2(ctx, oaUser, StartInput{Connector: "fake", ReturnTo: "https://app.example/done"})
			oaField(t, err, "/returnTo", "")
			code := f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
			v, returnTo, err := strict.FinishOAuth2(ctx, res.State, code, "")
			if err != nil || v == nil || returnTo != "" {
				t.Fatalf("finishing: %v, returnTo %q (want the account and none)", err, returnTo)
			}
		})
	}
}

// TestNewRefusesBadReturnOrigins: an allowed return origin that is not an
// absolute http or https URL stops New, naming it, rather than being
// skipped unseen on every connection.
func TestNewRefusesBadReturnOrigins(t *testing.T) {
	t.Parallel()
	f := newOAFixture(t, store.BackendSQLite, "")
	for _, bad := range []string{"app.example", "https://", "ftp://app.example", ""} {
		_, err := New(Config{Store: f.st, Vault: f.vault, PublicURL: oaPublicURL, ReturnOrigins: []string{"https://ok.example", bad}})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("ReturnOrigins entry %q", bad)) {
			t.Errorf("ReturnOrigins entry %q: %v, want an error naming it", bad, err)
		}
	}
	if _, err := New(Config{Store: f.st, Vault: f.vault, PublicURL: "plugboard.example"}); err == nil || !strings.Contains(err.Error(), `PublicURL "plugboard.example"`) {
		t.Errorf("a PublicURL without a scheme: %v, want an error naming it", err)
	}
	if _, err := New(Config{Store: f.st, Vault: f.vault, ReturnOrigins: []string{" https://app.example/ui "}}); err != nil {
		t.Errorf("an origin with a path and spaces: %v", err)
	}
}

// TestOAuth2NameLimitCountsCharacters: an account's name holds at most
// maxNameLength characters, not bytes, as Create counts them.
func TestOAuth2NameLimitCountsCharacters(t *testing.T) {
	t.Parallel()
	f := newOAFixture(t, store.BackendSQLite, "")
	name := strings.Repeat("é", maxNameLength)
	if _, err := f.svc.StartOAuth2(context.Background(), oaUser, StartInput{Connector: "fake", Name: name}); err != nil {
		t.Errorf("a name of %d two-byte characters: %v", maxNameLength, err)
	}
	_, err := f.svc.StartOAuth2(context.Background(), oaUser, StartInput{Connector: "fake", Name: name + "é"})
	oaField(t, err, "/name", fmt.Sprint(maxNameLength))
}

// TestOAuth2DomainIsTheConnectors: an oauth2 account's token belongs to
// the connector's client, so it goes only to the connector's baseUrl.
func TestOAuth2DomainIsTheConnectors(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, GrantClientCredentials)
			ctx := context.Background()
			in := Input{Name: "Service", AuthType: AuthOAuth2, Connector: "fake", Domain: "https://collector.evil.example/v1"}
			_, err := f.svc.Create(ctx, oaUser, in)
			oaField(t, err, "/domain", "baseUrl")
			if n := f.p.count("client_credentials"); n != 0 {
				t.Errorf("a refused account fetched %d tokens", n)
			}
			in.Domain = f.auth.BaseURL + "/"
			v, err := f.svc.Create(ctx, oaUser, in)
			if err != nil || v.Domain != f.auth.BaseURL {
				t.Fatalf("creating with the connector's domain: %v (domain %v)", err, v)
			}
			evil := "https://collector.evil.example/v1"
			_, err = f.svc.Update(ctx, oaUser, v.ID, Patch{Domain: &evil})
			oaField(t, err, "/domain", "cannot change")
			if a, _ := f.account(t, v.ID); a.Domain != f.auth.BaseURL {
				t.Errorf("the domain became %s", a.Domain)
			}
			name := "Renamed"
			if _, err := f.svc.Update(ctx, oaUser, v.ID, Patch{Name: &name, Domain: &f.auth.BaseURL}); err != nil {
				t.Errorf("a patch keeping the domain: %v", err)
			}

			// A connector without baseUrl has no oauth2 accounts.
			f.auth.BaseURL = ""
			_, err = f.svc.Create(ctx, oaUser, Input{Name: "x", AuthType: AuthOAuth2, Connector: "fake"})
			oaField(t, err, "/connector", "fake")
			_, err = f.svc.Create(ctx, oaUser, Input{Name: "x", AuthType: AuthOAuth2, Connector: "fake", Domain: evil})
			oaField(t, err, "/connector", "baseUrl")
			f.auth.Grant = GrantAuthorizationCode
			_, err = f.svc.StartOAuth2(ctx, oaUser, StartInput{Connector: "fake"})
			oaField(t, err, "/connector", "baseUrl")

			// Nor does one that lost it between start and callback.
			f.auth.BaseURL = "https://api.fake.example/v1"
			res, q := f.start(t, oaUser, StartInput{Connector: "fake"})
			f.auth.BaseURL = ""
			code := f.p.grant(q.Get("code_challenge"), q.Get("redirect_uri"))
			_, _, err = f.svc.FinishOAuth2(ctx, res.State, code, "")
			oaField(t, err, "/connector", "baseUrl")
		})
	}
}

// TestOAuth2SlowRefreshKeepsLease: a node's refresh outlasts neither its
// lease nor the other node's patience. Node 1 refreshes while the provider
// (which rotates refresh tokens) takes 1.5 s; the clock jumps 31 s; node
// 2 then needs a fresh token too. It must wait for node 1's tokens rather
// than spend the same refresh token again, get invalid_grant, and mark a
// working account invalid.
func TestOAuth2SlowRefreshKeepsLease(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			st2 := f.st
			if backend == store.BackendPostgres {
				var err error
				if st2, err = store.Open(ctx, f.cfg); err != nil {
					t.Fatalf("opening the second node's store: %v", err)
				}
				t.Cleanup(func() { _ = st2.Close() })
			}
			node2 := f.service(t, st2)
			v := f.connect(t, oaUser)
			f.p.set(func(p *oaProvider) { p.refreshDelay = 1500 * time.Millisecond })
			a, sec := f.account(t, v.ID)

			type outcome struct {
				tok string
				err error
			}
			first := make(chan outcome, 1)
			go func() {
				ac, sc := *a, *sec
				tok, err := f.svc.accessToken(ctx, &ac, &sc, true)
				first <- outcome{tok, err}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for f.p.count("refresh_token") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("node 1 never called the token endpoint")
				}
				time.Sleep(5 * time.Millisecond)
			}
			f.offset.Store(int64(31 * time.Second))
			ac, sc := *a, *sec
			tok2, err2 := node2.accessToken(ctx, &ac, &sc, true)
			got1 := <-first
			if got1.err != nil || err2 != nil {
				t.Fatalf("node 1: %v; node 2: %v", got1.err, err2)
			}
			if tok2 != got1.tok || tok2 == sec.AccessToken {
				t.Errorf("node 2 got another token than node 1's refresh (same as node 1 %t, old %t)", tok2 == got1.tok, tok2 == sec.AccessToken)
			}
			if n := f.p.count("refresh_token"); n != 1 {
				t.Errorf("the provider was asked %d times, want once", n)
			}
			b, bsec := f.account(t, v.ID)
			if b.Status != store.AccountActive || bsec.AccessToken != got1.tok || len(f.events.list()) != 0 {
				t.Errorf("account %s (%q), holds node 1's token %t, %d events; want active with it and none",
					b.Status, b.StatusReason, bsec.AccessToken == got1.tok, len(f.events.list()))
			}
		})
	}
}

// TestOAuth2StaleRefreshFailureKeepsAccount: a refresh that fails after
// another one stored new tokens does not mark the account invalid.
func TestOAuth2StaleRefreshFailureKeepsAccount(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			v := f.connect(t, oaUser)
			a, sec := f.account(t, v.ID)
			ac, sc := *a, *sec
			if _, err := f.svc.accessToken(ctx, &ac, &sc, true); err != nil {
				t.Fatalf("refreshing: %v", err)
			}
			// A refresh claimed at the version read before fails late.
			err := f.svc.oauthInvalidate(ctx, a, "the provider refused to renew the OAuth2 tokens (HTTP 400 invalid_grant)")
			if !errors.Is(err, errRefreshStale) {
				t.Fatalf("a stale failure: %v, want errRefreshStale", err)
			}
			if b, _ := f.account(t, v.ID); b.Status != store.AccountActive || len(f.events.list()) != 0 {
				t.Fatalf("account %s with %d events; want active and none", b.Status, len(f.events.list()))
			}
			// The account as it is now is marked.
			b, _ := f.account(t, v.ID)
			if err := f.svc.oauthInvalidate(ctx, b, "refused"); !errors.Is(err, ErrInvalid) {
				t.Fatalf("a current failure: %v, want ErrInvalid", err)
			}
			if c, _ := f.account(t, v.ID); c.Status != store.AccountInvalid || len(f.events.list()) != 1 {
				t.Fatalf("account %s with %d events; want invalid and one", c.Status, len(f.events.list()))
			}
		})
	}
}

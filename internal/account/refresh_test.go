package account

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/internal/store/storetest"
)

// tokenAPI is an API that refuses one access token with 401 and records
// the Authorization of every request.
type tokenAPI struct {
	*httptest.Server
	mu      sync.Mutex
	refused string
	all     bool // refuse every token
	seen    []string
}

func newTokenAPI(t *testing.T) *tokenAPI {
	t.Helper()
	a := &tokenAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		auth := r.Header.Get("Authorization")
		a.seen = append(a.seen, auth)
		if a.all || auth == "Bearer "+a.refused {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(a.Close)
	return a
}

// refuse makes the API refuse token, and forgets what it saw.
func (a *tokenAPI) refuse(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refused, a.seen = token, nil
}

func (a *tokenAPI) tokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// TestOAuth2RefreshOn401EndToEnd: an API that answers 401 to an oauth2
// account's stored access token (revoked early by the provider, expiry
// unknown) gets one refresh and the request again with the new token,
// through Do and through Send.
func TestOAuth2RefreshOn401EndToEnd(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			api := newTokenAPI(t)
			f.auth.BaseURL = api.URL
			v := f.connect(t, oaUser)

			check := func(what string, status int, err error, refreshes int) {
				t.Helper()
				_, sec := f.account(t, v.ID)
				if err != nil || status != http.StatusOK {
					t.Fatalf("%s: status %d, %v", what, status, err)
				}
				if n := f.p.count("refresh_token"); n != refreshes {
					t.Errorf("%s: %d refreshes, want %d", what, n, refreshes)
				}
				if got := api.tokens(); len(got) != 2 || got[0] != "Bearer "+api.refused || got[1] != "Bearer "+sec.AccessToken ||
					sec.AccessToken == api.refused {
					t.Errorf("%s: the API saw %q; refused %q, stored now %q", what, got, api.refused, sec.AccessToken)
				}
			}

			_, sec := f.account(t, v.ID)
			api.refuse(sec.AccessToken)
			res, err := f.svc.Do(ctx, oaUser, v.ID, Request{Path: "/me"}, "api")
			var status int
			if res != nil {
				status = res.Status
			}
			check("Do", status, err, 1)

			_, sec = f.account(t, v.ID)
			api.refuse(sec.AccessToken)
			resp, err := f.svc.Send(ctx, oaUser, v.ID, "fake", "api", func(base *url.URL) (*http.Request, error) {
				return http.NewRequest(http.MethodGet, base.String()+"/me", nil)
			})
			status = 0
			if resp != nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			check("Send", status, err, 2)

			// A 401 to the refreshed token too is the answer: one refresh
			// per request.
			api.refuse("")
			api.mu.Lock()
			api.all = true
			api.mu.Unlock()
			res, err = f.svc.Do(ctx, oaUser, v.ID, Request{Path: "/me"}, "api")
			if err != nil || res.Status != http.StatusUnauthorized || f.p.count("refresh_token") != 3 || len(api.tokens()) != 2 {
				t.Errorf("refused after the refresh: %+v, %v; refreshes %d, requests %d", res, err, f.p.count("refresh_token"), len(api.tokens()))
			}
		})
	}
}

package connector_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/connector"
)

// withAuth returns minimalManifest with the auth block auth (JSON).
func withAuth(t *testing.T, auth string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(minimalManifest), &m); err != nil {
		t.Fatal(err)
	}
	var a any
	if err := json.Unmarshal([]byte(auth), &a); err != nil {
		t.Fatalf("auth %s: %v", auth, err)
	}
	m["auth"] = a
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestAuthOAuth2Grants: an oauth2 auth block names its grant; the
// authorization-code grant (the default) needs the provider's
// authorization URL, the client-credentials grant only its token URL, and
// a grant makes sense only for oauth2.
func TestAuthOAuth2Grants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		auth string
		// wantPath and wantMsg name the expected problem; "" for none.
		wantPath, wantMsg string
		wantGrant         string
	}{
		{
			name:      "authorization code by default",
			auth:      `{"type": "oauth2", "authorizationUrl": "https://p.example/authorize", "tokenUrl": "https://p.example/token", "scopes": ["read"]}`,
			wantGrant: "",
		},
		{
			name:      "authorization code named",
			auth:      `{"type": "oauth2", "grant": "authorizationCode", "authorizationUrl": "https://p.example/authorize", "tokenUrl": "https://p.example/token"}`,
			wantGrant: connector.GrantAuthorizationCode,
		},
		{
			name:      "client credentials without an authorization url",
			auth:      `{"type": "oauth2", "grant": "clientCredentials", "tokenUrl": "https://p.example/token", "scopes": ["api"]}`,
			wantGrant: connector.GrantClientCredentials,
		},
		{
			name:     "authorization code needs an authorization url",
			auth:     `{"type": "oauth2", "tokenUrl": "https://p.example/token"}`,
			wantPath: "/auth", wantMsg: "authorizationUrl",
		},
		{
			name:     "named authorization code needs an authorization url",
			auth:     `{"type": "oauth2", "grant": "authorizationCode", "tokenUrl": "https://p.example/token"}`,
			wantPath: "/auth", wantMsg: "authorizationUrl",
		},
		{
			name:     "client credentials needs a token url",
			auth:     `{"type": "oauth2", "grant": "clientCredentials"}`,
			wantPath: "/auth", wantMsg: "tokenUrl",
		},
		{
			name:     "client credentials has no authorization url",
			auth:     `{"type": "oauth2", "grant": "clientCredentials", "authorizationUrl": "https://p.example/authorize", "tokenUrl": "https://p.example/token"}`,
			wantPath: "/auth/authorizationUrl", wantMsg: "authorizationCode grant",
		},
		{
			name:     "unknown grant",
			auth:     `{"type": "oauth2", "grant": "password", "authorizationUrl": "https://p.example/authorize", "tokenUrl": "https://p.example/token"}`,
			wantPath: "/auth/grant", wantMsg: "",
		},
		{
			name:     "grant outside oauth2",
			auth:     `{"type": "token", "grant": "clientCredentials"}`,
			wantPath: "/auth/grant", wantMsg: "only to the oauth2",
		},
		{
			name:     "token url must be http",
			auth:     `{"type": "oauth2", "grant": "clientCredentials", "tokenUrl": "ftp://p.example/token"}`,
			wantPath: "/auth/tokenUrl", wantMsg: "http",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := connector.ParseManifest(withAuth(t, tt.auth))
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if m.Auth == nil || m.Auth.Grant != tt.wantGrant {
					t.Fatalf("auth %+v, want grant %q", m.Auth, tt.wantGrant)
				}
				return
			}
			e := asError(t, err)
			if !slices.ContainsFunc(e.Problems, func(p connector.Problem) bool {
				return p.Path == tt.wantPath && strings.Contains(p.Message, tt.wantMsg)
			}) {
				t.Fatalf("problems %v, want one at %q containing %q", e.Problems, tt.wantPath, tt.wantMsg)
			}
		})
	}
}

// TestAuthTestIsALiteralPath: the credential test is sent as a method and
// a path on the account's domain, with the credentials alone, so publishing
// refuses one the server could not send as written.
func TestAuthTestIsALiteralPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		test string
		// wantPath names the expected problem; "" for none.
		wantPath string
	}{
		{name: "a path", test: `{"method": "GET", "url": "/v2/me"}`},
		{name: "a path with a query", test: `{"method": "GET", "url": "/v2/me?fields=id"}`},
		{name: "an absolute url", test: `{"method": "GET", "url": "https://api.example.com/v2/me"}`, wantPath: "/auth/test/url"},
		{name: "a network-path reference", test: `{"method": "GET", "url": "//api.example.com/v2/me"}`, wantPath: "/auth/test/url"},
		{name: "a templated url", test: `{"method": "GET", "url": "{{ $.properties.me }}"}`, wantPath: "/auth/test/url"},
		{name: "a placeholder in the path", test: `{"method": "GET", "url": "/v2/{{ $.properties.me }}"}`, wantPath: "/auth/test/url"},
		{name: "headers", test: `{"method": "GET", "url": "/v2/me", "headers": {"X-Version": "2"}}`, wantPath: "/auth/test"},
		{name: "query", test: `{"method": "GET", "url": "/v2/me", "query": {"fields": "id"}}`, wantPath: "/auth/test"},
		{name: "body", test: `{"method": "POST", "url": "/v2/me", "body": {"a": 1}}`, wantPath: "/auth/test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := connector.ParseManifest(withAuth(t, `{"type": "token", "test": `+tt.test+`}`))
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := asError(t, err)
			if !slices.ContainsFunc(e.Problems, func(p connector.Problem) bool { return p.Path == tt.wantPath }) {
				t.Fatalf("problems %v, want one at %q", e.Problems, tt.wantPath)
			}
		})
	}
}

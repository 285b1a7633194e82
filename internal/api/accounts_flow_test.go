package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/connector"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// Credentials of the client-credentials provider.
const (
	ccClientID     = "flow-client"
	ccClientSecret = "cs-Zx8cV7bN6mA5sD4f"
)

// ccProvider is the token endpoint of an OAuth2 provider with the
// client-credentials grant: it issues a new access token per request
// until refuse is set, then answers 401 invalid_client.
type ccProvider struct {
	srv    *httptest.Server
	mu     sync.Mutex
	issued []string
	refuse bool
	calls  int
}

func newCCProvider(t *testing.T) *ccProvider {
	t.Helper()
	p := &ccProvider{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" || r.ParseForm() != nil {
			http.NotFound(w, r)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.calls++
		w.Header().Set("Content-Type", "application/json")
		if p.refuse || id != ccClientID || secret != ccClientSecret || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		tok := fmt.Sprintf("at-cc-%d-Qw3eR4tY5u", len(p.issued)+1)
		p.issued = append(p.issued, tok)
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, tok)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *ccProvider) state() (issued []string, calls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...), p.calls
}

// tokenAPI is an API that takes only the bearer token it is told to
// accept and answers 401 to anything else.
type tokenAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	accept string
	calls  int
	got    []string // the emails of the contacts created
}

func newTokenAPI(t *testing.T) *tokenAPI {
	t.Helper()
	a := &tokenAPI{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Email string }
		_ = json.NewDecoder(r.Body).Decode(&b)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls++
		w.Header().Set("Content-Type", "application/json")
		if a.accept == "" || r.Header.Get("Authorization") != "Bearer "+a.accept {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid token"}`)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v2/contacts" {
			http.NotFound(w, r)
			return
		}
		a.got = append(a.got, b.Email)
		fmt.Fprintf(w, `{"id":"c_%d"}`, len(a.got))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *tokenAPI) setAccept(token string) {
	a.mu.Lock()
	a.accept = token
	a.mu.Unlock()
}

func (a *tokenAPI) state() (emails []string, calls int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...), a.calls
}

// packOAuthCRM packs connector "oauthcrm": its accounts use the
// client-credentials grant at tokenURL, its CreateContact posts to
// /v2/contacts of its baseUrl api.
func packOAuthCRM(t *testing.T, api, tokenURL string) []byte {
	t.Helper()
	dir := t.TempDir()
	m := map[string]any{
		"name": "oauthcrm", "version": "1.0.0", "label": "OAuth CRM", "description": "A test CRM behind OAuth2.",
		"baseUrl": api,
		"auth":    map[string]any{"type": "oauth2", "grant": "clientCredentials", "tokenUrl": tokenURL, "scopes": []string{"contacts"}},
		"components": []any{map[string]any{
			"name": "CreateContact", "kind": "action", "description": "Creates a contact.",
			"properties": map[string]any{"type": "object", "required": []any{"email"},
				"properties": map[string]any{"email": map[string]any{"type": "string"}}},
			"http": map[string]any{
				"method": "POST", "url": "/v2/contacts",
				"body":   map[string]any{"email": "{{ $.properties.email }}"},
				"output": map[string]any{"id": "{{ $.response.body.id }}"},
			},
		}},
	}
	data, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "connector.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "CHANGELOG.md"), []byte("# 1.0.0\n\nFirst.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zipped, err := connector.Pack(dir)
	if err != nil {
		t.Fatalf("packing: %v", err)
	}
	return zipped
}

// unprocessedItem is an unprocessed message as the API lists it.
type unprocessedItem struct {
	ID          string `json:"id"`
	FlowID      string `json:"flowId"`
	ComponentID string `json:"componentId"`
	Attempts    int    `json:"attempts"`
	Error       string `json:"error"`
}

// TestAccountInvalidDeadLettersFlowSteps runs a flow whose connector step
// calls its API through an OAuth2 (client-credentials) account. Once the
// provider refuses to renew the token and the API refuses the old one,
// the account turns invalid, COMPONENT_ERROR is sent for it, and the
// steps using it go to the unprocessed messages at once, saying the
// account is invalid, without calling the API or the provider again.
func TestAccountInvalidDeadLettersFlowSteps(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			api := newTokenAPI(t)
			prov := newCCProvider(t)
			rc := newReceiver(t)
			e.subscribe(rc, "COMPONENT_ERROR")

			if code, body := e.publish(e.admin, packOAuthCRM(t, api.srv.URL, prov.srv.URL+"/token")); code != http.StatusCreated {
				t.Fatalf("publish: %d %s", code, body)
			}
			e.do("POST", "/api/v1/connectors/oauthcrm/install", e.admin, nil, http.StatusOK, nil)
			e.do("PUT", "/api/v1/connectors/oauthcrm/oauth2-client", e.admin,
				map[string]any{"clientId": ccClientID, "clientSecret": ccClientSecret}, http.StatusOK, nil)

			// The account takes its auth type and domain from the
			// connector, and its first token at once.
			aliceID, alice := e.user("alice@example.com")
			acc := e.createAccount(alice, map[string]any{"name": "crm", "authType": "oauth2", "connector": "oauthcrm"})
			issued, _ := prov.state()
			if acc.AuthType != "oauth2" || acc.Domain != api.srv.URL || acc.Status != "active" || acc.OwnerID != aliceID || len(issued) != 1 {
				t.Fatalf("created %+v; tokens issued %d, want 1", acc, len(issued))
			}
			api.setAccept(issued[0])

			f := e.startFlow(alice, map[string]any{
				"name": "signups to crm",
				"components": map[string]any{
					"hook": map[string]any{"type": "core.Webhook"},
					"create": map[string]any{"type": "oauthcrm.CreateContact",
						"properties": map[string]any{"account": acc.ID, "email": "{{ $.hook.body.email }}"},
						"retry":      map[string]any{"maxAttempts": 5, "initialInterval": "10ms", "maxInterval": "50ms"}},
				},
				"links": []map[string]any{{"from": "hook", "to": "create"}},
			})
			hook := f.Components["hook"].WebhookURL

			// Working credentials: the step goes through.
			e.do("POST", hook, "", `{"email":"ada@example.com"}`, http.StatusAccepted, nil)
			eventually(t, 15*time.Second, "the first contact", func() bool {
				got, _ := api.state()
				return len(got) == 1
			})

			// The provider revokes the client and the API the token: the
			// 401 calls for a refresh, which the provider refuses.
			prov.mu.Lock()
			prov.refuse = true
			prov.mu.Unlock()
			api.setAccept("")
			e.do("POST", hook, "", `{"email":"grace@example.com"}`, http.StatusAccepted, nil)

			var un struct{ Items []unprocessedItem }
			eventually(t, 15*time.Second, "the step in the unprocessed messages", func() bool {
				e.do("GET", "/api/v1/unprocessed-messages?flowId="+f.ID, alice, nil, http.StatusOK, &un)
				return len(un.Items) == 1
			})
			m := un.Items[0]
			if m.ComponentID != "create" || !strings.Contains(m.Error, acc.ID) || !strings.Contains(m.Error, "invalid") {
				t.Errorf("unprocessed %+v, want the step create with an error naming account %s as invalid", m, acc.ID)
			}
			if m.Attempts != 1 {
				t.Errorf("the step was tried %d times, want 1: an invalid account is not retried", m.Attempts)
			}

			var got accountResp
			e.do("GET", "/api/v1/accounts/"+acc.ID, alice, nil, http.StatusOK, &got)
			if got.Status != "invalid" || !strings.Contains(got.StatusReason, "invalid_client") {
				t.Errorf("account after the refused refresh: status %q, reason %q", got.Status, got.StatusReason)
			}

			var ev sysEvent
			eventually(t, 15*time.Second, "COMPONENT_ERROR for the account", func() bool {
				for _, x := range rc.events("COMPONENT_ERROR") {
					if x.Data["accountId"] == acc.ID {
						ev = x
						return true
					}
				}
				return false
			})
			if msg, _ := ev.Data["error"].(string); ev.Data["ownerId"] != aliceID || ev.Data["connector"] != "oauthcrm" || !strings.Contains(msg, "invalid") {
				t.Errorf("COMPONENT_ERROR data = %v", ev.Data)
			}

			// Later steps fail at once with the same reason, calling
			// neither the API nor the provider.
			_, apiCalls := api.state()
			_, provCalls := prov.state()
			e.do("POST", hook, "", `{"email":"linus@example.com"}`, http.StatusAccepted, nil)
			eventually(t, 15*time.Second, "the next step in the unprocessed messages", func() bool {
				e.do("GET", "/api/v1/unprocessed-messages?flowId="+f.ID, alice, nil, http.StatusOK, &un)
				return len(un.Items) == 2
			})
			for _, m := range un.Items {
				if !strings.Contains(m.Error, acc.ID) || !strings.Contains(m.Error, "invalid") || m.Attempts != 1 {
					t.Errorf("unprocessed %+v, want one attempt failing on invalid account %s", m, acc.ID)
				}
			}
			if _, n := api.state(); n != apiCalls {
				t.Errorf("the API was called %d times through the invalid account", n-apiCalls)
			}
			if _, n := prov.state(); n != provCalls {
				t.Errorf("the provider was asked %d more times for tokens of the invalid account", n-provCalls)
			}
			if emails, _ := api.state(); len(emails) != 1 {
				t.Errorf("contacts created: %v, want only the first", emails)
			}

			// No secret in what the user, the admin and the logs see: the
			// node's log lines and the flow's invocation logs.
			flowLogs := e.do("GET", "/api/v1/flows/"+f.ID+"/logs?limit=500", alice, nil, http.StatusOK, nil)
			if !strings.Contains(string(flowLogs), "ada@example.com") {
				t.Errorf("the flow's logs %s miss the first run", flowLogs)
			}
			seen := fmt.Sprint(un.Items, ev.Data, got) + e.logs.String() + string(flowLogs)
			issued, _ = prov.state()
			for _, s := range append(issued, ccClientSecret) {
				if strings.Contains(seen, s) {
					t.Errorf("an answer, an event or a log line holds %s", s)
				}
			}
		})
	}
}

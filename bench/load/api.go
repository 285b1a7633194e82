package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// apiClient talks to the Plugboard REST API to set up the benchmark flows.
type apiClient struct {
	base  string
	http  *http.Client
	token string
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, http: &http.Client{Timeout: 30 * time.Second}}
}

// signIn exchanges the admin's credentials for an access token.
func (a *apiClient) signIn(ctx context.Context, email, password string) error {
	var out struct {
		Token string `json:"token"`
	}
	in := map[string]string{"email": email, "password": password}
	if err := a.call(ctx, http.MethodPost, "/api/v1/auth/sign-in", in, http.StatusOK, &out); err != nil {
		return fmt.Errorf("signing in: %w", err)
	}
	if out.Token == "" {
		return fmt.Errorf("signing in: answer has no token")
	}
	a.token = out.Token
	return nil
}

// benchFlow is the part of a flow document the benchmark needs.
type benchFlow struct {
	ID         string
	WebhookURL string // of the component "hook", when the flow has one
}

// createFlow creates the flow doc. When doc has a component "hook" of type
// core.Webhook, the answer's URL for it is resolved against the server.
func (a *apiClient) createFlow(ctx context.Context, doc map[string]any) (benchFlow, error) {
	var out struct {
		ID         json.RawMessage `json:"id"`
		Components map[string]struct {
			WebhookURL string `json:"webhookUrl"`
		} `json:"components"`
	}
	if err := a.call(ctx, http.MethodPost, "/api/v1/flows", doc, http.StatusCreated, &out); err != nil {
		return benchFlow{}, fmt.Errorf("creating flow: %w", err)
	}
	id := jsonScalar(out.ID)
	if id == "" {
		return benchFlow{}, fmt.Errorf("creating flow: answer lacks id")
	}
	hook := out.Components["hook"].WebhookURL
	if hook == "" {
		return benchFlow{ID: id}, nil
	}
	// The contract says absolute; resolve a relative URL rather than fail on it.
	ref, err := url.Parse(hook)
	if err != nil {
		return benchFlow{}, fmt.Errorf("creating flow: webhook URL %q: %w", hook, err)
	}
	base, _ := url.Parse(a.base)
	return benchFlow{ID: id, WebhookURL: base.ResolveReference(ref).String()}, nil
}

// startFlow starts flow id.
func (a *apiClient) startFlow(ctx context.Context, id string) error {
	in := map[string]string{"command": "start"}
	if err := a.call(ctx, http.MethodPost, "/api/v1/flows/"+url.PathEscape(id), in, http.StatusOK, nil); err != nil {
		return fmt.Errorf("starting flow %s: %w", id, err)
	}
	return nil
}

// createVirtualUser creates a virtual user (no password) with role user and
// returns its id.
func (a *apiClient) createVirtualUser(ctx context.Context, email string) (string, error) {
	var out struct {
		ID json.RawMessage `json:"id"`
	}
	in := map[string]any{"email": email, "role": "user", "virtual": true}
	if err := a.call(ctx, http.MethodPost, "/api/v1/users", in, http.StatusCreated, &out); err != nil {
		return "", fmt.Errorf("creating user %s: %w", email, err)
	}
	id := jsonScalar(out.ID)
	if id == "" {
		return "", fmt.Errorf("creating user %s: answer has no id", email)
	}
	return id, nil
}

// createToken issues an access token for user id.
func (a *apiClient) createToken(ctx context.Context, id string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	if err := a.call(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(id)+"/tokens", nil, http.StatusCreated, &out); err != nil {
		return "", fmt.Errorf("creating a token for user %s: %w", id, err)
	}
	if out.Token == "" {
		return "", fmt.Errorf("creating a token for user %s: answer has no token", id)
	}
	return out.Token, nil
}

// as returns a client of the same server that uses token.
func (a *apiClient) as(token string) *apiClient {
	return &apiClient{base: a.base, http: a.http, token: token}
}

// componentSpec is the part of a component's spec the benchmark needs.
type componentSpec struct {
	Type       string `json:"type"`
	IO         bool   `json:"io"`
	Properties []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Required bool   `json:"required"`
	} `json:"properties"`
}

// components lists the components the server has registered.
func (a *apiClient) components(ctx context.Context) ([]componentSpec, error) {
	var out struct {
		Items []componentSpec `json:"items"`
	}
	if err := a.call(ctx, http.MethodGet, "/api/v1/components", nil, http.StatusOK, &out); err != nil {
		return nil, fmt.Errorf("listing components: %w", err)
	}
	return out.Items, nil
}

// call sends in as JSON and decodes the answer into out, failing unless the
// status is want.
func (a *apiClient) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request to %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return fmt.Errorf("building request %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	answer, err := roundTrip(a.http, req, want)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("decoding answer to %s %s: %w", method, path, err)
	}
	return nil
}

// jsonScalar renders a JSON string or number as plain text.
func jsonScalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// roundTrip sends req and returns the answer's body, failing unless the
// status is want. It reads the whole answer so that the connection goes
// back to the pool.
func roundTrip(client *http.Client, req *http.Request, want int) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_, _ = io.Copy(io.Discard, resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", req.Method, req.URL, err)
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL, resp.StatusCode, want,
			truncate(string(bytes.TrimSpace(body)), 300))
	}
	return body, nil
}

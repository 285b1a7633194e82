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

// apiClient talks to the Plugboard REST API to set up the benchmark flow.
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
	WebhookURL string
}

// createFlow creates the flow hook (core.Webhook) -> map (core.Set) -> call
// (core.HttpRequest), the last posting the mapped body to sinkURL.
func (a *apiClient) createFlow(ctx context.Context, sinkURL string) (benchFlow, error) {
	doc := map[string]any{
		"name": "bench",
		"components": map[string]any{
			"hook": map[string]any{"type": "core.Webhook", "properties": map[string]any{}},
			"map": map[string]any{"type": "core.Set", "properties": map[string]any{
				"values": map[string]any{
					"email":  "{{ $.hook.body.user.email }}",
					"n":      "{{ $.hook.body.n }}",
					"source": "bench",
				},
			}},
			"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{
				"method": "POST",
				"url":    sinkURL,
				"body":   "{{ $.map }}",
			}},
		},
		"links": []map[string]string{
			{"from": "hook", "to": "map"},
			{"from": "map", "to": "call"},
		},
	}
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
	hook := out.Components["hook"].WebhookURL
	if id == "" || hook == "" {
		return benchFlow{}, fmt.Errorf("creating flow: answer lacks id or components.hook.webhookUrl")
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

// call sends in as JSON and decodes the answer into out, failing unless the
// status is want.
func (a *apiClient) call(ctx context.Context, method, path string, in any, want int, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, truncate(string(bytes.TrimSpace(answer)), 500))
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

package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/outbound"
)

// HTTPRequest calls an HTTP API and emits its answer.
type HTTPRequest struct {
	client  *http.Client
	maxBody int64
}

var _ component.Action = (*HTTPRequest)(nil)

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// Spec describes the component.
func (*HTTPRequest) Spec() component.Spec {
	return component.Spec{
		Type: "core.HttpRequest",
		Kind: component.KindAction,
		ExampleFlow: exampleFlow("Create a ticket",
			map[string]any{
				"hook": node(WebhookType, nil),
				"call": node("core.HttpRequest", map[string]any{
					"method": "POST", "url": "https://api.example.com/tickets",
					"headers": map[string]any{"Authorization": "Bearer {{ $.hook.headers[\"X-Api-Token\"] }}"},
					"body":    map[string]any{"subject": "{{ $.hook.body.subject }}", "priority": "{{ $.hook.body.urgent ? \"high\" : \"normal\" }}"},
				}),
			},
			link("hook", "call")),
		IO: true,
		Description: "Calls an HTTP API. Network errors and answers 408, 429 and 5xx are retried with backoff; " +
			"other 4xx answers fail at once. Sends the message id as Idempotency-Key.",
		Properties: []component.Property{
			{Name: "method", Type: component.TypeString, Default: "GET", Enum: httpMethods, Description: "HTTP method."},
			{Name: "url", Type: component.TypeString, Required: true, Description: "Absolute http or https URL.", Example: "https://api.example.com/contacts"},
			{Name: "headers", Type: component.TypeObject, Description: "Request headers (name to string value)."},
			{Name: "query", Type: component.TypeObject, Description: "Query parameters added to the URL."},
			{Name: "body", Type: component.TypeAny, Description: "Request body: objects and arrays are sent as JSON, strings as they are."},
			{Name: "timeout", Type: component.TypeString, Default: "30s", Description: "How long to wait for the answer."},
		},
		InPorts:      []string{component.PortIn},
		OutPorts:     []string{component.PortOut},
		OutputSample: map[string]any{"status": 200, "headers": map[string]any{"Content-Type": "application/json"}, "body": map[string]any{"id": 42}},
	}
}

// Invoke makes the request.
func (h *HTTPRequest) Invoke(ctx context.Context, inv component.Invocation) ([]component.Emit, error) {
	req, timeout, err := h.build(inv)
	if err != nil {
		return nil, component.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req = req.WithContext(ctx)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, component.PermanentIfFinal(fmt.Errorf("calling %s %s: %w", req.Method, redact(req.URL), unwrapURLError(err)))
	}
	defer resp.Body.Close()
	raw, err := outbound.ReadBody(resp, h.maxBody)
	if err != nil {
		// An answer over the cap is as large next time.
		return nil, component.PermanentIfFinal(fmt.Errorf("reading answer of %s %s: %w", req.Method, redact(req.URL), err))
	}
	out := map[string]any{
		"status":  resp.StatusCode,
		"headers": flatHeaders(resp.Header),
		"body":    outbound.DecodeBody(resp.Header.Get("Content-Type"), raw),
	}
	if resp.StatusCode >= 400 {
		return nil, component.StatusFailure(resp.StatusCode,
			fmt.Errorf("%s %s answered %d: %s", req.Method, redact(req.URL), resp.StatusCode, snippet(raw)))
	}
	return []component.Emit{{Port: component.PortOut, Value: out}}, nil
}

// build makes the request from the resolved properties and returns it
// with its timeout.
func (h *HTTPRequest) build(inv component.Invocation) (*http.Request, time.Duration, error) {
	p := inv.Properties
	method := strings.ToUpper(stringOr(p["method"], "GET"))
	if !contains(httpMethods, method) {
		return nil, 0, fmt.Errorf("method %q is not one of %s", method, strings.Join(httpMethods, ", "))
	}
	rawURL, _ := p["url"].(string)
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, 0, fmt.Errorf("url %q must be an absolute http or https URL", rawURL)
	}
	if q, ok := p["query"].(map[string]any); ok {
		vals := u.Query()
		for k, v := range q {
			vals.Set(k, scalar(v))
		}
		u.RawQuery = vals.Encode()
	}
	timeout := 30 * time.Second
	if s, ok := p["timeout"].(string); ok && s != "" {
		if timeout, err = ParseDuration(s); err != nil || timeout <= 0 {
			return nil, 0, fmt.Errorf("timeout %q must be a positive duration", s)
		}
	}
	var body io.Reader
	contentType := ""
	switch b := p["body"].(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
		contentType = "text/plain; charset=utf-8"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, 0, fmt.Errorf("encoding body: %w", err)
		}
		body = bytes.NewReader(data)
		contentType = "application/json"
	}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		return nil, 0, fmt.Errorf("building request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if hs, ok := p["headers"].(map[string]any); ok {
		for k, v := range hs {
			req.Header.Set(k, scalar(v))
		}
	}
	if req.Header.Get("Idempotency-Key") == "" && inv.MessageID != "" {
		req.Header.Set("Idempotency-Key", inv.MessageID)
	}
	req.Header.Set("User-Agent", "Plugboard")
	return req, timeout, nil
}

func stringOr(v any, def string) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return def
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// scalar renders a header or query value.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func flatHeaders(h http.Header) map[string]any {
	out := make(map[string]any, len(h))
	for k, v := range h {
		out[k] = strings.Join(v, ", ")
	}
	return out
}

func snippet(raw []byte) string {
	const max = 200
	s := strings.TrimSpace(string(raw))
	if len(s) > max {
		s = s[:max] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// redact drops the query and user info of u for error messages.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

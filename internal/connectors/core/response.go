package core

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/plugboard/plugboard/internal/component"
)

// ReplySink takes the reply of a run for the webhook waiting on it.
type ReplySink interface {
	Reply(ctx context.Context, correlationID string, status int, headers map[string]string, body []byte) error
}

// Response answers the webhook request that started its run, when that
// webhook waits for a reply (mode "wait").
type Response struct {
	replies ReplySink
}

var _ component.Action = (*Response)(nil)

// Spec describes the component.
func (*Response) Spec() component.Spec {
	return component.Spec{
		Type: "core.Response",
		Kind: component.KindAction,
		ExampleFlow: exampleFlow("Look up an order",
			map[string]any{
				"hook": node(WebhookType, map[string]any{"mode": "wait", "timeout": "10s"}),
				"find": node("core.HttpRequest", map[string]any{"method": "GET", "url": "https://api.example.com/orders/{{ $.hook.query.id }}"}),
				"reply": node("core.Response", map[string]any{
					"status": "{{ $.find.status == 200 ? 200 : 404 }}",
					"body":   map[string]any{"order": "{{ $.find.body }}"},
				}),
			},
			link("hook", "find"), link("find", "reply")),
		Description: "Answers the request of a core.Webhook in mode \"wait\" that started this run: the first Response of a run is " +
			"the webhook's answer. A body that is text is sent as it is (text/plain unless headers say otherwise); any other " +
			"value is sent as JSON. Emits the reply it made.",
		Properties: []component.Property{
			{Name: "status", Type: component.TypeNumber, Default: 200, Description: "HTTP status code, 100 to 599."},
			{Name: "headers", Type: component.TypeObject, Description: "Response headers: names to text values.",
				Example: map[string]any{"Cache-Control": "no-store"}},
			{Name: "body", Type: component.TypeAny, Description: "The response body.",
				Example: map[string]any{"id": "{{ $.create.body.id }}", "ok": true}},
		},
		InPorts:      []string{component.PortIn},
		OutPorts:     []string{component.PortOut},
		OutputSample: map[string]any{"status": 200, "headers": map[string]any{"Content-Type": "application/json"}, "body": map[string]any{"ok": true}},
		IO:           true,
	}
}

// Invoke stores the reply for the waiting webhook.
func (r *Response) Invoke(ctx context.Context, inv component.Invocation) ([]component.Emit, error) {
	status := http.StatusOK
	if v, ok := inv.Properties["status"]; ok && v != nil {
		f, isNum := number(v)
		if !isNum || f != math.Trunc(f) || f < 100 || f > 599 {
			return nil, component.Permanent(fmt.Errorf("core.Response %s: status must be a whole number from 100 to 599, got %s", inv.ComponentID, describe(v)))
		}
		status = int(f)
	}
	headers := map[string]string{}
	if v, ok := inv.Properties["headers"].(map[string]any); ok {
		for k, hv := range v {
			s, isText := hv.(string)
			if !isText {
				return nil, component.Permanent(fmt.Errorf("core.Response %s: header %s must be text, got %s", inv.ComponentID, http.CanonicalHeaderKey(k), describe(hv)))
			}
			headers[http.CanonicalHeaderKey(k)] = s
		}
	}
	var body []byte
	switch b := inv.Properties["body"].(type) {
	case nil:
	case string:
		body = []byte(b)
		if headers["Content-Type"] == "" {
			headers["Content-Type"] = "text/plain; charset=utf-8"
		}
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			return nil, component.Permanent(fmt.Errorf("core.Response %s: body: %w", inv.ComponentID, err))
		}
		if headers["Content-Type"] == "" {
			headers["Content-Type"] = "application/json"
		}
	}
	if r.replies == nil {
		return nil, component.Permanent(fmt.Errorf("core.Response %s: replies are not available on this server", inv.ComponentID))
	}
	if err := r.replies.Reply(ctx, inv.CorrelationID, status, headers, body); err != nil {
		return nil, fmt.Errorf("core.Response %s: %w", inv.ComponentID, err)
	}
	out := map[string]any{"status": float64(status), "headers": toAny(headers), "body": inv.Properties["body"]}
	return []component.Emit{{Port: component.PortOut, Value: out}}, nil
}

// number reads a JSON number, or an integer from a spec default.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

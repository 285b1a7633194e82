package core

import "github.com/plugboard/plugboard/internal/component"

// WebhookType is the type name of the webhook trigger.
const WebhookType = "core.Webhook"

// Webhook starts a flow when its unique URL receives a request. The API
// layer accepts the request and hands its output to the engine.
type Webhook struct{}

var _ component.Trigger = Webhook{}

// Spec describes the component.
func (Webhook) Spec() component.Spec {
	return component.Spec{
		Type:        WebhookType,
		Kind:        component.KindTrigger,
		Description: "Starts the flow when its unique URL receives an HTTP request (any method). Answers 202 with the correlation id once the message is stored.",
		OutPorts:    []string{component.PortOut},
		OutputSample: map[string]any{
			"method":  "POST",
			"headers": map[string]any{"Content-Type": "application/json"},
			"query":   map[string]any{"source": "web"},
			"body":    map[string]any{"user": map[string]any{"email": "ada@example.com"}},
		},
	}
}

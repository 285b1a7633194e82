package core

import (
	"fmt"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/component"
)

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
		ExampleFlow: forwardExample,
		Description: "Starts the flow when its unique URL receives an HTTP request (any method). Answers 202 with the correlation id once the message is stored; " +
			"in mode \"wait\", answers with the run's first core.Response instead, or 504 when none comes within the timeout.",
		Properties: []component.Property{
			{Name: "mode", Type: component.TypeString, Default: "async", Enum: []string{"async", "wait"},
				Description: "async: answer 202 once the message is stored. wait: answer with the run's core.Response."},
			{Name: "timeout", Type: component.TypeString, Default: "30s",
				Description: "In mode wait, how long the request waits for the reply (at most 5m) before it is answered 504."},
		},
		OutPorts: []string{component.PortOut},
		OutputSample: map[string]any{
			"method":  "POST",
			"headers": map[string]any{"Content-Type": "application/json"},
			"query":   map[string]any{"source": "web"},
			"body":    map[string]any{"user": map[string]any{"email": "ada@example.com"}},
		},
	}
}

// MaxWebhookWait is the longest a webhook in mode "wait" holds a request.
const MaxWebhookWait = 5 * time.Minute

// WebhookWait reads a core.Webhook instance's properties: whether its
// request waits for the run's core.Response, and for how long at most.
func WebhookWait(props map[string]any) (wait bool, timeout time.Duration, err error) {
	mode, _ := props["mode"].(string)
	if !strings.EqualFold(mode, "wait") {
		return false, 0, nil
	}
	s, _ := props["timeout"].(string)
	if s == "" {
		s = "30s"
	}
	d, err := ParseDuration(s)
	if err != nil || d <= 0 || d > MaxWebhookWait {
		return true, 0, fmt.Errorf("timeout must be a duration from 1ms to 5m, such as 30s, not %q", s)
	}
	return true, d, nil
}

var _ component.Validator = Webhook{}

// Validate checks the wait settings as the flow is saved.
func (Webhook) Validate(props map[string]any) (string, error) {
	if _, _, err := WebhookWait(props); err != nil {
		return "timeout", err
	}
	return "", nil
}

package core

import (
	"context"
	"fmt"

	"github.com/plugboard/plugboard/internal/component"
)

// Filter ports.
const (
	PortTrue  = "true"
	PortFalse = "false"
)

// Filter sends its input on to the port named by its condition.
type Filter struct{}

var _ component.Action = Filter{}

// Spec describes the component.
func (Filter) Spec() component.Spec {
	return component.Spec{
		Type: "core.Filter",
		Kind: component.KindAction,
		ExampleFlow: exampleFlow("Route large orders",
			map[string]any{
				"hook":  node(WebhookType, nil),
				"check": node("core.Filter", map[string]any{"condition": "{{ $.hook.body.amount > 100 }}"}),
				"sales": post("https://api.example.com/large-orders", "{{ $.hook.body }}"),
				"shop":  post("https://api.example.com/orders", "{{ $.hook.body }}"),
			},
			link("hook", "check"), linkFrom("check", PortTrue, "sales"), linkFrom("check", PortFalse, "shop")),
		Description: "Sends the message it receives, unchanged, to the port `true` or `false` by its condition. " +
			"The condition is an expression in a placeholder, such as {{ $.hook.body.amount > 100 }}, or a constant.",
		Properties: []component.Property{{
			Name: "condition", Type: component.TypeBoolean, Required: true,
			Description: "true or false once resolved; anything else fails the step, naming the value it got.",
			Example:     "{{ $.hook.body.amount > 100 && $.hook.body.currency == \"EUR\" }}",
		}},
		InPorts:      []string{component.PortIn},
		OutPorts:     []string{PortTrue, PortFalse},
		OutputSample: map[string]any{"amount": 120, "currency": "EUR"},
	}
}

// Invoke emits the input on the port of the condition's value.
func (Filter) Invoke(_ context.Context, inv component.Invocation) ([]component.Emit, error) {
	c, ok := inv.Properties["condition"].(bool)
	if !ok {
		return nil, component.Permanent(fmt.Errorf("core.Filter %s: condition must be true or false, got %s",
			inv.ComponentID, describe(inv.Properties["condition"])))
	}
	port := PortFalse
	if c {
		port = PortTrue
	}
	return []component.Emit{{Port: port, Value: inv.Input}}, nil
}

// describe names a value and its JSON type for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 64 {
			v = v[:64] + "…"
		}
		return fmt.Sprintf("the text %q", v)
	case float64, int, int64:
		return fmt.Sprintf("the number %v", v)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

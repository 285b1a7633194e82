package core

import (
	"context"

	"github.com/plugboard/plugboard/internal/component"
)

// Set emits an object built from its values, typically mapping fields of
// upstream messages with placeholders.
type Set struct{}

var _ component.Action = Set{}

// Spec describes the component.
func (Set) Spec() component.Spec {
	return component.Spec{
		Type:        "core.Set",
		Kind:        component.KindAction,
		ExampleFlow: forwardExample,
		Description: "Emits an object built from its values. Values may hold placeholders such as {{ $.hook.body.email }}.",
		Properties: []component.Property{{
			Name: "values", Type: component.TypeObject, Required: true,
			Description: "The object to emit; each value may be a constant, a placeholder or an expression.",
			Example:     map[string]any{"email": "{{ $.hook.body.user.email }}", "source": "web"},
		}},
		InPorts:      []string{component.PortIn},
		OutPorts:     []string{component.PortOut},
		OutputSample: map[string]any{"email": "ada@example.com", "source": "web"},
	}
}

// Invoke emits the resolved values.
func (Set) Invoke(_ context.Context, inv component.Invocation) ([]component.Emit, error) {
	v := inv.Properties["values"]
	if v == nil {
		v = map[string]any{}
	}
	return []component.Emit{{Port: component.PortOut, Value: v}}, nil
}

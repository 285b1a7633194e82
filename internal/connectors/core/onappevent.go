package core

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/plugboard/plugboard/internal/component"
)

// OnAppEventType is the type name of the app event trigger.
const OnAppEventType = "core.OnAppEvent"

// MaxEventNameBytes is the longest app event name, in bytes.
const MaxEventNameBytes = 200

// OnAppEvent starts a flow when the host product sends the named event for
// the flow's owner (POST /api/v1/app-events/{event}). The API layer finds
// the subscribed flows and hands the output to the engine.
type OnAppEvent struct{}

var _ component.Trigger = OnAppEvent{}

// Spec describes the component.
func (OnAppEvent) Spec() component.Spec {
	return component.Spec{
		Type: OnAppEventType,
		Kind: component.KindTrigger,
		ExampleFlow: exampleFlow("New contact to the CRM",
			map[string]any{
				"trigger": node("core.OnAppEvent", map[string]any{"event": "contact-created", "sample": map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"}}),
				"crm":     post("https://crm.example.com/api/contacts", map[string]any{"email": "{{ $.trigger.data.email }}", "fullName": "{{ $.trigger.data.name }}"}),
			},
			link("trigger", "crm")),
		Description: "Starts the flow when the host product sends the named app event for the flow's owner " +
			"(`POST /api/v1/app-events/{event}`, the body being the event data; see [app events](app-events.md)). " +
			"Every running flow of that user with this event name starts; other users' flows never do. " +
			"The answer, 202, comes once the messages are stored.",
		Properties: []component.Property{
			{
				Name: "event", Type: component.TypeString, Required: true, Literal: true,
				Description: fmt.Sprintf("The event name, taken literally (no placeholders): 1 to %d bytes of UTF-8 without control characters.", MaxEventNameBytes),
				Example:     "contact-created",
			},
			{
				Name: "sample", Type: component.TypeAny,
				Description: "Example event data for the flow designer: it shows the fields later components can read, such as `{{ $.ev.data.email }}`. It is never sent.",
				Example:     map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"},
			},
		},
		OutPorts: []string{component.PortOut},
		OutputSample: map[string]any{
			"event":      "contact-created",
			"data":       map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"},
			"userId":     "01920f3e-7c1a-7b5e-9a41-2f6d8c0e4b17",
			"receivedAt": "2025-01-31T09:30:00.000Z",
		},
	}
}

// CheckEventName reports why name cannot be an app event name, or nil.
func CheckEventName(name string) error {
	switch {
	case name == "":
		return errors.New("the event name is empty")
	case len(name) > MaxEventNameBytes:
		return fmt.Errorf("the event name is longer than %d bytes", MaxEventNameBytes)
	case !utf8.ValidString(name):
		return errors.New("the event name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("the event name holds the control character %U", r)
		}
	}
	return nil
}

var _ component.Validator = OnAppEvent{}

// Validate refuses, as the flow is saved, an event name no request could
// send.
func (OnAppEvent) Validate(props map[string]any) (string, error) {
	if name, ok := props["event"].(string); ok {
		if err := CheckEventName(name); err != nil {
			return "event", err
		}
	}
	return "", nil
}

var _ component.Sampler = OnAppEvent{}

// Sample is the trigger's output with the instance's sample as its data,
// so that later components can map the event's fields before it has run.
func (OnAppEvent) Sample(props map[string]any) any {
	data, ok := props["sample"]
	if !ok || data == nil {
		return nil
	}
	event, _ := props["event"].(string)
	return map[string]any{
		"event":      event,
		"data":       data,
		"userId":     "01920f3e-7c1a-7b5e-9a41-2f6d8c0e4b17",
		"receivedAt": "2025-01-31T09:30:00.000Z",
	}
}

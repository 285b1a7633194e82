package core_test

import (
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/store"
)

func TestCheckEventName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"contact-created", true},
		{"Contact Created / v2 — ünïcode", true},
		{strings.Repeat("x", core.MaxEventNameBytes), true},
		{"", false},
		{strings.Repeat("x", core.MaxEventNameBytes+1), false},
		{"tab\there", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"bad\xffutf8", false},
	} {
		if err := core.CheckEventName(c.name); (err == nil) != c.ok {
			t.Errorf("CheckEventName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// TestAppEventTriggerType keeps the store's index on the component's type.
func TestAppEventTriggerType(t *testing.T) {
	t.Parallel()
	if core.OnAppEventType != store.AppEventTriggerType || (core.OnAppEvent{}).Spec().Type != core.OnAppEventType {
		t.Fatalf("store indexes %s, the component is %s", store.AppEventTriggerType, core.OnAppEventType)
	}
}

// TestScheduleTriggerType keeps the store's schedules on the component's
// type.
func TestScheduleTriggerType(t *testing.T) {
	t.Parallel()
	if core.ScheduleType != store.ScheduleTriggerType || (core.Schedule{}).Spec().Type != core.ScheduleType {
		t.Fatalf("store plans %s, the component is %s", store.ScheduleTriggerType, core.ScheduleType)
	}
}

func TestOnAppEventSample(t *testing.T) {
	t.Parallel()
	s, fromInstance := component.InstanceSample(core.OnAppEvent{}, map[string]any{
		"event": "contact-created", "sample": map[string]any{"email": "grace@example.com"},
	})
	m, _ := s.(map[string]any)
	if !fromInstance || m["event"] != "contact-created" || m["data"].(map[string]any)["email"] != "grace@example.com" {
		t.Fatalf("sample = %v (from instance %v)", s, fromInstance)
	}
	if _, fromInstance := component.InstanceSample(core.OnAppEvent{}, map[string]any{"event": "x"}); fromInstance {
		t.Fatal("an instance without a sample gave one")
	}
}

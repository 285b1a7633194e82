package store_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestAppEventTriggers runs the app event index checks against every
// configured backend.
func TestAppEventTriggers(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testAppEventTriggers(t, storetest.Open(t, backend))
		})
	}
}

// appEventDoc is a flow document with one core.OnAppEvent trigger per
// component id given, each taking the event named.
func appEventDoc(t *testing.T, triggers map[string]any) []byte {
	t.Helper()
	comps := map[string]any{"hook": map[string]any{"type": "core.Webhook", "properties": map[string]any{"event": "not-an-app-event"}}}
	for id, event := range triggers {
		comps[id] = map[string]any{"type": store.AppEventTriggerType, "properties": map[string]any{"event": event, "sample": map[string]any{"a": 1}}}
	}
	b, err := json.Marshal(map[string]any{"name": "n", "components": comps, "links": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testAppEventTriggers(t *testing.T, s *store.Store) {
	ctx := context.Background()
	a := mustUser(t, s, "a@example.com")
	b := mustUser(t, s, "b@example.com")
	create := func(id, owner, stage string, triggers map[string]any) *store.Flow {
		t.Helper()
		f := &store.Flow{ID: id, OwnerID: owner, Name: id, Stage: stage, Document: appEventDoc(t, triggers)}
		if err := s.CreateFlow(ctx, f); err != nil {
			t.Fatalf("creating %s: %v", id, err)
		}
		return f
	}
	lookup := func(owner, event string, want ...store.AppEventTrigger) {
		t.Helper()
		got, err := s.AppEventTriggers(ctx, owner, event)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("AppEventTriggers(%s, %q) = %v, want %v", owner, event, got, want)
		}
	}
	trig := func(flow, comp string) store.AppEventTrigger {
		return store.AppEventTrigger{FlowID: flow, ComponentID: comp}
	}

	f1 := create("f1", a.ID, store.StageRunning, map[string]any{"ev": "contact-created"})
	create("f2", a.ID, store.StageStopped, map[string]any{"ev": "contact-created"})
	create("f3", a.ID, store.StageRunning, map[string]any{"ev": "deal-won"})
	create("f4", b.ID, store.StageRunning, map[string]any{"ev": "contact-created"})
	f5 := create("f5", a.ID, store.StageRunning, map[string]any{"one": "contact-created", "two": "contact-created"})
	// Names no request can send, and names that are not strings, are not
	// indexed; the flow is still saved.
	create("f6", a.ID, store.StageRunning, map[string]any{"empty": "", "nul": "a\x00b", "long": strings.Repeat("x", 2000), "num": 7})

	lookup(a.ID, "contact-created", trig("f1", "ev"), trig("f5", "one"), trig("f5", "two"))
	lookup(b.ID, "contact-created", trig("f4", "ev"))
	lookup(a.ID, "deal-won", trig("f3", "ev"))
	lookup(b.ID, "deal-won")
	lookup(a.ID, "Contact-Created") // names are compared exactly
	lookup(a.ID, "")

	// Stopped flows are left out; starting one brings it in.
	if err := s.SetFlowStage(ctx, a.ID, "f2", store.StageRunning); err != nil {
		t.Fatal(err)
	}
	lookup(a.ID, "contact-created", trig("f1", "ev"), trig("f2", "ev"), trig("f5", "one"), trig("f5", "two"))
	if err := s.SetFlowStage(ctx, a.ID, "f2", store.StageStopped); err != nil {
		t.Fatal(err)
	}

	// Updating a flow replaces its triggers.
	f1.Document = appEventDoc(t, map[string]any{"ev": "contact-updated", "ev2": "deal-won"})
	if err := s.UpdateFlow(ctx, f1); err != nil {
		t.Fatal(err)
	}
	lookup(a.ID, "contact-created", trig("f5", "one"), trig("f5", "two"))
	lookup(a.ID, "contact-updated", trig("f1", "ev"))
	lookup(a.ID, "deal-won", trig("f1", "ev2"), trig("f3", "ev"))

	// An update by another user changes nothing.
	stolen := &store.Flow{ID: "f1", OwnerID: b.ID, Name: "x", Document: appEventDoc(t, map[string]any{"ev": "contact-created"})}
	if err := s.UpdateFlow(ctx, stolen); err == nil {
		t.Fatal("update by another owner succeeded")
	}
	lookup(b.ID, "contact-created", trig("f4", "ev"))
	lookup(a.ID, "contact-updated", trig("f1", "ev"))

	// The check inside a transaction sees the same index.
	err := s.InTx(ctx, func(tx *store.Tx) error {
		for _, c := range []struct {
			owner, event, flow, comp string
			want                     bool
		}{
			{a.ID, "contact-created", "f5", "one", true},
			{a.ID, "contact-created", "f1", "ev", false}, // renamed
			{b.ID, "contact-created", "f5", "one", false},
			{a.ID, "contact-updated", "f1", "ev", true},
			{a.ID, "contact-created", "f2", "ev", true}, // stopped, but indexed
		} {
			got, err := tx.HasAppEventTrigger(ctx, c.owner, c.event, c.flow, c.comp)
			if err != nil {
				return err
			}
			if got != c.want {
				t.Errorf("HasAppEventTrigger(%s, %q, %s, %s) = %v, want %v", c.owner, c.event, c.flow, c.comp, got, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Deleting a flow removes its triggers.
	if err := s.DeleteFlow(ctx, a.ID, f5.ID); err != nil {
		t.Fatal(err)
	}
	lookup(a.ID, "contact-created")
	err = s.InTx(ctx, func(tx *store.Tx) error {
		if ok, err := tx.HasAppEventTrigger(ctx, a.ID, "contact-created", "f5", "one"); err != nil || ok {
			t.Errorf("trigger of a deleted flow: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A document that is not JSON is refused and leaves nothing behind.
	if err := s.CreateFlow(ctx, &store.Flow{ID: "bad", OwnerID: a.ID, Name: "bad", Stage: store.StageRunning, Document: []byte("{")}); err == nil {
		t.Fatal("creating a flow with a broken document succeeded")
	}
	if _, err := s.Flow(ctx, "bad"); err == nil {
		t.Fatal("the broken flow was stored")
	}
}

package engine

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// appEventEnv is an engine (not working jobs: the flows here run inline
// only) on a fresh database with one user.
type appEventEnv struct {
	t     *testing.T
	e     *Engine
	st    *store.Store
	owner string
}

func newAppEventEnv(t *testing.T, backend string) *appEventEnv {
	t.Helper()
	st := storetest.Open(t, backend)
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{})
	e, err := New(t.Context(), Config{Store: st, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{ID: "u1", Email: "u1@example.com", Role: store.RoleUser}
	if err := st.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return &appEventEnv{t: t, e: e, st: st, owner: u.ID}
}

// doc is "app event -> Set" whose Set emits tag.
func (a *appEventEnv) doc(event, tag string) []byte {
	a.t.Helper()
	b, err := json.Marshal(map[string]any{
		"name": tag,
		"components": map[string]any{
			"ev":  map[string]any{"type": core.OnAppEventType, "properties": map[string]any{"event": event}},
			"set": map[string]any{"type": "core.Set", "properties": map[string]any{"values": map[string]any{"tag": tag, "data": "{{ $.ev.data }}"}}},
		},
		"links": []any{map[string]any{"from": "ev", "to": "set"}},
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return b
}

func (a *appEventEnv) create(id, event, tag string) *store.Flow {
	a.t.Helper()
	f := &store.Flow{ID: id, OwnerID: a.owner, Name: tag, Stage: store.StageRunning, Document: a.doc(event, tag)}
	if err := a.st.CreateFlow(a.t.Context(), f); err != nil {
		a.t.Fatal(err)
	}
	return f
}

func (a *appEventEnv) update(f *store.Flow, event, tag string) {
	a.t.Helper()
	f.Document = a.doc(event, tag)
	if err := a.st.UpdateFlow(a.t.Context(), f); err != nil {
		a.t.Fatal(err)
	}
}

// tags returns what the Set of each run of flow id emitted, by
// correlation id.
func (a *appEventEnv) tags(id string) map[string]string {
	a.t.Helper()
	logs, err := a.st.FlowLogs(a.t.Context(), store.LogFilter{FlowID: id, Limit: 100})
	if err != nil {
		a.t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range logs {
		if l.ComponentID != "set" {
			continue
		}
		var v struct{ Tag string }
		if err := json.Unmarshal([]byte(l.Output), &v); err != nil {
			a.t.Fatalf("set output %s: %v", l.Output, err)
		}
		out[l.CorrelationID] = v.Tag
	}
	return out
}

func TestAppEventChangesBeforeCommit(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testAppEventChangesBeforeCommit(t, backend)
		})
	}
}

// testAppEventChangesBeforeCommit changes flows after the event was routed
// through them and before it commits: each flow is started or not as
// AcceptAppEvent documents, and the others are not held up.
func testAppEventChangesBeforeCommit(t *testing.T, backend string) {
	ctx := t.Context()
	a := newAppEventEnv(t, backend)
	ev := AppEvent{OwnerID: a.owner, Name: "x", Output: map[string]any{"event": "x", "data": 1.0}}
	keep := a.create("keep", "x", "keep")
	stop := a.create("stop", "x", "stop")
	rename := a.create("rename", "x", "rename")
	edit := a.create("edit", "x", "edit-v1")
	gone := a.create("gone", "x", "gone")

	targets, err := a.st.AppEventTriggers(ctx, a.owner, "x")
	if err != nil || len(targets) != 5 {
		t.Fatalf("lookup: %v, %v", targets, err)
	}
	var runs []*pendingRun
	for _, tg := range targets {
		r, err := a.e.prepareAppEvent(ctx, ev, Event{FlowID: tg.FlowID, ComponentID: tg.ComponentID, Output: ev.Output}, false)
		if err != nil || r == nil {
			t.Fatalf("preparing %s: %v, %v", tg.FlowID, r, err)
		}
		runs = append(runs, r)
	}
	if err := a.st.SetFlowStage(ctx, a.owner, stop.ID, store.StageStopped); err != nil {
		t.Fatal(err)
	}
	a.update(rename, "y", "rename")
	a.update(edit, "x", "edit-v2")
	if err := a.st.DeleteFlow(ctx, a.owner, gone.ID); err != nil {
		t.Fatal(err)
	}

	byFlow := func(marks []bool) []string {
		var ids []string
		for i, m := range marks {
			if m {
				ids = append(ids, runs[i].ev.FlowID)
			}
		}
		slices.Sort(ids)
		return ids
	}
	// Not the last round: the changed flows are to be routed again and
	// nothing is written.
	kept, changed, err := a.e.commitAppEvent(ctx, ev, runs, false)
	if err != nil || kept != nil || !slices.Equal(byFlow(changed), []string{edit.ID, rename.ID}) {
		t.Fatalf("first round: kept %v, changed %v, %v", kept, byFlow(changed), err)
	}
	if n := len(a.tags(keep.ID)); n != 0 {
		t.Fatalf("a round with changed flows wrote %d runs", n)
	}
	// The last round skips them; the unchanged running flow starts alone.
	kept, changed, err = a.e.commitAppEvent(ctx, ev, runs, true)
	if err != nil || !slices.Equal(byFlow(kept), []string{keep.ID}) || !slices.Equal(byFlow(changed), []string{edit.ID, rename.ID}) {
		t.Fatalf("last round: kept %v, changed %v, %v", byFlow(kept), byFlow(changed), err)
	}
	for _, r := range runs {
		a.e.abandon(r)
	}

	// Through AcceptAppEvent: a flow saved with another version after its
	// compiled form was cached is routed again through the new version.
	if _, err := a.e.flows.get(ctx, edit.ID); err != nil {
		t.Fatal(err)
	}
	a.update(edit, "x", "edit-v3")
	got, err := a.e.AcceptAppEvent(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	var flows []string
	for _, r := range got {
		flows = append(flows, r.FlowID)
	}
	slices.Sort(flows)
	if !slices.Equal(flows, []string{edit.ID, keep.ID}) {
		t.Fatalf("AcceptAppEvent started %v, want edit and keep", flows)
	}
	for _, r := range got {
		tags := a.tags(r.FlowID)
		want := map[string]string{keep.ID: "keep", edit.ID: "edit-v3"}[r.FlowID]
		if tags[r.CorrelationID] != want {
			t.Fatalf("flow %s run %s emitted %q, want %q (all: %v)", r.FlowID, r.CorrelationID, tags[r.CorrelationID], want, tags)
		}
	}
	for _, id := range []string{stop.ID, rename.ID} {
		if n := len(a.tags(id)); n != 0 {
			t.Fatalf("flow %s ran %d times", id, n)
		}
	}
}

func TestAppEventOwners(t *testing.T) {
	t.Parallel()
	a := newAppEventEnv(t, store.BackendSQLite)
	ctx := context.Background()
	a.create("mine", "x", "mine")
	other := &store.User{ID: "u2", Email: "u2@example.com", Role: store.RoleUser}
	if err := a.st.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	theirs := &store.Flow{ID: "theirs", OwnerID: other.ID, Name: "theirs", Stage: store.StageRunning, Document: a.doc("x", "theirs")}
	if err := a.st.CreateFlow(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		owner, event string
		want         []string
	}{
		{a.owner, "x", []string{"mine"}},
		{other.ID, "x", []string{"theirs"}},
		{a.owner, "X", nil},
		{"nobody", "x", nil},
	} {
		got, err := a.e.AcceptAppEvent(ctx, AppEvent{OwnerID: c.owner, Name: c.event, Output: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			t.Fatalf("%s/%s: nil runs, want an empty list", c.owner, c.event)
		}
		var flows []string
		for _, r := range got {
			flows = append(flows, r.FlowID)
		}
		if strings.Join(flows, ",") != strings.Join(c.want, ",") {
			t.Fatalf("%s/%s started %v, want %v", c.owner, c.event, flows, c.want)
		}
	}
}

package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

func TestLastOutputs(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testLastOutputs(t, storetest.Open(t, backend))
		})
	}
}

func testLastOutputs(t *testing.T, s *store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "last@example.com")
	for _, id := range []string{"f", "other"} {
		if err := s.CreateFlow(ctx, &store.Flow{ID: id, OwnerID: u.ID, Name: id, Stage: store.StageRunning, Document: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// Stored log ids are "<correlation id>/<entry id>" and sort by time;
	// here the correlation ids give the order: "old" < "run" < "run2".
	var logs []store.InvocationLog
	n := 0
	add := func(flowID, corr, comp, status, output string) {
		n++
		logs = append(logs, store.InvocationLog{ID: fmt.Sprintf("e%05d", n), FlowID: flowID, CorrelationID: corr,
			ComponentID: comp, MessageID: "m", Attempt: 1, Status: status, Output: output})
	}
	cut := `{"body":"xxxxxxxx…(truncated)`
	// The newest log before the window.
	add("f", "old", "gone", store.StatusSuccess, `{"v":"gone"}`)
	// The window: RecentLogWindow logs from here on.
	for range store.RecentLogWindow - 14 {
		add("f", "run", "noise", store.StatusSuccess, `{"v":"noise"}`)
	}
	add("f", "run2", "hook", store.StatusAccepted, `{"body":{"n":1}}`)
	add("f", "run2", "a", store.StatusSuccess, `{"v":"a older"}`)
	add("f", "run2", "a", store.StatusSuccess, `{"v":"a newer"}`)
	add("f", "run2", "b", store.StatusSuccess, `{"v":"b whole"}`)
	add("f", "run2", "b", store.StatusSuccess, cut)
	add("f", "run2", "c", store.StatusFailed, `{"v":"c failed"}`)
	add("f", "run2", "c", store.StatusRetrying, `{"v":"c retrying"}`)
	add("f", "run2", "empty", store.StatusSuccess, "")
	add("f", "run2", "deep", store.StatusSuccess, `{"v":"deep whole"}`)
	for range 3 {
		add("f", "run2", "deep", store.StatusSuccess, cut)
	}
	add("f", "run2", "a", store.StatusFailed, `{"v":"a failed later"}`)
	add("f", "run2", "unasked", store.StatusSuccess, `{"v":"unasked"}`)
	add("other", "run2", "x", store.StatusSuccess, `{"v":"other flow"}`)
	if err := s.Submit(ctx, func(tx *store.Tx) error { return tx.InsertLogs(ctx, logs) }); err != nil {
		t.Fatal(err)
	}

	got, err := s.LastOutputs(ctx, "f", []string{"hook", "a", "b", "c", "empty", "deep", "gone", "x", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"hook": `{"body":{"n":1}}`, // a trigger's accepted event
		"a":    `{"v":"a newer"}`,  // the newest success, not the later failure
		"b":    `{"v":"b whole"}`,  // the newest was cut, so the one before
		// c never succeeded; empty has no output; deep's three newest
		// successes were cut (the one before is not read); gone ran before the window; x is another
		// flow's; unasked was not asked for.
	}
	if len(got) != len(want) {
		t.Errorf("LastOutputs returned %d components, want %d: %v", len(got), len(want), stringMap(got))
	}
	for comp, w := range want {
		if string(got[comp]) != w {
			t.Errorf("LastOutputs[%s] = %s, want %s", comp, got[comp], w)
		}
	}

	if got, err := s.LastOutputs(ctx, "f", nil); err != nil || len(got) != 0 {
		t.Errorf("LastOutputs of no component = %v, %v", got, err)
	}
	if got, err := s.LastOutputs(ctx, "nope", []string{"a"}); err != nil || len(got) != 0 {
		t.Errorf("LastOutputs of a flow without logs = %v, %v", got, err)
	}
}

func stringMap[V ~[]byte](m map[string]V) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

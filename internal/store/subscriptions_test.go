package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestSubscriptions checks the subscription rows on both backends: they
// follow the flow's document and stage, a claim (lease) keeps other nodes
// out, an outcome is recorded only under its lease, a start or stop during
// a lease leaves the row due, and a deleted flow's row stays until it is
// unsubscribed.
func TestSubscriptions(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testSubscriptions(t, storetest.Open(t, backend))
		})
	}
}

func testSubscriptions(t *testing.T, s *store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "subs@example.com")
	f := &store.Flow{ID: "fs", OwnerID: u.ID, Name: "subs", Stage: store.StageStopped, Document: []byte(`{"components":{}}`),
		Webhooks: map[string]string{"sub": "tok-sub"}, Subscribers: []string{"sub"}}
	if err := s.CreateFlow(ctx, f); err != nil {
		t.Fatal(err)
	}
	due := func() []*store.Subscription {
		t.Helper()
		rows, err := s.DueSubscriptions(ctx, s.Now().Add(time.Millisecond), 10)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	move := func(from, to *store.Subscription) bool {
		t.Helper()
		var ok bool
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			var err error
			ok, err = tx.MoveSubscription(ctx, from, to)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	rows := due()
	if len(rows) != 1 || rows[0].Wanted() || rows[0].Subscribed() || rows[0].Stage != store.StageStopped {
		t.Fatalf("a new row: %+v", rows)
	}
	// Settled while stopped, then due again when the flow starts.
	settled := *rows[0]
	settled.DueAt = time.Time{}
	if !move(rows[0], &settled) || len(due()) != 0 {
		t.Fatal("settling a row")
	}
	if err := s.SetFlowStage(ctx, "", f.ID, store.StageRunning); err != nil {
		t.Fatal(err)
	}
	rows = due()
	if len(rows) != 1 || !rows[0].Wanted() {
		t.Fatalf("after a start: %+v", rows)
	}
	// A claim keeps the row out of the due list, and a second claim from
	// the same read fails.
	sr := rows[0]
	claimed := *sr
	claimed.LeaseUntil = s.Now().Add(time.Minute)
	if !move(sr, &claimed) {
		t.Fatal("claiming")
	}
	if len(due()) != 0 {
		t.Fatal("a claimed row is listed as due")
	}
	if move(sr, &claimed) {
		t.Fatal("a second claim from the same read succeeded")
	}
	// Stopped during the lease: the outcome is recorded, and the row is
	// due at once rather than settled.
	if err := s.SetFlowStage(ctx, "", f.ID, store.StageStopped); err != nil {
		t.Fatal(err)
	}
	state := json.RawMessage(`{"id":"wh_1"}`)
	if !move(&claimed, &store.Subscription{Type: "x.Sub", State: state, WebhookURL: "http://h/hooks/tok-sub"}) {
		t.Fatal("recording under the lease")
	}
	rows = due()
	if len(rows) != 1 || !rows[0].Subscribed() || rows[0].Wanted() || string(rows[0].State) != string(state) {
		t.Fatalf("after a stop during the lease: %+v", rows)
	}
	// An outcome under a lease that is not the row's is refused.
	stale := *rows[0]
	stale.LeaseUntil = s.Now().Add(time.Hour)
	if move(&stale, &store.Subscription{}) {
		t.Fatal("an outcome under another lease was recorded")
	}
	// Deleted while subscribed: the row stays, gone, until unsubscribed;
	// then it can be dropped.
	if err := s.DeleteFlow(ctx, "", f.ID); err != nil {
		t.Fatal(err)
	}
	rows = due()
	if len(rows) != 1 || !rows[0].Gone || rows[0].Stage != "" || rows[0].WebhookURL != "http://h/hooks/tok-sub" {
		t.Fatalf("after the delete: %+v", rows)
	}
	if !move(rows[0], &store.Subscription{DueAt: s.Now()}) {
		t.Fatal("recording the unsubscribe")
	}
	rows = due()
	var dropped bool
	if err := s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		dropped, err = tx.DropSubscription(ctx, rows[0])
		return err
	}); err != nil || !dropped {
		t.Fatalf("dropping: %v %v", dropped, err)
	}
	if left, err := s.Subscriptions(ctx, f.ID); err != nil || len(left) != 0 {
		t.Fatalf("left: %v %v", left, err)
	}
}

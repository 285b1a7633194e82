package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestConformance runs the same checks against every configured backend.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			t.Run("users", func(t *testing.T) { t.Parallel(); testUsers(t, storetest.Open(t, backend)) })
			t.Run("flows", func(t *testing.T) { t.Parallel(); testFlows(t, storetest.Open(t, backend)) })
			t.Run("group commit", func(t *testing.T) { t.Parallel(); testGroupCommit(t, storetest.Open(t, backend)) })
			t.Run("unprocessed", func(t *testing.T) { t.Parallel(); testUnprocessed(t, storetest.Open(t, backend)) })
			t.Run("reopen", func(t *testing.T) { t.Parallel(); testReopen(t, backend) })
		})
	}
}

func mustUser(t *testing.T, s *store.Store, email string) *store.User {
	t.Helper()
	u := &store.User{ID: "u-" + email, Email: email, Role: store.RoleUser}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func testUsers(t *testing.T, s *store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "a@example.com")
	if err := s.CreateUser(ctx, &store.User{ID: "other", Email: "a@example.com", Role: store.RoleUser}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email: got %v, want ErrConflict", err)
	}
	got, err := s.UserByEmail(ctx, "a@example.com")
	if err != nil || got.ID != u.ID || got.Role != store.RoleUser {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	if _, err := s.User(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing user: got %v, want ErrNotFound", err)
	}
	if err := s.CreateToken(ctx, &store.Token{ID: "t1", UserID: u.ID, SecretHash: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	tok, tu, err := s.TokenUser(ctx, "t1")
	if err != nil || tu.ID != u.ID || string(tok.SecretHash) != "\x01\x02\x03" {
		t.Fatalf("TokenUser = %+v %+v %v", tok, tu, err)
	}
	if _, _, err := s.TokenUser(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing token: got %v", err)
	}
}

func testFlows(t *testing.T, s *store.Store) {
	ctx := context.Background()
	a := mustUser(t, s, "a@example.com")
	b := mustUser(t, s, "b@example.com")
	f := &store.Flow{ID: "f1", OwnerID: a.ID, Name: "one", Stage: store.StageStopped, Document: []byte(`{"x":1}`),
		Webhooks: map[string]string{"hook": "tok1"}}
	if err := s.CreateFlow(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OwnedFlow(ctx, b.ID, "f1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other owner: got %v, want ErrNotFound", err)
	}
	got, err := s.OwnedFlow(ctx, a.ID, "f1")
	if err != nil || got.Webhooks["hook"] != "tok1" || string(got.Document) != `{"x":1}` {
		t.Fatalf("OwnedFlow = %+v, %v", got, err)
	}
	// Updating keeps the token of a kept webhook and drops removed ones.
	f.Webhooks = map[string]string{"hook": "new-token", "hook2": "tok2"}
	f.Name = "renamed"
	if err := s.UpdateFlow(ctx, f); err != nil {
		t.Fatal(err)
	}
	if f.Webhooks["hook"] != "tok1" {
		t.Fatalf("kept webhook token changed to %q", f.Webhooks["hook"])
	}
	if tgt, err := s.Webhook(ctx, "tok2"); err != nil || tgt.ComponentID != "hook2" {
		t.Fatalf("Webhook(tok2) = %+v, %v", tgt, err)
	}
	f.OwnerID = b.ID
	if err := s.UpdateFlow(ctx, f); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update by other owner: got %v", err)
	}
	if err := s.SetFlowStage(ctx, b.ID, "f1", store.StageRunning); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("start by other owner: got %v", err)
	}
	if err := s.SetFlowStage(ctx, a.ID, "f1", store.StageRunning); err != nil {
		t.Fatal(err)
	}
	running, err := s.ListFlows(ctx, store.FlowFilter{OwnerID: a.ID, Stage: store.StageRunning, Limit: 10})
	if err != nil || len(running) != 1 || running[0].Version != 2 || running[0].Webhooks["hook"] != "tok1" || running[0].Webhooks["hook2"] != "tok2" {
		t.Fatalf("ListFlows running = %v, %v", running, err)
	}
	if others, _ := s.ListFlows(ctx, store.FlowFilter{OwnerID: b.ID, Limit: 10}); len(others) != 0 {
		t.Fatalf("b sees %d flows of a", len(others))
	}
	if err := s.DeleteFlow(ctx, a.ID, "f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Webhook(ctx, "tok1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("webhook of deleted flow: got %v", err)
	}
}

func testGroupCommit(t *testing.T, s *store.Store) {
	ctx := context.Background()
	u := mustUser(t, s, "g@example.com")
	if err := s.CreateFlow(ctx, &store.Flow{ID: "f", OwnerID: u.ID, Name: "f", Stage: store.StageRunning, Document: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// 200 concurrent submissions, every tenth failing: failures change
	// nothing, the rest commit.
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Submit(ctx, func(tx *store.Tx) error {
				if _, _, err := tx.FlowStage(ctx, "f"); err != nil {
					return err
				}
				if err := tx.InsertLogs(ctx, []store.InvocationLog{{ID: fmt.Sprintf("l%03d", i), FlowID: "f",
					ComponentID: "c", CorrelationID: "corr", MessageID: "m", Status: store.StatusSuccess}}); err != nil {
					return err
				}
				if i%10 == 0 {
					return fmt.Errorf("boom %d", i)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 0) != (err != nil) {
			t.Fatalf("submission %d: err %v", i, err)
		}
	}
	logs, err := s.FlowLogs(ctx, store.LogFilter{FlowID: "f", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 180 {
		t.Fatalf("got %d logs, want 180", len(logs))
	}
	// A batched insert that fails (a duplicate id) is pinned on the
	// submission that caused it; the others commit.
	var dupWG sync.WaitGroup
	dupErrs := make([]error, 20)
	for i := range 20 {
		dupWG.Add(1)
		go func() {
			defer dupWG.Done()
			id := fmt.Sprintf("dup-%02d", i)
			if i%5 == 0 {
				id = "dup-00"
			}
			dupErrs[i] = s.Submit(ctx, func(tx *store.Tx) error {
				return tx.InsertLogs(ctx, []store.InvocationLog{{ID: id, FlowID: "f", ComponentID: "c", CorrelationID: "dup", MessageID: "m", Status: store.StatusSuccess}})
			})
		}()
	}
	dupWG.Wait()
	failed := 0
	for _, err := range dupErrs {
		if err != nil {
			failed++
		}
	}
	if dl, _ := s.FlowLogs(ctx, store.LogFilter{FlowID: "f", CorrelationID: "dup", Limit: 100}); failed != 3 || len(dl) != 17 {
		t.Fatalf("duplicate ids: %d submissions failed (want 3), %d logs stored (want 17)", failed, len(dl))
	}

	// Log ids are UUIDv7: pruning by time removes older ones only.
	old, recent := v7At(time.Now().Add(-2*time.Hour)), v7At(time.Now())
	if err := s.Submit(ctx, func(tx *store.Tx) error {
		return tx.InsertLogs(ctx, []store.InvocationLog{
			{ID: old, FlowID: "f", ComponentID: "c", CorrelationID: old, MessageID: "m", Status: store.StatusSuccess},
			{ID: recent, FlowID: "f", ComponentID: "c", CorrelationID: recent, MessageID: "m", Status: store.StatusSuccess}})
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteLogsBefore(ctx, time.Now().Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("pruning an hour back deleted %d (%v), want 1", n, err)
	}
	if l, _ := s.FlowLogs(ctx, store.LogFilter{FlowID: "f", CorrelationID: recent, Limit: 10}); len(l) != 1 {
		t.Fatal("pruning removed a recent log")
	}
	for _, l := range logs {
		var i int
		_, entry, _ := strings.Cut(l.ID, "/")
		_, _ = fmt.Sscanf(entry, "l%03d", &i)
		if i%10 == 0 {
			t.Fatalf("log %s of a failed submission was committed", l.ID)
		}
	}
}

// v7At returns a UUIDv7 whose timestamp is at.
func v7At(at time.Time) string {
	id := uuid.Must(uuid.NewV7())
	ms := uint64(at.UnixMilli())
	for i := range 6 {
		id[i] = byte(ms >> (8 * (5 - i)))
	}
	return id.String()
}

func testUnprocessed(t *testing.T, s *store.Store) {
	ctx := context.Background()
	m := &store.UnprocessedMessage{ID: "m1", FlowID: "f", OwnerID: "a", ComponentID: "c", Attempts: 3, Error: "e", Message: []byte(`{"k":1}`)}
	if err := s.Submit(ctx, func(tx *store.Tx) error { return tx.PutUnprocessed(ctx, m) }); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListUnprocessed(ctx, store.UnprocessedFilter{OwnerID: "b", Limit: 10}); len(l) != 0 {
		t.Fatal("other owner sees unprocessed message")
	}
	l, err := s.ListUnprocessed(ctx, store.UnprocessedFilter{OwnerID: "a", Limit: 10})
	if err != nil || len(l) != 1 || string(l[0].Message) != `{"k":1}` || l[0].Attempts != 3 {
		t.Fatalf("ListUnprocessed = %v, %v", l, err)
	}
	err = s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.TakeUnprocessed(ctx, "b", "m1"); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("take by other owner: %v", err)
	}
	if err := s.DeleteUnprocessed(ctx, "a", "m1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUnprocessed(ctx, "a", "m1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testReopen(t *testing.T, backend string) {
	ctx := context.Background()
	cfg := storetest.Config(t, backend)
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustUser(t, s, "r@example.com")
	_ = s.Close()
	s, err = store.Open(ctx, cfg) // migrations are applied once
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Fatalf("after reopen: %d users, %v", n, err)
	}
}

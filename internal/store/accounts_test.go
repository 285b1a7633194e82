package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// forBackends runs test on a fresh store of every configured backend.
func forBackends(t *testing.T, test func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			test(t, storetest.Open(t, backend))
		})
	}
}

func newAccount(id, owner string) *store.Account {
	return &store.Account{ID: id, OwnerID: owner, Name: "api " + id, AuthType: "token", Domain: "https://api.example.com/v2",
		AuthPrefix: "Bearer", Secret: "sealed-" + id, Hint: "…" + id, RateLimit: 2.5}
}

func mustAccount(t *testing.T, s *store.Store, id, owner string) *store.Account {
	t.Helper()
	a := newAccount(id, owner)
	if err := s.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

func accountIDs(as []*store.Account) string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return strings.Join(ids, ",")
}

// TestAccounts checks creating, loading and listing accounts: every field
// comes back, a list keeps to its owner (or lists everyone's), leaves
// revoked accounts out unless asked and pages by id.
func TestAccounts(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := &store.Account{ID: "a1", OwnerID: "u1", Name: "github", AuthType: "apiKey", Domain: "https://api.example.com",
			Username: "ann", APIKeyIn: "query", APIKeyName: "key", Connector: "github", Secret: "v1:k:xyz", Hint: "…x7Q2",
			RateLimit: 1.5, TokenExpiresAt: 1234}
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if a.Version != 1 || a.Status != store.AccountActive || a.CreatedAt == 0 || a.UpdatedAt != a.CreatedAt {
			t.Fatalf("created: %+v", a)
		}
		got, err := s.Account(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if *got != *a {
			t.Fatalf("loaded %+v, want %+v", got, a)
		}
		if err := s.CreateAccount(ctx, newAccount("a1", "u2")); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a taken id: %v, want ErrConflict", err)
		}
		if _, err := s.Account(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a missing account: %v, want ErrNotFound", err)
		}

		mustAccount(t, s, "a2", "u2")
		mustAccount(t, s, "a3", "u1")
		mustAccount(t, s, "a4", "u1")
		if err := s.RevokeAccount(ctx, "a3", "deleted by its owner"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			owner       string
			withRevoked bool
			after       string
			limit       int
			want        string
		}{
			{"u1", false, "", 10, "a1,a4"},
			{"u1", true, "", 10, "a1,a3,a4"},
			{"", false, "", 10, "a1,a2,a4"},
			{"", true, "", 10, "a1,a2,a3,a4"},
			{"", true, "", 2, "a1,a2"},
			{"", true, "a2", 2, "a3,a4"},
			{"u1", false, "a1", 10, "a4"},
			{"u3", true, "", 10, ""},
		} {
			as, err := s.ListAccounts(ctx, c.owner, c.withRevoked, c.after, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := accountIDs(as); got != c.want {
				t.Errorf("ListAccounts(%q, %t, %q, %d) = %s, want %s", c.owner, c.withRevoked, c.after, c.limit, got, c.want)
			}
		}
	})
}

// TestUpdateAccount checks that an update lands only on the version it
// read, bumps the version, and that a revoked or missing account is not
// found.
func TestUpdateAccount(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "a1", "u1")
		stale := *a
		a.Name, a.Secret, a.Hint, a.RateLimit = "renamed", "sealed-2", "…new2", 0
		if err := s.UpdateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		if a.Version != 2 {
			t.Fatalf("version after an update: %d, want 2", a.Version)
		}
		got, err := s.Account(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if *got != *a {
			t.Fatalf("after an update: %+v, want %+v", got, a)
		}
		stale.Secret = "sealed-stale"
		if err := s.UpdateAccount(ctx, &stale); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a stale update: %v, want ErrConflict", err)
		}
		if got, _ := s.Account(ctx, "a1"); got.Secret != "sealed-2" {
			t.Fatalf("a stale update wrote the secret %q", got.Secret)
		}
		if err := s.UpdateAccount(ctx, newAccount("nope", "u1")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("updating a missing account: %v, want ErrNotFound", err)
		}
		if err := s.RevokeAccount(ctx, "a1", "gone"); err != nil {
			t.Fatal(err)
		}
		a.Version = 3 // the revocation's version
		if err := s.UpdateAccount(ctx, a); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("updating a revoked account: %v, want ErrNotFound", err)
		}
	})
}

// TestUpdateAccountKeepsRefreshState: an update writes what a user
// edits and leaves the refresh lease another node holds, the token's
// expiry and the status as the row has them, even when the caller read
// them before they changed.
func TestUpdateAccountKeepsRefreshState(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "a1", "u1")
		read := *a // read before the claim, as an update does
		now := s.Now().UnixMilli()
		lease := now + 60_000
		if ok, err := s.ClaimAccountRefresh(ctx, "a1", a.Version, now, lease); err != nil || !ok {
			t.Fatalf("claiming: %t, %v", ok, err)
		}
		read.Name, read.Domain, read.AuthPrefix, read.Username = "renamed", "https://api.example.com/v3", "Token", "bob"
		read.APIKeyIn, read.APIKeyName, read.Secret, read.Hint, read.RateLimit = "query", "key", "sealed-2", "…new2", 7
		read.Status, read.StatusReason, read.TokenExpiresAt, read.RefreshLeaseUntil = store.AccountInvalid, "stale", 42, 0
		read.AuthType, read.Connector = "basic", "other"
		if err := s.UpdateAccount(ctx, &read); err != nil {
			t.Fatal(err)
		}
		got, err := s.Account(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if got.RefreshLeaseUntil != lease || got.Status != store.AccountActive || got.StatusReason != "" || got.TokenExpiresAt != 0 ||
			got.AuthType != "token" || got.Connector != "" {
			t.Errorf("the update changed the refresh state or the kind of account: %+v", got)
		}
		if got.Name != "renamed" || got.Domain != read.Domain || got.AuthPrefix != "Token" || got.Username != "bob" ||
			got.APIKeyIn != "query" || got.APIKeyName != "key" || got.Secret != "sealed-2" || got.Hint != "…new2" ||
			got.RateLimit != 7 || got.Version != a.Version+1 {
			t.Errorf("the update did not write the edited fields: %+v", got)
		}
		// The lease still keeps another claimer out.
		if ok, err := s.ClaimAccountRefresh(ctx, "a1", got.Version, now+1, now+120_000); err != nil || ok {
			t.Errorf("a second claim during the lease: %t, %v", ok, err)
		}
	})
}

// v7 is a time-ordered id (UUIDv7 text) made at t, the n-th of its
// millisecond.
func v7(t time.Time, n int) string {
	ms := uint64(t.UnixMilli())
	return fmt.Sprintf("%08x-%04x-7000-8000-%012x", ms>>16, ms&0xffff, n)
}

// TestDeleteAccountAuditBefore: the entries made before the cutoff go,
// in batches, and the others stay.
func TestDeleteAccountAuditBefore(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		cutoff := time.Now().Add(-24 * time.Hour)
		old, recent := cutoff.Add(-time.Hour), cutoff.Add(time.Hour)
		var entries []store.AccountAudit
		for i := range 2500 { // several batches
			entries = append(entries, store.AccountAudit{ID: v7(old, i), AccountID: fmt.Sprintf("a%d", i%3), UserID: "u1",
				Source: "api", At: old.UnixMilli(), Method: "GET", Host: "h", Path: "/"})
		}
		for i := range 5 {
			entries = append(entries, store.AccountAudit{ID: v7(recent, i), AccountID: "a1", UserID: "u1",
				Source: "api", At: recent.UnixMilli(), Method: "GET", Host: "h", Path: "/recent"})
		}
		for i := 0; i < len(entries); i += 500 {
			if err := s.InsertAccountAudit(ctx, entries[i:min(i+500, len(entries))]); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.DeleteAccountAuditBefore(ctx, cutoff)
		if err != nil || n != 2500 {
			t.Fatalf("deleted %d, %v; want 2500", n, err)
		}
		for _, acc := range []string{"a0", "a1", "a2"} {
			left, err := s.ListAccountAudit(ctx, acc, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if acc == "a1" {
				want = 5
			}
			if len(left) != want {
				t.Errorf("%s keeps %d entries, want %d", acc, len(left), want)
			}
			for _, e := range left {
				if e.Path != "/recent" {
					t.Errorf("an old entry stayed: %+v", e)
				}
			}
		}
		if n, err := s.DeleteAccountAuditBefore(ctx, cutoff); err != nil || n != 0 {
			t.Errorf("deleting again: %d, %v", n, err)
		}
	})
}

// TestDeleteAccountRequestsBefore: finished requests made and last
// changed before the cutoff go; pending ones and newer ones stay.
func TestDeleteAccountRequestsBefore(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := s.Now()
		ids := map[string]string{ // name: id
			"done": v7(now.Add(-3*time.Hour), 1), "failed": v7(now.Add(-3*time.Hour), 2),
			"pending": v7(now.Add(-3*time.Hour), 3), "later": v7(now.Add(2*time.Hour), 4),
		}
		states := map[string]string{"done": store.AccountRequestDone, "failed": store.AccountRequestFailed,
			"pending": store.AccountRequestPending, "later": store.AccountRequestDone}
		for name, id := range ids {
			err := s.InTx(ctx, func(tx *store.Tx) error {
				if err := tx.InsertAccountRequest(ctx, &store.AccountRequest{ID: id, AccountID: "a1",
					Request: json.RawMessage(`{}`)}); err != nil {
					return err
				}
				return tx.RecordAccountRequest(ctx, id, states[name], nil, "", 1)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		left := func() string {
			var names []string
			for _, name := range []string{"done", "failed", "pending", "later"} {
				if _, err := s.AccountRequest(ctx, ids[name]); err == nil {
					names = append(names, name)
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Fatal(err)
				}
			}
			return strings.Join(names, ",")
		}
		// Made long ago but finished just now: kept.
		if n, err := s.DeleteAccountRequestsBefore(ctx, now.Add(-time.Hour)); err != nil || n != 0 || left() != "done,failed,pending,later" {
			t.Fatalf("cutoff an hour ago: deleted %d, %v; left %s", n, err, left())
		}
		n, err := s.DeleteAccountRequestsBefore(ctx, now.Add(time.Hour))
		if err != nil || n != 2 || left() != "pending,later" {
			t.Fatalf("cutoff in an hour: deleted %d, %v; left %s", n, err, left())
		}
	})
}

// TestRevokeAccount checks that revoking wipes the secret, ends a refresh
// lease and keeps the row with its reason, and that it happens once.
func TestRevokeAccount(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "a1", "u1")
		now := s.Now().UnixMilli()
		if ok, err := s.ClaimAccountRefresh(ctx, "a1", a.Version, now, now+60_000); err != nil || !ok {
			t.Fatalf("claiming: %t, %v", ok, err)
		}
		if err := s.RevokeAccount(ctx, "a1", "deleted by its owner"); err != nil {
			t.Fatal(err)
		}
		got, err := s.Account(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.AccountRevoked || got.StatusReason != "deleted by its owner" || got.Secret != "" ||
			got.RefreshLeaseUntil != 0 || got.RevokedAt == 0 || got.Version != a.Version+1 || got.Name != a.Name {
			t.Fatalf("revoked: %+v", got)
		}
		if err := s.RevokeAccount(ctx, "a1", "again"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoking twice: %v, want ErrNotFound", err)
		}
		if err := s.RevokeAccount(ctx, "nope", "x"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoking a missing account: %v, want ErrNotFound", err)
		}
		if ok, err := s.SetAccountTokens(ctx, "a1", got.Version, "sealed-tokens", "…abcd", 0); err != nil || ok {
			t.Fatalf("tokens stored on a revoked account: %t, %v", ok, err)
		}
	})
}

// TestAccountRefresh checks the OAuth2 refresh lease and token storage:
// of concurrent claimers one wins, none while a lease runs, tokens land
// only on the version read, and marking an account invalid rides its
// transaction.
func TestAccountRefresh(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "a1", "u1")
		now := s.Now().UnixMilli()

		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 8 {
			wg.Go(func() {
				ok, err := s.ClaimAccountRefresh(ctx, "a1", a.Version, now, now+60_000)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d of 8 concurrent claimers won, want 1", wins)
		}
		if ok, _ := s.ClaimAccountRefresh(ctx, "a1", a.Version, now+59_000, now+120_000); ok {
			t.Fatal("claimed while a lease runs")
		}
		// A lease that ran out can be taken over.
		if ok, err := s.ClaimAccountRefresh(ctx, "a1", a.Version, now+60_000, now+120_000); err != nil || !ok {
			t.Fatalf("claiming after the lease ran out: %t, %v", ok, err)
		}

		if ok, err := s.SetAccountTokens(ctx, "a1", a.Version+1, "sealed-x", "…x", 1); err != nil || ok {
			t.Fatalf("tokens from a version not read: %t, %v", ok, err)
		}
		if ok, err := s.SetAccountTokens(ctx, "a1", a.Version, "sealed-tokens", "…abcd", now+3_600_000); err != nil || !ok {
			t.Fatalf("storing tokens: %t, %v", ok, err)
		}
		got, err := s.Account(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Secret != "sealed-tokens" || got.Hint != "…abcd" || got.TokenExpiresAt != now+3_600_000 ||
			got.RefreshLeaseUntil != 0 || got.Version != a.Version+1 || got.Status != store.AccountActive {
			t.Fatalf("after storing tokens: %+v", got)
		}
		if ok, _ := s.SetAccountTokens(ctx, "a1", a.Version, "sealed-late", "…late", 0); ok {
			t.Fatal("a second refresh from the same version landed")
		}
		if ok, _ := s.ClaimAccountRefresh(ctx, "a1", a.Version, now, now+60_000); ok {
			t.Fatal("claimed from an old version")
		}

		// Marking invalid commits with its transaction, only once, and
		// only at the version whose refresh failed.
		mark := func(fail bool) (bool, error) {
			var ok bool
			err := s.InTx(ctx, func(tx *store.Tx) error {
				var err error
				if ok, err = tx.MarkAccountInvalid(ctx, "a1", got.Version, "refresh refused: invalid_grant"); err != nil {
					return err
				}
				if fail {
					return errors.New("the event could not be written")
				}
				return nil
			})
			return ok, err
		}
		if _, err := mark(true); err == nil {
			t.Fatal("the failing transaction committed")
		}
		if got, _ := s.Account(ctx, "a1"); got.Status != store.AccountActive {
			t.Fatalf("a rolled back transaction left the account %s", got.Status)
		}
		if ok, err := s.ClaimAccountRefresh(ctx, "a1", got.Version, now, now+60_000); err != nil || !ok {
			t.Fatalf("claiming: %t, %v", ok, err)
		}
		// A refresh that failed at an older version (another node stored
		// tokens since) does not mark the account.
		err = s.InTx(ctx, func(tx *store.Tx) error {
			ok, err := tx.MarkAccountInvalid(ctx, "a1", got.Version-1, "a stale refresh failed")
			if err == nil && ok {
				t.Error("marked invalid at a version the account no longer has")
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Account(ctx, "a1"); got.Status != store.AccountActive {
			t.Fatalf("a stale refresh's failure left the account %s", got.Status)
		}
		if ok, err := mark(false); err != nil || !ok {
			t.Fatalf("marking invalid: %t, %v", ok, err)
		}
		got, _ = s.Account(ctx, "a1")
		if got.Status != store.AccountInvalid || got.StatusReason != "refresh refused: invalid_grant" || got.RefreshLeaseUntil != 0 {
			t.Fatalf("marked invalid: %+v", got)
		}
		if ok, err := mark(false); err != nil || ok {
			t.Fatalf("marking an invalid account again: %t, %v", ok, err)
		}
		if ok, _ := s.ClaimAccountRefresh(ctx, "a1", got.Version, now+120_000, now+180_000); ok {
			t.Fatal("claimed the refresh of an invalid account")
		}
		// Reconnecting stores new tokens and makes it active again.
		if ok, err := s.SetAccountTokens(ctx, "a1", got.Version, "sealed-new", "…new1", 0); err != nil || !ok {
			t.Fatalf("reconnecting: %t, %v", ok, err)
		}
		if got, _ := s.Account(ctx, "a1"); got.Status != store.AccountActive || got.StatusReason != "" {
			t.Fatalf("reconnected: %+v", got)
		}
	})
}

// TestAccountAudit checks that a batch of uses is recorded and listed
// newest first, page by page.
func TestAccountAudit(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var entries []store.AccountAudit
		for i := range 70 {
			entries = append(entries, store.AccountAudit{ID: fmt.Sprintf("e%03d", i), AccountID: "a1", UserID: "u1",
				Source: "api", At: int64(1000 + i), Method: "GET", Host: "api.example.com", Path: "/v2/items",
				Status: 200, DurationMS: int64(i)})
		}
		entries[3].Status, entries[3].Error = 0, "timed out"
		entries = append(entries, store.AccountAudit{ID: "e500", AccountID: "a2", UserID: "u2", Source: "flow:f1/c1",
			Method: "POST", Host: "h", Path: "/"})
		if err := s.InsertAccountAudit(ctx, entries); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertAccountAudit(ctx, nil); err != nil {
			t.Fatal(err)
		}
		var all []*store.AccountAudit
		before := ""
		for {
			page, err := s.ListAccountAudit(ctx, "a1", before, 30)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if len(page) < 30 {
				break
			}
			before = page[len(page)-1].ID
		}
		if len(all) != 70 {
			t.Fatalf("listed %d entries of a1, want 70", len(all))
		}
		for i, e := range all {
			want := entries[69-i]
			if *e != want {
				t.Fatalf("entry %d: %+v, want %+v", i, e, want)
			}
		}
		if got, _ := s.ListAccountAudit(ctx, "a1", "e002", 10); len(got) != 2 || got[0].ID != "e001" || got[1].ID != "e000" {
			t.Fatalf("before e002: %+v", got)
		}
	})
}

// TestAccountRequests checks a wait=false request: recorded pending in
// its transaction, then its outcome.
func TestAccountRequests(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		r := &store.AccountRequest{ID: "r1", AccountID: "a1", Request: json.RawMessage(`{"method":"GET","path":"/x"}`)}
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.InsertAccountRequest(ctx, r) }); err != nil {
			t.Fatal(err)
		}
		got, err := s.AccountRequest(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.AccountRequestPending || string(got.Request) != `{"method":"GET","path":"/x"}` ||
			got.Result != nil || got.CreatedAt == 0 || got.AccountID != "a1" {
			t.Fatalf("pending: %+v", got)
		}
		record := func(id, state string, result json.RawMessage, errMsg string, attempts int) error {
			return s.InTx(ctx, func(tx *store.Tx) error {
				return tx.RecordAccountRequest(ctx, id, state, result, errMsg, attempts)
			})
		}
		if err := record("r1", store.AccountRequestPending, nil, "connection refused", 1); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.AccountRequest(ctx, "r1"); got.Attempts != 1 || got.Error != "connection refused" || got.Result != nil {
			t.Fatalf("after a failed attempt: %+v", got)
		}
		result := json.RawMessage(`{"status":200,"headers":{},"body":{"ok":true}}`)
		if err := record("r1", store.AccountRequestDone, result, "", 2); err != nil {
			t.Fatal(err)
		}
		got, _ = s.AccountRequest(ctx, "r1")
		if got.State != store.AccountRequestDone || string(got.Result) != string(result) || got.Error != "" || got.Attempts != 2 {
			t.Fatalf("done: %+v", got)
		}
		if err := record("nope", store.AccountRequestDone, nil, "", 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("recording a missing request: %v, want ErrNotFound", err)
		}
		if _, err := s.AccountRequest(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("loading a missing request: %v, want ErrNotFound", err)
		}
	})
}

// TestOAuthStates checks that a state is taken once, even by concurrent
// takers, that an expired one is not found, and that creating a state
// clears expired ones.
func TestOAuthStates(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := s.Now().UnixMilli()
		st := &store.OAuthState{State: "s1", UserID: "u1", Connector: "github", Name: "my github", Verifier: "sealed-v",
			RedirectURI: "https://plugboard.example.com/cb", AccountID: "a9", ExpiresAt: now + 600_000}
		if err := s.CreateOAuthState(ctx, st); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOAuthState(ctx, st); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a taken state: %v, want ErrConflict", err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var taken []*store.OAuthState
		for range 8 {
			wg.Go(func() {
				got, err := s.TakeOAuthState(ctx, "s1", now)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
				}
				if got != nil {
					mu.Lock()
					taken = append(taken, got)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(taken) != 1 {
			t.Fatalf("%d of 8 concurrent takers got the state, want 1", len(taken))
		}
		if *taken[0] != *st {
			t.Fatalf("taken %+v, want %+v", taken[0], st)
		}

		// An expired state is not found.
		if err := s.CreateOAuthState(ctx, &store.OAuthState{State: "s2", UserID: "u1", Connector: "c", ExpiresAt: now + 1000}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeOAuthState(ctx, "s2", now+1000); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("taking an expired state: %v, want ErrNotFound", err)
		}
		// Creating a state deletes the expired ones.
		old := &store.OAuthState{State: "s3", UserID: "u1", Connector: "c", ExpiresAt: now - 1}
		if err := s.CreateOAuthState(ctx, old); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOAuthState(ctx, &store.OAuthState{State: "s4", UserID: "u1", Connector: "c", ExpiresAt: now + 600_000}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeOAuthState(ctx, "s3", now-10); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an expired state outlived the next creation: %v", err)
		}
		if _, err := s.TakeOAuthState(ctx, "s4", now); err != nil {
			t.Fatalf("taking a fresh state: %v", err)
		}
	})
}

// TestOAuthClients checks setting, replacing and deleting a connector's
// OAuth2 client.
func TestOAuthClients(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.OAuthClient(ctx, "github"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no client yet: %v, want ErrNotFound", err)
		}
		c := &store.OAuthClient{Connector: "github", ClientID: "id-1", ClientSecret: "sealed-1"}
		if err := s.SetOAuthClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.SetOAuthClient(ctx, &store.OAuthClient{Connector: "slack", ClientID: "id-s", ClientSecret: "sealed-s"}); err != nil {
			t.Fatal(err)
		}
		c2 := &store.OAuthClient{Connector: "github", ClientID: "id-2", ClientSecret: "sealed-2"}
		if err := s.SetOAuthClient(ctx, c2); err != nil {
			t.Fatal(err)
		}
		got, err := s.OAuthClient(ctx, "github")
		if err != nil {
			t.Fatal(err)
		}
		if *got != *c2 || got.UpdatedAt == 0 {
			t.Fatalf("replaced: %+v, want %+v", got, c2)
		}
		if err := s.DeleteOAuthClient(ctx, "github"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.OAuthClient(ctx, "github"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after deleting: %v, want ErrNotFound", err)
		}
		if err := s.DeleteOAuthClient(ctx, "github"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting twice: %v, want ErrNotFound", err)
		}
		if got, err := s.OAuthClient(ctx, "slack"); err != nil || got.ClientID != "id-s" {
			t.Fatalf("the other connector's client: %+v, %v", got, err)
		}
	})
}

// TestResealColumn checks re-sealing: every non-empty value across
// batches is passed and replaced, unchanged and empty ones are skipped, a
// value changed meanwhile is read again, and only the sealed columns can
// be named.
func TestResealColumn(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 205 // more than one batch
		for i := range n {
			mustAccount(t, s, fmt.Sprintf("a%03d", i), "u1")
		}
		if err := s.RevokeAccount(ctx, "a007", "gone"); err != nil { // empty secret
			t.Fatal(err)
		}
		accounts := store.SealedColumn{Table: "accounts", KeyColumn: "id", Column: "secret"}
		seen := map[string]int{}
		var raced bool
		changed, err := s.ResealColumn(ctx, accounts, func(key, sealed string) (string, error) {
			seen[key]++
			if sealed != "sealed-"+key && sealed != "refreshed" {
				return "", fmt.Errorf("%s: got %q", key, sealed)
			}
			switch key {
			case "a003":
				return sealed, nil // already under the new key
			case "a100":
				if !raced {
					// A refresh lands between the read and the write.
					raced = true
					a, err := s.Account(ctx, key)
					if err != nil {
						return "", err
					}
					if ok, err := s.SetAccountTokens(ctx, key, a.Version, "refreshed", "", 0); err != nil || !ok {
						return "", fmt.Errorf("refreshing: %t, %v", ok, err)
					}
				}
			}
			return "new:" + sealed, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if changed != n-2 {
			t.Fatalf("changed %d values, want %d", changed, n-2)
		}
		if len(seen) != n-1 || seen["a007"] != 0 || seen["a100"] != 2 {
			t.Fatalf("fn saw %d keys (a007 %d times, a100 %d times)", len(seen), seen["a007"], seen["a100"])
		}
		all, err := s.ListAccounts(ctx, "", true, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range all {
			want := "new:sealed-" + a.ID
			switch a.ID {
			case "a003":
				want = "sealed-a003"
			case "a007":
				want = ""
			case "a100":
				want = "new:refreshed"
			}
			if a.Secret != want {
				t.Errorf("account %s: secret %q, want %q", a.ID, a.Secret, want)
			}
		}

		for i, secret := range []string{"whsec_1", "", "whsec_3"} {
			if err := s.CreateSystemWebhook(ctx, &store.SystemWebhook{ID: fmt.Sprintf("w%d", i), Event: "*",
				URL: "https://hooks.example.com", Secret: secret}); err != nil {
				t.Fatal(err)
			}
		}
		changed, err = s.ResealColumn(ctx, store.SealedColumns[0], func(key, sealed string) (string, error) {
			return "v1:" + key + ":" + sealed, nil
		})
		if err != nil || changed != 2 {
			t.Fatalf("resealing system webhooks: %d, %v", changed, err)
		}
		for id, want := range map[string]string{"w0": "v1:w0:whsec_1", "w1": "", "w2": "v1:w2:whsec_3"} {
			if w, err := s.SystemWebhook(ctx, id); err != nil || w.Secret != want {
				t.Errorf("system webhook %s: %+v, %v; want secret %q", id, w, err, want)
			}
		}

		failing := errors.New("cannot open")
		if _, err := s.ResealColumn(ctx, store.SealedColumns[0], func(string, string) (string, error) {
			return "", failing
		}); !errors.Is(err, failing) {
			t.Fatalf("fn failing: %v", err)
		}
		for _, bad := range []store.SealedColumn{
			{Table: "users", KeyColumn: "id", Column: "password_hash"},
			{Table: "accounts", KeyColumn: "id", Column: "secret; DROP TABLE accounts"},
			{Table: "accounts", KeyColumn: "owner_id", Column: "secret"},
		} {
			called := false
			if _, err := s.ResealColumn(ctx, bad, func(key, sealed string) (string, error) {
				called = true
				return sealed, nil
			}); err == nil || called {
				t.Errorf("resealing %+v: %v (fn called: %t), want a refusal", bad, err, called)
			}
		}
		if _, err := s.Account(ctx, "a000"); err != nil {
			t.Fatal(err)
		}
	})
}

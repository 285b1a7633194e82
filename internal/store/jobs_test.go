package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestJobQueue checks claims, leases and attempts on every backend.
func TestJobQueue(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, backend)
			ctx := context.Background()
			submit := func(fn func(tx *store.Tx) error) error { return s.Submit(ctx, fn) }
			claim := func(node string, n int, lease time.Duration) []store.Job {
				t.Helper()
				var jobs []store.Job
				if err := submit(func(tx *store.Tx) error {
					var err error
					jobs, err = tx.ClaimJobs(ctx, node, n, lease)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return jobs
			}
			err := submit(func(tx *store.Tx) error {
				return tx.EnqueueJobs(ctx, []store.NewJob{
					{ID: "a", MaxAttempts: 3, Args: []byte(`{"n":1}`)},
					{ID: "b", MaxAttempts: 3, Args: []byte(`{"n":2}`), RunAt: time.Now().Add(time.Hour)},
					{ID: "c", MaxAttempts: 3, Args: []byte(`{"n":3}`), LockedBy: "n1", LeaseUntil: time.Now().Add(time.Minute)},
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			// Only the due, available job is claimed; its attempt is counted.
			got := claim("n1", 10, time.Minute)
			if len(got) != 1 || got[0].ID != "a" || got[0].Attempt != 1 || string(got[0].Args) != `{"n":1}` {
				t.Fatalf("claim = %+v", got)
			}
			if again := claim("n2", 10, time.Minute); len(again) != 0 {
				t.Fatalf("claimed a running job twice: %+v", again)
			}
			// Finishing needs the lease: another node, or a stale attempt, is refused.
			if err := submit(func(tx *store.Tx) error { return tx.FinishJob(ctx, "a", "n2", 1) }); !errors.Is(err, store.ErrLeaseLost) {
				t.Fatalf("finish by another node: %v", err)
			}
			// A retry makes it available again at its time, with the attempt kept.
			if err := submit(func(tx *store.Tx) error { return tx.RetryJob(ctx, "a", "n1", 1, time.Now(), "boom") }); err != nil {
				t.Fatal(err)
			}
			if got := claim("n2", 10, time.Minute); len(got) != 1 || got[0].Attempt != 2 {
				t.Fatalf("after retry: %+v", got)
			}
			if err := submit(func(tx *store.Tx) error { return tx.RetryJob(ctx, "a", "n1", 1, time.Now(), "late") }); !errors.Is(err, store.ErrLeaseLost) {
				t.Fatalf("retry of a lost lease: %v", err)
			}
			// A stopping node gives a job back without counting the attempt.
			if err := s.ReleaseJob(ctx, "a", "n2", 2); err != nil {
				t.Fatal(err)
			}
			if got := claim("n3", 10, time.Millisecond); len(got) != 1 || got[0].Attempt != 2 {
				t.Fatalf("after release: %+v", got)
			}
			// An expired lease is rescued; a restarted node releases its own jobs.
			deadline := time.Now().Add(5 * time.Second)
			for {
				n, exhausted, err := s.RescueExpiredJobs(ctx, "n9", time.Minute)
				if err != nil || len(exhausted) != 0 {
					t.Fatal(exhausted, err)
				}
				if n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("expired lease never rescued")
				}
				time.Sleep(2 * time.Millisecond)
			}
			if n, exhausted, err := s.ReleaseNodeJobs(ctx, "n1", time.Minute); err != nil || n != 1 || len(exhausted) != 0 {
				t.Fatalf("release of node n1's handed-off job: %d, %v, %v", n, exhausted, err)
			}
			got = claim("n4", 10, time.Minute)
			if len(got) != 2 {
				t.Fatalf("after rescue and release: %+v", got)
			}
			for _, j := range got {
				if err := submit(func(tx *store.Tx) error { return tx.FinishJob(ctx, j.ID, "n4", j.Attempt) }); err != nil {
					t.Fatal(err)
				}
			}
			if c, err := s.JobCounts(ctx); err != nil || c[store.JobRunning] != 0 || c[store.JobAvailable] != 1 {
				t.Fatalf("counts = %v, %v (want the scheduled job only)", c, err)
			}
		})
	}
}

// TestJobQueueLastAttempt checks that a job whose node died during its last
// attempt is not run again: the node that finds it takes it over, to move
// it to the unprocessed store, on rescue and on restart alike.
func TestJobQueueLastAttempt(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := storetest.Open(t, backend)
			ctx := context.Background()
			err := s.Submit(ctx, func(tx *store.Tx) error {
				return tx.EnqueueJobs(ctx, []store.NewJob{
					// Last attempts running on n1, one with a lease already over.
					{ID: "expired", MaxAttempts: 1, Args: []byte(`{"n":1}`), LockedBy: "n1", LeaseUntil: s.Now().Add(-time.Second)},
					{ID: "held", MaxAttempts: 1, Args: []byte(`{"n":2}`), LockedBy: "n1", LeaseUntil: s.Now().Add(time.Hour)},
					// Not a last attempt: rescued as usual.
					{ID: "more", MaxAttempts: 2, Args: []byte(`{"n":3}`), LockedBy: "n1", LeaseUntil: s.Now().Add(-time.Second)},
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			n, exhausted, err := s.RescueExpiredJobs(ctx, "n2", time.Minute)
			if err != nil || n != 1 || len(exhausted) != 1 || exhausted[0].ID != "expired" || exhausted[0].Attempt != 1 || string(exhausted[0].Args) != `{"n":1}` {
				t.Fatalf("rescue = %d, %+v, %v", n, exhausted, err)
			}
			// n2 holds it now, under a fresh lease: n1 can no longer finish it,
			// and a second rescue does not take it again.
			if err := s.Submit(ctx, func(tx *store.Tx) error { return tx.FinishJob(ctx, "expired", "n1", 1) }); !errors.Is(err, store.ErrLeaseLost) {
				t.Fatalf("finish by the dead node: %v", err)
			}
			if n, again, err := s.RescueExpiredJobs(ctx, "n3", time.Minute); err != nil || n != 0 || len(again) != 0 {
				t.Fatalf("second rescue = %d, %+v, %v", n, again, err)
			}
			if err := s.Submit(ctx, func(tx *store.Tx) error { return tx.FinishJob(ctx, "expired", "n2", 1) }); err != nil {
				t.Fatalf("finish by the rescuer: %v", err)
			}
			// n1 restarts: its last attempt is handed back to it, not released.
			n, exhausted, err = s.ReleaseNodeJobs(ctx, "n1", time.Minute)
			if err != nil || n != 0 || len(exhausted) != 1 || exhausted[0].ID != "held" {
				t.Fatalf("release = %d, %+v, %v", n, exhausted, err)
			}
			if c, err := s.JobCounts(ctx); err != nil || c[store.JobRunning] != 1 || c[store.JobAvailable] != 1 {
				t.Fatalf("counts = %v, %v", c, err)
			}
		})
	}
}

// TestClockFollowsDatabase gives one PostgreSQL node a clock ten minutes
// late: its leases must still be measured by the database's clock, so that
// a node with a right clock does not take over its steps early.
func TestClockFollowsDatabase(t *testing.T) {
	t.Parallel()
	cfg := storetest.Config(t, store.BackendPostgres)
	ctx := context.Background()
	right, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer right.Close()
	lateCfg := cfg
	lateCfg.Clock = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	late, err := store.Open(ctx, lateCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if d := late.Now().Sub(right.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("the late node's Now is %s off the database's", d)
	}
	if off := late.ClockOffset(); off < 9*time.Minute || off > 11*time.Minute {
		t.Fatalf("offset = %s, want about 10m", off)
	}
	err = late.Submit(ctx, func(tx *store.Tx) error {
		return tx.EnqueueJobs(ctx, []store.NewJob{{ID: "j", MaxAttempts: 3, Args: []byte(`{}`), LockedBy: "late", LeaseUntil: late.Now().Add(time.Minute)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := right.RescueExpiredJobs(ctx, "right", time.Minute); err != nil || n != 0 {
		t.Fatalf("a lease with a minute to go was rescued: %d, %v", n, err)
	}
	// A retry the late node schedules a minute ahead is due a minute from
	// now by the database's clock: not at once (which it would be, ten
	// minutes late, without the correction).
	err = late.Submit(ctx, func(tx *store.Tx) error {
		return tx.RetryJob(ctx, "j", "late", 1, late.Now().Add(time.Minute), "boom")
	})
	if err != nil {
		t.Fatal(err)
	}
	claim := func(s *store.Store) []store.Job {
		var claimed []store.Job
		if err := s.Submit(ctx, func(tx *store.Tx) error {
			var err error
			claimed, err = tx.ClaimJobs(ctx, "right", 1, time.Minute)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return claimed
	}
	if got := claim(right); len(got) != 0 {
		t.Fatalf("a retry due in a minute was claimed at once: %+v", got)
	}
}

func TestSQLiteDataDirIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(context.Background(), store.Config{DataDir: dir}); err == nil {
		t.Fatal("a second store opened the same data directory")
	}
	_ = s.Close()
	s, err = store.Open(context.Background(), store.Config{DataDir: filepath.Clean(dir)})
	if err != nil {
		t.Fatalf("reopening after close: %v", err)
	}
	_ = s.Close()
}

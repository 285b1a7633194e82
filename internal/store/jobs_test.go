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
				n, err := s.RescueExpiredJobs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("expired lease never rescued")
				}
				time.Sleep(2 * time.Millisecond)
			}
			if n, err := s.ReleaseNodeJobs(ctx, "n1"); err != nil || n != 1 {
				t.Fatalf("release of node n1's handed-off job: %d, %v", n, err)
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

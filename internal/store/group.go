package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxGroup caps how many submissions share one transaction.
const maxGroup = 512

var errStoreClosed = errors.New("store closed")

// groupCommitter batches concurrent submissions into one transaction so that
// many accepted webhooks or finished steps cost one commit (one fsync).
type groupCommitter struct {
	s       *Store
	reqs    chan *groupReq
	quit    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Once

	batchSize  prometheus.Histogram
	commitSecs prometheus.Histogram
}

type groupReq struct {
	ctx  context.Context
	fn   func(tx *Tx) error
	errc chan error
}

func newGroupCommitter(s *Store) *groupCommitter {
	g := &groupCommitter{s: s, reqs: make(chan *groupReq, maxGroup), quit: make(chan struct{}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "plugboard_store_group_commit_size", Help: "Submissions per group-committed transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "plugboard_store_group_commit_seconds", Help: "Duration of a group-committed transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
	}
	// SQLite has one writer; PostgreSQL takes several transactions at once.
	workers := 1
	if s.name == BackendPostgres {
		workers = 4
	}
	for range workers {
		g.wg.Add(1)
		go g.loop()
	}
	return g
}

func (g *groupCommitter) submit(ctx context.Context, fn func(tx *Tx) error) error {
	r := &groupReq{ctx: ctx, fn: fn, errc: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-g.quit:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the request is always answered, even if ctx ends: the
	// caller must learn whether its change committed.
	return <-r.errc
}

func (g *groupCommitter) close() {
	g.closeMu.Do(func() { close(g.quit) })
	g.wg.Wait()
	// Answer anything still queued.
	for {
		select {
		case r := <-g.reqs:
			r.errc <- errStoreClosed
		default:
			return
		}
	}
}

func (g *groupCommitter) loop() {
	defer g.wg.Done()
	batch := make([]*groupReq, 0, maxGroup)
	for {
		select {
		case <-g.quit:
			return
		case r := <-g.reqs:
			batch = append(batch[:0], r)
		}
		// Drain what is queued, yield once so that submitters about to
		// arrive can join, and drain again.
		for pass := 0; pass < 2; pass++ {
			if pass == 1 {
				runtime.Gosched()
			}
		fill:
			for len(batch) < maxGroup {
				select {
				case r := <-g.reqs:
					batch = append(batch, r)
				default:
					break fill
				}
			}
		}
		g.run(batch)
	}
}

// run commits batch. Submissions normally succeed, so the first try runs
// them without savepoints. If one fails, the group runs again once with a
// savepoint around each submission, so that every failure is undone and
// answered on its own and the rest commit: the work stays linear in the
// group's size.
func (g *groupCommitter) run(batch []*groupReq) {
	live := make([]*groupReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.errc <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	errs, err := g.try(live, true, false)
	if errs == nil {
		errs, err = g.try(live, true, true)
	}
	if errs == nil {
		// The group's deferred inserts failed: write as each goes.
		errs, err = g.try(live, false, true)
	}
	for i, r := range live {
		if errs != nil && errs[i] != nil {
			r.errc <- errs[i]
			continue
		}
		r.errc <- err
	}
}

// try runs the submissions in one transaction and commits. Without
// savepoints, any failure rolls back and returns nil errs (run again).
// With savepoints, a failing submission is rolled back to its savepoint
// and its error kept in errs. Deferred inserts are written just before the
// commit; if that fails, try returns nil errs. err is the commit's outcome.
func (g *groupCommitter) try(live []*groupReq, deferred, savepoints bool) (errs []error, err error) {
	ctx := context.Background()
	start := time.Now()
	defer func() {
		g.batchSize.Observe(float64(len(live)))
		g.commitSecs.Observe(time.Since(start).Seconds())
	}()
	errs = make([]error, len(live))
	h, err := g.s.backend.begin(ctx)
	if err != nil {
		return errs, fmt.Errorf("beginning group transaction: %w", err)
	}
	tx := &Tx{q: h, h: h, store: g.s, deferred: deferred}
	for i, r := range live {
		if !savepoints {
			if err := r.fn(tx); err != nil {
				_ = h.rollback(ctx)
				return nil, nil
			}
			continue
		}
		if _, err := h.exec(ctx, "SAVEPOINT submission"); err != nil {
			_ = h.rollback(ctx)
			return errs, fmt.Errorf("group transaction: %w", err)
		}
		nLogs, nJobs := len(tx.logArgs), len(tx.jobArgs)
		if err := r.fn(tx); err != nil {
			errs[i] = err
			tx.logArgs, tx.jobArgs = tx.logArgs[:nLogs], tx.jobArgs[:nJobs]
			tx.heads = nil
			if _, err := h.exec(ctx, "ROLLBACK TO SAVEPOINT submission"); err != nil {
				_ = h.rollback(ctx)
				return errs, fmt.Errorf("group transaction: %w", err)
			}
		}
		if _, err := h.exec(ctx, "RELEASE SAVEPOINT submission"); err != nil {
			_ = h.rollback(ctx)
			return errs, fmt.Errorf("group transaction: %w", err)
		}
	}
	if err := tx.flush(ctx); err != nil {
		_ = h.rollback(ctx)
		if !deferred {
			return errs, err
		}
		return nil, nil
	}
	if err := h.commit(ctx); err != nil {
		return errs, fmt.Errorf("committing group transaction: %w", err)
	}
	return errs, nil
}

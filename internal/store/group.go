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

// run commits batch. Submissions normally succeed, so they run without
// savepoints; when one fails, the transaction is rolled back, that one is
// answered with its error and the rest run again.
func (g *groupCommitter) run(batch []*groupReq) {
	live := make([]*groupReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.errc <- err
			continue
		}
		live = append(live, r)
	}
	deferred := true
	for len(live) > 0 {
		failed, err := g.try(live, deferred)
		if failed == errFlush {
			// A deferred insert failed and cannot be pinned on one
			// submission: run the group again writing as it goes.
			deferred = false
			continue
		}
		if failed < 0 {
			for _, r := range live {
				r.errc <- err
			}
			return
		}
		live[failed].errc <- err
		live = append(live[:failed], live[failed+1:]...)
	}
}

// errFlush is what try returns when the deferred inserts failed.
const errFlush = -2

// try runs every submission in one transaction. It returns the index of a
// submission whose fn failed (and that error), errFlush, or -1 with the
// outcome of the commit.
func (g *groupCommitter) try(live []*groupReq, deferred bool) (int, error) {
	ctx := context.Background()
	start := time.Now()
	defer func() {
		g.batchSize.Observe(float64(len(live)))
		g.commitSecs.Observe(time.Since(start).Seconds())
	}()
	h, err := g.s.backend.begin(ctx)
	if err != nil {
		return -1, fmt.Errorf("beginning group transaction: %w", err)
	}
	tx := &Tx{q: h, h: h, store: g.s, deferred: deferred}
	for i, r := range live {
		if err := r.fn(tx); err != nil {
			_ = h.rollback(ctx)
			return i, err
		}
	}
	if err := tx.flush(ctx); err != nil {
		_ = h.rollback(ctx)
		return errFlush, err
	}
	if err := h.commit(ctx); err != nil {
		return -1, fmt.Errorf("committing group transaction: %w", err)
	}
	return -1, nil
}

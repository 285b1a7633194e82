package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plugboard/plugboard/internal/store"
)

// queue runs step jobs from the jobs table: a dispatcher claims due jobs
// in batches (through the store's group commit, so a claim shares its
// transaction with accepts and completions) and hands each to a worker
// goroutine. Every claim is a lease; a node that dies loses its leases and
// another node (or itself, on restart) runs the jobs again.
type queue struct {
	e       *Engine
	store   *store.Store
	node    string
	workers int
	poll    time.Duration
	lease   time.Duration

	wake chan struct{}
	sem  chan struct{}
	wg   sync.WaitGroup
	// open is true between start and stop: only then are jobs handed
	// straight to workers.
	open atomic.Bool
	// backlog is true when jobs may be waiting in the table for a claim;
	// only then does a worker that finishes wake the dispatcher.
	backlog atomic.Bool

	stopDispatch context.CancelFunc
	dispatchDone chan struct{}
	// jobCtx is the parent of every job's context; cancelled when a stop
	// runs out of time.
	jobCtx    context.Context
	cancelJob context.CancelFunc
}

func newQueue(e *Engine) *queue {
	return &queue{
		e: e, store: e.store, node: e.cfg.NodeID, workers: e.cfg.Workers, poll: e.cfg.FetchPollInterval, lease: e.cfg.RescueAfter,
		wake: make(chan struct{}, 1), sem: make(chan struct{}, e.cfg.Workers),
	}
}

// notify tells the dispatcher that jobs may be waiting in the table.
func (q *queue) notify() {
	q.backlog.Store(true)
	q.wake1()
}

func (q *queue) wake1() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) start(ctx context.Context) error {
	// Whatever this node was running when it last stopped died with it.
	n, exhausted, err := q.store.ReleaseNodeJobs(ctx, q.node, q.lease)
	if err != nil {
		return err
	}
	if n > 0 || len(exhausted) > 0 {
		q.e.log.LogAttrs(ctx, slog.LevelWarn, "requeued steps interrupted by an earlier stop", slog.Int64("jobs", n),
			slog.Int("lastAttempts", len(exhausted)), slog.String("node", q.node))
	}
	q.e.settleExhausted(ctx, exhausted)
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	q.stopDispatch = cancel
	q.jobCtx, q.cancelJob = context.WithCancel(context.WithoutCancel(ctx))
	q.dispatchDone = make(chan struct{})
	q.open.Store(true)
	go q.dispatch(dctx)
	return nil
}

func (q *queue) dispatch(ctx context.Context) {
	defer close(q.dispatchDone)
	timer := time.NewTimer(q.poll)
	defer timer.Stop()
	rescueEvery := max(q.lease/4, time.Second)
	nextRescue := time.Now().Add(rescueEvery)
	nextPrune := time.Now().Add(time.Minute)
	for {
		if time.Now().After(nextPrune) {
			q.pruneLogs(ctx)
			nextPrune = time.Now().Add(10 * time.Minute)
		}
		if time.Now().After(nextRescue) {
			n, exhausted, err := q.store.RescueExpiredJobs(ctx, q.node, q.lease)
			if err != nil {
				q.e.log.LogAttrs(ctx, slog.LevelWarn, "rescuing expired jobs", slog.String("error", err.Error()))
			} else if n > 0 || len(exhausted) > 0 {
				q.e.log.LogAttrs(ctx, slog.LevelWarn, "rescued steps whose node stopped answering", slog.Int64("jobs", n),
					slog.Int("lastAttempts", len(exhausted)))
			}
			q.e.settleExhausted(ctx, exhausted)
			nextRescue = time.Now().Add(rescueEvery)
		}
		// Take the worker slots before claiming, so that claimed jobs
		// start at once and their leases do not run while they wait.
		if free := q.takeSlots(cap(q.sem)); free > 0 {
			jobs, err := q.claim(ctx, free)
			if err != nil {
				jobs = nil // the claim did not commit
				if ctx.Err() == nil {
					q.e.log.LogAttrs(ctx, slog.LevelError, "claiming jobs", slog.String("error", err.Error()))
				}
			}
			q.unreserve(free - len(jobs))
			for _, j := range jobs {
				q.wg.Add(1)
				go q.run(j, nil)
			}
			if len(jobs) == free {
				continue // probably more due
			}
			if err == nil {
				q.backlog.Store(false)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(q.poll)
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

// pruneLogs deletes invocation logs past the retention period.
func (q *queue) pruneLogs(ctx context.Context) {
	n, err := q.store.DeleteLogsBefore(ctx, time.Now().Add(-q.e.cfg.LogRetention))
	if err != nil {
		q.e.log.LogAttrs(ctx, slog.LevelWarn, "pruning invocation logs", slog.String("error", err.Error()))
	} else if n > 0 {
		q.e.log.LogAttrs(ctx, slog.LevelInfo, "pruned invocation logs", slog.Int64("deleted", n))
	}
	// Replies nobody waited for (a Response in a run no webhook waits on).
	if _, err := q.store.DeleteWebhookRepliesBefore(ctx, q.store.Now().Add(-time.Hour)); err != nil {
		q.e.log.LogAttrs(ctx, slog.LevelWarn, "pruning webhook replies", slog.String("error", err.Error()))
	}
}

func (q *queue) claim(ctx context.Context, n int) ([]store.Job, error) {
	var jobs []store.Job
	err := q.store.Submit(ctx, func(tx *store.Tx) error {
		var err error
		jobs, err = tx.ClaimJobs(ctx, q.node, n, q.lease)
		return err
	})
	return jobs, err
}

// reserve takes up to n idle worker slots without waiting, for jobs to
// hand off.
func (q *queue) reserve(n int) int {
	if !q.open.Load() {
		return 0
	}
	return q.takeSlots(n)
}

// takeSlots takes up to n idle worker slots without waiting.
func (q *queue) takeSlots(n int) int {
	for i := range n {
		select {
		case q.sem <- struct{}{}:
		default:
			return i
		}
	}
	return n
}

// unreserve gives back slots whose jobs were not committed.
func (q *queue) unreserve(n int) {
	for range n {
		<-q.sem
	}
}

// handOff starts the first reserved jobs, committed as running on this
// node, on the slots reserved for them, and wakes the dispatcher for the
// others.
func (q *queue) handOff(jobs []store.NewJob, args []stepArgs, reserved int) {
	for i, nj := range jobs[:reserved] {
		q.wg.Add(1)
		go q.run(store.Job{ID: nj.ID, Attempt: 1, MaxAttempts: nj.MaxAttempts, Args: nj.Args}, &args[i])
	}
	if len(jobs) > reserved {
		q.notify()
	}
}

func (q *queue) run(j store.Job, local *stepArgs) {
	defer func() {
		<-q.sem
		q.wg.Done()
		if q.backlog.Load() {
			q.wake1()
		}
	}()
	ctx, cancel := context.WithTimeout(q.jobCtx, q.e.cfg.JobTimeout)
	defer cancel()
	q.e.work(ctx, j, local)
}

// interrupted reports whether a stop has cancelled the running jobs.
func (q *queue) interrupted() bool {
	return q.jobCtx != nil && q.jobCtx.Err() != nil
}

// stop stops claiming and waits for running steps; when ctx ends first,
// their contexts are cancelled and they are retried later.
func (q *queue) stop(ctx context.Context) error {
	if q.stopDispatch == nil {
		return nil
	}
	q.open.Store(false)
	q.stopDispatch()
	<-q.dispatchDone
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		q.cancelJob()
		<-done
		return errors.New("stopped before every running step finished; they will run again")
	}
}

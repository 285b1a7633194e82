package engine

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/plugboard/plugboard/internal/store"
)

// queue is the durable job queue, River behind a small seam so that the
// engine does not care which database driver River runs on.
type queue interface {
	start(ctx context.Context) error
	stop(ctx context.Context) error
	insertTx(ctx context.Context, tx *store.Tx, jobs []stepArgs) error
	completeTx(ctx context.Context, tx *store.Tx, job *river.Job[stepArgs]) error
}

type riverQueue[TDriver riverdriver.Driver[TTx], TTx any] struct {
	client *river.Client[TTx]
}

func (q *riverQueue[TDriver, TTx]) start(ctx context.Context) error { return q.client.Start(ctx) }
func (q *riverQueue[TDriver, TTx]) stop(ctx context.Context) error  { return q.client.Stop(ctx) }

func (q *riverQueue[TDriver, TTx]) insertTx(ctx context.Context, tx *store.Tx, jobs []stepArgs) error {
	if len(jobs) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(jobs))
	for i := range jobs {
		params[i] = river.InsertManyParams{Args: jobs[i], InsertOpts: &river.InsertOpts{MaxAttempts: jobs[i].MaxAttempts}}
	}
	if _, err := q.client.InsertManyTx(ctx, tx.Raw().(TTx), params); err != nil {
		return fmt.Errorf("enqueueing %d steps: %w", len(jobs), err)
	}
	return nil
}

func (q *riverQueue[TDriver, TTx]) completeTx(ctx context.Context, tx *store.Tx, job *river.Job[stepArgs]) error {
	if _, err := river.JobCompleteTx[TDriver](ctx, tx.Raw().(TTx), job); err != nil {
		return fmt.Errorf("completing step job %d: %w", job.ID, err)
	}
	return nil
}

// queueConfig is what the engine asks of River.
type queueConfig struct {
	NodeID            string
	Workers           int
	FetchPollInterval time.Duration
	JobTimeout        time.Duration
	RescueAfter       time.Duration
	Logger            *slog.Logger
}

// newQueue migrates River's tables, requeues jobs that an earlier run of
// this node left running (it was killed) and builds the client.
func newQueue(ctx context.Context, s *store.Store, cfg queueConfig, w river.Worker[stepArgs]) (queue, error) {
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return nil, fmt.Errorf("registering step worker: %w", err)
	}
	rc := &river.Config{
		ID:                          cfg.NodeID,
		Logger:                      cfg.Logger,
		Queues:                      map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers:                     workers,
		FetchCooldown:               5 * time.Millisecond,
		FetchPollInterval:           cfg.FetchPollInterval,
		JobTimeout:                  cfg.JobTimeout,
		RescueStuckJobsAfter:        cfg.RescueAfter,
		CompletedJobRetentionPeriod: time.Minute, // history lives in invocation logs
		MaxAttempts:                 10,
	}
	switch db := s.Driver().(type) {
	case *sql.DB:
		return buildQueue[*riversqlite.Driver](ctx, s, riversqlite.New(db), rc, cfg.NodeID,
			`UPDATE river_job SET state = 'available', scheduled_at = datetime('now')
			  WHERE state = 'running' AND json_extract(attempted_by, '$[#-1]') = $1`)
	case *pgxpool.Pool:
		return buildQueue[*riverpgxv5.Driver](ctx, s, riverpgxv5.New(db), rc, cfg.NodeID,
			`UPDATE river_job SET state = 'available', scheduled_at = now()
			  WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1`)
	default:
		return nil, fmt.Errorf("job queue: unsupported database handle %T", db)
	}
}

func buildQueue[TDriver riverdriver.Driver[TTx], TTx any](ctx context.Context, s *store.Store, driver TDriver,
	rc *river.Config, nodeID, requeueSQL string) (queue, error) {
	err := s.WithMigrationLock(ctx, func(ctx context.Context) error {
		m, err := rivermigrate.New[TTx](driver, nil)
		if err != nil {
			return err
		}
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("migrating job queue tables: %w", err)
	}
	n, err := s.ExecRaw(ctx, requeueSQL, nodeID)
	if err != nil {
		return nil, fmt.Errorf("requeueing jobs interrupted on node %s: %w", nodeID, err)
	}
	if n > 0 && rc.Logger != nil {
		rc.Logger.LogAttrs(ctx, slog.LevelWarn, "requeued steps interrupted by an earlier stop", slog.Int64("jobs", n), slog.String("node", nodeID))
	}
	client, err := river.NewClient[TTx](driver, rc)
	if err != nil {
		return nil, fmt.Errorf("creating job queue client: %w", err)
	}
	return &riverQueue[TDriver, TTx]{client: client}, nil
}

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrLeaseLost says a job is no longer held by the node finishing it: it was
// rescued after its lease ran out and may be running elsewhere.
var ErrLeaseLost = errors.New("job lease lost")

// Job states.
const (
	JobAvailable = "available"
	JobRunning   = "running"
)

// NewJob is a job to enqueue.
type NewJob struct {
	ID          string
	MaxAttempts int
	RunAt       time.Time
	Args        []byte
	// LockedBy, when set, inserts the job already running on that node
	// (its first attempt) with a lease until LeaseUntil: the node hands it
	// to a worker as soon as the transaction commits, with no claim.
	LockedBy   string
	LeaseUntil time.Time
}

// Job is a claimed job.
type Job struct {
	ID          string
	Attempt     int
	MaxAttempts int
	Args        []byte
}

const jobCols = `INSERT INTO jobs (id, state, attempt, max_attempts, run_at, locked_by, locked_until, args, created_at)`

// EnqueueJobs inserts jobs inside tx (in a group commit, together with the
// other submissions' jobs when the group is flushed).
func (tx *Tx) EnqueueJobs(ctx context.Context, jobs []NewJob) error {
	if len(jobs) == 0 {
		return nil
	}
	args := make([]any, 0, len(jobs)*9)
	created := tx.store.nowMS()
	for _, j := range jobs {
		runAt := created
		if !j.RunAt.IsZero() {
			runAt = j.RunAt.UnixMilli()
		}
		state, attempt, lockedBy, lockedUntil := JobAvailable, 0, any(nil), any(nil)
		if j.LockedBy != "" {
			state, attempt, lockedBy, lockedUntil = JobRunning, 1, j.LockedBy, j.LeaseUntil.UnixMilli()
		}
		args = append(args, j.ID, state, attempt, j.MaxAttempts, runAt, lockedBy, lockedUntil, string(j.Args), created)
	}
	if tx.deferred {
		tx.jobArgs = append(tx.jobArgs, args...)
		return nil
	}
	if err := bulkInsert(ctx, tx.q, tx.positional(), jobCols, 9, args); err != nil {
		return fmt.Errorf("enqueueing %d jobs: %w", len(jobs), err)
	}
	return nil
}

// ClaimJobs marks up to n due jobs as running on node, with a lease until
// now+lease, and returns them with their attempt counted.
func (tx *Tx) ClaimJobs(ctx context.Context, node string, n int, lease time.Duration) ([]Job, error) {
	t := tx.store.nowMS()
	lock := ""
	if tx.store.name == BackendPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rs, err := tx.q.query(ctx,
		`UPDATE jobs SET state = 'running', attempt = attempt + 1, locked_by = $1, locked_until = $2
		  WHERE id IN (SELECT id FROM jobs WHERE state = 'available' AND run_at <= $3 ORDER BY run_at LIMIT $4`+lock+`)
		 RETURNING id, attempt, max_attempts, args`,
		node, t+lease.Milliseconds(), t, n)
	if err != nil {
		return nil, fmt.Errorf("claiming jobs: %w", err)
	}
	return scanJobs(rs, "claiming jobs")
}

// scanJobs reads rows of (id, attempt, max_attempts, args).
func scanJobs(rs rows, what string) ([]Job, error) {
	defer rs.Close()
	var out []Job
	for rs.Next() {
		var j Job
		var a string
		if err := rs.Scan(&j.ID, &j.Attempt, &j.MaxAttempts, &a); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		j.Args = []byte(a)
		out = append(out, j)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// FinishJob deletes a job the node holds (done, or moved to unprocessed).
func (tx *Tx) FinishJob(ctx context.Context, id, node string, attempt int) error {
	n, err := tx.q.exec(ctx, `DELETE FROM jobs WHERE id = $1 AND locked_by = $2 AND attempt = $3`, id, node, attempt)
	if err != nil {
		return fmt.Errorf("finishing job %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("finishing job %s: %w", id, ErrLeaseLost)
	}
	return nil
}

// RetryJob makes a job the node holds available again at runAt.
func (tx *Tx) RetryJob(ctx context.Context, id, node string, attempt int, runAt time.Time, lastError string) error {
	n, err := tx.q.exec(ctx,
		`UPDATE jobs SET state = 'available', run_at = $1, last_error = $2, locked_by = NULL, locked_until = NULL
		  WHERE id = $3 AND locked_by = $4 AND attempt = $5`,
		runAt.UnixMilli(), lastError, id, node, attempt)
	if err != nil {
		return fmt.Errorf("scheduling retry of job %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("scheduling retry of job %s: %w", id, ErrLeaseLost)
	}
	return nil
}

// ReleaseJob puts back a job the node holds without counting the attempt
// (the node is stopping and interrupted it).
func (s *Store) ReleaseJob(ctx context.Context, id, node string, attempt int) error {
	_, err := s.backend.writer().exec(ctx,
		`UPDATE jobs SET state = 'available', attempt = attempt - 1, run_at = $1, locked_by = NULL, locked_until = NULL
		  WHERE id = $2 AND locked_by = $3 AND attempt = $4`, s.nowMS(), id, node, attempt)
	if err != nil {
		return fmt.Errorf("releasing job %s: %w", id, err)
	}
	return nil
}

// ReleaseNodeJobs makes the jobs left running by node available again. A
// node calls it as it starts: whatever it was running died with it. Jobs
// that died in their last attempt are not run again: they stay with node,
// under a fresh lease, and are returned so that the node moves them to the
// unprocessed store.
func (s *Store) ReleaseNodeJobs(ctx context.Context, node string, lease time.Duration) (released int64, exhausted []Job, err error) {
	t := s.nowMS()
	rs, err := s.backend.writer().query(ctx,
		`UPDATE jobs SET locked_until = $1
		  WHERE state = 'running' AND locked_by = $2 AND attempt >= max_attempts
		 RETURNING id, attempt, max_attempts, args`, t+lease.Milliseconds(), node)
	if err != nil {
		return 0, nil, fmt.Errorf("releasing jobs of node %s: %w", node, err)
	}
	if exhausted, err = scanJobs(rs, "releasing jobs of node "+node); err != nil {
		return 0, nil, err
	}
	released, err = s.backend.writer().exec(ctx,
		`UPDATE jobs SET state = 'available', run_at = $1, locked_by = NULL, locked_until = NULL
		  WHERE state = 'running' AND locked_by = $2 AND attempt < max_attempts`, t, node)
	if err != nil {
		return 0, exhausted, fmt.Errorf("releasing jobs of node %s: %w", node, err)
	}
	return released, exhausted, nil
}

// RescueExpiredJobs makes running jobs whose lease ran out available again
// (their node died or hangs). Those that were in their last attempt are
// not run again: node takes them over, under a fresh lease, and they are
// returned so that node moves them to the unprocessed store.
func (s *Store) RescueExpiredJobs(ctx context.Context, node string, lease time.Duration) (rescued int64, exhausted []Job, err error) {
	t := s.nowMS()
	rs, err := s.backend.writer().query(ctx,
		`UPDATE jobs SET locked_by = $1, locked_until = $2
		  WHERE state = 'running' AND locked_until < $3 AND attempt >= max_attempts
		 RETURNING id, attempt, max_attempts, args`, node, t+lease.Milliseconds(), t)
	if err != nil {
		return 0, nil, fmt.Errorf("rescuing expired jobs: %w", err)
	}
	if exhausted, err = scanJobs(rs, "rescuing expired jobs"); err != nil {
		return 0, nil, err
	}
	rescued, err = s.backend.writer().exec(ctx,
		`UPDATE jobs SET state = 'available', run_at = $1, locked_by = NULL, locked_until = NULL
		  WHERE state = 'running' AND locked_until < $1 AND attempt < max_attempts`, t)
	if err != nil {
		return 0, exhausted, fmt.Errorf("rescuing expired jobs: %w", err)
	}
	return rescued, exhausted, nil
}

// JobCounts returns the number of jobs per state.
func (s *Store) JobCounts(ctx context.Context) (map[string]int64, error) {
	c, err := s.queryCounts(ctx, `SELECT state, COUNT(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("counting jobs: %w", err)
	}
	return c, nil
}

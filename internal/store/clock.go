package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// clockSyncEvery is how often a PostgreSQL node measures its clock against
// the database's again.
const clockSyncEvery = time.Minute

// clock tells the time the database keeps. Every node that shares a
// PostgreSQL database writes job times (when a step is due, until when a
// node holds it) and compares them with that one clock, so that a node
// whose own clock runs late or early neither takes over another node's
// steps too soon nor leaves due steps waiting. A node measures how far its
// clock is from the database's (half a round trip at most) and adds that.
// SQLite lives on this machine: its clock is the local one.
type clock struct {
	local  func() time.Time
	offset atomic.Int64 // database minus local, in nanoseconds
}

func newClock(local func() time.Time) *clock {
	if local == nil {
		local = time.Now
	}
	return &clock{local: local}
}

func (c *clock) now() time.Time {
	return c.local().Add(time.Duration(c.offset.Load()))
}

// sync measures the offset from the database clock that dbNow reads.
func (c *clock) sync(ctx context.Context, dbNow func(ctx context.Context) (time.Time, error)) error {
	before := c.local()
	db, err := dbNow(ctx)
	if err != nil {
		return fmt.Errorf("reading the database clock: %w", err)
	}
	after := c.local()
	mid := before.Add(after.Sub(before) / 2)
	c.offset.Store(int64(db.Sub(mid)))
	return nil
}

// keepSynced measures the offset every clockSyncEvery until ctx ends.
func (c *clock) keepSynced(ctx context.Context, log *slog.Logger, dbNow func(ctx context.Context) (time.Time, error)) {
	t := time.NewTicker(clockSyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.sync(ctx, dbNow); err != nil && ctx.Err() == nil {
				log.LogAttrs(ctx, slog.LevelWarn, "measuring the database clock", slog.String("error", err.Error()))
			}
		}
	}
}

// Now is the database's time as this node knows it. Job times (due, lease)
// must come from here, not from time.Now.
func (s *Store) Now() time.Time { return s.clock.now() }

// ClockOffset is how far the database clock is ahead of this node's.
func (s *Store) ClockOffset() time.Duration { return time.Duration(s.clock.offset.Load()) }

// nowMS is Now in stored form (unix milliseconds).
func (s *Store) nowMS() int64 { return s.Now().UnixMilli() }

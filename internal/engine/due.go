package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// dueWork is what a node looks for every SchedulePoll: rows that are due
// (polls, subscriptions), each handled in a goroutine of its own.
type dueWork[T any] struct {
	what string // for logs: "polls", "subscriptions"
	// max bounds how many rows are handled at once on this node.
	max int
	// list returns the rows due now.
	list func(ctx context.Context) ([]T, error)
	// key names a row; a row whose key is being handled is skipped.
	key func(T) [2]string
	// run handles one row; errTaken (another node was first) is not
	// logged.
	run func(ctx context.Context, row T) error
}

// dueLoop runs w until ctx ends, then waits for the rows in hand. It looks
// every SchedulePoll, and also as soon as half the rows in hand are done
// when the last look found more due rows than it could take.
func dueLoop[T any](ctx context.Context, e *Engine, done chan<- struct{}, w dueWork[T]) {
	defer close(done)
	t := time.NewTicker(e.cfg.SchedulePoll)
	defer t.Stop()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inFlight = map[[2]string]bool{} // flow and component ids in hand on this node
		freed    = make(chan struct{}, 1)
		behind   bool // the last look left due rows for want of room
	)
	defer wg.Wait()
	for {
		var more <-chan struct{}
		if behind {
			more = freed
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-more:
		}
		rows, err := w.list(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.log.LogAttrs(ctx, slog.LevelWarn, "listing due "+w.what, slog.String("error", err.Error()))
			}
			continue
		}
		behind = false
		for _, row := range rows {
			key := w.key(row)
			mu.Lock()
			if len(inFlight) >= w.max {
				mu.Unlock()
				behind = true
				break
			}
			if inFlight[key] {
				mu.Unlock()
				continue
			}
			inFlight[key] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(inFlight, key)
					roomy := len(inFlight) <= w.max/2 // look again once half are free, not per row
					mu.Unlock()
					if roomy {
						select {
						case freed <- struct{}{}:
						default:
						}
					}
				}()
				if err := w.run(ctx, row); err != nil && !errors.Is(err, errTaken) && ctx.Err() == nil {
					e.log.LogAttrs(ctx, slog.LevelWarn, w.what, slog.String("flow", key[0]),
						slog.String("component", key[1]), slog.String("error", err.Error()))
				}
			}()
		}
	}
}

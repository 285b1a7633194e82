package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	requestTimeout = 30 * time.Second
	errorsToLog    = 5
)

// loadSpec describes one load run against one URL.
type loadSpec struct {
	url         string             // where the webhook post goes; unused with send
	token       string             // sent as "Authorization: Bearer", when set
	check       func([]byte) error // checks the body of a 202; nil accepts any
	concurrency int
	warmup      time.Duration
	duration    time.Duration
	// windowStart, when set, is called as the measured window begins.
	windowStart func()
	// send, when set, replaces the webhook post: it sends request n and
	// returns nil when the answer counts as accepted.
	send func(ctx context.Context, client *http.Client, n int64) error
}

// loadStats is what a load run observed. Requests, accepted and the latencies
// cover the measured window only; acceptedTotal and errors include the
// warm-up, since every accepted message must be delivered and every failure
// matters.
type loadStats struct {
	elapsed       time.Duration // measured window, until the last request of it returned
	requests      int64
	accepted      int64
	acceptedTotal int64
	errors        int64
	latency       histogram
	start         time.Time // when the warm-up began
	end           time.Time // when the last request returned
}

func (s loadStats) acceptedPerSec() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.accepted) / s.elapsed.Seconds()
}

// workerStats is one worker's share of loadStats.
type workerStats struct {
	requests, accepted, acceptedTotal, errors int64
	latency                                   histogram
}

// errorLog logs the first few failed requests of a run.
type errorLog struct {
	logger *slog.Logger
	logged atomic.Int64
}

func (l *errorLog) report(msg string) {
	if l.logged.Add(1) <= errorsToLog {
		l.logger.Warn("request failed", slog.String("err", msg))
	}
}

// generate posts webhook payloads to spec.url (or sends what spec.send
// does) from spec.concurrency workers, each in a closed loop, for
// spec.warmup and then spec.duration. A 202 that passes spec.check (or a
// nil from spec.send) counts as accepted; anything else is an error.
func generate(ctx context.Context, spec loadSpec, logger *slog.Logger) loadStats {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        spec.concurrency * 2,
		MaxIdleConnsPerHost: spec.concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: requestTimeout}

	var (
		seq     atomic.Int64
		errs    = errorLog{logger: logger}
		workers = make([]workerStats, spec.concurrency)
		wg      sync.WaitGroup
	)
	start := time.Now()
	measureFrom := start.Add(spec.warmup)
	until := measureFrom.Add(spec.duration)
	if spec.windowStart != nil {
		timer := time.NewTimer(spec.warmup)
		defer timer.Stop()
		wg.Go(func() {
			select {
			case <-timer.C:
				spec.windowStart()
			case <-ctx.Done():
			}
		})
	}
	for i := range workers {
		w := &workers[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(until) {
					return
				}
				err := spec.do(ctx, client, seq.Add(1))
				took := time.Since(start)
				if err != nil && ctx.Err() != nil {
					return // interrupted: not the server's failure
				}
				measured := !start.Before(measureFrom)
				if err == nil {
					w.acceptedTotal++
				} else {
					w.errors++
					errs.report(err.Error())
				}
				if measured {
					w.requests++
					w.latency.record(took)
					if err == nil {
						w.accepted++
					}
				}
			}
		})
	}
	wg.Wait()

	stats := loadStats{start: start, end: time.Now()}
	stats.elapsed = stats.end.Sub(measureFrom)
	for i := range workers {
		w := &workers[i]
		stats.requests += w.requests
		stats.accepted += w.accepted
		stats.acceptedTotal += w.acceptedTotal
		stats.errors += w.errors
		stats.latency.merge(&w.latency)
	}
	if n := errs.logged.Load(); n > errorsToLog {
		logger.Warn("more requests failed", slog.Int64("notLogged", n-errorsToLog))
	}
	return stats
}

// do sends request n: spec.send's, or the webhook post.
func (spec loadSpec) do(ctx context.Context, client *http.Client, n int64) error {
	if spec.send != nil {
		return spec.send(ctx, client, n)
	}
	return post(ctx, client, spec, n)
}

// post sends payload number n to spec.url and fails unless the answer is
// 202 and passes spec.check. It reads the whole answer so that the
// connection goes back to the pool.
func post(ctx context.Context, client *http.Client, spec loadSpec, n int64) error {
	body := fmt.Appendf(nil, `{"user":{"email":"u%d@example.com"},"n":%d}`, n, n)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if spec.token != "" {
		req.Header.Set("Authorization", "Bearer "+spec.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		detail, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("POST %s: status %d, want 202: %s", spec.url, resp.StatusCode, bytes.TrimSpace(detail))
	}
	if spec.check == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("POST %s: reading answer: %w", spec.url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if err := spec.check(answer); err != nil {
		return fmt.Errorf("POST %s: 202, but %w: %s", spec.url, err, truncate(string(bytes.TrimSpace(answer)), 300))
	}
	return nil
}

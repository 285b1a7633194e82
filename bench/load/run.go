package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

const (
	adminEmail = "bench@example.com"
	logTail    = 20 // server log lines shown when a run fails

	// errInterrupted marks a run cut short by Ctrl-C: its figures are kept
	// in the JSON line but are not a measurement.
	errInterrupted = "interrupted before the end of the run"
)

// runBaseline loads the bare net/http server at concurrency c.
func runBaseline(ctx context.Context, cfg config, work string, c int, logger *slog.Logger) Result {
	r := Result{Scenario: cfg.scenario, Target: "baseline", Concurrency: c}
	logger = logger.With(slog.String("target", r.Target), slog.Int("c", c))
	if err := measureBaseline(ctx, cfg, work, &r, logger); err != nil {
		r.Error = err.Error()
		logger.Error("run failed", slog.Any("err", err))
		return r
	}
	if ctx.Err() != nil {
		r.Error = errInterrupted
		return r
	}
	one := 1.0
	r.VsBaseline = &one
	return r
}

func measureBaseline(ctx context.Context, cfg config, work string, r *Result, logger *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating the load tool's binary: %w", err)
	}
	dir, err := os.MkdirTemp(work, "baseline-")
	if err != nil {
		return fmt.Errorf("creating run directory: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := launch(ctx, processSpec{
		path:    exe,
		args:    []string{baselineCommand},
		env:     map[string]string{"PLUGBOARD_ADDR": addr},
		logPath: filepath.Join(dir, "server.log"),
	}, addr, r, logger)
	if err != nil {
		return err
	}
	defer shutdown(p, r, logger)

	logger.Info("loading", slog.Duration("warmup", cfg.warmup), slog.Duration("duration", cfg.duration))
	loadServer(ctx, p, loadSpec{
		url:         p.baseURL() + "/hook",
		concurrency: r.Concurrency,
		warmup:      cfg.warmup,
		duration:    cfg.duration,
	}, r, logger)
	return nil
}

// runPlugboard runs variant v of the scenario on a fresh Plugboard server
// at concurrency c, on SQLite or, with -pg, on PostgreSQL.
func runPlugboard(ctx context.Context, cfg config, bin, work string, c int, v variant, logger *slog.Logger) Result {
	r := Result{Scenario: cfg.scenario, Target: "plugboard-sqlite", Concurrency: c}
	if cfg.pgURL != "" {
		r.Target = "plugboard-postgres"
	}
	logger = logger.With(slog.String("target", r.Target), slog.Int("c", c))
	if cfg.scenario == scenarioSteps {
		r.Steps = &v.steps
		logger = logger.With(slog.Int("steps", v.steps))
	}
	if err := measurePlugboard(ctx, cfg, bin, work, v, &r, logger); err != nil {
		r.Error = err.Error()
		logger.Error("run failed", slog.Any("err", err))
		return r
	}
	if ctx.Err() != nil {
		r.Error = errInterrupted
	}
	return r
}

func measurePlugboard(ctx context.Context, cfg config, bin, work string, v variant, r *Result, logger *slog.Logger) error {
	dir, err := os.MkdirTemp(work, "plugboard-")
	if err != nil {
		return fmt.Errorf("creating run directory: %w", err)
	}
	spec, password, cleanup, err := plugboardSpec(ctx, cfg, bin, dir, logger)
	if err != nil {
		return err
	}
	defer cleanup()

	snk, err := startSink(cfg.scenario.deliveryCheck(v), logger)
	if err != nil {
		return err
	}
	defer snk.close()

	p, err := launch(ctx, spec, spec.env["PLUGBOARD_ADDR"], r, logger)
	if err != nil {
		return err
	}
	defer shutdown(p, r, logger)

	api := newAPIClient(p.baseURL())
	if err := api.signIn(ctx, adminEmail, password); err != nil {
		return withLog(err, p)
	}
	logger.Info("setting up", slog.String("scenario", string(cfg.scenario)))
	wl, err := cfg.scenario.setup(ctx, api, snk.url, v)
	if err != nil {
		return withLog(err, p)
	}
	r.Note = wl.note

	logger.Info("loading", slog.String("url", wl.url),
		slog.Duration("warmup", cfg.warmup), slog.Duration("duration", cfg.duration))
	stats := loadServer(ctx, p, loadSpec{
		url:         wl.url,
		token:       wl.token,
		check:       wl.check,
		concurrency: r.Concurrency,
		warmup:      cfg.warmup,
		duration:    cfg.duration,
	}, r, logger)

	expected := stats.acceptedTotal * wl.fanOut
	logger.Info("waiting for deliveries", slog.Int64("accepted", stats.acceptedTotal),
		slog.Int64("expected", expected), slog.Duration("timeout", cfg.drainTimeout))
	drained := snk.waitDelivered(ctx, expected, cfg.drainTimeout)
	r.addDelivery(snk.counts(), expected, drained, time.Since(stats.end), stats.end.Sub(stats.start))
	if !drained {
		logger.Warn("not every expected delivery arrived",
			slog.Int64("delivered", r.Delivery.Delivered), slog.Int64("expected", expected))
	}
	return nil
}

// loadServer loads p as spec says and records the load's figures in r, with
// the server's CPU time over the measured window.
func loadServer(ctx context.Context, p *serverProcess, spec loadSpec, r *Result, logger *slog.Logger) loadStats {
	var (
		before  time.Duration
		sampled bool
		err     error
	)
	spec.windowStart = func() {
		before, err = p.cpuTime()
		sampled = err == nil
	}
	stats := generate(ctx, spec, logger) // returns after windowStart
	r.addLoad(stats)
	if sampled {
		var after time.Duration
		if after, err = p.cpuTime(); err == nil {
			r.addCPU(after - before)
		}
	}
	if err != nil {
		logger.Warn("measuring CPU time", slog.Any("err", err))
	}
	return stats
}

// launch starts a server, waits until it is ready and records its start-up
// time and idle memory. The caller must call shutdown on the returned process.
func launch(ctx context.Context, spec processSpec, addr string, r *Result, logger *slog.Logger) (*serverProcess, error) {
	p, err := startServer(spec, addr)
	if err != nil {
		return nil, err
	}
	startup, err := p.waitReady(ctx)
	if err != nil {
		_ = p.stop()
		return nil, withLog(err, p)
	}
	r.StartupMs = ms(startup)
	logger.Info("server ready", slog.String("addr", addr), slog.Duration("startup", startup))

	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
	}
	if rss, _, err := p.memory(); err != nil {
		logger.Warn("measuring idle memory", slog.Any("err", err))
	} else {
		r.IdleRSSMB = megabytes(rss)
	}
	return p, nil
}

// shutdown records the server's peak memory and stops it with SIGTERM.
func shutdown(p *serverProcess, r *Result, logger *slog.Logger) {
	if _, peak, err := p.memory(); err != nil {
		logger.Warn("measuring peak memory", slog.Any("err", err))
	} else {
		r.PeakRSSMB = megabytes(peak)
	}
	if err := p.stop(); err != nil {
		r.StopError = err.Error()
		logger.Warn("stopping server", slog.Any("err", err))
	}
}

// withLog appends the end of the server's log to err.
func withLog(err error, p *serverProcess) error {
	tail := p.logTail(logTail)
	if tail == "" {
		return err
	}
	return fmt.Errorf("%w\nlast lines of the server log:\n%s", err, tail)
}

// plugboardSpec is how to start Plugboard for a run: on a free loopback
// port, with a fresh data directory (and, with -pg, schema), a secret key
// of its own, the admin's credentials (password is new) and private
// networks allowed (the sink and the APIs are on 127.0.0.1). cleanup
// drops the schema; the caller calls it once the server has stopped.
func plugboardSpec(ctx context.Context, cfg config, bin, dir string, logger *slog.Logger) (spec processSpec, password string, cleanup func(), err error) {
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		return processSpec{}, "", nil, fmt.Errorf("creating data directory: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return processSpec{}, "", nil, err
	}
	password = rand.Text()
	secretKey := make([]byte, 32)
	_, _ = rand.Read(secretKey) // never fails
	spec = processSpec{
		path: bin,
		args: []string{"serve"},
		env: map[string]string{
			"PLUGBOARD_ADDR": addr,
			// A key of its own, or the server creates a key file and warns.
			"PLUGBOARD_SECRET_KEY":             base64.StdEncoding.EncodeToString(secretKey),
			"PLUGBOARD_DATA_DIR":               dataDir,
			"PLUGBOARD_ADMIN_EMAIL":            adminEmail,
			"PLUGBOARD_ADMIN_PASSWORD":         password,
			"PLUGBOARD_ALLOW_PRIVATE_NETWORKS": "true",
		},
		logPath: filepath.Join(dir, "server.log"),
	}
	cleanup = func() {}
	if cfg.pgURL != "" {
		dsn, drop, err := freshSchema(ctx, cfg.pgURL)
		if err != nil {
			return processSpec{}, "", nil, err
		}
		cleanup = func() {
			dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := drop(dropCtx); err != nil {
				logger.Warn("cleaning up", slog.Any("err", err))
			}
		}
		spec.env["PLUGBOARD_DATABASE_URL"] = dsn
	}
	return spec, password, cleanup, nil
}

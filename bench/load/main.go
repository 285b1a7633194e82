// Command load measures how many webhook messages (or app events) Plugboard
// accepts per second, how long it takes to deliver them, and what that costs
// in CPU, memory and start-up time, next to a bare net/http server loaded the
// same way on the same machine; or what a request through an account adds
// to the same request sent to the API directly.
//
//	go run ./bench/load [-scenario webhook|appevents|steps] [-c 32,64] [-d 10s] [-pg postgres://...]
//	go run ./bench/load -scenario polls [-flows 5000] [-poll-interval 5s,10s] [-d 60s] [-pg postgres://...]
//	go run ./bench/load -scenario proxy [-c 1,16] [-d 10s] [-api-latency 20ms] [-pg postgres://...]
//
// See bench/README.md for the flags and the meaning of each column.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the validated command line.
type config struct {
	scenario      scenario
	concurrency   []int
	duration      time.Duration
	warmup        time.Duration
	drainTimeout  time.Duration
	pgURL         string
	bin           string
	skipBaseline  bool
	skipPlugboard bool
	jsonOnly      bool

	// scenario proxy
	apiLatency time.Duration

	// scenario polls
	flows         int
	pollIntervals []time.Duration
	itemEvery     int
}

// subCommands are the servers the load tool starts itself as, so that each
// is a process of its own, measured like Plugboard: the first argument
// names one, the rest are its arguments.
var subCommands = map[string]struct {
	name  string // in the message of a failure
	serve func(ctx context.Context, args []string) error
}{
	baselineCommand:       {"baseline server", serveBaseline},
	proxyAPICommand:       {"proxy API", serveProxyAPI},
	bareProxyCommand:      {"bare proxy", serveBareProxy},
	baselinePollerCommand: {"baseline poller", serveBaselinePoller},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 {
		if cmd, ok := subCommands[os.Args[1]]; ok {
			if err := cmd.serve(ctx, os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", cmd.name, err)
				os.Exit(1)
			}
			return
		}
	}

	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	os.Exit(run(ctx, cfg, logger, os.Stdout))
}

func parseFlags(args []string, output io.Writer) (config, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintln(output, "Usage: go run ./bench/load [flags]")
		fmt.Fprintln(output, "\nLoads a bare net/http server, then Plugboard, with the same traffic and reports both.")
		fmt.Fprintln(output, "\nFlags:")
		fs.PrintDefaults()
	}
	var (
		cfg                     config
		durationSet, concurrSet bool
	)
	scen := fs.String("scenario", string(scenarioWebhook), "what Plugboard runs: `name` webhook, appevents, steps, polls or proxy (see bench/README.md)")
	conc := fs.String("c", "64", "concurrent `workers`; a comma-separated list (32,64) runs each in turn (1,16 with -scenario proxy)")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "measured load `duration` per run (60s with -scenario polls)")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "warm-up before the measured window (not counted)")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 120*time.Second, "how long to wait for every accepted message to be delivered")
	fs.StringVar(&cfg.pgURL, "pg", "", "PostgreSQL `URL`: run Plugboard on PostgreSQL (in a fresh schema) instead of SQLite")
	fs.StringVar(&cfg.bin, "bin", "", "Plugboard binary to run (default: build ./cmd/plugboard)")
	fs.BoolVar(&cfg.skipBaseline, "skip-baseline", false, "do not run the baseline")
	fs.BoolVar(&cfg.skipPlugboard, "skip-plugboard", false, "run only the baseline")
	fs.BoolVar(&cfg.jsonOnly, "json", false, "print only one JSON line per run")
	fs.IntVar(&cfg.flows, "flows", 5000, "polls: running flows, each with a polling trigger")
	every := fs.String("poll-interval", "5s", "polls: every trigger's poll `interval`; a list (5s,30s) runs each in turn")
	fs.IntVar(&cfg.itemEvery, "item-every", 100, "polls: one poll in `n` finds a new item, which starts a run (0: never)")
	fs.DurationVar(&cfg.apiLatency, "api-latency", 0, "proxy: how long the API waits before each answer, as a real API would")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "d":
			durationSet = true
		case "c":
			concurrSet = true
		}
	})
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.scenario, err = parseScenario(*scen); err != nil {
		return config{}, err
	}
	if cfg.concurrency, err = parseConcurrency(*conc); err != nil {
		return config{}, err
	}
	if cfg.pollIntervals, err = parseIntervals(*every); err != nil {
		return config{}, err
	}
	if cfg.scenario == scenarioPolls && !durationSet {
		cfg.duration = 60 * time.Second // several polls of every flow
	}
	if cfg.scenario == scenarioProxy && !concurrSet {
		cfg.concurrency = slices.Clone(proxyDefaultConcurrency)
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	switch {
	case c.duration <= 0:
		return fmt.Errorf("-d must be positive, got %s", c.duration)
	case c.warmup < 0:
		return fmt.Errorf("-warmup must not be negative, got %s", c.warmup)
	case c.drainTimeout <= 0:
		return fmt.Errorf("-drain-timeout must be positive, got %s", c.drainTimeout)
	case c.skipBaseline && c.skipPlugboard:
		return errors.New("-skip-baseline and -skip-plugboard leave nothing to run")
	case c.flows < 1:
		return fmt.Errorf("-flows must be positive, got %d", c.flows)
	case c.itemEvery < 0:
		return fmt.Errorf("-item-every must not be negative, got %d", c.itemEvery)
	case c.apiLatency < 0:
		return fmt.Errorf("-api-latency must not be negative, got %s", c.apiLatency)
	case c.apiLatency > 0 && c.scenario != scenarioProxy:
		return errors.New("-api-latency applies to -scenario proxy only")
	}
	return nil
}

// parseConcurrency reads "64" or "32,64,128".
func parseConcurrency(s string) ([]int, error) {
	var out []int
	for field := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-c: %q is not a positive number of workers", field)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseIntervals reads "5s" or "5s,30s,1m".
func parseIntervals(s string) ([]time.Duration, error) {
	var out []time.Duration
	for field := range strings.SplitSeq(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(field))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("-poll-interval: %q is not a positive duration", field)
		}
		out = append(out, d)
	}
	return out, nil
}

// run executes every requested run and prints the report. It returns the
// process exit code: 1 when a run failed or the load was interrupted.
func run(ctx context.Context, cfg config, logger *slog.Logger, stdout io.Writer) int {
	work, err := os.MkdirTemp("", "plugboard-bench-")
	if err != nil {
		logger.Error("creating work directory", slog.Any("err", err))
		return 1
	}
	defer os.RemoveAll(work)

	var bin string
	if !cfg.skipPlugboard {
		bin = cfg.bin
		if bin == "" {
			logger.Info("building plugboard")
			if bin, err = buildPlugboard(ctx, work); err != nil {
				logger.Error("building plugboard", slog.Any("err", err))
				return 1
			}
		}
	}

	var results []Result
	switch cfg.scenario {
	case scenarioPolls:
		results = runPollScenario(ctx, cfg, bin, work, logger)
	case scenarioProxy:
		results = runProxyScenario(ctx, cfg, bin, work, logger)
	default:
		results = runLoads(ctx, cfg, bin, work, logger)
	}

	if !cfg.jsonOnly {
		writeTable(stdout, cfg.scenario, results)
		fmt.Fprintln(stdout)
	}
	if err := writeJSONLines(stdout, results); err != nil {
		logger.Error("writing results", slog.Any("err", err))
		return 1
	}
	for _, r := range results {
		if r.Error != "" {
			return 1
		}
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// runLoads runs, at each concurrency in turn, the baseline and then the
// scenario's Plugboard runs, all loaded with requests.
func runLoads(ctx context.Context, cfg config, bin, work string, logger *slog.Logger) []Result {
	var results []Result
	for _, c := range cfg.concurrency {
		var baseline *Result
		if !cfg.skipBaseline {
			r := runBaseline(ctx, cfg, work, c, logger)
			baseline = &r
			results = append(results, r)
		}
		var runs []Result
		for _, v := range cfg.scenario.variants() {
			if cfg.skipPlugboard || ctx.Err() != nil {
				break
			}
			runs = append(runs, runPlugboard(ctx, cfg, bin, work, c, v, logger))
		}
		compare(baseline, runs)
		results = append(results, runs...)
		if ctx.Err() != nil {
			logger.Warn("interrupted")
			break
		}
	}
	return results
}

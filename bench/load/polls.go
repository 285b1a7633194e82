package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The polls scenario: many running flows whose trigger polls an API inside
// the load tool. The API notes when each flow polls it, so that the tool
// can tell how often each flow was polled and how late; the baseline is a
// plain Go program polling the same API at the same rate.

const (
	// baselinePollerCommand makes the load tool run the polling baseline:
	// one ticker per simulated flow, in a process of its own.
	baselinePollerCommand = "baseline-poller"

	pollConnector     = "bench-poll"
	pollComponent     = "Poll"
	pollTriggerID     = "poll"
	pollSetupWorkers  = 16               // flows created and started at once
	pollMaxItems      = 100              // items the API answers at most per request
	baselinePages     = 10               // requests of one baseline poll at most, as the trigger's
	pollProgressEvery = 10 * time.Second // how often progress is logged
	pollMinWarmup     = 10 * time.Second // the least warm-up before the window
)

// pollFigures are the figures of one polls run, in Result.Polls.
type pollFigures struct {
	Flows        int      `json:"flows"`
	IntervalS    float64  `json:"intervalS"`
	TargetPerSec float64  `json:"targetPerSec"` // flows ÷ interval
	Polls        int64    `json:"polls"`        // polls the API answered in the measured window
	PollsPerSec  float64  `json:"pollsPerSec"`
	LagP50Ms     float64  `json:"lagP50Ms"`
	LagP99Ms     float64  `json:"lagP99Ms"`
	LagMaxMs     float64  `json:"lagMaxMs"`
	LagSamples   int64    `json:"lagSamples"`
	Unpolled     int      `json:"unpolled"`                 // flows not polled at all in the measured window
	Runs         int64    `json:"runs"`                     // distinct items that reached the API's run endpoint in the window
	RunsTotal    int64    `json:"runsTotal"`                // the same over the whole run
	RunDupes     int64    `json:"runDuplicates"`            // items that arrived more than once
	BadRequests  int64    `json:"badRequests"`              // requests to the API it could not place
	Pages        int64    `json:"pages"`                    // follow-up page requests (not polls) over the whole run
	CPUCores     *float64 `json:"cpuCores,omitempty"`       // CPU s ÷ window s
	CPUPer1k     *float64 `json:"cpuSPer1kPolls,omitempty"` // CPU s per 1,000 polls
	RSSMB        float64  `json:"rssMB"`                    // resident memory at the end of the window
	SetupS       float64  `json:"setupS"`                   // publishing, installing, creating and starting the flows
	Warnings     int      `json:"serverWarnings"`           // WARN and ERROR lines in the server's log
	FirstWarning string   `json:"firstServerWarning,omitempty"`

	CPUVsBaseline *float64 `json:"cpuPerPollVsBaseline,omitempty"` // CPUPer1k ÷ the baseline's
	RSSVsBaseline *float64 `json:"rssVsBaseline,omitempty"`        // RSSMB ÷ the baseline's
}

// pollRecorder keeps, per flow, when the API was last polled, and over the
// measured window the polls and their scheduling lag: how much later than
// one interval after the flow's previous poll each poll came. A poll that
// comes early counts as no lag. It also decides what the API answers.
// Safe for concurrent use.
//
// A trigger whose cursor moved asks again at once for the next page: a
// request that follows an answer with items within half an interval is
// such a page, part of the poll before it, not a poll of its own.
type pollRecorder struct {
	every     time.Duration
	itemEvery int

	mu       sync.Mutex
	last     []time.Time // per flow: the last poll (its first request)
	lastReq  []time.Time // per flow: the last request, pages included
	gave     []bool      // per flow: the last answer listed items
	count    []int       // per flow: polls so far
	pages    int64       // follow-up page requests over the whole run
	from     time.Time   // measured window; zero until it begins
	until    time.Time   // zero until it ends
	total    int64       // polls over the whole run
	polls    int64       // polls in the window
	lag      histogram
	runs     map[string]int // item id: arrivals
	inWindow int64          // distinct items that arrived in the window
	dupes    int64
	bad      int64
}

func newPollRecorder(flows int, every time.Duration, itemEvery int) *pollRecorder {
	return &pollRecorder{
		every:     every,
		itemEvery: itemEvery,
		last:      make([]time.Time, flows),
		lastReq:   make([]time.Time, flows),
		gave:      make([]bool, flows),
		count:     make([]int, flows),
		runs:      make(map[string]int),
	}
}

// windowOpen reports whether at falls in the measured window. The caller
// holds mu.
func (r *pollRecorder) windowOpen(at time.Time) bool {
	return !r.from.IsZero() && !at.Before(r.from) && (r.until.IsZero() || at.Before(r.until))
}

// poll records a request of flow at at, asking for the items after
// after, and returns the answer's items; ok is false when there is no
// such flow. A request that is not a follow-up page is a poll: counted,
// its lag recorded, and it may find a new item (see pollItems).
func (r *pollRecorder) poll(flow int, at time.Time, after int) (items []map[string]any, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if flow < 0 || flow >= len(r.last) {
		r.bad++
		return nil, false
	}
	page := r.gave[flow] && at.Sub(r.lastReq[flow]) < r.every/2
	r.lastReq[flow] = at
	if page {
		r.pages++
	} else {
		prev := r.last[flow]
		r.last[flow] = at
		r.count[flow]++
		r.total++
		if r.windowOpen(at) {
			r.polls++
			if !prev.IsZero() {
				r.lag.record(at.Sub(prev) - r.every)
			}
		}
	}
	items = pollItems(flow, r.count[flow], r.itemEvery, after)
	r.gave[flow] = len(items) > 0
	return items, true
}

// run records the arrival of item id at the run endpoint.
func (r *pollRecorder) run(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[id]++
	switch {
	case r.runs[id] > 1:
		r.dupes++
	case r.windowOpen(at):
		r.inWindow++
	}
}

// badRequest counts a request the API could not place.
func (r *pollRecorder) badRequest() {
	r.mu.Lock()
	r.bad++
	r.mu.Unlock()
}

// begin opens the measured window at from.
func (r *pollRecorder) begin(from time.Time) {
	r.mu.Lock()
	r.from = from
	r.mu.Unlock()
}

// progress returns the polls so far, and how many flows are overdue at now
// by more than one interval (a poll due and not made), with the most
// overdue one's delay.
func (r *pollRecorder) progress(now time.Time) (total int64, overdue int, worst time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, last := range r.last {
		if last.IsZero() {
			continue
		}
		if late := now.Sub(last) - r.every; late > r.every {
			overdue++
			worst = max(worst, late)
		}
	}
	return r.total, overdue, worst
}

// finish closes the measured window at until and fills in the polls, lag
// and runs of f. A flow whose next poll is overdue at until adds that
// delay as one more lag sample (the poll will be at least that late); a
// flow never polled counts as due since the window began.
func (r *pollRecorder) finish(until time.Time, f *pollFigures) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.until = until
	lag := r.lag // a copy: the open gaps are added to it only
	f.Unpolled = 0
	for _, last := range r.last {
		due := last.Add(r.every)
		if last.IsZero() {
			due = r.from
		}
		if last.Before(r.from) {
			f.Unpolled++
		}
		if late := until.Sub(due); late > 0 {
			lag.record(late)
		}
	}
	window := until.Sub(r.from).Seconds()
	f.Polls = r.polls
	if window > 0 {
		f.PollsPerSec = float64(r.polls) / window
	}
	f.LagP50Ms = ms(lag.quantile(0.50))
	f.LagP99Ms = ms(lag.quantile(0.99))
	f.LagMaxMs = ms(lag.max)
	f.LagSamples = int64(lag.total)
	f.Runs = r.inWindow
	f.RunsTotal = int64(len(r.runs))
	f.RunDupes = r.dupes
	f.BadRequests = r.bad
	f.Pages = r.pages
}

// pollItems returns the items of a flow's API after its poll number n.
// One item was created at each poll whose number plus the flow's index is
// a multiple of itemEvery (none when itemEvery is 0), so that across flows
// one poll in itemEvery finds a new item from the start; those with a
// sequence number (the poll's) above after are listed, oldest first, at
// most pollMaxItems.
func pollItems(flow, n, itemEvery, after int) []map[string]any {
	items := []map[string]any{}
	if itemEvery <= 0 {
		return items
	}
	seq := max(after, 0) + 1
	if r := (seq + flow) % itemEvery; r != 0 {
		seq += itemEvery - r
	}
	for ; seq <= n && len(items) < pollMaxItems; seq += itemEvery {
		items = append(items, map[string]any{"id": itemID(flow, seq), "seq": seq})
	}
	return items
}

func itemID(flow, seq int) string { return strconv.Itoa(flow) + "-" + strconv.Itoa(seq) }

// parseItemID reads an item id "<flow>-<seq>" back.
func parseItemID(id string) (flow, seq int, ok bool) {
	f, s, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	flow, err1 := strconv.Atoi(f)
	seq, err2 := strconv.Atoi(s)
	return flow, seq, err1 == nil && err2 == nil && flow >= 0 && seq > 0
}

// pollAPI is the API every polling flow calls: GET /poll/{flow}?after=<seq>
// answers {"data": [items]}, and the flows' action posts each item to
// POST /runs.
type pollAPI struct {
	srv *http.Server
	url string
	rec *pollRecorder
}

func startPollAPI(rec *pollRecorder, logger *slog.Logger) (*pollAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the polled API: %w", err)
	}
	a := &pollAPI{url: "http://" + ln.Addr().String(), rec: rec}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /poll/{flow}", a.servePoll)
	mux.HandleFunc("POST /runs", a.serveRun)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("polled API stopped", slog.Any("err", err))
		}
	}()
	return a, nil
}

func (a *pollAPI) servePoll(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	flow, err := strconv.Atoi(r.PathValue("flow"))
	if err != nil {
		a.rec.badRequest()
		http.Error(w, "no such flow", http.StatusNotFound)
		return
	}
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	items, ok := a.rec.poll(flow, at, after)
	if !ok {
		http.Error(w, "no such flow", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": items})
}

func (a *pollAPI) serveRun(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var item struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&item); err != nil {
		a.rec.badRequest()
		http.Error(w, "not an item", http.StatusBadRequest)
		return
	}
	if _, _, ok := parseItemID(item.ID); !ok {
		a.rec.badRequest()
		http.Error(w, "not an item", http.StatusBadRequest)
		return
	}
	a.rec.run(item.ID, at)
	w.WriteHeader(http.StatusOK)
}

func (a *pollAPI) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

// pollManifest is the connector whose trigger Poll polls apiURL, every
// minute by the manifest (the server's poll interval replaces that): a
// flow's property "flow" names its path, and the cursor is the greatest
// item sequence number seen.
func pollManifest(apiURL string) map[string]any {
	return map[string]any{
		"name": pollConnector, "version": "1.0.0", "label": "Bench poll",
		"description": "A polling trigger for the load tool's polls scenario.",
		"components": []any{map[string]any{
			"name": pollComponent, "kind": "trigger", "description": "Items new since the last poll.",
			"properties": map[string]any{
				"type": "object", "required": []any{"flow"},
				"properties": map[string]any{"flow": map[string]any{"type": "string"}},
			},
			"polling": map[string]any{
				"interval":    "1m",
				"request":     map[string]any{"method": "GET", "url": apiURL + "/poll/{{ $.properties.flow }}"},
				"itemsPath":   "data",
				"idField":     "id",
				"cursorField": "seq",
				"cursorParam": "after",
			},
		}},
	}
}

// connectorZip packs a manifest and a changelog into a connector archive.
func connectorZip(manifest map[string]any) ([]byte, error) {
	m, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{"connector.json", m}, {"CHANGELOG.md", []byte("# 1.0.0\n\nFirst version.\n")}} {
		w, err := zw.Create(f.name)
		if err != nil {
			return nil, fmt.Errorf("packing %s: %w", f.name, err)
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, fmt.Errorf("packing %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("packing connector: %w", err)
	}
	return buf.Bytes(), nil
}

// pollFlow is flow i of the scenario: poll (the connector's trigger,
// polling /poll/i) -> call (core.HttpRequest), posting each item to the
// API's run endpoint.
func pollFlow(apiURL string, i int) map[string]any {
	return map[string]any{
		"name": fmt.Sprintf("bench poll %d", i),
		"components": map[string]any{
			pollTriggerID: component(pollConnector+"."+pollComponent, map[string]any{"flow": strconv.Itoa(i)}),
			"call":        postTo(apiURL+"/runs", "{{ $."+pollTriggerID+" }}"),
		},
		"links": []map[string]string{{"from": pollTriggerID, "to": "call"}},
	}
}

// publishConnector uploads a connector archive.
func (a *apiClient) publishConnector(ctx context.Context, archive []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/api/v1/connectors", bytes.NewReader(archive))
	if err != nil {
		return fmt.Errorf("publishing connector: %w", err)
	}
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+a.token)
	if _, err := roundTrip(a.http, req, http.StatusCreated); err != nil {
		return fmt.Errorf("publishing connector: %w", err)
	}
	return nil
}

// setupPolls publishes and installs the polling connector, then creates
// and starts flows flows, pollSetupWorkers at a time.
func setupPolls(ctx context.Context, api *apiClient, apiURL string, flows int, logger *slog.Logger) error {
	archive, err := connectorZip(pollManifest(apiURL))
	if err != nil {
		return err
	}
	if err := api.publishConnector(ctx, archive); err != nil {
		return err
	}
	if err := api.call(ctx, http.MethodPost, "/api/v1/connectors/"+pollConnector+"/install",
		map[string]string{"version": "1.0.0"}, http.StatusOK, nil); err != nil {
		return fmt.Errorf("installing connector: %w", err)
	}
	// Keep the workers' connections: the default client keeps two.
	setup := &apiClient{base: api.base, token: api.token, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: pollSetupWorkers, IdleConnTimeout: 90 * time.Second},
	}}
	defer setup.http.CloseIdleConnections()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
	)
	for range min(pollSetupWorkers, flows) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= flows {
					return
				}
				f, err := setup.createFlow(ctx, pollFlow(apiURL, i))
				if err == nil {
					err = setup.startFlow(ctx, f.ID)
				}
				if err != nil {
					cancel(fmt.Errorf("flow %d of %d: %w", i+1, flows, err))
					return
				}
				if n := done.Add(1); n%1000 == 0 {
					logger.Info("flows started", slog.Int64("flows", n))
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx) // nil unless a flow failed or ctx ended
}

// runPollScenario runs, for each poll interval in turn, the polling
// baseline and then Plugboard.
func runPollScenario(ctx context.Context, cfg config, bin, work string, logger *slog.Logger) []Result {
	var results []Result
	for _, every := range cfg.pollIntervals {
		var baseline *Result
		if !cfg.skipBaseline {
			r := runPolls(ctx, cfg, "", work, every, logger)
			baseline = &r
			results = append(results, r)
		}
		if !cfg.skipPlugboard && ctx.Err() == nil {
			r := runPolls(ctx, cfg, bin, work, every, logger)
			comparePolls(baseline, &r)
			results = append(results, r)
		}
		if ctx.Err() != nil {
			logger.Warn("interrupted")
			break
		}
	}
	return results
}

// comparePolls fills in run's figures relative to the baseline (nil when
// it did not run): polls/s, CPU per poll and resident memory.
func comparePolls(baseline, run *Result) {
	if baseline == nil || baseline.Error != "" || run.Error != "" || baseline.Polls == nil || run.Polls == nil {
		return
	}
	b, p := baseline.Polls, run.Polls
	if b.PollsPerSec > 0 {
		v := p.PollsPerSec / b.PollsPerSec
		run.VsBaseline = &v
	}
	if b.CPUPer1k != nil && p.CPUPer1k != nil && *b.CPUPer1k > 0 {
		v := *p.CPUPer1k / *b.CPUPer1k
		p.CPUVsBaseline = &v
	}
	if b.RSSMB > 0 {
		v := p.RSSMB / b.RSSMB
		p.RSSVsBaseline = &v
	}
}

// runPolls runs the polls scenario at one interval: on Plugboard when bin
// is set, else on the baseline poller.
func runPolls(ctx context.Context, cfg config, bin, work string, every time.Duration, logger *slog.Logger) Result {
	r := Result{Scenario: scenarioPolls, Target: "baseline", Concurrency: pollSetupWorkers}
	switch {
	case bin == "":
	case cfg.pgURL != "":
		r.Target = "plugboard-postgres"
	default:
		r.Target = "plugboard-sqlite"
	}
	r.Polls = &pollFigures{
		Flows:        cfg.flows,
		IntervalS:    every.Seconds(),
		TargetPerSec: float64(cfg.flows) / every.Seconds(),
	}
	logger = logger.With(slog.String("target", r.Target), slog.Duration("every", every))
	if err := measurePolls(ctx, cfg, bin, work, every, &r, logger); err != nil {
		r.Error = err.Error()
		logger.Error("run failed", slog.Any("err", err))
		return r
	}
	if ctx.Err() != nil {
		r.Error = errInterrupted
		return r
	}
	if bin == "" {
		one := 1.0
		r.VsBaseline = &one
	}
	return r
}

func measurePolls(ctx context.Context, cfg config, bin, work string, every time.Duration, r *Result, logger *slog.Logger) error {
	rec := newPollRecorder(cfg.flows, every, cfg.itemEvery)
	api, err := startPollAPI(rec, logger)
	if err != nil {
		return err
	}
	defer api.close()

	dir, err := os.MkdirTemp(work, "polls-")
	if err != nil {
		return fmt.Errorf("creating run directory: %w", err)
	}
	var (
		spec     processSpec
		password string
	)
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("locating the load tool's binary: %w", err)
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		spec = processSpec{
			path:    exe,
			args:    []string{baselinePollerCommand, api.url, strconv.Itoa(cfg.flows), every.String()},
			env:     map[string]string{"PLUGBOARD_ADDR": addr},
			logPath: filepath.Join(dir, "server.log"),
		}
	} else {
		var cleanup func()
		if spec, password, cleanup, err = plugboardSpec(ctx, cfg, bin, dir, logger); err != nil {
			return err
		}
		defer cleanup()
		spec.env["PLUGBOARD_POLL_INTERVAL"] = every.String()
	}

	p, err := launch(ctx, spec, spec.env["PLUGBOARD_ADDR"], r, logger)
	if err != nil {
		return err
	}
	defer shutdown(p, r, logger)
	if bin != "" {
		defer func() { r.Polls.Warnings, r.Polls.FirstWarning = logWarnings(p.logPath) }()
	}

	logger.Info("setting up", slog.Int("flows", cfg.flows))
	started := time.Now()
	if bin == "" {
		err = startBaselinePoller(ctx, p.baseURL())
	} else {
		admin := newAPIClient(p.baseURL())
		if err = admin.signIn(ctx, adminEmail, password); err == nil {
			err = setupPolls(ctx, admin, api.url, cfg.flows, logger)
		}
	}
	if err != nil {
		return withLog(err, p)
	}
	r.Polls.SetupS = time.Since(started).Seconds()

	// Every flow has polled, and the polls of the set-up have settled
	// into the flows' rhythm, before the window opens.
	warmup := max(cfg.warmup, 2*every, pollMinWarmup)
	logger.Info("polling", slog.Duration("setup", time.Since(started).Round(time.Millisecond)),
		slog.Duration("warmup", warmup), slog.Duration("duration", cfg.duration))
	stopProgress := logPollProgress(ctx, rec, logger)
	defer stopProgress()
	if !sleep(ctx, warmup) {
		return nil
	}

	from := time.Now()
	before, cpuErr := p.cpuTime()
	rec.begin(from)
	if !sleep(ctx, cfg.duration) {
		return nil
	}
	until := time.Now()
	after, err := p.cpuTime()
	cpuErr = errors.Join(cpuErr, err)
	rec.finish(until, r.Polls)
	window := until.Sub(from)
	r.DurationS = window.Seconds()
	if cpuErr == nil {
		cpu := (after - before).Seconds()
		cores := cpu / window.Seconds()
		r.CPUS, r.Polls.CPUCores = &cpu, &cores
		if r.Polls.Polls > 0 {
			per := cpu / float64(r.Polls.Polls) * 1000
			r.Polls.CPUPer1k = &per
		}
	} else {
		logger.Warn("measuring CPU time", slog.Any("err", cpuErr))
	}
	if rss, _, err := p.memory(); err == nil {
		r.Polls.RSSMB = megabytes(rss)
	} else {
		logger.Warn("measuring memory", slog.Any("err", err))
	}
	logger.Info("measured", slog.Int64("polls", r.Polls.Polls), slog.Float64("pollsPerSec", r.Polls.PollsPerSec),
		slog.Float64("lagP99Ms", r.Polls.LagP99Ms), slog.Int("unpolled", r.Polls.Unpolled))
	return nil
}

// sleep waits d, or less when ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// logPollProgress logs, every pollProgressEvery until the returned
// function is called, the polls per second since the last report and the
// flows whose poll is more than an interval overdue.
func logPollProgress(ctx context.Context, rec *pollRecorder, logger *slog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(pollProgressEvery)
		defer t.Stop()
		prev, _, _ := rec.progress(time.Now())
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				total, overdue, worst := rec.progress(now)
				logger.Info("progress", slog.Float64("pollsPerSec", float64(total-prev)/pollProgressEvery.Seconds()),
					slog.Int("overdueFlows", overdue), slog.Duration("worstOverdue", worst.Round(time.Millisecond)))
				prev = total
			}
		}
	}()
	return func() { cancel(); <-done }
}

// logWarnings counts the WARN and ERROR lines of a server's JSON log and
// returns the message of the first.
func logWarnings(path string) (n int, first string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Err   string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || (line.Level != "WARN" && line.Level != "ERROR") {
			continue
		}
		if n++; n == 1 {
			first = line.Msg
			if line.Err != "" {
				first += ": " + line.Err
			}
		}
	}
	return n, truncate(first, 300)
}

// startBaselinePoller tells the baseline poller at base to start polling.
func startBaselinePoller(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/start", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("starting the baseline poller: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("starting the baseline poller: status %d", resp.StatusCode)
	}
	return nil
}

// serveBaselinePoller is the polling baseline: args are the API's URL,
// the number of flows and the interval. Once told to start (POST /start
// on PLUGBOARD_ADDR), it runs one goroutine per flow, their first polls
// spread evenly over one interval, each polling on a time.Ticker as the
// connector's trigger does: the items after its cursor, each new one
// posted to the run endpoint. It stops when ctx ends.
func serveBaselinePoller(ctx context.Context, args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: %s API_URL FLOWS INTERVAL", baselinePollerCommand)
	}
	apiURL := args[0]
	flows, err := strconv.Atoi(args[1])
	if err != nil || flows < 1 {
		return fmt.Errorf("flows: %q is not a positive number", args[1])
	}
	every, err := time.ParseDuration(args[2])
	if err != nil || every <= 0 {
		return fmt.Errorf("interval: %q is not a positive duration", args[2])
	}

	// A connection per flow may stay open: none is dialed again when many
	// polls meet.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: flows, IdleConnTimeout: 90 * time.Second, DisableCompression: true,
	}}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	var (
		wg       sync.WaitGroup
		once     sync.Once
		failures atomic.Int64
	)
	defer wg.Wait()
	start := func() {
		once.Do(func() {
			begin := time.Now()
			for i := range flows {
				offset := time.Duration(int64(every) * int64(i) / int64(flows))
				wg.Go(func() {
					p := baselinePoll{client: client, url: apiURL + "/poll/" + strconv.Itoa(i), runURL: apiURL + "/runs"}
					p.loop(ctx, begin.Add(offset), every, func(err error) {
						if failures.Add(1) == 1 {
							logger.Warn("polling", slog.String("error", err.Error()))
						}
					})
				})
			}
		})
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, _ *http.Request) {
		start()
		w.WriteHeader(http.StatusNoContent)
	})
	return serveUntilSignal(ctx, mux)
}

// baselinePoll is one simulated flow of the baseline: its cursor and the
// ids it has seen, as the connector's trigger keeps them.
type baselinePoll struct {
	client      *http.Client
	url, runURL string
	polled      bool
	cursor      float64
	hasCursor   bool
	seen        map[string]bool
}

// loop polls at first and then every interval until ctx ends.
func (b *baselinePoll) loop(ctx context.Context, first time.Time, every time.Duration, fail func(error)) {
	if !sleep(ctx, time.Until(first)) {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := b.poll(ctx); err != nil && ctx.Err() == nil {
			fail(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll asks for the items after the cursor, again while the cursor moves
// (at most baselinePages requests, as the trigger does), and posts those
// not seen before; the first poll only learns what exists.
func (b *baselinePoll) poll(ctx context.Context) error {
	first := !b.polled
	b.polled = true
	for range baselinePages {
		moved, err := b.page(ctx, first)
		if err != nil || !moved {
			return err
		}
	}
	return nil
}

// page makes one request of a poll and reports whether the cursor moved.
func (b *baselinePoll) page(ctx context.Context, first bool) (moved bool, err error) {
	u := b.url
	if b.hasCursor {
		u += "?after=" + strconv.FormatFloat(b.cursor, 'f', -1, 64)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return false, err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 10<<20))
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	var body any
	if err := json.Unmarshal(raw, &body); err != nil {
		return false, fmt.Errorf("GET %s: %w", u, err)
	}
	obj, _ := body.(map[string]any)
	list, _ := obj["data"].([]any)
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	for _, it := range list {
		item, _ := it.(map[string]any)
		id, _ := item["id"].(string)
		if id == "" || b.seen[id] {
			continue
		}
		b.seen[id] = true
		if seq, ok := item["seq"].(float64); ok && (!b.hasCursor || seq > b.cursor) {
			b.cursor, b.hasCursor, moved = seq, true, true
		}
		if !first {
			if err := b.post(ctx, item); err != nil {
				return moved, err
			}
		}
	}
	if len(b.seen) > 1000 {
		b.seen = map[string]bool{} // the cursor keeps old items out
	}
	return moved, nil
}

func (b *baselinePoll) post(ctx context.Context, item map[string]any) error {
	data, err := json.Marshal(item)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.runURL, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", rand.Text())
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: status %d", b.runURL, resp.StatusCode)
	}
	return nil
}

// pollColumns are the table's columns for the polls scenario.
func pollColumns() []column {
	poll := func(format string, v func(*pollFigures) float64) func(Result) string {
		return func(r Result) string {
			if r.Polls == nil {
				return none
			}
			return fmt.Sprintf(format, v(r.Polls))
		}
	}
	pollPtr := func(v func(*pollFigures) *float64) func(Result) *float64 {
		return func(r Result) *float64 {
			if r.Polls == nil {
				return nil
			}
			return v(r.Polls)
		}
	}
	return []column{
		{"target", true, func(r Result) string { return r.Target }},
		{"flows", true, poll("%.0f", func(f *pollFigures) float64 { return float64(f.Flows) })},
		{"every s", true, poll("%g", func(f *pollFigures) float64 { return f.IntervalS })},
		{"target polls/s", false, poll("%.0f", func(f *pollFigures) float64 { return f.TargetPerSec })},
		{"polls/s", false, poll("%.1f", func(f *pollFigures) float64 { return f.PollsPerSec })},
		{"lag p50 ms", false, poll("%.1f", func(f *pollFigures) float64 { return f.LagP50Ms })},
		{"lag p99 ms", false, poll("%.1f", func(f *pollFigures) float64 { return f.LagP99Ms })},
		{"lag max ms", false, poll("%.0f", func(f *pollFigures) float64 { return f.LagMaxMs })},
		{"unpolled", false, poll("%.0f", func(f *pollFigures) float64 { return float64(f.Unpolled) })},
		{"runs", false, poll("%.0f", func(f *pollFigures) float64 { return float64(f.Runs) })},
		{"CPU cores", false, optional("%.2f", pollPtr(func(f *pollFigures) *float64 { return f.CPUCores }))},
		{"CPU s/1k polls", false, optional("%.3f", pollPtr(func(f *pollFigures) *float64 { return f.CPUPer1k }))},
		{"RSS MB", false, poll("%.1f", func(f *pollFigures) float64 { return f.RSSMB })},
		{"peak RSS MB", false, func(r Result) string { return fmt.Sprintf("%.1f", r.PeakRSSMB) }},
		{"setup s", false, poll("%.1f", func(f *pollFigures) float64 { return f.SetupS })},
		{"× baseline", false, optional("%.3f", func(r Result) *float64 { return r.VsBaseline })},
		{"CPU/poll × baseline", false, optional("%.1f", pollPtr(func(f *pollFigures) *float64 { return f.CPUVsBaseline }))},
		{"RSS × baseline", false, optional("%.1f", pollPtr(func(f *pollFigures) *float64 { return f.RSSVsBaseline }))},
	}
}

// pollNotes says what is wrong with a polls run: a window shorter than
// the interval (polls/s then depends on when in its cycle the window
// fell), duplicate runs, requests the API could not place, warnings in
// the server's log.
func pollNotes(r Result) []string {
	f := r.Polls
	var notes []string
	if r.Error == "" && r.DurationS > 0 && r.DurationS < f.IntervalS {
		notes = append(notes, "the window is shorter than the interval: polls/s is not a sustained rate (use -d of at least the interval)")
	}
	if f.RunDupes > 0 {
		notes = append(notes, fmt.Sprintf("%d items started more than one run", f.RunDupes))
	}
	if f.BadRequests > 0 {
		notes = append(notes, fmt.Sprintf("%d requests to the polled API named no flow or item", f.BadRequests))
	}
	if f.Warnings > 0 {
		notes = append(notes, fmt.Sprintf("%d warnings in the server log, the first: %s", f.Warnings, f.FirstWarning))
	}
	return notes
}

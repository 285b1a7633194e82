package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"
)

// The proxy scenario: the overhead of a server-side request through an
// account (POST /api/v1/accounts/{id}/request). An API, a process of its
// own started by the load tool, checks a bearer token and answers a small
// JSON document, after -api-latency. The baseline run calls it directly
// with the token; the bare-proxy run through a minimal reverse proxy that
// adds the token (bareproxy.go); the Plugboard run through a token
// account, Plugboard adding the token. The API runs in all three, the same
// way, so the differences are what a proxy, and Plugboard, add.

const (
	// proxyAPICommand makes the load tool run the proxied API.
	proxyAPICommand = "proxy-api"
	// proxyTokenEnv hands the API the token it expects.
	proxyTokenEnv = "BENCH_PROXY_TOKEN"

	// The proxy scenario's targets, besides plugboard-sqlite and
	// plugboard-postgres.
	targetBaseline  = "baseline"
	targetBareProxy = "bare-proxy"

	proxyUser    = "bench-proxy@example.com"
	proxyAccount = "bench"
	proxyQuery   = "x" // the value of the query parameter q every request sends

	// Issue 5's targets.
	proxyTargetAddedP50Ms = 1.0
	proxyTargetRatio      = 0.5
)

// proxyDefaultConcurrency is -c for the proxy scenario when it is not
// given: one worker shows the added latency without queueing, sixteen the
// throughput.
var proxyDefaultConcurrency = []int{1, 16}

// proxyFigures are the figures of one proxy run, in Result.Proxy.
type proxyFigures struct {
	// AddedP50Ms and AddedP99Ms are the run's latency minus the
	// baseline's at the same concurrency (nil for the baseline).
	AddedP50Ms *float64 `json:"addedP50Ms,omitempty"`
	AddedP99Ms *float64 `json:"addedP99Ms,omitempty"`
	// CPUPer1k is the measured server's CPU time per 1,000 answered
	// requests: the API's for the baseline, Plugboard's for Plugboard.
	CPUPer1k *float64 `json:"cpuSPer1kRequests,omitempty"`
	// TargetsMet: added p50 under 1 ms and at least half the baseline's
	// requests/s (Plugboard runs only).
	TargetsMet *bool `json:"targetsMet,omitempty"`
	// VsBareProxy is a Plugboard run's requests/s ÷ the bare proxy's at
	// the same concurrency.
	VsBareProxy *float64 `json:"vsBareProxy,omitempty"`
	// APILatencyMs is how long the API waited before each answer
	// (-api-latency).
	APILatencyMs float64 `json:"apiLatencyMs"`
	// What the API saw over the whole run (warm-up and a first check
	// request included).
	APIRequests int64 `json:"apiRequests"`
	APIServed   int64 `json:"apiServed"`  // answered 200
	APIRefused  int64 `json:"apiRefused"` // without the right credentials
	APIBad      int64 `json:"apiBad"`     // an unknown path or a wrong query
	// Warnings counts WARN and ERROR lines in Plugboard's log.
	Warnings     int    `json:"serverWarnings"`
	FirstWarning string `json:"firstServerWarning,omitempty"`
}

// proxyItem is what the API answers for item n: about 200 bytes of JSON.
type proxyItem struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Query       string  `json:"q"`
	Status      string  `json:"status"`
	Owner       string  `json:"owner"`
	Price       float64 `json:"price"`
	CreatedAt   string  `json:"createdAt"`
	Description string  `json:"description"`
}

func newProxyItem(n int64, q string) proxyItem {
	return proxyItem{
		ID:          n,
		Name:        "item " + strconv.FormatInt(n, 10),
		Query:       q,
		Status:      "active",
		Owner:       "owner@example.com",
		Price:       float64(n%1000) + 0.5,
		CreatedAt:   "2025-01-01T00:00:00Z",
		Description: "A small document the proxy scenario's API answers with.",
	}
}

// checkItem checks that raw is the API's answer for item n.
func checkItem(raw []byte, n int64) error {
	var got proxyItem
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("decoding item: %w", err)
	}
	if want := newProxyItem(n, proxyQuery); got != want {
		return fmt.Errorf("item is %+v, want %+v", got, want)
	}
	return nil
}

// proxyCounts is what the API has seen, as GET /stats answers it.
type proxyCounts struct {
	Requests int64 `json:"requests"`
	Served   int64 `json:"served"`
	Refused  int64 `json:"refused"`
	Bad      int64 `json:"bad"`
}

// proxyAPI is the API behind the account: GET /v1/items/{n}?q=x with
// "Authorization: Bearer <token>" answers item n; anything without the
// token is refused with 401. Every GET /v1/items/{n} waits latency first,
// as a real API would. GET /stats (outside the account's domain) reports
// the counts. Safe for concurrent use.
type proxyAPI struct {
	auth    []byte // the Authorization header it expects
	latency time.Duration

	requests, served, refused, bad atomic.Int64
}

func newProxyAPI(token string, latency time.Duration) *proxyAPI {
	return &proxyAPI{auth: []byte("Bearer " + token), latency: latency}
}

func (a *proxyAPI) snapshot() proxyCounts {
	return proxyCounts{Requests: a.requests.Load(), Served: a.served.Load(), Refused: a.refused.Load(), Bad: a.bad.Load()}
}

func (a *proxyAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.snapshot())
	})
	mux.HandleFunc("GET /v1/items/{n}", a.serveItem)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		a.requests.Add(1)
		a.bad.Add(1)
		http.Error(w, "no such resource", http.StatusNotFound)
	})
	return mux
}

func (a *proxyAPI) serveItem(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	if a.latency > 0 {
		time.Sleep(a.latency) // stands in for a real API's work
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), a.auth) != 1 {
		a.requests.Add(1)
		a.refused.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="bench"`)
		http.Error(w, "missing or wrong credentials", http.StatusUnauthorized)
		return
	}
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	q := r.URL.Query()
	if err != nil || len(q) != 1 || q.Get("q") != proxyQuery {
		a.requests.Add(1)
		a.bad.Add(1)
		http.Error(w, "want /v1/items/<number>?q="+proxyQuery, http.StatusBadRequest)
		return
	}
	body, err := json.Marshal(newProxyItem(n, proxyQuery))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a.requests.Add(1)
	a.served.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// proxyAPIArgs are the command line that starts the API, answering after
// latency.
func proxyAPIArgs(latency time.Duration) []string {
	return []string{proxyAPICommand, "-latency", latency.String()}
}

// parseProxyAPIFlags reads the API's arguments after its command name:
// the latency of each answer.
func parseProxyAPIFlags(args []string, output io.Writer) (time.Duration, error) {
	fs := flag.NewFlagSet(proxyAPICommand, flag.ContinueOnError)
	fs.SetOutput(output)
	latency := fs.Duration("latency", 0, "how long to wait before answering an item")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	if fs.NArg() > 0 {
		return 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *latency < 0 {
		return 0, fmt.Errorf("-latency must not be negative, got %s", *latency)
	}
	return *latency, nil
}

// serveProxyAPI runs the proxied API on PLUGBOARD_ADDR, expecting the
// token in proxyTokenEnv, until ctx ends.
func serveProxyAPI(ctx context.Context, args []string) error {
	latency, err := parseProxyAPIFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	token := os.Getenv(proxyTokenEnv)
	if token == "" {
		return fmt.Errorf("%s is not set", proxyTokenEnv)
	}
	return serveUntilSignal(ctx, newProxyAPI(token, latency).handler())
}

// directSend calls base (the API itself, or the bare proxy in front of
// it) for item n, with the token when it is set.
func directSend(base, token string) func(context.Context, *http.Client, int64) error {
	return func(ctx context.Context, client *http.Client, n int64) error {
		u := base + "/v1/items/" + strconv.FormatInt(n, 10) + "?q=" + proxyQuery
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Accept", "application/json")
		body, err := roundTrip(client, req, http.StatusOK)
		if err != nil {
			return err
		}
		if err := checkItem(body, n); err != nil {
			return fmt.Errorf("GET %s: %w", u, err)
		}
		return nil
	}
}

// proxyRequestBody is what the load posts to the account's request
// endpoint for item n.
func proxyRequestBody(n int64) []byte {
	return fmt.Appendf(nil, `{"method":"GET","path":"/items/%d","query":{"q":%q},"wait":true}`, n, proxyQuery)
}

// proxySend calls the API for item n through account id of the server at
// base, with the account owner's token.
func proxySend(base, id, token string) func(context.Context, *http.Client, int64) error {
	u := base + "/api/v1/accounts/" + url.PathEscape(id) + "/request"
	return func(ctx context.Context, client *http.Client, n int64) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(proxyRequestBody(n)))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		body, err := roundTrip(client, req, http.StatusOK)
		if err != nil {
			return err
		}
		if err := checkProxyAnswer(body, n); err != nil {
			return fmt.Errorf("POST %s: 200, but %w: %s", u, err, truncate(string(bytes.TrimSpace(body)), 300))
		}
		return nil
	}
}

// checkProxyAnswer checks Plugboard's answer to the request for item n:
// the API's status 200 and its document.
func checkProxyAnswer(body []byte, n int64) error {
	var ans struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	if ans.Status != http.StatusOK {
		return fmt.Errorf("the API answered %d, want 200", ans.Status)
	}
	return checkItem(ans.Body, n)
}

// createAccount creates a token account on domain with token and returns
// its id.
func (a *apiClient) createAccount(ctx context.Context, domain, token string) (string, error) {
	var out struct {
		ID json.RawMessage `json:"id"`
	}
	in := map[string]any{"name": proxyAccount, "authType": "token", "domain": domain, "authPrefix": "Bearer", "token": token}
	if err := a.call(ctx, http.MethodPost, "/api/v1/accounts", in, http.StatusCreated, &out); err != nil {
		return "", fmt.Errorf("creating account: %w", err)
	}
	id := jsonScalar(out.ID)
	if id == "" {
		return "", errors.New("creating account: answer has no id")
	}
	return id, nil
}

// runProxyScenario runs, at each concurrency in turn, the direct calls
// (baseline), the calls through the bare proxy and then the calls through
// Plugboard. -skip-baseline skips both references.
func runProxyScenario(ctx context.Context, cfg config, bin, work string, logger *slog.Logger) []Result {
	var results []Result
	for _, c := range cfg.concurrency {
		var baseline, bare *Result
		if !cfg.skipBaseline {
			r := runProxy(ctx, cfg, "", targetBaseline, work, c, logger)
			baseline = &r
			results = append(results, r)
		}
		if !cfg.skipBaseline && ctx.Err() == nil {
			r := runProxy(ctx, cfg, "", targetBareProxy, work, c, logger)
			compareProxy(baseline, &r)
			bare = &r
			results = append(results, r)
		}
		if !cfg.skipPlugboard && ctx.Err() == nil {
			target := "plugboard-sqlite"
			if cfg.pgURL != "" {
				target = "plugboard-postgres"
			}
			r := runProxy(ctx, cfg, bin, target, work, c, logger)
			compareProxy(baseline, &r)
			compareBareProxy(bare, &r)
			results = append(results, r)
		}
		if ctx.Err() != nil {
			logger.Warn("interrupted")
			break
		}
	}
	return results
}

// runProxy runs the proxy scenario's target at concurrency c: the API
// called directly (targetBaseline), through the bare proxy
// (targetBareProxy) or through Plugboard's binary bin.
func runProxy(ctx context.Context, cfg config, bin, target, work string, c int, logger *slog.Logger) Result {
	r := Result{Scenario: scenarioProxy, Target: target, Concurrency: c,
		Proxy: &proxyFigures{APILatencyMs: ms(cfg.apiLatency)}}
	logger = logger.With(slog.String("target", r.Target), slog.Int("c", c))
	if err := measureProxy(ctx, cfg, bin, work, &r, logger); err != nil {
		r.Error = err.Error()
		logger.Error("run failed", slog.Any("err", err))
		return r
	}
	if ctx.Err() != nil {
		r.Error = errInterrupted
		return r
	}
	if target == targetBaseline {
		one := 1.0
		r.VsBaseline = &one
	}
	return r
}

func measureProxy(ctx context.Context, cfg config, bin, work string, r *Result, logger *slog.Logger) error {
	dir, err := os.MkdirTemp(work, "proxy-")
	if err != nil {
		return fmt.Errorf("creating run directory: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating the load tool's binary: %w", err)
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return err
	}
	apiURL := "http://" + apiAddr
	apiToken := rand.Text()
	apiSpec := processSpec{
		path:    exe,
		args:    proxyAPIArgs(cfg.apiLatency),
		env:     map[string]string{"PLUGBOARD_ADDR": apiAddr, proxyTokenEnv: apiToken},
		logPath: filepath.Join(dir, "api.log"),
	}

	var (
		p      *serverProcess // the measured server
		send   func(context.Context, *http.Client, int64) error
		target string // what the load calls, for the log
	)
	if r.Target == targetBaseline {
		// The API itself is the measured server.
		if p, err = launch(ctx, apiSpec, apiAddr, r, logger); err != nil {
			return err
		}
		defer shutdown(p, r, logger)
		target = p.baseURL() + "/v1/items/{n}"
		send = directSend(p.baseURL(), apiToken)
	} else {
		stopAPI, err := startProxyAPI(ctx, apiSpec, apiAddr, logger)
		if err != nil {
			return err
		}
		defer stopAPI()

		if r.Target == targetBareProxy {
			addr, err := freeAddr()
			if err != nil {
				return err
			}
			spec := processSpec{
				path:    exe,
				args:    bareProxyArgs(apiURL, r.Concurrency),
				env:     map[string]string{"PLUGBOARD_ADDR": addr, proxyTokenEnv: apiToken},
				logPath: filepath.Join(dir, "bare-proxy.log"),
			}
			if p, err = launch(ctx, spec, addr, r, logger); err != nil {
				return err
			}
			defer shutdown(p, r, logger)
			target = p.baseURL() + "/v1/items/{n}"
			send = directSend(p.baseURL(), "") // the proxy adds the token
		} else {
			spec, password, cleanup, err := plugboardSpec(ctx, cfg, bin, dir, logger)
			if err != nil {
				return err
			}
			defer cleanup()
			addr := spec.env["PLUGBOARD_ADDR"]
			if p, err = launch(ctx, spec, addr, r, logger); err != nil {
				return err
			}
			defer shutdown(p, r, logger)
			defer func() { r.Proxy.Warnings, r.Proxy.FirstWarning = logWarnings(p.logPath) }()

			logger.Info("setting up", slog.String("scenario", string(scenarioProxy)))
			id, userToken, err := setupProxy(ctx, p.baseURL(), password, apiURL+"/v1", apiToken)
			if err != nil {
				return withLog(err, p)
			}
			target = p.baseURL() + "/api/v1/accounts/" + id + "/request"
			send = proxySend(p.baseURL(), id, userToken)
		}
	}

	// One request first, so that a missing endpoint fails the run at once.
	check := &http.Client{Timeout: requestTimeout}
	if err := send(ctx, check, 0); err != nil {
		return withLog(fmt.Errorf("first request: %w", err), p)
	}
	check.CloseIdleConnections()

	logger.Info("loading", slog.String("url", target),
		slog.Duration("warmup", cfg.warmup), slog.Duration("duration", cfg.duration))
	loadServer(ctx, p, loadSpec{
		send:        send,
		concurrency: r.Concurrency,
		warmup:      cfg.warmup,
		duration:    cfg.duration,
	}, r, logger)
	if r.CPUMicrosPerReq != nil {
		per := *r.CPUMicrosPerReq / 1000
		r.Proxy.CPUPer1k = &per
	}

	if ctx.Err() != nil {
		return nil // interrupted: runProxy says so
	}
	counts, err := fetchProxyCounts(ctx, apiURL)
	if err != nil {
		return err
	}
	r.Proxy.APIRequests, r.Proxy.APIServed = counts.Requests, counts.Served
	r.Proxy.APIRefused, r.Proxy.APIBad = counts.Refused, counts.Bad
	return checkProxyCounts(counts, r.AcceptedTotal)
}

// startProxyAPI starts the API, unmeasured, in front of which a proxy is
// measured, and waits until it is ready. stop ends it.
func startProxyAPI(ctx context.Context, spec processSpec, addr string, logger *slog.Logger) (stop func(), err error) {
	api, err := startServer(spec, addr)
	if err != nil {
		return nil, err
	}
	stop = func() {
		if err := api.stop(); err != nil {
			logger.Warn("stopping the API", slog.Any("err", err))
		}
	}
	if _, err := api.waitReady(ctx); err != nil {
		stop()
		return nil, withLog(fmt.Errorf("starting the API: %w", err), api)
	}
	return stop, nil
}

// checkProxyCounts fails a run in which a request reached the API without
// the right credentials or at a place it does not serve, or in which more
// answers passed the check than the API served (each answer must come
// from the API).
func checkProxyCounts(c proxyCounts, accepted int64) error {
	switch {
	case c.Refused > 0:
		return fmt.Errorf("%d of %d requests reached the API without the right credentials", c.Refused, c.Requests)
	case c.Bad > 0:
		return fmt.Errorf("%d of %d requests reached the API at an unknown path or with a wrong query", c.Bad, c.Requests)
	case c.Served < accepted:
		return fmt.Errorf("%d answers carried the API's document but the API served only %d", accepted, c.Served)
	}
	return nil
}

// fetchProxyCounts reads what the API at apiURL has seen.
func fetchProxyCounts(ctx context.Context, apiURL string) (proxyCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/stats", nil)
	if err != nil {
		return proxyCounts{}, fmt.Errorf("reading the API's counts: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	body, err := roundTrip(client, req, http.StatusOK)
	if err != nil {
		return proxyCounts{}, fmt.Errorf("reading the API's counts: %w", err)
	}
	var c proxyCounts
	if err := json.Unmarshal(body, &c); err != nil {
		return proxyCounts{}, fmt.Errorf("decoding the API's counts: %w", err)
	}
	return c, nil
}

// setupProxy signs in as the admin on the server at base, creates a
// virtual user with a token and, as that user, a token account on domain
// whose token is apiToken. It returns the account's id and the user's
// token.
func setupProxy(ctx context.Context, base, password, domain, apiToken string) (id, userToken string, err error) {
	admin := newAPIClient(base)
	if err := admin.signIn(ctx, adminEmail, password); err != nil {
		return "", "", err
	}
	userID, err := admin.createVirtualUser(ctx, proxyUser)
	if err != nil {
		return "", "", err
	}
	if userToken, err = admin.createToken(ctx, userID); err != nil {
		return "", "", err
	}
	if id, err = admin.as(userToken).createAccount(ctx, domain, apiToken); err != nil {
		return "", "", err
	}
	return id, userToken, nil
}

// compareProxy fills in run's figures relative to the baseline (nil when
// it did not run): requests/s, the added latency and, for a Plugboard
// run, whether issue 5's targets are met.
func compareProxy(baseline, run *Result) {
	if baseline == nil || baseline.Error != "" || run.Error != "" || run.Proxy == nil || baseline.AcceptedPerSec <= 0 {
		return
	}
	ratio := run.AcceptedPerSec / baseline.AcceptedPerSec
	p50, p99 := run.P50Ms-baseline.P50Ms, run.P99Ms-baseline.P99Ms
	run.VsBaseline, run.Proxy.AddedP50Ms, run.Proxy.AddedP99Ms = &ratio, &p50, &p99
	if run.Target != targetBareProxy {
		met := p50 < proxyTargetAddedP50Ms && ratio >= proxyTargetRatio
		run.Proxy.TargetsMet = &met
	}
}

// compareBareProxy fills in a Plugboard run's requests/s relative to the
// bare proxy's at the same concurrency (nil when it did not run).
func compareBareProxy(bare, run *Result) {
	if bare == nil || bare.Error != "" || run.Error != "" || run.Proxy == nil || bare.AcceptedPerSec <= 0 {
		return
	}
	ratio := run.AcceptedPerSec / bare.AcceptedPerSec
	run.Proxy.VsBareProxy = &ratio
}

// proxyColumns are the table's columns for the proxy scenario.
func proxyColumns() []column {
	figure := func(v func(*proxyFigures) *float64) func(Result) *float64 {
		return func(r Result) *float64 {
			if r.Proxy == nil {
				return nil
			}
			return v(r.Proxy)
		}
	}
	return []column{
		{"target", true, func(r Result) string { return r.Target }},
		{"c", true, func(r Result) string { return strconv.Itoa(r.Concurrency) }},
		{"requests/s", false, func(r Result) string { return fmt.Sprintf("%.0f", r.AcceptedPerSec) }},
		{"p50 ms", false, func(r Result) string { return fmt.Sprintf("%.2f", r.P50Ms) }},
		{"p99 ms", false, func(r Result) string { return fmt.Sprintf("%.2f", r.P99Ms) }},
		{"errors", false, func(r Result) string { return strconv.FormatInt(r.Errors, 10) }},
		{"added p50 ms", false, optional("%.2f", figure(func(f *proxyFigures) *float64 { return f.AddedP50Ms }))},
		{"added p99 ms", false, optional("%.2f", figure(func(f *proxyFigures) *float64 { return f.AddedP99Ms }))},
		{"CPU s/1k req", false, optional("%.3f", figure(func(f *proxyFigures) *float64 { return f.CPUPer1k }))},
		{"idle RSS MB", false, func(r Result) string { return fmt.Sprintf("%.1f", r.IdleRSSMB) }},
		{"peak RSS MB", false, func(r Result) string { return fmt.Sprintf("%.1f", r.PeakRSSMB) }},
		{"start-up ms", false, func(r Result) string { return fmt.Sprintf("%.1f", r.StartupMs) }},
		{"× baseline", false, optional("%.2f", func(r Result) *float64 { return r.VsBaseline })},
	}
}

// proxyNotes says, for the baseline, how long the API waited before each
// answer (when it did); for a Plugboard run, whether it met issue 5's
// targets and its throughput beside the bare proxy's; and what the
// server's log shows that is wrong.
func proxyNotes(r Result) []string {
	f := r.Proxy
	var notes []string
	if r.Target == targetBaseline && f.APILatencyMs > 0 {
		notes = append(notes, fmt.Sprintf("the API waited %g ms before each answer (-api-latency), for every target", f.APILatencyMs))
	}
	if f.TargetsMet != nil {
		verdict := "targets met"
		if !*f.TargetsMet {
			verdict = "targets missed"
		}
		notes = append(notes, fmt.Sprintf("%s: added p50 %.2f ms (target < %g ms), %.2f × baseline requests/s (target ≥ %g)",
			verdict, *f.AddedP50Ms, proxyTargetAddedP50Ms, *r.VsBaseline, proxyTargetRatio))
	}
	if f.VsBareProxy != nil {
		notes = append(notes, fmt.Sprintf("%.2f × bare proxy requests/s", *f.VsBareProxy))
	}
	if f.Warnings > 0 {
		notes = append(notes, fmt.Sprintf("%d warnings in the server log, the first: %s", f.Warnings, f.FirstWarning))
	}
	return notes
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestProxyAPIChecksCredentials(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newProxyAPI("s3cret", 0).handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"right token", "/v1/items/42?q=x", "Bearer s3cret", http.StatusOK},
		{"no credentials", "/v1/items/42?q=x", "", http.StatusUnauthorized},
		{"wrong token", "/v1/items/42?q=x", "Bearer s3cre", http.StatusUnauthorized},
		{"token with another prefix", "/v1/items/42?q=x", "Token s3cret", http.StatusUnauthorized},
		{"token alone", "/v1/items/42?q=x", "s3cret", http.StatusUnauthorized},
		{"wrong query value", "/v1/items/42?q=y", "Bearer s3cret", http.StatusBadRequest},
		{"no query", "/v1/items/42", "Bearer s3cret", http.StatusBadRequest},
		{"extra query", "/v1/items/42?q=x&token=s3cret", "Bearer s3cret", http.StatusBadRequest},
		{"not a number", "/v1/items/abc?q=x", "Bearer s3cret", http.StatusBadRequest},
		{"outside the domain", "/items/42?q=x", "Bearer s3cret", http.StatusNotFound},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		body, err := roundTrip(srv.Client(), req, tt.want)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.want == http.StatusOK {
			if err := checkItem(body, 42); err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		}
	}

	counts, err := fetchProxyCounts(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := proxyCounts{Requests: int64(len(tests)), Served: 1, Refused: 4, Bad: 5}
	if counts != want {
		t.Errorf("counts = %+v, want %+v", counts, want)
	}
	if err := checkProxyCounts(counts, 1); err == nil || !strings.Contains(err.Error(), "4 of 10 requests reached the API without the right credentials") {
		t.Errorf("checkProxyCounts = %v, want the refused requests named", err)
	}
}

func TestDirectSend(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newProxyAPI("s3cret", 0).handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()

	if err := directSend(srv.URL, "s3cret")(ctx, srv.Client(), 7); err != nil {
		t.Errorf("direct call with the token: %v", err)
	}
	if err := directSend(srv.URL, "wrong")(ctx, srv.Client(), 7); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("direct call with a wrong token = %v, want status 401", err)
	}
}

// fakeProxy stands in for Plugboard's request endpoint: it checks the
// user's token and the request the load sends, and answers what answer
// returns for item n.
func fakeProxy(t *testing.T, answer func(w http.ResponseWriter, n int64)) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/accounts/acc-1/request", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer user-token" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		var req struct {
			Method string            `json:"method"`
			Path   string            `json:"path"`
			Query  map[string]string `json:"query"`
			Wait   bool              `json:"wait"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.Method != http.MethodGet || !req.Wait || len(req.Query) != 1 || req.Query["q"] != proxyQuery {
			http.Error(w, "unexpected request", http.StatusUnprocessableEntity)
			return
		}
		n, err := itemNumber(req.Path)
		if err != nil {
			http.Error(w, "unexpected path "+req.Path, http.StatusUnprocessableEntity)
			return
		}
		answer(w, n)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// itemNumber reads n from the path "/items/<n>".
func itemNumber(path string) (int64, error) {
	rest, ok := strings.CutPrefix(path, "/items/")
	if !ok {
		return 0, errors.New("not an item path")
	}
	return strconv.ParseInt(rest, 10, 64)
}

func TestProxySend(t *testing.T) {
	t.Parallel()
	item := func(n int64) json.RawMessage {
		b, _ := json.Marshal(newProxyItem(n, proxyQuery))
		return b
	}
	result := func(w http.ResponseWriter, status int, body json.RawMessage) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "headers": map[string]string{}, "body": body})
	}
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter, n int64)
		wantErr string
	}{
		{"the API's item", func(w http.ResponseWriter, n int64) { result(w, 200, item(n)) }, ""},
		{"the API refused", func(w http.ResponseWriter, n int64) {
			result(w, 401, json.RawMessage(`"missing or wrong credentials"`))
		}, "the API answered 401"},
		{"another item", func(w http.ResponseWriter, n int64) { result(w, 200, item(n+1)) }, "item is"},
		{"a text body", func(w http.ResponseWriter, n int64) { result(w, 200, json.RawMessage(`"ok"`)) }, "decoding item"},
		{"accepted, not waited", func(w http.ResponseWriter, _ int64) {
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, `{"requestId":"r1"}`)
		}, "status 202, want 200"},
		{"a problem", func(w http.ResponseWriter, _ int64) {
			http.Error(w, `{"title":"Not Found"}`, http.StatusNotFound)
		}, "status 404, want 200"},
	}
	for _, tt := range tests {
		srv := fakeProxy(t, tt.answer)
		err := proxySend(srv.URL, "acc-1", "user-token")(context.Background(), srv.Client(), 12)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}

	srv := fakeProxy(t, func(w http.ResponseWriter, n int64) { result(w, 200, item(n)) })
	if err := proxySend(srv.URL, "acc-1", "someone-else")(context.Background(), srv.Client(), 12); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("with another user's token = %v, want status 401", err)
	}
}

func TestProxyRequestBody(t *testing.T) {
	t.Parallel()
	var req struct {
		Method string         `json:"method"`
		Path   string         `json:"path"`
		Query  map[string]any `json:"query"`
		Wait   *bool          `json:"wait"`
	}
	if err := json.Unmarshal(proxyRequestBody(99), &req); err != nil {
		t.Fatal(err)
	}
	if req.Method != "GET" || req.Path != "/items/99" || req.Query["q"] != proxyQuery || len(req.Query) != 1 || req.Wait == nil || !*req.Wait {
		t.Errorf("request body = %+v", req)
	}
}

func TestProxyItemSize(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{0, 1, 123456789} {
		b, err := json.Marshal(newProxyItem(n, proxyQuery))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 150 || len(b) > 260 {
			t.Errorf("item %d is %d bytes, want about 200: %s", n, len(b), b)
		}
	}
}

func TestCheckProxyCounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		counts   proxyCounts
		accepted int64
		wantErr  string
	}{
		{"clean", proxyCounts{Requests: 101, Served: 101}, 100, ""},
		{"refused", proxyCounts{Requests: 101, Served: 100, Refused: 1}, 100, "1 of 101 requests reached the API without the right credentials"},
		{"bad path", proxyCounts{Requests: 101, Served: 100, Bad: 1}, 100, "unknown path"},
		{"answers the API never gave", proxyCounts{Requests: 90, Served: 90}, 100, "100 answers carried the API's document but the API served only 90"},
	}
	for _, tt := range tests {
		err := checkProxyCounts(tt.counts, tt.accepted)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestCompareProxy(t *testing.T) {
	t.Parallel()
	baseline := &Result{Target: "baseline", AcceptedPerSec: 10000, P50Ms: 1.0, P99Ms: 3.0, Proxy: &proxyFigures{}}
	tests := []struct {
		name           string
		run            Result
		ratio, p50, p9 float64
		met            bool
	}{
		{"within targets", Result{AcceptedPerSec: 6000, P50Ms: 1.5, P99Ms: 5}, 0.6, 0.5, 2, true},
		{"too slow", Result{AcceptedPerSec: 6000, P50Ms: 2.0, P99Ms: 5}, 0.6, 1, 2, false},
		{"too few", Result{AcceptedPerSec: 4000, P50Ms: 1.2, P99Ms: 5}, 0.4, 0.2, 2, false},
	}
	for _, tt := range tests {
		r := tt.run
		r.Proxy = &proxyFigures{}
		compareProxy(baseline, &r)
		f := r.Proxy
		if r.VsBaseline == nil || f.AddedP50Ms == nil || f.AddedP99Ms == nil || f.TargetsMet == nil {
			t.Errorf("%s: figures missing: %+v %+v", tt.name, r, f)
			continue
		}
		if math.Abs(*r.VsBaseline-tt.ratio) > 1e-9 || math.Abs(*f.AddedP50Ms-tt.p50) > 1e-9 ||
			math.Abs(*f.AddedP99Ms-tt.p9) > 1e-9 || *f.TargetsMet != tt.met {
			t.Errorf("%s: × %v, added p50 %v, p99 %v, met %v; want %v, %v, %v, %v", tt.name,
				*r.VsBaseline, *f.AddedP50Ms, *f.AddedP99Ms, *f.TargetsMet, tt.ratio, tt.p50, tt.p9, tt.met)
		}
	}

	for _, pair := range [][2]*Result{
		{nil, {AcceptedPerSec: 1, Proxy: &proxyFigures{}}},
		{{Error: "down", Proxy: &proxyFigures{}}, {AcceptedPerSec: 1, Proxy: &proxyFigures{}}},
		{baseline, {Error: "boom", Proxy: &proxyFigures{}}},
	} {
		compareProxy(pair[0], pair[1])
		if pair[1].VsBaseline != nil || pair[1].Proxy.AddedP50Ms != nil || pair[1].Proxy.TargetsMet != nil {
			t.Errorf("compareProxy(%+v, %+v) compared a failed or missing run", pair[0], pair[1])
		}
	}
}

func TestProxyReport(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	met, missed := true, false
	results := []Result{
		{Scenario: scenarioProxy, Target: "baseline", Concurrency: 1, AcceptedPerSec: 10000, P50Ms: 0.09, P99Ms: 0.2,
			VsBaseline: f(1), Proxy: &proxyFigures{CPUPer1k: f(0.05), APILatencyMs: 20}},
		{Scenario: scenarioProxy, Target: "bare-proxy", Concurrency: 1, AcceptedPerSec: 8000, P50Ms: 0.19, P99Ms: 0.4,
			VsBaseline: f(0.8), Proxy: &proxyFigures{AddedP50Ms: f(0.1), AddedP99Ms: f(0.2), CPUPer1k: f(0.07), APILatencyMs: 20}},
		{Scenario: scenarioProxy, Target: "plugboard-sqlite", Concurrency: 1, AcceptedPerSec: 6000, P50Ms: 0.59, P99Ms: 1.4,
			VsBaseline: f(0.6), Proxy: &proxyFigures{AddedP50Ms: f(0.5), AddedP99Ms: f(1.2), CPUPer1k: f(0.25), TargetsMet: &met,
				VsBareProxy: f(0.75), APILatencyMs: 20}},
		{Scenario: scenarioProxy, Target: "plugboard-sqlite", Concurrency: 16, AcceptedPerSec: 3000, P50Ms: 5, P99Ms: 20,
			VsBaseline: f(0.3), Proxy: &proxyFigures{AddedP50Ms: f(4.25), AddedP99Ms: f(12), TargetsMet: &missed, Warnings: 2, FirstWarning: "audit slow"}},
		{Scenario: scenarioProxy, Target: "plugboard-postgres", Concurrency: 1, Proxy: &proxyFigures{},
			Error: "first request: POST …/request: status 404, want 200"},
	}
	var out bytes.Buffer
	writeTable(&out, scenarioProxy, results)
	text := out.String()
	for _, want := range []string{
		"| target             | c  | requests/s | p50 ms | p99 ms | errors | added p50 ms | added p99 ms | CPU s/1k req |",
		"|      10000 |",
		"|         0.50 |",
		"|        0.250 |",
		"|       0.60 |",
		"| bare-proxy         | 1  |       8000 |   0.19 |   0.40 |      0 |         0.10 |         0.20 |        0.070 |",
		"- baseline c=1: the API waited 20 ms before each answer (-api-latency), for every target\n",
		"- plugboard-sqlite c=1: targets met: added p50 0.50 ms (target < 1 ms), 0.60 × baseline requests/s (target ≥ 0.5)\n",
		"- plugboard-sqlite c=1: 0.75 × bare proxy requests/s\n",
		"- plugboard-sqlite c=16: targets missed: added p50 4.25 ms (target < 1 ms), 0.30 × baseline requests/s (target ≥ 0.5)\n",
		"- plugboard-sqlite c=16: 2 warnings in the server log, the first: audit slow\n",
		"| plugboard-postgres | 1  |     failed |",
		"- plugboard-postgres c=1 failed: first request: POST …/request: status 404, want 200\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}

	if strings.Contains(text, "bare-proxy c=1: targets") || strings.Count(text, "-api-latency") != 1 {
		t.Errorf("notes speak of the bare proxy's targets, or of the latency more than once:\n%s", text)
	}

	var line bytes.Buffer
	if err := writeJSONLines(&line, results[2:3]); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Scenario   string   `json:"scenario"`
		VsBaseline *float64 `json:"vsBaseline"`
		Proxy      struct {
			AddedP50Ms *float64 `json:"addedP50Ms"`
			CPUPer1k   *float64 `json:"cpuSPer1kRequests"`
			TargetsMet *bool    `json:"targetsMet"`
			VsBare     *float64 `json:"vsBareProxy"`
			Latency    float64  `json:"apiLatencyMs"`
		} `json:"proxy"`
	}
	if err := json.Unmarshal(line.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Scenario != "proxy" || got.VsBaseline == nil || *got.VsBaseline != 0.6 || got.Proxy.AddedP50Ms == nil ||
		*got.Proxy.AddedP50Ms != 0.5 || got.Proxy.CPUPer1k == nil || got.Proxy.TargetsMet == nil || !*got.Proxy.TargetsMet ||
		got.Proxy.VsBare == nil || *got.Proxy.VsBare != 0.75 || got.Proxy.Latency != 20 {
		t.Errorf("JSON line lacks the proxy figures: %s", line.String())
	}
}

func TestParseFlagsProxy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []int
	}{
		{[]string{"-scenario", "proxy"}, []int{1, 16}},
		{[]string{"-scenario", "proxy", "-c", "64"}, []int{64}},
		{[]string{"-scenario", "webhook"}, []int{64}},
	}
	for _, tt := range tests {
		cfg, err := parseFlags(tt.args, io.Discard)
		if err != nil || !slices.Equal(cfg.concurrency, tt.want) {
			t.Errorf("parseFlags(%q) concurrency = %v, %v; want %v", tt.args, cfg.concurrency, err, tt.want)
		}
	}
}

func TestGenerateWithSend(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	stats := generate(context.Background(), loadSpec{
		send: func(_ context.Context, _ *http.Client, n int64) error {
			calls.Add(1)
			if n%2 == 0 {
				return errors.New("even")
			}
			return nil
		},
		concurrency: 2,
		duration:    20 * time.Millisecond,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if calls.Load() == 0 || stats.acceptedTotal+stats.errors != calls.Load() {
		t.Errorf("%d sends, %d accepted and %d errors: every send must count once", calls.Load(), stats.acceptedTotal, stats.errors)
	}
	if d := stats.acceptedTotal - stats.errors; d < -2 || d > 2 {
		t.Errorf("%d accepted and %d errors, want about half each (odd n accepted)", stats.acceptedTotal, stats.errors)
	}
}

func TestCompareBareProxy(t *testing.T) {
	t.Parallel()
	baseline := &Result{Target: targetBaseline, AcceptedPerSec: 10000, P50Ms: 1.0, P99Ms: 3.0, Proxy: &proxyFigures{}}
	bare := &Result{Target: targetBareProxy, AcceptedPerSec: 8000, P50Ms: 1.25, P99Ms: 3.5, Proxy: &proxyFigures{}}
	compareProxy(baseline, bare)
	if bare.VsBaseline == nil || *bare.VsBaseline != 0.8 || bare.Proxy.AddedP50Ms == nil || *bare.Proxy.AddedP50Ms != 0.25 {
		t.Errorf("bare proxy against the baseline: %+v %+v", bare, bare.Proxy)
	}
	if bare.Proxy.TargetsMet != nil {
		t.Errorf("the bare proxy is judged against issue 5's targets: %v", *bare.Proxy.TargetsMet)
	}

	run := &Result{Target: "plugboard-sqlite", AcceptedPerSec: 6000, Proxy: &proxyFigures{}}
	compareBareProxy(bare, run)
	if run.Proxy.VsBareProxy == nil || *run.Proxy.VsBareProxy != 0.75 {
		t.Errorf("Plugboard × bare proxy = %v, want 0.75", run.Proxy.VsBareProxy)
	}
	for _, pair := range [][2]*Result{
		{nil, {AcceptedPerSec: 1, Proxy: &proxyFigures{}}},
		{{Target: targetBareProxy, Error: "down", AcceptedPerSec: 5, Proxy: &proxyFigures{}}, {AcceptedPerSec: 1, Proxy: &proxyFigures{}}},
		{bare, {Error: "boom", AcceptedPerSec: 1, Proxy: &proxyFigures{}}},
	} {
		compareBareProxy(pair[0], pair[1])
		if pair[1].Proxy.VsBareProxy != nil {
			t.Errorf("compareBareProxy(%+v, %+v) compared a failed or missing run", pair[0], pair[1])
		}
	}
}

func TestBareProxyAddsToken(t *testing.T) {
	t.Parallel()
	api := newProxyAPI("s3cret", 0)
	apiSrv := httptest.NewServer(api.handler())
	t.Cleanup(apiSrv.Close)
	upstream, err := url.Parse(apiSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	handler, transport := newBareProxy(upstream, "s3cret", 64, log.New(io.Discard, "", 0))
	proxy := httptest.NewServer(handler)
	t.Cleanup(proxy.Close)
	ctx := context.Background()

	// The workers send no token; one that sends another cannot replace it.
	if err := directSend(proxy.URL, "")(ctx, proxy.Client(), 3); err != nil {
		t.Errorf("through the bare proxy without a token: %v", err)
	}
	if err := directSend(proxy.URL, "wrong")(ctx, proxy.Client(), 4); err != nil {
		t.Errorf("through the bare proxy with a wrong token: %v", err)
	}
	// readyz is the proxy's own: the API does not count it.
	req, err := http.NewRequest(http.MethodGet, proxy.URL+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(proxy.Client(), req, http.StatusOK); err != nil {
		t.Errorf("readyz: %v", err)
	}
	if got, want := api.snapshot(), (proxyCounts{Requests: 2, Served: 2}); got != want {
		t.Errorf("the API saw %+v, want %+v", got, want)
	}
	if transport.MaxIdleConnsPerHost != 64 {
		t.Errorf("MaxIdleConnsPerHost = %d, want 64", transport.MaxIdleConnsPerHost)
	}

	// A proxy with the wrong token is refused by the API: the header the
	// API checks is the one the proxy adds.
	wrong, _ := newBareProxy(upstream, "other", 64, log.New(io.Discard, "", 0))
	wrongSrv := httptest.NewServer(wrong)
	t.Cleanup(wrongSrv.Close)
	if err := directSend(wrongSrv.URL, "s3cret")(ctx, wrongSrv.Client(), 5); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("through a proxy holding another token = %v, want status 401", err)
	}
}

func TestBareProxyFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c, want int
	}{{1, 64}, {16, 64}, {64, 64}, {256, 256}} {
		f, err := parseBareProxyFlags(bareProxyArgs("http://127.0.0.1:9999", tt.c)[1:], io.Discard)
		if err != nil {
			t.Errorf("c=%d: %v", tt.c, err)
			continue
		}
		if f.idlePerHost != tt.want || f.upstream.String() != "http://127.0.0.1:9999" {
			t.Errorf("c=%d: idle per host %d, upstream %s; want %d, http://127.0.0.1:9999", tt.c, f.idlePerHost, f.upstream, tt.want)
		}
	}
	for _, args := range [][]string{
		{},
		{"-upstream", "127.0.0.1:9999"},
		{"-upstream", "https://127.0.0.1:9999"},
		{"-upstream", "http://127.0.0.1:9999/v1"},
		{"-upstream", "http://127.0.0.1:9999", "-idle-per-host", "0"},
		{"-upstream", "http://127.0.0.1:9999", "extra"},
	} {
		if _, err := parseBareProxyFlags(args, io.Discard); err == nil {
			t.Errorf("parseBareProxyFlags(%q) accepted", args)
		}
	}
}

func TestProxyAPIFlags(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, 20 * time.Millisecond, 1500 * time.Microsecond} {
		got, err := parseProxyAPIFlags(proxyAPIArgs(d)[1:], io.Discard)
		if err != nil || got != d {
			t.Errorf("latency %s: parsed %s, %v", d, got, err)
		}
	}
	if got, err := parseProxyAPIFlags(nil, io.Discard); err != nil || got != 0 {
		t.Errorf("no arguments: %s, %v; want 0", got, err)
	}
	for _, args := range [][]string{{"-latency", "-1ms"}, {"-latency", "soon"}, {"extra"}} {
		if _, err := parseProxyAPIFlags(args, io.Discard); err == nil {
			t.Errorf("parseProxyAPIFlags(%q) accepted", args)
		}
	}
}

func TestParseFlagsAPILatency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		want    time.Duration
		wantErr string
	}{
		{[]string{"-scenario", "proxy"}, 0, ""},
		{[]string{"-scenario", "proxy", "-c", "64", "-api-latency", "20ms"}, 20 * time.Millisecond, ""},
		{[]string{"-scenario", "proxy", "-api-latency", "-5ms"}, 0, "-api-latency must not be negative"},
		{[]string{"-scenario", "webhook", "-api-latency", "5ms"}, 0, "-api-latency applies to -scenario proxy only"},
		{[]string{"-scenario", "proxy", "-api-latency", "later"}, 0, "invalid value"},
	}
	for _, tt := range tests {
		cfg, err := parseFlags(tt.args, io.Discard)
		switch {
		case tt.wantErr == "" && (err != nil || cfg.apiLatency != tt.want):
			t.Errorf("parseFlags(%q) latency = %s, %v; want %s", tt.args, cfg.apiLatency, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("parseFlags(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestProxyAPILatency(t *testing.T) {
	t.Parallel()
	const latency = 30 * time.Millisecond
	srv := httptest.NewServer(newProxyAPI("s3cret", latency).handler())
	t.Cleanup(srv.Close)
	start := time.Now()
	if err := directSend(srv.URL, "s3cret")(context.Background(), srv.Client(), 1); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("the API answered in %s, want at least %s", took, latency)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/connector"
)

func TestPollRecorderLag(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rec := newPollRecorder(4, time.Second, 0)

	// Before the window: flow 0 polls on time, flow 1 polls once (its next
	// poll, due at 6 s, is 14 s overdue when the window closes at 20 s),
	// flow 2 never (due since the window opened, 10 s before it closes).
	rec.poll(0, at(8), 0)
	rec.poll(0, at(9), 0)
	rec.poll(1, at(5), 0)
	rec.poll(3, at(9), 0)

	rec.begin(at(10))
	// Flow 0: 0.5 s late once, then on time; flow 3: 2 s, then 6.9 s late.
	for _, s := range []float64{10.5, 11.5, 12.5, 13.5, 14.5, 15.5, 16.5, 17.5, 18.5, 19.5} {
		rec.poll(0, at(s), 0)
	}
	rec.poll(3, at(12), 0)
	rec.poll(3, at(19.9), 0)
	if _, ok := rec.poll(4, at(15), 0); ok {
		t.Error("a poll of a flow that does not exist was answered")
	}
	var f pollFigures
	rec.finish(at(20), &f)
	rec.poll(0, at(20.5), 0) // after the window: not counted

	if f.Polls != 12 {
		t.Errorf("polls = %d, want 12", f.Polls)
	}
	if want := 12.0 / 10; f.PollsPerSec != want {
		t.Errorf("polls/s = %v, want %v", f.PollsPerSec, want)
	}
	if f.Unpolled != 2 {
		t.Errorf("unpolled = %d, want 2 (flows 1 and 2)", f.Unpolled)
	}
	// 12 closed gaps and 2 open ones (flows 1 and 2; the next polls of
	// flows 0 and 3, due at 20.5 s and 20.9 s, are not late yet).
	if f.LagSamples != 14 {
		t.Errorf("lag samples = %d, want 14", f.LagSamples)
	}
	within := func(name string, got, want float64) {
		t.Helper()
		if got < want*0.99 || got > want*1.01 {
			t.Errorf("%s = %.1f ms, want %.1f", name, got, want)
		}
	}
	within("lag max", f.LagMaxMs, 14000)
	within("lag p99", f.LagP99Ms, 14000)
	if f.LagP50Ms != 0 {
		t.Errorf("lag p50 = %.1f ms, want 0 (most polls on time)", f.LagP50Ms)
	}
	if f.BadRequests != 1 {
		t.Errorf("bad requests = %d, want 1", f.BadRequests)
	}
}

// TestPollRecorderPages: a request right after an answer with items is a
// page of the same poll; one an interval later is a poll, whatever its
// cursor.
func TestPollRecorderPages(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rec := newPollRecorder(1, time.Second, 2)
	rec.begin(at(-1))
	requests := []struct {
		at        float64
		after     int
		wantItems []int
	}{
		{0, 0, nil},        // poll 1
		{1, 0, []int{2}},   // poll 2: item 2 appears
		{1.01, 2, nil},     // the page after it
		{2, 2, nil},        // poll 3
		{3, 2, []int{4}},   // poll 4: item 4
		{4, 2, []int{4}},   // poll 5 of a trigger that did not ask for the page
		{4.2, 4, nil},      // its page
		{4.3, 4, []int{6}}, // soon, but after an empty answer: poll 6, item 6
	}
	for _, r := range requests {
		items, ok := rec.poll(0, at(r.at), r.after)
		var seqs []int
		for _, it := range items {
			seqs = append(seqs, it["seq"].(int))
		}
		if !ok || !slices.Equal(seqs, r.wantItems) {
			t.Errorf("request at %gs after %d: items %v, %v; want %v", r.at, r.after, seqs, ok, r.wantItems)
		}
	}
	var f pollFigures
	rec.finish(at(4.5), &f)
	if f.Polls != 6 || f.Pages != 2 {
		t.Errorf("%d polls and %d pages, want 6 and 2", f.Polls, f.Pages)
	}
}

func TestPollRecorderRuns(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	rec := newPollRecorder(2, time.Second, 1)
	rec.run("0-1", t0) // before the window
	rec.begin(t0.Add(time.Second))
	rec.run("0-2", t0.Add(2*time.Second))
	rec.run("1-2", t0.Add(2*time.Second))
	rec.run("0-2", t0.Add(3*time.Second)) // again
	var f pollFigures
	rec.finish(t0.Add(4*time.Second), &f)
	rec.run("1-3", t0.Add(5*time.Second)) // after the window
	if f.Runs != 2 || f.RunsTotal != 3 || f.RunDupes != 1 {
		t.Errorf("runs = %d in window, %d in all, %d duplicates; want 2, 3, 1", f.Runs, f.RunsTotal, f.RunDupes)
	}
}

func TestPollRecorderProgress(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	rec := newPollRecorder(3, time.Second, 0)
	rec.poll(0, t0, 0)
	rec.poll(1, t0.Add(3*time.Second), 0)
	total, overdue, worst := rec.progress(t0.Add(4 * time.Second))
	if total != 2 || overdue != 1 || worst != 3*time.Second {
		t.Errorf("progress = %d polls, %d overdue, worst %s; want 2, 1, 3s", total, overdue, worst)
	}
}

func TestPollItems(t *testing.T) {
	t.Parallel()
	seqs := func(items []map[string]any) []int {
		out := []int{}
		for _, it := range items {
			out = append(out, it["seq"].(int))
		}
		return out
	}
	tests := []struct {
		flow, n, every, after int
		want                  []int
	}{
		{flow: 0, n: 7, every: 0, after: 0, want: []int{}},
		{flow: 0, n: 7, every: 3, after: 0, want: []int{3, 6}},
		{flow: 0, n: 7, every: 3, after: 3, want: []int{6}},
		{flow: 0, n: 7, every: 3, after: 6, want: []int{}},
		{flow: 1, n: 7, every: 3, after: 0, want: []int{2, 5}},
		{flow: 2, n: 7, every: 3, after: 1, want: []int{4, 7}},
		{flow: 5, n: 3, every: 1, after: -4, want: []int{1, 2, 3}},
		{flow: 0, n: 1, every: 2, after: 0, want: []int{}},
	}
	for _, tt := range tests {
		got := seqs(pollItems(tt.flow, tt.n, tt.every, tt.after))
		if !slices.Equal(got, tt.want) {
			t.Errorf("pollItems(flow %d, n %d, every %d, after %d) = %v, want %v", tt.flow, tt.n, tt.every, tt.after, got, tt.want)
		}
	}
	if got := len(pollItems(0, 1000, 1, 0)); got != pollMaxItems {
		t.Errorf("pollItems answers %d items, want at most %d", got, pollMaxItems)
	}
	if id := pollItems(7, 3, 2, 0)[0]["id"]; id != "7-1" {
		t.Errorf("item id = %v, want 7-1", id)
	}
}

func TestParseItemID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id        string
		flow, seq int
		ok        bool
	}{
		{"7-12", 7, 12, true},
		{"0-1", 0, 1, true},
		{"7", 0, 0, false},
		{"7-0", 0, 0, false},
		{"-1-2", 0, 0, false},
		{"a-1", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		flow, seq, ok := parseItemID(tt.id)
		if ok != tt.ok || (ok && (flow != tt.flow || seq != tt.seq)) {
			t.Errorf("parseItemID(%q) = %d, %d, %v; want %d, %d, %v", tt.id, flow, seq, ok, tt.flow, tt.seq, tt.ok)
		}
	}
}

// TestBaselinePollAgainstAPI runs the baseline's poller against the
// polled API: the first poll learns, each new item is posted once.
func TestBaselinePollAgainstAPI(t *testing.T) {
	t.Parallel()
	rec := newPollRecorder(1, time.Second, 2)
	api, err := startPollAPI(rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer api.close()
	rec.begin(time.Now())
	b := baselinePoll{client: &http.Client{Timeout: 5 * time.Second}, url: api.url + "/poll/0", runURL: api.url + "/runs"}
	for i := range 5 {
		if err := b.poll(context.Background()); err != nil {
			t.Fatalf("poll %d: %v", i+1, err)
		}
	}
	var f pollFigures
	rec.finish(time.Now(), &f)
	// Items appear at polls 2 and 4; the first poll found none.
	// Each of those polls asked once more with the moved cursor: a page.
	if f.Polls != 5 || f.Pages != 2 || f.Runs != 2 || f.RunDupes != 0 || f.BadRequests != 0 {
		t.Errorf("polls %d, pages %d, runs %d, duplicates %d, bad requests %d; want 5, 2, 2, 0, 0",
			f.Polls, f.Pages, f.Runs, f.RunDupes, f.BadRequests)
	}
	if !b.hasCursor || b.cursor != 4 {
		t.Errorf("cursor = %v (set %v), want 4", b.cursor, b.hasCursor)
	}

	resp, err := http.Get(api.url + "/poll/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("poll of an unknown flow: status %d, want 404", resp.StatusCode)
	}
}

func TestConnectorZip(t *testing.T) {
	t.Parallel()
	archive, err := connectorZip(pollManifest("http://127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	// The server checks an upload with connector.ReadArchive: what it
	// refuses, setupPolls could not publish.
	pkg, err := connector.ReadArchive(archive)
	if err != nil {
		t.Fatalf("ReadArchive: %v", err)
	}
	if pkg.Changelog == "" {
		t.Error("the archive has no changelog")
	}
	var m struct {
		Name       string `json:"name"`
		Components []struct {
			Name    string `json:"name"`
			Polling struct {
				Request struct {
					URL string `json:"url"`
				} `json:"request"`
				CursorParam string `json:"cursorParam"`
			} `json:"polling"`
		} `json:"components"`
	}
	if err := json.Unmarshal(pkg.ManifestJSON, &m); err != nil {
		t.Fatalf("connector.json: %v", err)
	}
	if m.Name != pollConnector || len(m.Components) != 1 || m.Components[0].Name != pollComponent {
		t.Fatalf("manifest = %+v", m)
	}
	p := m.Components[0].Polling
	if p.Request.URL != "http://127.0.0.1:9/poll/{{ $.properties.flow }}" || p.CursorParam != "after" {
		t.Errorf("polling = %+v", p)
	}
}

func TestPollFlow(t *testing.T) {
	t.Parallel()
	doc := pollFlow("http://127.0.0.1:9", 42)
	comps := doc["components"].(map[string]any)
	trigger := comps[pollTriggerID].(map[string]any)
	if trigger["type"] != "bench-poll.Poll" || trigger["properties"].(map[string]any)["flow"] != "42" {
		t.Errorf("trigger = %v", trigger)
	}
	call := comps["call"].(map[string]any)["properties"].(map[string]any)
	if call["url"] != "http://127.0.0.1:9/runs" || call["body"] != "{{ $.poll }}" {
		t.Errorf("call = %v", call)
	}
}

func TestComparePolls(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	base := Result{Target: "baseline", Polls: &pollFigures{PollsPerSec: 1000, CPUPer1k: f(0.2), RSSMB: 50}}
	run := Result{Target: "plugboard-sqlite", Polls: &pollFigures{PollsPerSec: 500, CPUPer1k: f(0.8), RSSMB: 125}}
	comparePolls(&base, &run)
	switch {
	case run.VsBaseline == nil || *run.VsBaseline != 0.5:
		t.Errorf("× baseline = %v, want 0.5", run.VsBaseline)
	case run.Polls.CPUVsBaseline == nil || *run.Polls.CPUVsBaseline != 4:
		t.Errorf("CPU per poll × baseline = %v, want 4", run.Polls.CPUVsBaseline)
	case run.Polls.RSSVsBaseline == nil || *run.Polls.RSSVsBaseline != 2.5:
		t.Errorf("RSS × baseline = %v, want 2.5", run.Polls.RSSVsBaseline)
	}

	failed := Result{Target: "plugboard-sqlite", Polls: &pollFigures{PollsPerSec: 500}}
	comparePolls(&Result{Target: "baseline", Error: "boom", Polls: &pollFigures{PollsPerSec: 1000}}, &failed)
	if failed.VsBaseline != nil {
		t.Errorf("× a failed baseline = %v, want none", *failed.VsBaseline)
	}
}

func TestLogWarnings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "server.log")
	log := strings.Join([]string{
		`{"time":"x","level":"INFO","msg":"listening"}`,
		`not JSON`,
		`{"time":"x","level":"WARN","msg":"poll failed","error":"GET 127.0.0.1/poll/3 answered 503"}`,
		`{"time":"x","level":"ERROR","msg":"committing"}`,
	}, "\n")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	n, first := logWarnings(path)
	if n != 2 || first != "poll failed: GET 127.0.0.1/poll/3 answered 503" {
		t.Errorf("logWarnings = %d, %q; want 2 and the first warning", n, first)
	}
	if n, _ := logWarnings(filepath.Join(t.TempDir(), "missing.log")); n != 0 {
		t.Errorf("logWarnings of a missing file = %d, want 0", n)
	}
}

func TestPollTable(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	results := []Result{
		{Scenario: scenarioPolls, Target: "baseline", VsBaseline: f(1),
			Polls: &pollFigures{Flows: 5000, IntervalS: 5, TargetPerSec: 1000, PollsPerSec: 999.9, CPUCores: f(0.2), CPUPer1k: f(0.2), RSSMB: 60}},
		{Scenario: scenarioPolls, Target: "plugboard-sqlite", VsBaseline: f(0.064), DurationS: 60,
			Polls: &pollFigures{Flows: 5000, IntervalS: 5, TargetPerSec: 1000, PollsPerSec: 64, LagP99Ms: 71672.3, Unpolled: 1160,
				RunDupes: 2, Warnings: 1, FirstWarning: "poll failed"}},
	}
	results = append(results, Result{Scenario: scenarioPolls, Target: "plugboard-postgres", DurationS: 60,
		Polls: &pollFigures{Flows: 5000, IntervalS: 120, TargetPerSec: 41.7, PollsPerSec: 60}})
	var out bytes.Buffer
	writeTable(&out, scenarioPolls, results)
	text := out.String()
	for _, want := range []string{
		"| target ", "| lag p99 ms |", " 999.9 |", " 71672.3 |", " 1160 |", " 0.064 |",
		"plugboard-sqlite every 5s: 2 items started more than one run",
		"plugboard-sqlite every 5s: 1 warnings in the server log, the first: poll failed",
		"plugboard-postgres every 120s: the window is shorter than the interval",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
}

func TestPollNotesQuiet(t *testing.T) {
	t.Parallel()
	r := Result{DurationS: 60, Polls: &pollFigures{IntervalS: 5}}
	if notes := pollNotes(r); len(notes) != 0 {
		t.Errorf("notes of a clean run = %q, want none", notes)
	}
}

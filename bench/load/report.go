package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Result is one run: one target at one concurrency. It is printed as a table
// row and as one JSON line.
type Result struct {
	Target      string `json:"target"`
	Concurrency int    `json:"concurrency"`

	DurationS      float64 `json:"durationS"`      // measured window
	Requests       int64   `json:"requests"`       // measured window
	Accepted       int64   `json:"accepted"`       // 202 answers in the measured window
	AcceptedPerSec float64 `json:"acceptedPerSec"` // Accepted / DurationS
	P50Ms          float64 `json:"p50Ms"`
	P99Ms          float64 `json:"p99Ms"`
	MaxMs          float64 `json:"maxMs"`
	Errors         int64   `json:"errors"`        // non-202 answers and failed requests, warm-up included
	AcceptedTotal  int64   `json:"acceptedTotal"` // 202 answers, warm-up included: what must be delivered

	// Delivery, for targets that deliver (nil for the baseline).
	Delivery *sinkCounts `json:"delivery,omitempty"`
	Drained  *bool       `json:"drained,omitempty"` // every accepted message delivered before -drain-timeout
	DrainS   *float64    `json:"drainS,omitempty"`  // end of load until the last delivery (or the timeout)

	StartupMs float64 `json:"startupMs"`
	IdleRSSMB float64 `json:"idleRssMB"`
	PeakRSSMB float64 `json:"peakRssMB"`

	VsBaseline *float64 `json:"vsBaseline,omitempty"` // AcceptedPerSec ÷ the baseline's at the same concurrency
	StopError  string   `json:"stopError,omitempty"`  // SIGTERM did not end the server cleanly
	Error      string   `json:"error,omitempty"`      // the run could not be completed
}

func (r *Result) addLoad(s loadStats) {
	r.DurationS = s.elapsed.Seconds()
	r.Requests = s.requests
	r.Accepted = s.accepted
	r.AcceptedPerSec = s.acceptedPerSec()
	r.P50Ms = ms(s.latency.quantile(0.50))
	r.P99Ms = ms(s.latency.quantile(0.99))
	r.MaxMs = ms(s.latency.max)
	r.Errors = s.errors
	r.AcceptedTotal = s.acceptedTotal
}

func (r *Result) addDelivery(c sinkCounts, drained bool, drain time.Duration) {
	secs := drain.Seconds()
	r.Delivery, r.Drained, r.DrainS = &c, &drained, &secs
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func megabytes(bytes uint64) float64 { return float64(bytes) / (1 << 20) }

// writeTable prints results as a Markdown table, followed by the reason of
// any failed run.
func writeTable(w io.Writer, results []Result) {
	header := []string{"target", "c", "accepted/s", "p50 ms", "p99 ms", "errors",
		"delivered/accepted", "drain s", "idle RSS MB", "peak RSS MB", "start-up ms", "× baseline"}
	rows := [][]string{header}
	var notes []string
	for _, r := range results {
		rows = append(rows, tableRow(r))
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("%s c=%d failed: %s", r.Target, r.Concurrency, firstLine(r.Error)))
		}
		if r.StopError != "" {
			notes = append(notes, fmt.Sprintf("%s c=%d on SIGTERM: %s", r.Target, r.Concurrency, r.StopError))
		}
		if d := r.Delivery; d != nil && (d.Duplicates > 0 || d.Unkeyed > 0 || d.BadBodies > 0) {
			notes = append(notes, fmt.Sprintf("%s c=%d deliveries: %d duplicate, %d without Idempotency-Key, %d without the mapped fields",
				r.Target, r.Concurrency, d.Duplicates, d.Unkeyed, d.BadBodies))
		}
	}

	widths := make([]int, len(header))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, cell := range cells {
			pad := strings.Repeat(" ", widths[i]-len([]rune(cell)))
			if i < 2 {
				b.WriteString(" " + cell + pad + " |")
			} else {
				b.WriteString(" " + pad + cell + " |")
			}
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	rule := make([]string, len(header))
	for i := range rule {
		rule[i] = strings.Repeat("-", widths[i])
		if i >= 2 {
			rule[i] = rule[i][1:] + ":"
		}
	}
	line(rule)
	for _, row := range rows[1:] {
		line(row)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

func tableRow(r Result) []string {
	const none = "—"
	if r.Error != "" {
		row := []string{r.Target, strconv.Itoa(r.Concurrency), "failed"}
		for len(row) < 12 {
			row = append(row, none)
		}
		return row
	}
	delivered, drain := none, none
	if r.Delivery != nil {
		delivered = fmt.Sprintf("%d/%d", r.Delivery.Delivered, r.AcceptedTotal)
		drain = fmt.Sprintf("%.2f", *r.DrainS)
		if !*r.Drained {
			drain = "> " + drain
		}
	}
	ratio := none
	if r.VsBaseline != nil {
		ratio = fmt.Sprintf("%.2f", *r.VsBaseline)
	}
	return []string{
		r.Target,
		strconv.Itoa(r.Concurrency),
		fmt.Sprintf("%.0f", r.AcceptedPerSec),
		fmt.Sprintf("%.2f", r.P50Ms),
		fmt.Sprintf("%.2f", r.P99Ms),
		strconv.FormatInt(r.Errors, 10),
		delivered,
		drain,
		fmt.Sprintf("%.1f", r.IdleRSSMB),
		fmt.Sprintf("%.1f", r.PeakRSSMB),
		fmt.Sprintf("%.1f", r.StartupMs),
		ratio,
	}
}

// writeJSONLines prints one JSON object per result.
func writeJSONLines(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("encoding result: %w", err)
		}
	}
	return nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

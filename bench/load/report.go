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
	Scenario    scenario `json:"scenario"`
	Target      string   `json:"target"`
	Concurrency int      `json:"concurrency"`
	Steps       *int     `json:"steps,omitempty"` // scenario steps: non-I/O steps before the call

	DurationS      float64 `json:"durationS"`      // measured window
	Requests       int64   `json:"requests"`       // measured window
	Accepted       int64   `json:"accepted"`       // 202 answers in the measured window
	AcceptedPerSec float64 `json:"acceptedPerSec"` // Accepted / DurationS
	P50Ms          float64 `json:"p50Ms"`
	P99Ms          float64 `json:"p99Ms"`
	MaxMs          float64 `json:"maxMs"`
	Errors         int64   `json:"errors"`        // non-202 answers, failed checks and failed requests, warm-up included
	AcceptedTotal  int64   `json:"acceptedTotal"` // 202 answers, warm-up included

	// Delivery, for targets that deliver (nil for the baseline).
	Delivery       *sinkCounts `json:"delivery,omitempty"`
	Expected       int64       `json:"expected,omitempty"`       // deliveries owed: AcceptedTotal × the flows each request starts
	MessagesPerSec float64     `json:"messagesPerSec,omitempty"` // deliveries ÷ (warm-up + load + drain)
	Drained        *bool       `json:"drained,omitempty"`        // every expected delivery arrived before -drain-timeout
	DrainS         *float64    `json:"drainS,omitempty"`         // end of load until the last delivery (or the timeout)

	// The server's CPU time (user + system) over the measured window; nil
	// where /proc/<pid>/stat cannot be read.
	CPUS            *float64 `json:"cpuS,omitempty"`
	CPUMicrosPerReq *float64 `json:"cpuUsPerRequest,omitempty"` // CPUS ÷ Accepted, in µs
	MicrosPerStep   *float64 `json:"usPerStep,omitempty"`       // scenario steps: CPU per step, see stepMicros

	StartupMs float64 `json:"startupMs"`
	IdleRSSMB float64 `json:"idleRssMB"`
	PeakRSSMB float64 `json:"peakRssMB"`

	VsBaseline         *float64 `json:"vsBaseline,omitempty"`         // AcceptedPerSec ÷ the baseline's at the same concurrency
	MessagesVsBaseline *float64 `json:"messagesVsBaseline,omitempty"` // MessagesPerSec ÷ the baseline's AcceptedPerSec
	Note               string   `json:"note,omitempty"`               // what the run's flow held, when it varies
	StopError          string   `json:"stopError,omitempty"`          // SIGTERM did not end the server cleanly
	Error              string   `json:"error,omitempty"`              // the run could not be completed

	Polls *pollFigures  `json:"polls,omitempty"` // scenario polls: its own figures
	Proxy *proxyFigures `json:"proxy,omitempty"` // scenario proxy: its own figures
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

// addCPU records cpu, the server's CPU time over the measured window.
func (r *Result) addCPU(cpu time.Duration) {
	secs := cpu.Seconds()
	r.CPUS = &secs
	if r.Accepted > 0 {
		us := secs / float64(r.Accepted) * 1e6
		r.CPUMicrosPerReq = &us
	}
}

// addDelivery records what the sink received: expected deliveries were
// owed, and load is how long the load ran, warm-up included.
func (r *Result) addDelivery(c sinkCounts, expected int64, drained bool, drain, load time.Duration) {
	secs := drain.Seconds()
	r.Delivery, r.Expected, r.Drained, r.DrainS = &c, expected, &drained, &secs
	if window := (load + drain).Seconds(); window > 0 {
		r.MessagesPerSec = float64(c.Delivered) / window
	}
}

// compare fills in the figures that relate the runs made at one
// concurrency: each Plugboard run against the baseline (nil when it did
// not run), and with scenario steps the cost of one step, from the run
// without steps and the one with them.
func compare(baseline *Result, runs []Result) {
	base := 0.0
	if baseline != nil && baseline.Error == "" {
		base = baseline.AcceptedPerSec
	}
	var without *Result
	for i := range runs {
		r := &runs[i]
		if r.Error != "" {
			continue
		}
		if base > 0 {
			ratio := r.AcceptedPerSec / base
			r.VsBaseline = &ratio
			if r.Delivery != nil {
				out := r.MessagesPerSec / base
				r.MessagesVsBaseline = &out
			}
		}
		if r.Steps == nil {
			continue
		}
		if *r.Steps == 0 {
			without = r
		} else if without != nil {
			r.MicrosPerStep = stepMicros(*without, *r)
		}
	}
}

// stepMicros is the server's CPU time one step costs, in microseconds:
// (CPU seconds per accepted request of the flow with steps − the same
// without steps) ÷ the number of steps. It is nil when either run lacks
// the figures.
func stepMicros(without, with Result) *float64 {
	if without.CPUMicrosPerReq == nil || with.CPUMicrosPerReq == nil ||
		without.Steps == nil || with.Steps == nil || *with.Steps <= *without.Steps {
		return nil
	}
	us := (*with.CPUMicrosPerReq - *without.CPUMicrosPerReq) / float64(*with.Steps-*without.Steps)
	return &us
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func megabytes(bytes uint64) float64 { return float64(bytes) / (1 << 20) }

const none = "—"

// optional is a cell showing the figure v picks with format, or none
// when there is none.
func optional(format string, v func(Result) *float64) func(Result) string {
	return func(r Result) string {
		if p := v(r); p != nil {
			return fmt.Sprintf(format, *p)
		}
		return none
	}
}

// column is one column of the table: identity columns are aligned left,
// figures right.
type column struct {
	header string
	left   bool
	cell   func(r Result) string
}

// columns returns the table's columns for scenario s.
func (s scenario) columns() []column {
	figure := func(format string, v func(Result) float64) func(Result) string {
		return func(r Result) string { return fmt.Sprintf(format, v(r)) }
	}
	delivered := func(r Result) string {
		if r.Delivery == nil {
			return none
		}
		return fmt.Sprintf("%d/%d", r.Delivery.Delivered, r.Expected)
	}
	drain := func(r Result) string {
		if r.Delivery == nil {
			return none
		}
		d := fmt.Sprintf("%.2f", *r.DrainS)
		if !*r.Drained {
			d = "> " + d
		}
		return d
	}

	target := column{"target", true, func(r Result) string { return r.Target }}
	conc := column{"c", true, func(r Result) string { return strconv.Itoa(r.Concurrency) }}
	p50 := column{"p50 ms", false, figure("%.2f", func(r Result) float64 { return r.P50Ms })}
	p99 := column{"p99 ms", false, figure("%.2f", func(r Result) float64 { return r.P99Ms })}
	errs := column{"errors", false, func(r Result) string { return strconv.FormatInt(r.Errors, 10) }}
	drainCol := column{"drain s", false, drain}
	memory := []column{
		{"idle RSS MB", false, figure("%.1f", func(r Result) float64 { return r.IdleRSSMB })},
		{"peak RSS MB", false, figure("%.1f", func(r Result) float64 { return r.PeakRSSMB })},
		{"start-up ms", false, figure("%.1f", func(r Result) float64 { return r.StartupMs })},
	}
	vsBaseline := column{"× baseline", false, optional("%.2f", func(r Result) *float64 { return r.VsBaseline })}

	switch s {
	case scenarioPolls:
		return pollColumns()
	case scenarioProxy:
		return proxyColumns()
	case scenarioAppEvents:
		cols := []column{target, conc,
			{"events/s", false, figure("%.0f", func(r Result) float64 { return r.AcceptedPerSec })},
			p50, p99, errs,
			{"delivered/expected", false, delivered},
			{"messages/s", false, func(r Result) string {
				if r.Delivery == nil {
					return none
				}
				return fmt.Sprintf("%.0f", r.MessagesPerSec)
			}},
			drainCol,
		}
		cols = append(cols, memory...)
		// One event is a hundred messages: events/s sit far below the baseline.
		return append(cols,
			column{"× baseline", false, optional("%.4f", func(r Result) *float64 { return r.VsBaseline })},
			column{"messages/s ÷ baseline", false, optional("%.2f", func(r Result) *float64 { return r.MessagesVsBaseline })})
	case scenarioSteps:
		cols := []column{target, conc,
			{"steps", true, func(r Result) string {
				if r.Steps == nil {
					return none
				}
				return strconv.Itoa(*r.Steps)
			}},
			{"accepted/s", false, figure("%.0f", func(r Result) float64 { return r.AcceptedPerSec })},
			p50, p99, errs,
			{"delivered/accepted", false, delivered},
			drainCol,
			{"CPU s", false, optional("%.2f", func(r Result) *float64 { return r.CPUS })},
			{"CPU µs/req", false, optional("%.0f", func(r Result) *float64 { return r.CPUMicrosPerReq })},
			{"µs/step", false, optional("%.1f", func(r Result) *float64 { return r.MicrosPerStep })},
		}
		cols = append(cols, memory...)
		return append(cols, vsBaseline)
	}
	cols := []column{target, conc,
		{"accepted/s", false, figure("%.0f", func(r Result) float64 { return r.AcceptedPerSec })},
		p50, p99, errs,
		{"delivered/accepted", false, delivered},
		drainCol,
	}
	cols = append(cols, memory...)
	return append(cols, vsBaseline)
}

// writeTable prints results as a Markdown table with the columns of
// scenario s, followed by the reason of any failed run and anything wrong
// with the deliveries.
func writeTable(w io.Writer, s scenario, results []Result) {
	cols := s.columns()
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.header
	}
	rows := [][]string{header}
	var notes []string
	for _, r := range results {
		rows = append(rows, tableRow(cols, r))
		name := fmt.Sprintf("%s c=%d", r.Target, r.Concurrency)
		if r.Steps != nil {
			name += fmt.Sprintf(" steps=%d", *r.Steps)
		}
		if r.Polls != nil {
			name = fmt.Sprintf("%s every %gs", r.Target, r.Polls.IntervalS)
			for _, n := range pollNotes(r) {
				notes = append(notes, name+": "+n)
			}
		}
		if r.Proxy != nil {
			for _, n := range proxyNotes(r) {
				notes = append(notes, name+": "+n)
			}
		}
		if r.Note != "" {
			notes = append(notes, name+": "+r.Note)
		}
		if r.Error != "" {
			notes = append(notes, fmt.Sprintf("%s failed: %s", name, firstLine(r.Error)))
		}
		if r.StopError != "" {
			notes = append(notes, fmt.Sprintf("%s on SIGTERM: %s", name, r.StopError))
		}
		if d := r.Delivery; d != nil && (d.Duplicates > 0 || d.Repeated > 0 || d.Unkeyed > 0 || d.BadBodies > 0) {
			notes = append(notes, fmt.Sprintf("%s deliveries: %d duplicate, %d repeated under another key, %d without Idempotency-Key, %d with an unexpected body",
				name, d.Duplicates, d.Repeated, d.Unkeyed, d.BadBodies))
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
			if cols[i].left {
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
		if !cols[i].left {
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

// tableRow renders r; a failed run keeps its identity columns and says
// "failed" in the first figure.
func tableRow(cols []column, r Result) []string {
	row := make([]string, len(cols))
	failed := r.Error != ""
	for i, c := range cols {
		switch {
		case !failed || c.left:
			row[i] = c.cell(r)
		case i > 0 && cols[i-1].left:
			row[i] = "failed"
		default:
			row[i] = none
		}
	}
	return row
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

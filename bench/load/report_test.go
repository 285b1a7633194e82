package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	t.Parallel()
	ratio, drained, drain := 0.5, false, 120.0
	results := []Result{
		{Target: "baseline", Concurrency: 64, AcceptedPerSec: 20000, P50Ms: 1.5, P99Ms: 9},
		{Target: "plugboard-sqlite", Concurrency: 64, AcceptedPerSec: 10000, AcceptedTotal: 100,
			Delivery: &sinkCounts{Delivered: 90, Duplicates: 2}, Drained: &drained, DrainS: &drain, VsBaseline: &ratio},
		{Target: "plugboard-postgres", Concurrency: 64, Error: "server not ready after 1m0s\nlog"},
	}
	var b bytes.Buffer
	writeTable(&b, results)
	out := b.String()
	for _, want := range []string{
		"| baseline ",
		"|      20000 |",
		"90/100",
		"> 120.00",
		"0.50 |",
		"| plugboard-postgres | 64 |     failed |",
		"- plugboard-postgres c=64 failed: server not ready after 1m0s\n",
		"2 duplicate",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

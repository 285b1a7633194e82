package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestWriteTable(t *testing.T) {
	t.Parallel()
	ratio, drained, drain := 0.5, false, 120.0
	results := []Result{
		{Target: "baseline", Concurrency: 64, AcceptedPerSec: 20000, P50Ms: 1.5, P99Ms: 9},
		{Target: "plugboard-sqlite", Concurrency: 64, AcceptedPerSec: 10000, AcceptedTotal: 100, Expected: 100,
			Delivery: &sinkCounts{Delivered: 90, Duplicates: 2}, Drained: &drained, DrainS: &drain, VsBaseline: &ratio},
		{Target: "plugboard-postgres", Concurrency: 64, Error: "server not ready after 1m0s\nlog"},
	}
	var b bytes.Buffer
	writeTable(&b, scenarioWebhook, results)
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
		"| target             | c  | accepted/s | p50 ms |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteTableScenarios(t *testing.T) {
	t.Parallel()
	zero, ten := 0, 10
	cpu, perReq, perStep, ratio, out := 1.5, 150.0, 4.26, 0.01, 0.5
	drained, drain := true, 0.5
	tests := []struct {
		scenario scenario
		results  []Result
		want     []string
	}{
		{scenarioAppEvents, []Result{
			{Target: "baseline", Concurrency: 16, AcceptedPerSec: 20000},
			{Target: "plugboard-sqlite", Concurrency: 16, AcceptedPerSec: 100, AcceptedTotal: 12,
				Delivery: &sinkCounts{Delivered: 1200}, Expected: 1200, MessagesPerSec: 9876, Drained: &drained, DrainS: &drain,
				VsBaseline: &ratio, MessagesVsBaseline: &out},
		}, []string{"| events/s |", "| delivered/expected |", "| messages/s ÷ baseline |", "1200/1200", "|       9876 |", "0.50 |\n"}},
		{scenarioSteps, []Result{
			{Target: "plugboard-sqlite", Concurrency: 32, Steps: &zero, CPUS: &cpu, CPUMicrosPerReq: &perReq},
			{Target: "plugboard-sqlite", Concurrency: 32, Steps: &ten, MicrosPerStep: &perStep, Note: "10 steps: 5 core.Filter, 5 core.Set"},
			{Target: "plugboard-sqlite", Concurrency: 64, Steps: &ten, Error: "boom"},
		}, []string{"| c  | steps |", "| 0     |", "|  1.50 |", "|        150 |", "|     4.3 |",
			"| plugboard-sqlite | 64 | 10    |     failed |",
			"- plugboard-sqlite c=32 steps=10: 10 steps: 5 core.Filter, 5 core.Set\n",
			"- plugboard-sqlite c=64 steps=10 failed: boom\n"}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeTable(&b, tt.scenario, tt.results)
		for _, want := range tt.want {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s table lacks %q:\n%s", tt.scenario, want, b.String())
			}
		}
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	zero, ten := 0, 10
	per0, per10 := 200.0, 260.0
	baseline := &Result{Target: "baseline", AcceptedPerSec: 10000}
	runs := []Result{
		{Steps: &zero, AcceptedPerSec: 2000, CPUMicrosPerReq: &per0},
		{Steps: &ten, AcceptedPerSec: 1000, CPUMicrosPerReq: &per10, Delivery: &sinkCounts{}, MessagesPerSec: 50000},
	}
	compare(baseline, runs)
	if got := runs[0].VsBaseline; got == nil || *got != 0.2 {
		t.Errorf("VsBaseline = %v, want 0.2", got)
	}
	if got := runs[1].MessagesVsBaseline; got == nil || *got != 5 {
		t.Errorf("MessagesVsBaseline = %v, want 5", got)
	}
	if runs[0].MessagesVsBaseline != nil {
		t.Errorf("MessagesVsBaseline of a run without deliveries = %v, want nil", *runs[0].MessagesVsBaseline)
	}
	if got := runs[1].MicrosPerStep; got == nil || *got != 6 {
		t.Errorf("MicrosPerStep = %v, want (260-200)/10 = 6", got)
	}

	failed := []Result{{Steps: &zero, Error: "x", CPUMicrosPerReq: &per0}, {Steps: &ten, CPUMicrosPerReq: &per10}}
	compare(&Result{Error: "down"}, failed)
	if failed[1].VsBaseline != nil || failed[1].MicrosPerStep != nil {
		t.Errorf("compare used a failed run: %+v", failed[1])
	}
}

func TestStepMicros(t *testing.T) {
	t.Parallel()
	zero, ten := 0, 10
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name          string
		without, with Result
		want          *float64
	}{
		{"cost", Result{Steps: &zero, CPUMicrosPerReq: f(180)}, Result{Steps: &ten, CPUMicrosPerReq: f(225)}, f(4.5)},
		{"noise makes it negative", Result{Steps: &zero, CPUMicrosPerReq: f(200)}, Result{Steps: &ten, CPUMicrosPerReq: f(190)}, f(-1)},
		{"no CPU figure", Result{Steps: &zero}, Result{Steps: &ten, CPUMicrosPerReq: f(225)}, nil},
		{"same step count", Result{Steps: &ten, CPUMicrosPerReq: f(1)}, Result{Steps: &ten, CPUMicrosPerReq: f(2)}, nil},
		{"not a steps run", Result{CPUMicrosPerReq: f(1)}, Result{Steps: &ten, CPUMicrosPerReq: f(2)}, nil},
	}
	for _, tt := range tests {
		got := stepMicros(tt.without, tt.with)
		switch {
		case (got == nil) != (tt.want == nil):
			t.Errorf("%s: stepMicros = %v, want %v", tt.name, got, tt.want)
		case got != nil && math.Abs(*got-*tt.want) > 1e-9:
			t.Errorf("%s: stepMicros = %v, want %v", tt.name, *got, *tt.want)
		}
	}
}

func TestAddCPU(t *testing.T) {
	t.Parallel()
	r := Result{Accepted: 4000}
	r.addCPU(2 * time.Second)
	if r.CPUS == nil || *r.CPUS != 2 || r.CPUMicrosPerReq == nil || *r.CPUMicrosPerReq != 500 {
		t.Errorf("addCPU(2s) over 4000 requests: CPUS %v, µs/req %v; want 2 and 500", r.CPUS, r.CPUMicrosPerReq)
	}
	var idle Result
	idle.addCPU(time.Second)
	if idle.CPUMicrosPerReq != nil {
		t.Errorf("µs/req without requests = %v, want nil", *idle.CPUMicrosPerReq)
	}
}

func TestAddDelivery(t *testing.T) {
	t.Parallel()
	var r Result
	r.addDelivery(sinkCounts{Delivered: 12000}, 12000, true, 1*time.Second, 11*time.Second)
	if r.MessagesPerSec != 1000 || r.Expected != 12000 || !*r.Drained || *r.DrainS != 1 {
		t.Errorf("addDelivery: %+v", r)
	}
}

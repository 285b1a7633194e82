package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseConcurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "64", want: []int{64}},
		{in: "32,64", want: []int{32, 64}},
		{in: " 8 , 16 ", want: []int{8, 16}},
		{in: "0", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "32,", wantErr: true},
		{in: "many", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseConcurrency(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseConcurrency(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseFlagsRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-d", "0s"}, "-d must be positive"},
		{[]string{"-warmup", "-1s"}, "-warmup must not be negative"},
		{[]string{"-drain-timeout", "0s"}, "-drain-timeout must be positive"},
		{[]string{"-skip-baseline", "-skip-plugboard"}, "nothing to run"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"-scenario", "fanout"}, `-scenario: "fanout" is not one of webhook, appevents, steps, polls, proxy`},
		{[]string{"-scenario", "polls", "-flows", "0"}, "-flows must be positive"},
		{[]string{"-scenario", "polls", "-poll-interval", "5s,0s"}, `-poll-interval: "0s" is not a positive duration`},
		{[]string{"-scenario", "polls", "-item-every", "-1"}, "-item-every must not be negative"},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q) error = %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}

func TestParseScenario(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    scenario
		wantErr bool
	}{
		{in: "webhook", want: scenarioWebhook},
		{in: "appevents", want: scenarioAppEvents},
		{in: "steps", want: scenarioSteps},
		{in: "polls", want: scenarioPolls},
		{in: "", wantErr: true},
		{in: "Steps", wantErr: true},
		{in: "app-events", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseScenario(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseScenario(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseFlagsScenario(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want scenario
	}{
		{nil, scenarioWebhook},
		{[]string{"-scenario", "appevents", "-c", "16"}, scenarioAppEvents},
		{[]string{"-scenario=steps"}, scenarioSteps},
		{[]string{"-scenario", "polls"}, scenarioPolls},
	}
	for _, tt := range tests {
		cfg, err := parseFlags(tt.args, io.Discard)
		if err != nil || cfg.scenario != tt.want {
			t.Errorf("parseFlags(%q) scenario = %q, %v; want %q", tt.args, cfg.scenario, err, tt.want)
		}
	}
}

func TestParseFlagsPolls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args      []string
		duration  time.Duration
		intervals []time.Duration
	}{
		{[]string{"-scenario", "polls"}, 60 * time.Second, []time.Duration{5 * time.Second}},
		{[]string{"-scenario", "polls", "-d", "20s", "-poll-interval", "5s, 1m"}, 20 * time.Second, []time.Duration{5 * time.Second, time.Minute}},
		{nil, 10 * time.Second, []time.Duration{5 * time.Second}},
	}
	for _, tt := range tests {
		cfg, err := parseFlags(tt.args, io.Discard)
		if err != nil || cfg.duration != tt.duration || !slices.Equal(cfg.pollIntervals, tt.intervals) {
			t.Errorf("parseFlags(%q) = -d %s, intervals %v, %v; want %s, %v", tt.args, cfg.duration, cfg.pollIntervals, err, tt.duration, tt.intervals)
		}
	}
	cfg, err := parseFlags([]string{"-scenario", "polls"}, io.Discard)
	if err != nil || cfg.flows != 5000 || cfg.itemEvery != 100 {
		t.Errorf("polls defaults: %d flows, an item every %d polls, %v; want 5000, 100", cfg.flows, cfg.itemEvery, err)
	}
}

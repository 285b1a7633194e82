package main

import (
	"slices"
	"testing"
	"time"
)

func TestStatusField(t *testing.T) {
	t.Parallel()
	status := []byte("Name:\tplugboard\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n")
	if got := statusField(status, "VmRSS"); got != 20480<<10 {
		t.Errorf("VmRSS = %d", got)
	}
	if got := statusField(status, "VmHWM"); got != 40960<<10 {
		t.Errorf("VmHWM = %d", got)
	}
	if got := statusField(status, "VmSwap"); got != 0 {
		t.Errorf("missing field = %d, want 0", got)
	}
}

func TestServerEnvDropsInherited(t *testing.T) {
	t.Parallel()
	env := serverEnv([]string{"HOME=/root", "PLUGBOARD_DATABASE_URL=postgres://prod"}, map[string]string{"PLUGBOARD_ADDR": "127.0.0.1:1"})
	slices.Sort(env)
	want := []string{"HOME=/root", "PLUGBOARD_ADDR=127.0.0.1:1"}
	if !slices.Equal(env, want) {
		t.Errorf("serverEnv = %q, want %q", env, want)
	}
}

func TestStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "4242 (plugboard) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 37 0 0 20 0 9 0 100 0 0", 1870 * time.Millisecond, false},
		{"name with spaces and parentheses", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5", 30 * time.Millisecond, false},
		{"no name", "4242 plugboard S 1", 0, true},
		{"cut short", "4242 (plugboard) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150", 0, true},
		{"not a number", "4242 (plugboard) S 1 4242 4242 0 -1 4194560 2000 0 0 0 x 37 0", 0, true},
	}
	for _, tt := range tests {
		got, err := statCPU([]byte(tt.stat))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: statCPU = %v, %v; want %v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

package main

import (
	"slices"
	"testing"
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

package main

import (
	"io"
	"slices"
	"strings"
	"testing"
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
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q) error = %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}

package connector_test

import (
	"testing"

	"github.com/plugboard/plugboard/internal/connector"
)

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.0.0", "1.0.1", -1},
		{"1.10.0", "1.9.0", 1},
		{"2.0.0", "10.0.0", -1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.0.0-alpha", "1.0.0-beta", -1},
		{"1.0.0-rc.2", "1.0.0-rc.10", -1},
		{"1.0.0+build.1", "1.0.0+build.2", 0},
	}
	for _, tt := range tests {
		got, err := connector.CompareVersions(tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "1", "1.2", "v1.2.3", "01.2.3", "1.2.3.4", "1.2.x", " 1.2.3"} {
		if _, err := connector.CompareVersions(bad, "1.0.0"); err == nil {
			t.Errorf("CompareVersions(%q) accepted", bad)
		}
		if _, err := connector.IsMajorUpdate("1.0.0", bad); err == nil {
			t.Errorf("IsMajorUpdate(%q) accepted", bad)
		}
	}
}

func TestIsMajorUpdate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to string
		want     bool
	}{
		{"1.0.0", "1.0.1", false},
		{"1.0.0", "1.5.0", false},
		{"1.9.9", "2.0.0", true},
		{"1.0.0", "3.1.0", true},
		{"2.0.0", "1.9.0", true}, // downgrade across a major line
		{"1.2.0", "1.1.0", false},
		{"1.4.0", "2.0.0-rc.1", true},
		{"2.0.0-rc.1", "2.0.0", false},
		{"0.3.1", "0.3.2", false},
		{"0.3.2", "0.4.0", true}, // 0.x: the minor version is the compatibility line
		{"0.9.0", "1.0.0", true},
		{"0.0.1", "0.0.2", false},
	}
	for _, tt := range tests {
		got, err := connector.IsMajorUpdate(tt.from, tt.to)
		if err != nil || got != tt.want {
			t.Errorf("IsMajorUpdate(%q, %q) = %v, %v; want %v", tt.from, tt.to, got, err, tt.want)
		}
	}
}

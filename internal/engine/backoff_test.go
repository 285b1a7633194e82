package engine

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		attempt       int
		initial, max  time.Duration
		wantLo, wantH time.Duration
	}{
		{1, time.Second, time.Hour, 500 * time.Millisecond, time.Second},
		{2, time.Second, time.Hour, time.Second, 2 * time.Second},
		{4, time.Second, time.Hour, 4 * time.Second, 8 * time.Second},
		{30, time.Second, time.Hour, 30 * time.Minute, time.Hour},
		{3, 10 * time.Millisecond, 25 * time.Millisecond, 12500 * time.Microsecond, 25 * time.Millisecond},
		{1, 0, 0, 500 * time.Millisecond, time.Second}, // defaults
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff(c.attempt, c.initial, c.max)
			if d < c.wantLo || d > c.wantH {
				t.Fatalf("backoff(%d, %s, %s) = %s, want within [%s, %s]", c.attempt, c.initial, c.max, d, c.wantLo, c.wantH)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d, %s, %s) has no jitter: %d distinct values", c.attempt, c.initial, c.max, len(seen))
		}
	}
}

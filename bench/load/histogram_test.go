package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundsContainValue(t *testing.T) {
	t.Parallel()
	values := []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 123_456, 1 << 40, 1<<63 - 1, 1<<64 - 1}
	for _, v := range values {
		i := bucketIndex(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketIndex(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		low, width := bucketBounds(i)
		if v < low || v-low >= width {
			t.Errorf("value %d in bucket %d = [%d, %d+%d)", v, i, low, low, width)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 0-10ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential 2ms", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(2*time.Millisecond)) }},
		{"sub-microsecond", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(300)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, 2))
			var h, part histogram
			exact := make([]time.Duration, 50_000)
			for i := range exact {
				exact[i] = tt.gen(r)
				part.record(exact[i])
				if i%1000 == 999 { // exercise merge as the load workers do
					h.merge(&part)
					part = histogram{}
				}
			}
			h.merge(&part)
			slices.Sort(exact)
			for _, q := range []float64{0.5, 0.9, 0.99, 1} {
				want := exact[max(0, int(q*float64(len(exact)))-1)]
				got := h.quantile(q)
				if diff := float64(got - want); diff > 0.005*float64(want)+1 || -diff > 0.005*float64(want)+1 {
					t.Errorf("quantile(%v) = %v, exact %v", q, got, want)
				}
			}
		})
	}
}

func TestHistogramEmpty(t *testing.T) {
	t.Parallel()
	var h histogram
	if got := h.quantile(0.99); got != 0 {
		t.Errorf("quantile of empty histogram = %v, want 0", got)
	}
}

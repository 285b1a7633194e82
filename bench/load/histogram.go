package main

import (
	"math"
	"math/bits"
	"time"
)

// subBucketBits sets the histogram's precision: durations below 2^subBucketBits
// nanoseconds get a bucket each; above that, every power of two is split into
// 2^(subBucketBits-1) buckets, so a bucket is at most 1/128 of its lower bound
// wide and a reported percentile (the bucket's middle) is within 0.4 % of the
// exact one.
const (
	subBucketBits = 8
	subBuckets    = 1 << subBucketBits
	halfBuckets   = subBuckets / 2
	numBuckets    = subBuckets + (64-subBucketBits)*halfBuckets
)

// histogram records request latencies in log-linear buckets. It is not safe
// for concurrent use: each load worker owns one and they are merged at the end.
type histogram struct {
	counts [numBuckets]uint64
	total  uint64
	max    time.Duration
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketIndex(uint64(max(d, 0)))]++
	h.total++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the duration below which a fraction q of the recorded
// durations fall, q in [0, 1]. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, n := range h.counts {
		seen += n
		if seen >= rank {
			low, width := bucketBounds(i)
			return min(time.Duration(low+width/2), h.max)
		}
	}
	return h.max
}

func bucketIndex(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBucketBits // >= 1
	return subBuckets + (shift-1)*halfBuckets + int(v>>shift) - halfBuckets
}

// bucketBounds returns the lowest value of bucket i and the bucket's width.
func bucketBounds(i int) (low, width uint64) {
	if i < subBuckets {
		return uint64(i), 1
	}
	j := i - subBuckets
	shift := j/halfBuckets + 1
	mantissa := uint64(j%halfBuckets + halfBuckets)
	return mantissa << shift, 1 << shift
}

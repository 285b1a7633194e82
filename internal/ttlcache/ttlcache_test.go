package ttlcache

import (
	"strconv"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		cache *Cache[string, int]
		at    time.Duration // after the put
		want  bool
	}{
		{"default, fresh", &Cache[string, int]{}, DefaultTTL - time.Millisecond, true},
		{"default, expired", &Cache[string, int]{}, DefaultTTL, false},
		{"own TTL, fresh", &Cache[string, int]{TTL: time.Minute}, 59 * time.Second, true},
		{"own TTL, expired", &Cache[string, int]{TTL: time.Minute}, time.Minute + time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, ok := tt.cache.Get("a", now); ok {
				t.Fatal("a value before any put")
			}
			tt.cache.Put("a", 1, now)
			v, ok := tt.cache.Get("a", now.Add(tt.at))
			if ok != tt.want || (ok && v != 1) {
				t.Fatalf("Get after %s = %d, %v; want 1, %v", tt.at, v, ok, tt.want)
			}
		})
	}
}

func TestCacheForget(t *testing.T) {
	t.Parallel()
	var c Cache[string, int]
	now := time.Now()
	c.Forget("a") // on an empty cache
	c.Put("a", 1, now)
	c.Put("b", 2, now)
	c.Forget("a")
	if _, ok := c.Get("a", now); ok {
		t.Fatal("a forgotten value")
	}
	if v, ok := c.Get("b", now); !ok || v != 2 {
		t.Fatalf("b = %d, %v; want 2, true", v, ok)
	}
}

func TestCacheStartsAfreshWhenFull(t *testing.T) {
	t.Parallel()
	c := Cache[string, int]{Size: 3}
	now := time.Now()
	for i := range 3 {
		c.Put(strconv.Itoa(i), i, now)
	}
	c.Put("0", 10, now) // a key it holds: replaced, nothing dropped
	if len(c.m) != 3 {
		t.Fatalf("%d entries after replacing one in a full cache; want 3", len(c.m))
	}
	c.Put("3", 3, now)
	if len(c.m) != 1 {
		t.Fatalf("%d entries after a new key into a full cache; want 1", len(c.m))
	}
	if v, ok := c.Get("3", now); !ok || v != 3 {
		t.Fatalf("3 = %d, %v; want 3, true", v, ok)
	}
	if _, ok := c.Get("0", now); ok {
		t.Fatal("an entry kept over a start afresh")
	}
}

// Package ttlcache keeps values for a short time, so that a busy path
// reads them once per TTL rather than on every call, at the cost of
// seeing a change made elsewhere up to a TTL late.
package ttlcache

import (
	"cmp"
	"sync"
	"time"
)

// Defaults of a zero Cache.
const (
	DefaultTTL  = time.Second
	DefaultSize = 10_000
)

// Cache keeps values by key for TTL, at most Size of them: a put of a new
// key into a full cache starts afresh. The zero value is ready for use, with
// DefaultTTL and DefaultSize; TTL and Size are set before first use.
// It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	TTL  time.Duration
	Size int

	mu sync.Mutex
	m  map[K]entry[V]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// Get returns the value of key put less than TTL before now.
func (c *Cache[K, V]) Get(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put keeps v as the value of key from now for TTL.
func (c *Cache[K, V]) Put(key K, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= cmp.Or(c.Size, DefaultSize) {
		c.m = nil
	}
	if c.m == nil {
		c.m = make(map[K]entry[V])
	}
	c.m[key] = entry[V]{v: v, expires: now.Add(cmp.Or(c.TTL, DefaultTTL))}
}

// Forget drops the value of key, after this node changed what it stands
// for.
func (c *Cache[K, V]) Forget(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

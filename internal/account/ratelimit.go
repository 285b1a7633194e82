package account

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/plugboard/plugboard/internal/store"
)

// limiters holds a token bucket per account that has a rate limit. A
// bucket is made again when the account's limit changes.
type limiters struct {
	mu sync.Mutex
	m  map[string]*limiter
}

type limiter struct {
	perSecond float64
	lim       *rate.Limiter
}

// take lets one request through a at now, or says when one would pass:
// it never waits. The burst is the limit rounded up (at least 1), so a
// limit of 5 lets 5 requests through at once, then one every 200ms.
func (l *limiters) take(a *store.Account, now time.Time) error {
	if a.RateLimit <= 0 {
		return nil
	}
	l.mu.Lock()
	e := l.m[a.ID]
	if e == nil || e.perSecond != a.RateLimit {
		burst := max(1, int(math.Ceil(a.RateLimit)))
		e = &limiter{perSecond: a.RateLimit, lim: rate.NewLimiter(rate.Limit(a.RateLimit), burst)}
		l.m[a.ID] = e
	}
	l.mu.Unlock()
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return &RateLimitedError{AccountID: a.ID, RetryAfter: time.Second}
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &RateLimitedError{AccountID: a.ID, RetryAfter: d}
	}
	return nil
}

// forget drops the bucket of account id.
func (l *limiters) forget(id string) {
	l.mu.Lock()
	delete(l.m, id)
	l.mu.Unlock()
}

package account

import (
	"cmp"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
)

// maxRequestAttempts is how often a wait=false request is tried.
const maxRequestAttempts = 10

// requestJob is the payload of a wait=false request's job.
type requestJob struct {
	ID        string `json:"id"`
	AccountID string `json:"accountId"`
	// OwnerID owns the account: the job runs as them.
	OwnerID string `json:"ownerId"`
	// UserID asked for the request (the owner or an admin), for the audit
	// log.
	UserID  string  `json:"userId"`
	Source  string  `json:"source,omitempty"`
	Request Request `json:"request"`
}

// enqueue is Enqueue once the account is loaded (and found usable).
func (s *Service) enqueue(ctx context.Context, c Caller, a *store.Account, req Request, source string) (string, error) {
	if _, err := s.prepare(a, req); err != nil {
		return "", err
	}
	// Headers that are never sent are not kept either: a credential the
	// caller put there stays out of the database.
	if len(req.Headers) > 0 {
		kept := make(map[string]string, len(req.Headers))
		for name, value := range req.Headers {
			if !reservedHeader(http.CanonicalHeaderKey(name)) {
				kept[name] = value
			}
		}
		req.Headers = kept
	}
	j := requestJob{ID: newID(), AccountID: a.ID, OwnerID: a.OwnerID, UserID: c.UserID, Source: source, Request: req}
	reqJSON, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("encoding request: %w", err)
	}
	payload, err := json.Marshal(j)
	if err != nil {
		return "", fmt.Errorf("encoding request: %w", err)
	}
	err = s.cfg.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertAccountRequest(ctx, &store.AccountRequest{
			ID: j.ID, AccountID: a.ID, OwnerID: a.OwnerID, State: store.AccountRequestPending, Request: reqJSON,
		}); err != nil {
			return err
		}
		return tx.EnqueueJobs(ctx, []store.NewJob{engine.NewKindJob(j.ID, KindName, maxRequestAttempts, payload)})
	})
	if err != nil {
		return "", fmt.Errorf("queueing a request through account %s: %w", a.ID, err)
	}
	return j.ID, nil
}

// answerError is an answer that may pass if the request is made again
// (408, 429, 5xx).
type answerError struct {
	result *Result
	err    error
}

func (e *answerError) Error() string { return e.err.Error() }
func (e *answerError) Unwrap() error { return e.err }

// runJob makes one attempt of a wait=false request. Any answer but 408,
// 429 and 5xx is its result; those and failures to get one (timeouts,
// connections, the rate limit) are tried again; an account that cannot be
// used, a refused address or a request that is not valid fail for good.
func (s *Service) runJob(ctx context.Context, payload json.RawMessage, _ int) error {
	var j requestJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return component.Permanent(fmt.Errorf("decoding request job: %w", err))
	}
	a, err := s.loadAny(ctx, Caller{UserID: j.OwnerID}, j.AccountID)
	if errors.Is(err, ErrNotFound) {
		return component.Permanent(err)
	}
	if err != nil {
		return err
	}
	// Every attempt carries the request id as its Idempotency-Key (unless
	// the caller chose one), so that an API can tell an attempt made again
	// after a timeout from a new request.
	if !hasHeader(j.Request.Headers, idempotencyKey) {
		headers := make(map[string]string, len(j.Request.Headers)+1)
		maps.Copy(headers, j.Request.Headers)
		headers[idempotencyKey] = j.ID
		j.Request.Headers = headers
	}
	res, err := s.call(ctx, cmp.Or(j.UserID, j.OwnerID), a, j.Request, cmp.Or(j.Source, "job"))
	if err != nil {
		if _, bad := errors.AsType[*InputError](err); bad || outbound.IsFinal(err) ||
			errors.Is(err, ErrRevoked) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
			return component.Permanent(err)
		}
		return err
	}
	if outbound.RetryableStatus(res.Status) {
		return &answerError{result: res, err: fmt.Errorf("request %s through account %s: the API answered %d", j.ID, a.ID, res.Status)}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return component.Permanent(fmt.Errorf("encoding the result of request %s: %w", j.ID, err))
	}
	s.results.put(j.ID, b)
	return nil
}

// idempotencyKey is the header that names a wait=false request's
// attempts as one request.
const idempotencyKey = "Idempotency-Key"

// hasHeader reports whether h holds a header a server would read as
// name.
func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if sameHeader(k, name) {
			return true
		}
	}
	return false
}

// errResultLost fails the record of an attempt whose result left the
// stash before it was written (see resultStash): the job is not finished
// and runs again once its lease ends, with the same Idempotency-Key.
var errResultLost = errors.New("the result was dropped before it was recorded")

// recordJob writes the outcome of an attempt on the request's row, in
// the transaction that finishes or reschedules its job.
func (s *Service) recordJob(ctx context.Context, tx *store.Tx, payload json.RawMessage, attempt int, err error, final bool) error {
	var j requestJob
	if json.Unmarshal(payload, &j) != nil || j.ID == "" {
		return nil // nothing to record against
	}
	state, msg := store.AccountRequestDone, ""
	var raw json.RawMessage
	if err == nil {
		var ok bool
		if raw, ok = s.results.take(j.ID); !ok {
			return fmt.Errorf("recording request %s: %w", j.ID, errResultLost)
		}
	} else {
		state, msg = store.AccountRequestPending, err.Error()
		if final {
			state = store.AccountRequestFailed
		}
		if ae, ok := errors.AsType[*answerError](err); ok {
			b, merr := json.Marshal(ae.result)
			if merr != nil {
				return fmt.Errorf("encoding the result of request %s: %w", j.ID, merr)
			}
			raw = b
		}
	}
	return tx.RecordAccountRequest(ctx, j.ID, state, raw, msg, attempt)
}

// requestResult shows request requestID of account a.
func (s *Service) requestResult(ctx context.Context, a *store.Account, requestID string) (*RequestView, error) {
	r, err := s.cfg.Store.AccountRequest(ctx, requestID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.AccountID != a.ID) {
		return nil, fmt.Errorf("loading request %s of account %s: no such request: %w", requestID, a.ID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("loading request %s: %w", requestID, err)
	}
	v := &RequestView{
		ID: r.ID, AccountID: r.AccountID, State: r.State, Attempts: r.Attempts, Error: r.Error,
		Request: r.Request, CreatedAt: time.UnixMilli(r.CreatedAt).UTC(), UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC(),
	}
	if len(r.Result) > 0 {
		var res Result
		if err := json.Unmarshal(r.Result, &res); err != nil {
			return nil, fmt.Errorf("decoding the result of request %s: %w", requestID, err)
		}
		v.Result = &res
	}
	return v, nil
}

// resultStash hands the result of a successful attempt (its JSON) from
// runJob to recordJob on this node. take removes an entry, but a taken
// entry stays readable for takenGrace: the group commit may run recordJob
// more than once (when another submission in its transaction fails). The
// stash is bounded by count and bytes; beyond, the oldest entries are
// dropped, and the record of a dropped one fails, so that its job runs
// again instead of being finished without a result.
type resultStash struct {
	mu    sync.Mutex
	m     map[string]*list.Element // of *stashed, oldest first
	order list.List
	bytes int
	// now is the clock (time.Now when nil).
	now func() time.Time
	// maxCount and maxBytes bound the stash (defaults stashMaxCount and
	// stashMaxBytes).
	maxCount, maxBytes int
}

type stashed struct {
	id   string
	data json.RawMessage
	at   time.Time
	// taken is when recordJob took it (zero before).
	taken time.Time
}

// Stash limits. A result waits for its record a few milliseconds: the
// bounds only matter when records stall (the database is down), and then
// a dropped result costs one more attempt of the request.
const (
	stashMaxCount = 1024
	stashMaxBytes = 64 << 20
	// stashTTL is how long a result waits for its record at most.
	stashTTL = 10 * time.Minute
	// takenGrace is how long a taken result stays for the group commit to
	// run recordJob again.
	takenGrace = 5 * time.Second
)

func (r *resultStash) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// put keeps data as the result of request id, dropping the oldest
// entries while the stash is over its bounds (never the new one).
func (r *resultStash) put(id string, data json.RawMessage) {
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*list.Element{}
	}
	if el, ok := r.m[id]; ok {
		r.remove(el)
	}
	r.m[id] = r.order.PushBack(&stashed{id: id, data: data, at: now})
	r.bytes += len(data)
	r.sweep(now)
}

// take returns the result of request id, which then leaves the stash
// (after takenGrace); false when there is none, or it was dropped.
func (r *resultStash) take(id string) (json.RawMessage, bool) {
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.m[id]
	if !ok {
		return nil, false
	}
	e := el.Value.(*stashed)
	if e.taken.IsZero() {
		e.taken = now
	}
	data := e.data
	r.sweep(now)
	return data, true
}

// len is how many results the stash holds and their bytes.
func (r *resultStash) len() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len(), r.bytes
}

// sweep drops taken entries past takenGrace, entries past stashTTL and,
// while over the bounds, the oldest entries but the newest one.
func (r *resultStash) sweep(now time.Time) {
	for el := r.order.Front(); el != nil; {
		next := el.Next()
		e := el.Value.(*stashed)
		if (!e.taken.IsZero() && now.Sub(e.taken) >= takenGrace) || now.Sub(e.at) > stashTTL {
			r.remove(el)
		}
		el = next
	}
	maxCount, maxBytes := cmp.Or(r.maxCount, stashMaxCount), cmp.Or(r.maxBytes, stashMaxBytes)
	for r.order.Len() > 1 && (r.order.Len() > maxCount || r.bytes > maxBytes) {
		r.remove(r.order.Front())
	}
}

func (r *resultStash) remove(el *list.Element) {
	e := r.order.Remove(el).(*stashed)
	delete(r.m, e.id)
	r.bytes -= len(e.data)
}

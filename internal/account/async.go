package account

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	s.results.put(j.ID, res)
	return nil
}

// recordJob writes the outcome of an attempt on the request's row, in
// the transaction that finishes or reschedules its job.
func (s *Service) recordJob(ctx context.Context, tx *store.Tx, payload json.RawMessage, attempt int, err error, final bool) error {
	var j requestJob
	if json.Unmarshal(payload, &j) != nil || j.ID == "" {
		return nil // nothing to record against
	}
	state, msg := store.AccountRequestDone, ""
	var res *Result
	if err == nil {
		res = s.results.get(j.ID)
	} else {
		state, msg = store.AccountRequestPending, err.Error()
		if final {
			state = store.AccountRequestFailed
		}
		if ae, ok := errors.AsType[*answerError](err); ok {
			res = ae.result
		}
	}
	var raw json.RawMessage
	if res != nil {
		b, merr := json.Marshal(res)
		if merr != nil {
			return fmt.Errorf("encoding the result of request %s: %w", j.ID, merr)
		}
		raw = b
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

// resultStash hands the result of a successful attempt from runJob to
// recordJob on this node. An entry stays a while: the group commit may
// run recordJob more than once.
type resultStash struct {
	mu    sync.Mutex
	m     map[string]stashed
	swept time.Time
}

type stashed struct {
	res *Result
	at  time.Time
}

// stashTTL is how long a result waits for its record; records follow
// their run within milliseconds.
const stashTTL = 10 * time.Minute

func (r *resultStash) put(id string, res *Result) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]stashed{}
	}
	if now.Sub(r.swept) > time.Minute {
		for k, v := range r.m {
			if now.Sub(v.at) > stashTTL {
				delete(r.m, k)
			}
		}
		r.swept = now
	}
	r.m[id] = stashed{res: res, at: now}
}

func (r *resultStash) get(id string) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id].res
}

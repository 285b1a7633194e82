package account

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
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
			ID: j.ID, AccountID: a.ID, State: store.AccountRequestPending, Request: reqJSON,
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

// runJob makes one attempt of a wait=false request and returns its
// result (JSON). Any answer but 408, 429 and 5xx is its result; those
// are returned with an error, so they are kept and the request is tried
// again, like failures to get an answer (timeouts, connections, the rate
// limit); an account that cannot be used, a refused address or a request
// that is not valid fail for good.
func (s *Service) runJob(ctx context.Context, payload json.RawMessage, _ int) (json.RawMessage, error) {
	var j requestJob
	if err := json.Unmarshal(payload, &j); err != nil {
		return nil, component.Permanent(fmt.Errorf("decoding request job: %w", err))
	}
	a, err := s.loadAny(ctx, Caller{UserID: j.OwnerID}, j.AccountID)
	if errors.Is(err, ErrNotFound) {
		return nil, component.Permanent(err)
	}
	if err != nil {
		return nil, err
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
	res, err := s.call(ctx, j.UserID, a, j.Request, cmp.Or(j.Source, "job"))
	if err != nil {
		if IsFinal(err) {
			return nil, component.Permanent(err)
		}
		return nil, err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return nil, component.Permanent(fmt.Errorf("encoding the result of request %s: %w", j.ID, err))
	}
	if outbound.RetryableStatus(res.Status) {
		return out, fmt.Errorf("request %s through account %s: the API answered %d", j.ID, a.ID, res.Status)
	}
	return out, nil
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

// recordJob writes the outcome of an attempt on the request's row, with
// out, the result runJob returned (if any), in the transaction that
// finishes or reschedules its job.
func (s *Service) recordJob(ctx context.Context, tx *store.Tx, payload json.RawMessage, attempt int, out json.RawMessage, err error, final bool) error {
	var j requestJob
	if json.Unmarshal(payload, &j) != nil || j.ID == "" {
		return nil // nothing to record against
	}
	state, msg := store.AccountRequestDone, ""
	if err != nil {
		state, msg = store.AccountRequestPending, err.Error()
		if final {
			state = store.AccountRequestFailed
		}
	}
	return tx.RecordAccountRequest(ctx, j.ID, state, out, msg, attempt)
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

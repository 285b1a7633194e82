package account

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// TestResultStashBounds: a taken result leaves the stash (after the
// grace the group commit needs), and the stash drops its oldest results
// beyond its count and bytes, never the newest.
func TestResultStashBounds(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }

	r := resultStash{now: clock, maxCount: 2, maxBytes: 10}
	r.put("a", json.RawMessage(`1`))
	r.put("b", json.RawMessage(`2`))
	r.put("c", json.RawMessage(`3`))
	if _, ok := r.take("a"); ok {
		t.Error("the oldest result is kept beyond the count")
	}
	if n, _ := r.len(); n != 2 {
		t.Errorf("%d results kept, want 2", n)
	}
	r.put("d", json.RawMessage(`"12345678"`)) // 10 bytes: b and c go
	if n, size := r.len(); n != 1 || size != 10 {
		t.Errorf("%d results of %d bytes kept, want 1 of 10", n, size)
	}
	r.put("e", json.RawMessage(`"a result larger than the stash"`))
	if got, ok := r.take("e"); !ok || string(got) != `"a result larger than the stash"` {
		t.Errorf("the newest result, alone over the bytes, was dropped: %s %t", got, ok)
	}
	// A taken result can be taken again at once (the group commit runs a
	// record again), and is gone after the grace.
	if got, ok := r.take("e"); !ok || string(got) != `"a result larger than the stash"` {
		t.Errorf("taken again at once: %s %t", got, ok)
	}
	now.Add(int64(takenGrace))
	r.put("f", json.RawMessage(`4`))
	if _, ok := r.take("e"); ok {
		t.Error("a taken result stays past the grace")
	}
	if n, size := r.len(); n != 1 || size != 1 {
		t.Errorf("%d results of %d bytes kept, want f alone", n, size)
	}
	// A result whose record never came leaves after stashTTL.
	now.Add(int64(stashTTL + time.Second))
	r.put("g", json.RawMessage(`5`))
	if _, ok := r.take("f"); ok {
		t.Error("an old result whose record never came is kept")
	}
}

// TestRecordWithoutResultFails: when a successful attempt's result was
// dropped from the stash, its record fails (so the job runs again)
// instead of marking the request done without a result; a result still
// stashed is recorded.
func TestRecordWithoutResultFails(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			f.svc.results.maxCount = 1
			v, err := f.svc.Create(ctx, oaUser, Input{Name: "crm", AuthType: AuthToken, Token: "tok-stash-0123456789", Domain: "https://api.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, 2)
			for i := range ids {
				if ids[i], err = f.svc.Enqueue(ctx, oaUser, v.ID, Request{Path: "/x"}, "api"); err != nil {
					t.Fatal(err)
				}
				f.svc.results.put(ids[i], json.RawMessage(`{"status":200,"headers":{},"body":{"n":1}}`))
			}
			record := func(id string) error {
				payload, _ := json.Marshal(requestJob{ID: id, AccountID: v.ID, OwnerID: oaUser.UserID})
				return f.st.InTx(ctx, func(tx *store.Tx) error { return f.svc.recordJob(ctx, tx, payload, 1, nil, true) })
			}
			if err := record(ids[0]); !errors.Is(err, errResultLost) {
				t.Errorf("recording a dropped result: %v", err)
			}
			rv, err := f.svc.RequestResult(ctx, oaUser, v.ID, ids[0])
			if err != nil || rv.State != store.AccountRequestPending || rv.Result != nil {
				t.Errorf("after a failed record: %+v, %v", rv, err)
			}
			if err := record(ids[1]); err != nil {
				t.Fatal(err)
			}
			rv, err = f.svc.RequestResult(ctx, oaUser, v.ID, ids[1])
			if err != nil || rv.State != store.AccountRequestDone || rv.Result == nil || rv.Result.Status != 200 {
				t.Errorf("after a record: %+v, %v", rv, err)
			}
		})
	}
}

// tokenAPI is an API that refuses one access token with 401 and records
// the Authorization of every request.
type tokenAPI struct {
	*httptest.Server
	mu      sync.Mutex
	refused string
	all     bool // refuse every token
	seen    []string
}

func newTokenAPI(t *testing.T) *tokenAPI {
	t.Helper()
	a := &tokenAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		auth := r.Header.Get("Authorization")
		a.seen = append(a.seen, auth)
		if a.all || auth == "Bearer "+a.refused {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(a.Close)
	return a
}

// refuse makes the API refuse token, and forgets what it saw.
func (a *tokenAPI) refuse(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refused, a.seen = token, nil
}

func (a *tokenAPI) tokens() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// TestOAuth2RefreshOn401EndToEnd: an API that answers 401 to an oauth2
// account's stored access token (revoked early by the provider, expiry
// unknown) gets one refresh and the request again with the new token,
// through Do and through Send.
func TestOAuth2RefreshOn401EndToEnd(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f := newOAFixture(t, backend, "")
			ctx := context.Background()
			api := newTokenAPI(t)
			f.auth.BaseURL = api.URL
			v := f.connect(t, oaUser)

			check := func(what string, status int, err error, refreshes int) {
				t.Helper()
				_, sec := f.account(t, v.ID)
				if err != nil || status != http.StatusOK {
					t.Fatalf("%s: status %d, %v", what, status, err)
				}
				if n := f.p.count("refresh_token"); n != refreshes {
					t.Errorf("%s: %d refreshes, want %d", what, n, refreshes)
				}
				if got := api.tokens(); len(got) != 2 || got[0] != "Bearer "+api.refused || got[1] != "Bearer "+sec.AccessToken ||
					sec.AccessToken == api.refused {
					t.Errorf("%s: the API saw %q; refused %q, stored now %q", what, got, api.refused, sec.AccessToken)
				}
			}

			_, sec := f.account(t, v.ID)
			api.refuse(sec.AccessToken)
			res, err := f.svc.Do(ctx, oaUser, v.ID, Request{Path: "/me"}, "api")
			var status int
			if res != nil {
				status = res.Status
			}
			check("Do", status, err, 1)

			_, sec = f.account(t, v.ID)
			api.refuse(sec.AccessToken)
			resp, err := f.svc.Send(ctx, oaUser, v.ID, "fake", "api", func(base *url.URL) (*http.Request, error) {
				return http.NewRequest(http.MethodGet, base.String()+"/me", nil)
			})
			status = 0
			if resp != nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			check("Send", status, err, 2)

			// A 401 to the refreshed token too is the answer: one refresh
			// per request.
			api.refuse("")
			api.mu.Lock()
			api.all = true
			api.mu.Unlock()
			res, err = f.svc.Do(ctx, oaUser, v.ID, Request{Path: "/me"}, "api")
			if err != nil || res.Status != http.StatusUnauthorized || f.p.count("refresh_token") != 3 || len(api.tokens()) != 2 {
				t.Errorf("refused after the refresh: %+v, %v; refreshes %d, requests %d", res, err, f.p.count("refresh_token"), len(api.tokens()))
			}
		})
	}
}

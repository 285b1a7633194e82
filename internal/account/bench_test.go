package account_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
)

// The benchmarks below call the same local API through an account
// (Service.Do: load, checks, secrets, credentials, audit) and straight
// with the same client, so that the difference is the service's
// overhead.

func benchAPI(b *testing.B) *api {
	return newAPI(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"c_1","name":"Ada"}`))
	})
}

func benchAccount(b *testing.B) (*env, string) {
	srv := benchAPI(b)
	e := newEnv(b, store.BackendSQLite, func(c *account.Config) { c.Logger = nil })
	v := e.create(b, alice, account.Input{Name: "bench", AuthType: "token", Token: "tok-bench-0123456789", Domain: srv.URL + "/v2",
		Headers: map[string]string{"X-Tenant": "t-1"}})
	return e, v.ID
}

func BenchmarkDo(b *testing.B) {
	e, id := benchAccount(b)
	ctx := context.Background()
	req := account.Request{Path: "/contacts/c_1", Query: map[string]any{"fields": "name"}}
	for b.Loop() {
		if _, err := e.svc.Do(ctx, alice, id, req, "api"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDoParallel(b *testing.B) {
	e, id := benchAccount(b)
	ctx := context.Background()
	req := account.Request{Path: "/contacts/c_1", Query: map[string]any{"fields": "name"}}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Do(ctx, alice, id, req, "api"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// direct makes the call Do makes, without an account.
func direct(b *testing.B, c *http.Client, url string) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok-bench-0123456789")
	req.Header.Set("X-Tenant", "t-1")
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func BenchmarkDirect(b *testing.B) {
	srv := benchAPI(b)
	c := outbound.NewClient(outbound.Options{AllowPrivate: true})
	url := srv.URL + "/v2/contacts/c_1?fields=name"
	for b.Loop() {
		direct(b, c, url)
	}
}

func BenchmarkDirectParallel(b *testing.B) {
	srv := benchAPI(b)
	c := outbound.NewClient(outbound.Options{AllowPrivate: true})
	url := srv.URL + "/v2/contacts/c_1?fields=name"
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			direct(b, c, url)
		}
	})
}

package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/outbound"
)

func httpAction(t *testing.T, allowPrivate bool) component.Action {
	t.Helper()
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{HTTP: outbound.NewClient(outbound.Options{AllowPrivate: allowPrivate}), MaxResponseBytes: 1 << 20})
	c, _ := reg.Lookup("core.HttpRequest")
	return c.(component.Action)
}

func TestHTTPRequest(t *testing.T) {
	t.Parallel()
	var got struct {
		method, key, ctype, query string
		body                      map[string]any
	}
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.key, got.ctype, got.query = r.Method, r.Header.Get("Idempotency-Key"), r.Header.Get("Content-Type"), r.URL.RawQuery
		data, _ := io.ReadAll(r.Body)
		got.body = nil
		_ = json.Unmarshal(data, &got.body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"id":7}`))
	}))
	defer srv.Close()
	a := httpAction(t, true)
	inv := component.Invocation{MessageID: "msg-1", Properties: map[string]any{
		"method": "PUT", "url": srv.URL + "/x", "query": map[string]any{"q": "1"},
		"body": map[string]any{"email": "a@example.com"}, "headers": map[string]any{"X-Extra": "yes"},
	}}
	emits, err := a.Invoke(context.Background(), inv)
	if err != nil {
		t.Fatal(err)
	}
	out := emits[0].Value.(map[string]any)
	if got.method != "PUT" || got.key != "msg-1" || got.ctype != "application/json" || got.query != "q=1" || got.body["email"] != "a@example.com" {
		t.Fatalf("request = %+v", got)
	}
	if out["status"] != 200 || out["body"].(map[string]any)["id"] != float64(7) {
		t.Fatalf("output = %v", out)
	}
	for _, c := range []struct {
		status    int
		permanent bool
	}{{408, false}, {429, false}, {500, false}, {503, false}, {400, true}, {404, true}, {422, true}} {
		status = c.status
		_, err := a.Invoke(context.Background(), inv)
		if err == nil || component.IsPermanent(err) != c.permanent {
			t.Errorf("status %d: err %v, permanent %v, want permanent %v", c.status, err, component.IsPermanent(err), c.permanent)
		}
	}
	// An answer over the cap fails at once: it will be as large next time.
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 2<<20))
	}))
	defer big.Close()
	if _, err := a.Invoke(context.Background(), component.Invocation{Properties: map[string]any{"url": big.URL}}); !component.IsPermanent(err) ||
		!errors.Is(err, outbound.ErrResponseTooLarge) {
		t.Errorf("an answer over the cap: %v, want a permanent ErrResponseTooLarge", err)
	}
	// Private addresses are refused unless allowed, and retrying won't help.
	_, err = httpAction(t, false).Invoke(context.Background(), inv)
	if err == nil || !component.IsPermanent(err) || !outbound.IsBlocked(err) {
		t.Fatalf("loopback without permission: %v", err)
	}
	// Bad properties fail at once.
	for _, props := range []map[string]any{{"url": "ftp://x"}, {"url": "/relative"}, {"url": srv.URL, "method": "BREW"}, {"url": srv.URL, "timeout": "soon"}} {
		if _, err := a.Invoke(context.Background(), component.Invocation{Properties: props}); !component.IsPermanent(err) {
			t.Errorf("props %v: %v, want a permanent error", props, err)
		}
	}
}

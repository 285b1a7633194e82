package api

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/store"
)

// webhook accepts a request to a core.Webhook URL and answers 202 once the
// message is durable.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) error {
	target, err := s.hooks.resolve(r.Context(), s.store, r.PathValue("token"))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return problem(http.StatusNotFound, "no such webhook")
		}
		return err
	}
	raw, err := readBody(r, s.cfg.MaxWebhookBytes)
	if err != nil {
		return err
	}
	body, err := decodeWebhookBody(r.Header.Get("Content-Type"), raw)
	if err != nil {
		return err
	}
	out := map[string]any{
		"method":  r.Method,
		"headers": flatten(r.Header),
		"query":   flatten(r.URL.Query()),
		"body":    body,
	}
	corr, err := s.engine.Accept(r.Context(), engine.Event{FlowID: target.FlowID, ComponentID: target.ComponentID, Output: out})
	if err != nil {
		switch {
		case errors.Is(err, engine.ErrFlowNotRunning):
			return problem(http.StatusGone, "the flow of this webhook is stopped")
		case errors.Is(err, store.ErrNotFound), errors.Is(err, engine.ErrNotTrigger):
			return problem(http.StatusNotFound, "no such webhook")
		}
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]string{"correlationId": corr})
}

// hookCache remembers webhook tokens for a second: a busy webhook resolves
// its token once, not per request. Whether the flow still runs, and still
// has that component, is checked as each event is accepted; a token that
// was removed keeps working for at most the cache time.
type hookCache struct {
	mu sync.RWMutex
	m  map[string]cachedHook
}

type cachedHook struct {
	target store.WebhookTarget
	at     time.Time
}

const (
	hookCacheTTL  = time.Second
	hookCacheSize = 10000
)

func (c *hookCache) resolve(ctx context.Context, st *store.Store, token string) (store.WebhookTarget, error) {
	c.mu.RLock()
	h, ok := c.m[token]
	c.mu.RUnlock()
	if ok && time.Since(h.at) < hookCacheTTL {
		return h.target, nil
	}
	t, err := st.Webhook(ctx, token)
	if err != nil {
		return t, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= hookCacheSize {
		c.m = map[string]cachedHook{}
	}
	c.m[token] = cachedHook{target: t, at: time.Now()}
	c.mu.Unlock()
	return t, nil
}

func decodeWebhookBody(contentType string, raw []byte) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, problem(http.StatusBadRequest, "malformed JSON body: %v", err)
		}
		return v, nil
	case mt == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, problem(http.StatusBadRequest, "malformed form body: %v", err)
		}
		return flatten(vals), nil
	}
	return string(raw), nil
}

// flatten turns multi-valued headers or query parameters into single
// strings (joined by ", ").
func flatten(m map[string][]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = strings.Join(v, ", ")
	}
	return out
}

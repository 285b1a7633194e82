package api

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/ttlcache"
)

// webhook accepts a request to a core.Webhook URL and answers 202 once the
// message is durable.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) error {
	target, err := s.hooks.resolve(r.Context(), s.store, s.engine, r.PathValue("token"))
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
	if target.subscriber {
		return s.delivery(w, r, target, out)
	}
	ev := engine.Event{FlowID: target.FlowID, ComponentID: target.ComponentID, Output: out}
	var waiter *engine.Waiter
	if target.wait {
		// Wait for the run's reply: register before the run starts, so
		// that a quick reply is not missed.
		ev.CorrelationID = engine.NewCorrelationID()
		waiter = s.cfg.Replies.Expect(ev.CorrelationID)
		defer waiter.Close()
	}
	corr, err := s.engine.Accept(r.Context(), ev)
	if err != nil {
		return acceptProblem(err)
	}
	if waiter == nil {
		return writeJSON(w, http.StatusAccepted, map[string]string{"correlationId": corr})
	}
	rep, err := waiter.Wait(r.Context(), target.timeout)
	if errors.Is(err, engine.ErrNoReply) {
		return problem(http.StatusGatewayTimeout, "the flow did not reply within %s (correlation id %s); the message is stored and the run goes on",
			target.timeout, corr)
	}
	if err != nil {
		return err
	}
	for k, v := range rep.Headers {
		w.Header().Set(k, v)
	}
	w.Header().Set("Plugboard-Correlation-Id", corr)
	w.WriteHeader(rep.Status)
	_, _ = w.Write(rep.Body)
	return nil
}

// delivery accepts a request a provider sent to a subscription trigger:
// one run per item the trigger makes of it, all durable before the 202.
func (s *Server) delivery(w http.ResponseWriter, r *http.Request, target hookTarget, req map[string]any) error {
	ids, err := s.engine.AcceptDelivery(r.Context(), engine.Delivery{FlowID: target.FlowID, ComponentID: target.ComponentID, Request: req})
	if err != nil {
		return acceptProblem(err)
	}
	return writeJSON(w, http.StatusAccepted, map[string][]string{"correlationIds": ids})
}

// acceptProblem is the answer to a request to a webhook or subscription
// trigger that the engine refused. Providers may take a 404 or 410 as
// "unsubscribe", a 503 as "send it again later".
func acceptProblem(err error) error {
	switch {
	case errors.Is(err, engine.ErrBadDelivery):
		return problem(http.StatusBadRequest, "%v", err)
	case errors.Is(err, engine.ErrFlowNotRunning):
		return problem(http.StatusGone, "the flow of this webhook is stopped")
	case errors.Is(err, store.ErrNotFound), errors.Is(err, engine.ErrNotTrigger):
		return problem(http.StatusNotFound, "no such webhook")
	case errors.Is(err, engine.ErrComponentMissing):
		p := problem(http.StatusServiceUnavailable, "%v; send it again later", err)
		p.RetryAfter = "60"
		return p
	}
	return err
}

// hookCache remembers webhook tokens for ttlcache.DefaultTTL: a busy
// webhook resolves its token once, not per request. Whether the flow still
// runs, and still has that component, is checked as each event is
// accepted; a token that was removed keeps working for at most the cache
// time.
type hookCache struct {
	targets ttlcache.Cache[string, hookTarget]
}

// hookTarget is a webhook's flow and component, and whether its requests
// wait for the run's reply (mode "wait") and for how long.
type hookTarget struct {
	store.WebhookTarget
	wait    bool
	timeout time.Duration
	// subscriber is set for a subscription trigger's inbound URL.
	subscriber bool
}

func (c *hookCache) resolve(ctx context.Context, st *store.Store, eng *engine.Engine, token string) (hookTarget, error) {
	if t, ok := c.targets.Get(token, time.Now()); ok {
		return t, nil
	}
	wt, err := st.Webhook(ctx, token)
	if err != nil {
		return hookTarget{}, err
	}
	t := hookTarget{WebhookTarget: wt}
	comp, props, err := eng.Trigger(ctx, wt.FlowID, wt.ComponentID)
	if err != nil {
		return hookTarget{}, err
	}
	switch comp.(type) {
	case component.Subscriber:
		t.subscriber = true
	case *flow.Missing:
		// A token is a core.Webhook's, built in, or a subscription
		// trigger's: this one's connector was removed. AcceptDelivery
		// refuses its deliveries until it is back.
		t.subscriber = true
	default:
		if t.wait, t.timeout, err = core.WebhookWait(props); err != nil {
			return hookTarget{}, problem(http.StatusInternalServerError, "%v", err)
		}
	}
	c.targets.Put(token, t, time.Now())
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

package syswebhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
)

// KindName names delivery jobs in the jobs table.
const KindName = "system-webhook"

const secretPrefix = "whsec_"

// Kind is the engine job kind that delivers events.
func (s *Service) Kind() engine.Kind {
	return engine.Kind{
		Name: KindName, Run: s.deliver, Record: s.record,
		InitialInterval: s.cfg.InitialInterval, MaxInterval: s.cfg.MaxInterval,
	}
}

// Register makes eng deliver this service's events.
func (s *Service) Register(eng *engine.Engine) { eng.RegisterKind(s.Kind()) }

// Sign returns the webhook-signature header value of body for the message
// id sent at unix time ts, as the Standard Webhooks spec defines it.
func Sign(secret, id string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return "", fmt.Errorf("decoding webhook secret: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// errSubscriptionGone drops the deliveries of a deleted subscription.
var errSubscriptionGone = errors.New("the subscription was deleted")

// deliver makes one attempt: 2xx is delivered; no answer, 408, 429 and
// 5xx are retried; any other status fails at once. It returns the
// answer's status code (JSON) for record, whatever it was.
func (s *Service) deliver(ctx context.Context, payload json.RawMessage, _ int) (json.RawMessage, error) {
	var d delivery
	if err := json.Unmarshal(payload, &d); err != nil {
		return nil, component.Permanent(fmt.Errorf("decoding delivery: %w", err))
	}
	sub, err := s.st.SystemWebhook(ctx, d.SubscriptionID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, component.Permanent(errSubscriptionGone)
	}
	if err != nil {
		return nil, err
	}
	secret, err := s.secret(sub)
	if err != nil {
		return nil, component.Permanent(err) // the start-up check makes sure the key is right
	}
	ts := time.Now().Unix()
	sig, err := Sign(secret, d.ID, ts, d.Body)
	if err != nil {
		return nil, component.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(d.Body))
	if err != nil {
		return nil, component.Permanent(fmt.Errorf("preparing delivery to %s: %w", sub.URL, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Plugboard-Webhooks")
	req.Header.Set("webhook-id", d.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.cfg.HTTP.Do(req)
	if err != nil {
		err = fmt.Errorf("delivering to %s: %w", sub.URL, err)
		if outbound.IsBlocked(err) {
			return nil, component.Permanent(err) // an address refused now is refused on every attempt
		}
		return nil, err
	}
	defer resp.Body.Close()
	// Drain a little so the connection is reused; the answer is not kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	out := json.RawMessage(strconv.Itoa(code))
	switch {
	case code >= 200 && code < 300:
		return out, nil
	case outbound.RetryableStatus(code):
		return out, fmt.Errorf("delivering to %s: answered %d", sub.URL, code)
	default:
		return out, component.Permanent(fmt.Errorf("delivering to %s: answered %d", sub.URL, code))
	}
}

// record logs an attempt's outcome, with the status code deliver
// returned as out (0 when there was no answer), in the transaction that
// finishes or reschedules the delivery job.
func (s *Service) record(ctx context.Context, tx *store.Tx, payload json.RawMessage, attempt int, out json.RawMessage, err error, final bool) error {
	var d delivery
	if uerr := json.Unmarshal(payload, &d); uerr != nil || d.ID == "" {
		return nil // nothing to log against
	}
	status, msg := store.DeliveryDelivered, ""
	if err != nil {
		status, msg = store.DeliveryRetrying, err.Error()
		if final {
			status = store.DeliveryFailed
		}
	}
	code, _ := strconv.Atoi(string(out))
	return tx.RecordSystemWebhookAttempt(ctx, d.ID, status, attempt, code, msg)
}

// Package syswebhook sends system events (a flow stopped, a step failed, a
// message moved to the unprocessed store) to the URLs an admin subscribed.
// Each delivery is a durable job of the engine, enqueued in the
// transaction of the change that caused the event, signed as the Standard
// Webhooks spec says, retried with backoff and logged. Signing secrets are
// stored sealed by the vault, with the subscription's id as associated
// data; only the answer that creates a subscription holds one in clear.
package syswebhook

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/vault"
)

// AllEvents subscribes to every event.
const AllEvents = "*"

// Events lists the events one can subscribe to.
var Events = []string{engine.EventFlowStopped, engine.EventComponentError, engine.EventMessageUnprocessed}

// ErrInvalid marks a subscription the API refuses (unknown event, bad URL).
var ErrInvalid = errors.New("invalid system webhook")

// Defaults of Config.
const (
	DefaultMaxAttempts     = 8
	DefaultInitialInterval = time.Second
	DefaultMaxInterval     = time.Hour
	DefaultTimeout         = 30 * time.Second
)

// cacheFor is how long Emit trusts the subscriptions it read: a
// subscription made on another node receives events within this time.
const cacheFor = time.Second

// Config configures a Service.
type Config struct {
	Store *store.Store
	// Vault seals the signing secrets in the database.
	Vault *vault.Vault
	// HTTP sends the deliveries; give it the outbound client, which
	// refuses private addresses unless allowed.
	HTTP   *http.Client
	Logger *slog.Logger
	// MaxAttempts, InitialInterval and MaxInterval are the retry policy
	// (defaults 8, 1s, 1h).
	MaxAttempts                  int
	InitialInterval, MaxInterval time.Duration
	// Timeout bounds one attempt (default 30s).
	Timeout time.Duration
}

// Service owns the subscriptions, emits events and delivers them.
type Service struct {
	cfg Config
	st  *store.Store

	mu      sync.Mutex
	subs    []*store.SystemWebhook
	fetched time.Time
}

// New makes a service. Register its delivery job kind with the engine
// (Register) and pass it as engine.Config.Events.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Vault == nil || cfg.HTTP == nil {
		return nil, errors.New("syswebhook: Store, Vault and HTTP are required")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.InitialInterval = cmp.Or(cfg.InitialInterval, DefaultInitialInterval)
	cfg.MaxInterval = cmp.Or(cfg.MaxInterval, DefaultMaxInterval)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	return &Service{cfg: cfg, st: cfg.Store}, nil
}

// Subscribe validates and stores a subscription. It returns the stored
// subscription (its Secret sealed) and the signing secret in clear, which
// is never shown again.
func (s *Service) Subscribe(ctx context.Context, event, rawURL string) (*store.SystemWebhook, string, error) {
	if event != AllEvents && !slices.Contains(Events, event) {
		return nil, "", fmt.Errorf("%w: event must be one of %v or %q, not %q", ErrInvalid, Events, AllEvents, event)
	}
	if err := checkURL(rawURL); err != nil {
		return nil, "", err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	id := uuid.Must(uuid.NewV7()).String()
	w := &store.SystemWebhook{ID: id, Event: event, URL: rawURL, Secret: s.cfg.Vault.Seal([]byte(secret), []byte(id))}
	if err := s.st.CreateSystemWebhook(ctx, w); err != nil {
		return nil, "", err
	}
	s.forget()
	return w, secret, nil
}

// secret opens the signing secret of a stored subscription.
func (s *Service) secret(w *store.SystemWebhook) (string, error) {
	plain, err := s.cfg.Vault.Open(w.Secret, []byte(w.ID))
	if err != nil {
		return "", fmt.Errorf("opening the secret of system webhook %s: %w", w.ID, err)
	}
	return string(plain), nil
}

// SealStoredSecrets seals, in one transaction, the secrets stored in
// clear before they were encrypted at rest (those starting with whsec_),
// and returns how many it sealed. Call it at start-up, before deliveries
// run; a secret another node sealed meanwhile is left as that node wrote
// it.
func (s *Service) SealStoredSecrets(ctx context.Context) (int, error) {
	n := 0
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		subs, err := tx.SystemWebhooks(ctx)
		if err != nil {
			return err
		}
		for _, w := range subs {
			if !strings.HasPrefix(w.Secret, secretPrefix) {
				continue
			}
			ok, err := tx.ReplaceSystemWebhookSecret(ctx, w.ID, w.Secret, s.cfg.Vault.Seal([]byte(w.Secret), []byte(w.ID)))
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sealing system webhook secrets: %w", err)
	}
	if n > 0 {
		s.forget()
	}
	return n, nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: url must be an absolute http or https URL, not %q", ErrInvalid, raw)
	}
	if u.User != nil {
		return fmt.Errorf("%w: url must not hold credentials", ErrInvalid)
	}
	return nil
}

// Unsubscribe deletes a subscription with its delivery log; its queued
// deliveries are dropped when they come due.
func (s *Service) Unsubscribe(ctx context.Context, id string) error {
	if err := s.st.DeleteSystemWebhook(ctx, id); err != nil {
		return err
	}
	s.forget()
	return nil
}

// forget drops the cached subscriptions after a change on this node.
func (s *Service) forget() {
	s.mu.Lock()
	s.subs, s.fetched = nil, time.Time{}
	s.mu.Unlock()
}

// NewSecret makes a signing secret: whsec_ and the base64 of 32 random
// bytes.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a webhook secret: %w", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// subscriptions returns the subscriptions, read through tx at most every
// cacheFor.
func (s *Service) subscriptions(ctx context.Context, tx *store.Tx) ([]*store.SystemWebhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fetched.IsZero() && time.Since(s.fetched) < cacheFor {
		return s.subs, nil
	}
	subs, err := tx.SystemWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	s.subs, s.fetched = subs, time.Now()
	return subs, nil
}

// delivery is the payload of a delivery job.
type delivery struct {
	ID             string          `json:"id"`
	SubscriptionID string          `json:"subscriptionId"`
	Body           json.RawMessage `json:"body"`
}

// envelope is the body sent to subscribers.
type envelope struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// Emit enqueues, inside tx, one delivery of event to every subscription
// that wants it. It implements engine.Emitter.
func (s *Service) Emit(ctx context.Context, tx *store.Tx, event string, data any) error {
	subs, err := s.subscriptions(ctx, tx)
	if err != nil {
		return fmt.Errorf("emitting %s: %w", event, err)
	}
	var body json.RawMessage
	var jobs []store.NewJob
	for _, sub := range subs {
		if sub.Event != event && sub.Event != AllEvents {
			continue
		}
		if body == nil {
			if body, err = json.Marshal(envelope{Type: event, Timestamp: s.st.Now().UTC().Format(time.RFC3339), Data: data}); err != nil {
				return fmt.Errorf("encoding %s: %w", event, err)
			}
		}
		d := delivery{ID: "msg_" + uuid.Must(uuid.NewV7()).String(), SubscriptionID: sub.ID, Body: body}
		payload, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("encoding delivery of %s: %w", event, err)
		}
		if err := tx.InsertSystemWebhookDelivery(ctx, &store.SystemWebhookDelivery{ID: d.ID, SubscriptionID: sub.ID, Event: event}); err != nil {
			return err
		}
		jobs = append(jobs, engine.NewKindJob(d.ID, KindName, s.cfg.MaxAttempts, payload))
	}
	return tx.EnqueueJobs(ctx, jobs)
}

// List lists subscriptions in id order after the cursor.
func (s *Service) List(ctx context.Context, after string, limit int) ([]*store.SystemWebhook, error) {
	return s.st.ListSystemWebhooks(ctx, after, limit)
}

// Get loads one subscription.
func (s *Service) Get(ctx context.Context, id string) (*store.SystemWebhook, error) {
	return s.st.SystemWebhook(ctx, id)
}

// Deliveries lists a subscription's deliveries, newest first, after the
// cursor (a delivery id).
func (s *Service) Deliveries(ctx context.Context, id, after string, limit int) ([]*store.SystemWebhookDelivery, error) {
	if _, err := s.st.SystemWebhook(ctx, id); err != nil {
		return nil, err
	}
	return s.st.ListSystemWebhookDeliveries(ctx, id, after, limit)
}

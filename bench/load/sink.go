package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

const drainPoll = 10 * time.Millisecond

// sink is the endpoint the benchmark flow delivers to. It counts deliveries
// by Idempotency-Key, so that a message delivered twice counts once as
// delivered and once as a duplicate, and checks that each body carries the
// fields the flow maps.
type sink struct {
	srv    *http.Server
	url    string
	logger *slog.Logger

	mu         sync.Mutex
	keys       map[string]struct{}
	requests   int64
	duplicates int64
	unkeyed    int64 // requests without an Idempotency-Key
	badBodies  int64 // requests whose body lacks the mapped fields
}

// sinkCounts is a snapshot of what the sink received.
type sinkCounts struct {
	Requests   int64 `json:"requests"`
	Delivered  int64 `json:"delivered"` // distinct idempotency keys
	Duplicates int64 `json:"duplicates"`
	Unkeyed    int64 `json:"unkeyed"`
	BadBodies  int64 `json:"badBodies"`
}

// startSink listens on a free loopback port. The caller must call close.
func startSink(logger *slog.Logger) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting sink: %w", err)
	}
	s := &sink{
		url:    "http://" + ln.Addr().String() + "/deliveries",
		logger: logger,
		keys:   make(map[string]struct{}),
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("sink stopped", slog.Any("err", err))
		}
	}()
	return s, nil
}

// mappedBody is what the benchmark flow's core.Set step produces.
type mappedBody struct {
	Email  string `json:"email"`
	Source string `json:"source"`
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	var m mappedBody
	good := json.Unmarshal(body, &m) == nil &&
		m.Source == "bench" && strings.HasSuffix(m.Email, "@example.com")
	key := r.Header.Get("Idempotency-Key")

	s.mu.Lock()
	s.requests++
	switch _, seen := s.keys[key]; {
	case key == "":
		s.unkeyed++
	case seen:
		s.duplicates++
	default:
		s.keys[key] = struct{}{}
	}
	if !good {
		s.badBodies++
	}
	badBodies, unkeyed := s.badBodies, s.unkeyed
	s.mu.Unlock()

	if !good && badBodies == 1 {
		s.logger.Warn("delivered body lacks the mapped fields", slog.String("body", truncate(string(body), 300)))
	}
	if key == "" && unkeyed == 1 {
		s.logger.Warn("delivery without an Idempotency-Key header: it cannot count as delivered")
	}
	w.WriteHeader(http.StatusOK)
}

func (s *sink) counts() sinkCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkCounts{
		Requests:   s.requests,
		Delivered:  int64(len(s.keys)),
		Duplicates: s.duplicates,
		Unkeyed:    s.unkeyed,
		BadBodies:  s.badBodies,
	}
}

// waitDelivered polls until want distinct messages have arrived or timeout
// passes, and reports whether they all arrived.
func (s *sink) waitDelivered(ctx context.Context, want int64, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		if s.counts().Delivered >= want {
			return true
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (s *sink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

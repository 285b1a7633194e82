package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

const drainPoll = 10 * time.Millisecond

// sink is the endpoint the benchmark flows deliver to. It counts deliveries
// by Idempotency-Key, so that a message delivered twice counts once as
// delivered and once as a duplicate, and checks each body: it must be what
// the flow sends, and its identity (which request, and with app events
// which flow) must not arrive again under another key.
type sink struct {
	srv    *http.Server
	url    string
	logger *slog.Logger
	check  func(body []byte) (id string, err error)

	mu         sync.Mutex
	keys       map[string]struct{}
	ids        map[string]struct{}
	requests   int64
	duplicates int64
	repeated   int64 // new keys whose body identity arrived before
	unkeyed    int64 // requests without an Idempotency-Key
	badBodies  int64 // requests whose body fails check
}

// sinkCounts is a snapshot of what the sink received.
type sinkCounts struct {
	Requests   int64 `json:"requests"`
	Delivered  int64 `json:"delivered"` // distinct idempotency keys
	Duplicates int64 `json:"duplicates"`
	Repeated   int64 `json:"repeated"` // same request (and flow) under another key
	Unkeyed    int64 `json:"unkeyed"`
	BadBodies  int64 `json:"badBodies"`
}

// startSink listens on a free loopback port and checks each delivered body
// with check. The caller must call close.
func startSink(check func(body []byte) (string, error), logger *slog.Logger) (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting sink: %w", err)
	}
	s := &sink{
		url:    "http://" + ln.Addr().String() + "/deliveries",
		logger: logger,
		check:  check,
		keys:   make(map[string]struct{}),
		ids:    make(map[string]struct{}),
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("sink stopped", slog.Any("err", err))
		}
	}()
	return s, nil
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	id, bad := s.check(body)
	key := r.Header.Get("Idempotency-Key")

	firstRepeat := false
	s.mu.Lock()
	s.requests++
	switch _, seen := s.keys[key]; {
	case key == "":
		s.unkeyed++
	case seen:
		s.duplicates++
	default:
		s.keys[key] = struct{}{}
		if bad == nil {
			if _, again := s.ids[id]; again {
				s.repeated++
				firstRepeat = s.repeated == 1
			}
			s.ids[id] = struct{}{}
		}
	}
	if bad != nil {
		s.badBodies++
	}
	badBodies, unkeyed := s.badBodies, s.unkeyed
	s.mu.Unlock()

	if bad != nil && badBodies == 1 {
		s.logger.Warn("delivered body is not what the flow sends", slog.String("err", bad.Error()),
			slog.String("body", truncate(string(body), 300)))
	}
	if firstRepeat {
		s.logger.Warn("a message arrived again under another Idempotency-Key", slog.String("id", id))
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
		Repeated:   s.repeated,
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

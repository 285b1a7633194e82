package main

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// baselineCommand makes the load tool run the baseline server instead: the
// tool starts itself with it, so that the baseline is a process of its own,
// measured exactly like Plugboard.
const baselineCommand = "baseline-server"

// serveBaseline serves the machine's ceiling: a handler that reads the body
// and answers 202, on PLUGBOARD_ADDR, until SIGTERM.
func serveBaseline() error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{
		Addr:              cmp.Or(os.Getenv("PLUGBOARD_ADDR"), "127.0.0.1:8080"),
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

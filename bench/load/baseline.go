package main

import (
	"context"
	"io"
	"net/http"
)

// baselineCommand makes the load tool run the baseline server instead: the
// tool starts itself with it, so that the baseline is a process of its own,
// measured exactly like Plugboard.
const baselineCommand = "baseline-server"

// serveBaseline serves the machine's ceiling: a handler that reads the body
// and answers 202, on PLUGBOARD_ADDR, until ctx ends.
func serveBaseline(ctx context.Context, _ []string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})
	return serveUntilSignal(ctx, mux)
}

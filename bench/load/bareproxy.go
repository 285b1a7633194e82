package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"time"
)

// The bare proxy is the proxy scenario's second reference: the least any
// reverse proxy pays on this machine to put the API's token on a request,
// a second HTTP exchange and nothing else (no JSON, no accounts, no
// audit). Plugboard's run is compared with it as well as with the API
// called directly.

const (
	// bareProxyCommand makes the load tool run the bare proxy.
	bareProxyCommand = "bare-proxy"

	// plugboardIdlePerHost is how many idle connections per host
	// Plugboard's account requests keep (internal/outbound's default):
	// the bare proxy keeps at least as many.
	plugboardIdlePerHost = 64
)

// bareProxyIdlePerHost is the bare proxy's MaxIdleConnsPerHost for c
// workers: as many as Plugboard keeps, and never fewer than the workers,
// so that no request waits for a new connection.
func bareProxyIdlePerHost(c int) int { return max(c, plugboardIdlePerHost) }

// newBareProxy returns a handler that forwards every request but GET
// /readyz to upstream (an http URL without a path) with
// "Authorization: Bearer <token>" in place of whatever the caller sent,
// over a transport keeping idlePerHost idle connections.
func newBareProxy(upstream *url.URL, token string, idlePerHost int, errorLog *log.Logger) (http.Handler, *http.Transport) {
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        max(100, 16*idlePerHost),
		MaxIdleConnsPerHost: idlePerHost,
		IdleConnTimeout:     90 * time.Second,
	}
	auth := "Bearer " + token
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Header.Set("Authorization", auth)
		},
		Transport: transport,
		ErrorLog:  errorLog,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/", rp)
	return mux, transport
}

// bareProxyFlags are the bare proxy's arguments after its command name.
type bareProxyFlags struct {
	upstream    *url.URL
	idlePerHost int
}

func parseBareProxyFlags(args []string, output io.Writer) (bareProxyFlags, error) {
	fs := flag.NewFlagSet(bareProxyCommand, flag.ContinueOnError)
	fs.SetOutput(output)
	upstream := fs.String("upstream", "", "the API's base `URL` (http://host:port)")
	idle := fs.Int("idle-per-host", plugboardIdlePerHost, "idle connections kept to the API")
	if err := fs.Parse(args); err != nil {
		return bareProxyFlags{}, err
	}
	if fs.NArg() > 0 {
		return bareProxyFlags{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return bareProxyFlags{}, fmt.Errorf("-upstream: %q is not an http://host:port URL", *upstream)
	}
	if *idle < 1 {
		return bareProxyFlags{}, fmt.Errorf("-idle-per-host must be positive, got %d", *idle)
	}
	return bareProxyFlags{upstream: u, idlePerHost: *idle}, nil
}

// serveBareProxy runs the bare proxy on PLUGBOARD_ADDR, adding the token
// in proxyTokenEnv, until ctx ends.
func serveBareProxy(ctx context.Context, args []string) error {
	f, err := parseBareProxyFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	token := os.Getenv(proxyTokenEnv)
	if token == "" {
		return fmt.Errorf("%s is not set", proxyTokenEnv)
	}
	handler, _ := newBareProxy(f.upstream, token, f.idlePerHost, log.New(os.Stderr, "bare proxy: ", log.LstdFlags))
	return serveUntilSignal(ctx, handler)
}

// serveUntilSignal serves handler on PLUGBOARD_ADDR until ctx ends (the
// load tool's sub-commands end it on SIGINT or SIGTERM), then shuts the
// server down.
func serveUntilSignal(ctx context.Context, handler http.Handler) error {
	srv := &http.Server{
		Addr:              cmp.Or(os.Getenv("PLUGBOARD_ADDR"), "127.0.0.1:8080"),
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// bareProxyArgs are the command line that starts the bare proxy in front
// of the API at apiURL for c workers.
func bareProxyArgs(apiURL string, c int) []string {
	return []string{bareProxyCommand, "-upstream", apiURL, "-idle-per-host", strconv.Itoa(bareProxyIdlePerHost(c))}
}

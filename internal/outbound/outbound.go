// Package outbound builds the HTTP client that flows use to call third-party
// APIs on behalf of users.
//
// Unless the operator allows private networks, the client refuses to connect
// to loopback, private, link-local, cloud metadata and other non-public
// addresses. The check runs in the dialer on the address actually being
// connected to, after name resolution, so redirects, DNS rebinding and odd
// IP literals (http://2130706433/, http://0x7f.1/, http://[::ffff:7f00:1]/)
// cannot get around it. Proxies from the environment are ignored, since a
// proxy would connect on the client's behalf without the check.
//
// Response bodies are capped: reading past Options.MaxResponseBytes fails
// with ErrResponseTooLarge.
package outbound

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Defaults for zero Options fields.
const (
	defaultMaxResponseBytes    = 10 << 20
	defaultDialTimeout         = 10 * time.Second
	defaultMaxIdleConnsPerHost = 64
)

// maxRedirects is Go's own default limit.
const maxRedirects = 10

// Options configure NewClient. The zero value is the safe default.
type Options struct {
	// AllowPrivate turns the address policy off: no address is refused.
	// Set it from PLUGBOARD_ALLOW_PRIVATE_NETWORKS=true.
	AllowPrivate bool
	// MaxResponseBytes caps every response body; reading more fails with
	// ErrResponseTooLarge. Zero or less means 10 MiB.
	MaxResponseBytes int64
	// DialTimeout bounds connecting to one address. Zero or less means 10s.
	DialTimeout time.Duration
	// MaxIdleConnsPerHost is how many kept-alive connections per host wait
	// for reuse. Zero or less means 64.
	MaxIdleConnsPerHost int
}

// NewClient returns a client that applies the address policy to every
// connection it makes, including those for redirects, and caps response
// bodies. It sets no overall timeout: callers bound each request with a
// context deadline. Build one client and share it; it is safe for concurrent
// use and pools connections.
func NewClient(opts Options) *http.Client {
	var refuse func(netip.AddrPort) bool
	if !opts.AllowPrivate {
		refuse = refuseBlocked
	}
	return newClient(opts, refuse)
}

// newClient lets tests swap the policy.
func newClient(opts Options, refuse func(netip.AddrPort) bool) *http.Client {
	perHost := positiveOr(opts.MaxIdleConnsPerHost, defaultMaxIdleConnsPerHost)
	d := &dialer{
		timeout:   positiveOr(opts.DialTimeout, defaultDialTimeout),
		keepAlive: 30 * time.Second,
		refuse:    refuse,
	}
	base := &http.Transport{
		// No proxy: it would reach the address on our behalf, unchecked.
		Proxy:       nil,
		DialContext: d.DialContext,
		// A custom DialContext turns HTTP/2 off unless asked for.
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(100, 16*perHost),
		MaxIdleConnsPerHost:   perHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
	return &http.Client{
		Transport: &transport{
			base:    base,
			maxBody: positiveOr(opts.MaxResponseBytes, defaultMaxResponseBytes),
		},
		CheckRedirect: checkRedirect,
	}
}

func positiveOr[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// transport caps response bodies on top of the pooled *http.Transport.
type transport struct {
	base    *http.Transport
	maxBody int64
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// A 101 body is the upgraded connection, read and written both ways;
	// NoBody (HEAD, 204, 304) may come with an announced length.
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.Body != http.NoBody {
		resp.Body = newLimitedBody(resp.Body, resp.ContentLength, t.maxBody)
	}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the pool.
func (t *transport) CloseIdleConnections() {
	t.base.CloseIdleConnections()
}

// sensitiveHeaders carry credentials for the origin they were set for; the
// same list Go strips on a redirect to another domain.
var sensitiveHeaders = []string{
	"Authorization", "Proxy-Authorization", "Www-Authenticate", "Proxy-Authenticate", "Cookie", "Cookie2",
}

// checkRedirect keeps Go's limit of 10 redirects. Go already drops
// credentials when a redirect leaves the host name (unless for a subdomain);
// this also drops them when the scheme, port or subdomain changes, so a
// token set for https://api.example.com is never sent to
// http://api.example.com or api.example.com:8080. Once dropped they stay
// dropped, even if a later hop returns to the first origin.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("outbound: stopped after %d redirects", maxRedirects)
	}
	first := Origin(via[0].URL)
	left := Origin(req.URL) != first
	for _, r := range via[1:] {
		left = left || Origin(r.URL) != first
	}
	if left {
		for _, h := range sensitiveHeaders {
			req.Header.Del(h)
		}
	}
	return nil
}

// Origin is scheme://host:port of u, lowercase, with the scheme's default
// port filled in: two URLs with the same origin reach the same server.
func Origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// SameOrigin reports whether a and b reach the same server (scheme, host
// and port) and a carries no user information.
func SameOrigin(a, b *url.URL) bool {
	return a.User == nil && Origin(a) == Origin(b)
}

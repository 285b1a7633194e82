package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// testServer is an httptest server on 127.0.0.1 that counts the TCP
// connections it accepts.
type testServer struct {
	*httptest.Server
	conns atomic.Int64
	port  string
}

func newTestServer(t testing.TB, h http.Handler) *testServer {
	t.Helper()
	s := &testServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	s.port = u.Port()
	return s
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	})
}

func get(ctx context.Context, c *http.Client, rawURL string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	for k, vv := range header {
		req.Header[k] = vv
	}
	return c.Do(req)
}

func TestClientRefusesLoopback(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, okHandler())
	tests := []struct {
		name string
		host string // host part of the URL, joined with the server's port
	}{
		{"literal", "127.0.0.1"},
		{"short", "127.1"},
		{"hex short", "0x7f.1"},
		{"octal", "0177.0.0.1"},
		{"decimal", "2130706433"},
		{"hex", "0x7f000001"},
		{"trailing dot", "127.0.0.1."},
		{"IPv4-mapped", "[::ffff:7f00:1]"},
		{"IPv4-mapped dotted", "[::ffff:127.0.0.1]"},
		{"unspecified", "0.0.0.0"},
		{"localhost", "localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := "http://" + tt.host + ":" + srv.port + "/"

			// Allowed, the address reaches the server: the refusal below is
			// the policy, not an unreachable address.
			open := NewClient(Options{AllowPrivate: true})
			resp, err := get(t.Context(), open, target, nil)
			if err != nil {
				t.Fatalf("with AllowPrivate: %v", err)
			}
			body, err := ReadBody(resp, 0)
			resp.Body.Close()
			if err != nil || string(body) != "ok" {
				t.Fatalf("with AllowPrivate: body %q, %v", body, err)
			}

			_, err = get(t.Context(), NewClient(Options{}), target, nil)
			if !IsBlocked(err) {
				t.Fatalf("default client: err = %v, want a BlockedError", err)
			}
			be, _ := errors.AsType[*BlockedError](err)
			if want := strings.Trim(tt.host, "[]"); be.Host != want {
				t.Errorf("Host = %q, want %q", be.Host, want)
			}
			if reason := classify(be.IP); reason != "loopback address" && reason != "unspecified address" {
				t.Errorf("IP = %s (%s), want a loopback or unspecified address", be.IP, reason)
			}
			if !strings.Contains(err.Error(), "set PLUGBOARD_ALLOW_PRIVATE_NETWORKS=true") {
				t.Errorf("error %q does not tell how to allow private networks", err)
			}
		})
	}
}

func TestClientRefusesBeforeConnecting(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, okHandler())
	_, err := get(t.Context(), NewClient(Options{}), srv.URL, nil)
	if !IsBlocked(err) {
		t.Fatalf("err = %v, want a BlockedError", err)
	}
	want := "outbound: refusing to connect to 127.0.0.1 (loopback address); " +
		"set PLUGBOARD_ALLOW_PRIVATE_NETWORKS=true to allow private networks"
	if !strings.HasSuffix(err.Error(), want) {
		t.Errorf("err = %q, want it to end with %q", err, want)
	}
	if n := srv.conns.Load(); n != 0 {
		t.Errorf("server accepted %d connections, want none", n)
	}
}

// allowPort refuses what the production policy refuses, except the given
// port: it stands in for a public server, since tests can only serve on
// loopback.
func allowPort(port string) func(netip.AddrPort) bool {
	return func(ap netip.AddrPort) bool {
		return fmt.Sprint(ap.Port()) != port && refuseBlocked(ap)
	}
}

func TestClientRedirectToLoopbackRefused(t *testing.T) {
	t.Parallel()
	internal := newTestServer(t, okHandler())
	tests := []struct {
		name     string
		location string
	}{
		{"literal", internal.URL + "/secret"},
		{"localhost", "http://localhost:" + internal.port + "/secret"},
		{"decimal", "http://2130706433:" + internal.port + "/secret"},
		{"IPv4-mapped", "http://[::ffff:7f00:1]:" + internal.port + "/secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			public := newTestServer(t, http.RedirectHandler(tt.location, http.StatusFound))
			c := newClient(Options{}, allowPort(public.port))

			_, err := get(t.Context(), c, public.URL, nil)
			if !IsBlocked(err) {
				t.Fatalf("err = %v, want a BlockedError", err)
			}
			if n := public.conns.Load(); n != 1 {
				t.Errorf("first hop: %d connections, want 1", n)
			}
		})
	}
	// Parallel subtests finish before the parent's cleanups run.
	t.Cleanup(func() {
		if n := internal.conns.Load(); n != 0 {
			t.Errorf("internal server accepted %d connections, want none", n)
		}
	})
}

func TestClientRedirectLimit(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/again", http.StatusFound)
	}))
	_, err := get(t.Context(), NewClient(Options{AllowPrivate: true}), srv.URL, nil)
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Fatalf("err = %v, want the redirect limit", err)
	}
	if n := hits.Load(); n != maxRedirects {
		t.Errorf("server saw %d requests, want %d", n, maxRedirects)
	}
}

func TestClientRedirectCredentials(t *testing.T) {
	t.Parallel()
	// target echoes the credentials it receives, or bounces elsewhere.
	target := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		fmt.Fprintf(w, "%s|%s", r.Header.Get("Authorization"), r.Header.Get("Cookie"))
	}))
	tests := []struct {
		name     string
		location func(origin *testServer) string
		want     string
	}{
		{
			name:     "same origin",
			location: func(origin *testServer) string { return origin.URL + "/echo" },
			want:     "Bearer secret|session=1",
		},
		{
			name:     "other host",
			location: func(*testServer) string { return "http://localhost:" + target.port + "/echo" },
			want:     "|",
		},
		{
			name:     "same host, other port",
			location: func(*testServer) string { return target.URL + "/echo" },
			want:     "|",
		},
		{
			name: "away and back",
			location: func(origin *testServer) string {
				return target.URL + "/bounce?to=" + url.QueryEscape(origin.URL+"/echo")
			},
			want: "|",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var origin *testServer
			origin = newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/echo" {
					fmt.Fprintf(w, "%s|%s", r.Header.Get("Authorization"), r.Header.Get("Cookie"))
					return
				}
				http.Redirect(w, r, tt.location(origin), http.StatusFound)
			}))
			c := NewClient(Options{AllowPrivate: true})
			resp, err := get(t.Context(), c, origin.URL+"/start", http.Header{
				"Authorization": {"Bearer secret"},
				"Cookie":        {"session=1"},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := ReadBody(resp, 0)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.want {
				t.Errorf("credentials at the last hop = %q, want %q", body, tt.want)
			}
		})
	}
}

func TestClientReusesConnections(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, okHandler())
	c := NewClient(Options{AllowPrivate: true})
	for i := range 100 {
		resp, err := get(t.Context(), c, srv.URL, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, err = ReadBody(resp, 0)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := srv.conns.Load(); n > 2 {
		t.Errorf("100 sequential requests used %d connections, want at most 2", n)
	}
}

func TestClientHTTP2(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	c := NewClient(Options{AllowPrivate: true})
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c.Transport.(*transport).base.TLSClientConfig = &tls.Config{RootCAs: roots}

	resp, err := get(t.Context(), c, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := ReadBody(resp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "HTTP/2.0" {
		t.Errorf("protocol = %q, want HTTP/2.0", body)
	}

	// The TLS path goes through the same dialer.
	_, err = get(t.Context(), NewClient(Options{}), srv.URL, nil)
	if !IsBlocked(err) {
		t.Errorf("default client over TLS: err = %v, want a BlockedError", err)
	}
}

func TestNewClientDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		opts        Options
		wantBody    int64
		wantPerHost int
	}{
		{"zero", Options{}, 10 << 20, 64},
		{"negative", Options{MaxResponseBytes: -1, MaxIdleConnsPerHost: -1, DialTimeout: -1}, 10 << 20, 64},
		{"set", Options{MaxResponseBytes: 5, MaxIdleConnsPerHost: 8}, 5, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewClient(tt.opts)
			if c.Timeout != 0 {
				t.Errorf("Timeout = %v, want none: callers use context deadlines", c.Timeout)
			}
			tr := c.Transport.(*transport)
			if tr.maxBody != tt.wantBody {
				t.Errorf("maxBody = %d, want %d", tr.maxBody, tt.wantBody)
			}
			if tr.base.MaxIdleConnsPerHost != tt.wantPerHost {
				t.Errorf("MaxIdleConnsPerHost = %d, want %d", tr.base.MaxIdleConnsPerHost, tt.wantPerHost)
			}
			if tr.base.Proxy != nil {
				t.Error("Proxy is set: a proxy would bypass the address check")
			}
			if !tr.base.ForceAttemptHTTP2 {
				t.Error("ForceAttemptHTTP2 is off: the custom dialer would disable HTTP/2")
			}
			if tr.base.TLSHandshakeTimeout == 0 {
				t.Error("no TLS handshake timeout")
			}
		})
	}
}

func BenchmarkClientGet(b *testing.B) {
	srv := newTestServer(b, okHandler())
	c := NewClient(Options{AllowPrivate: true})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := get(ctx, c, srv.URL, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, err = ReadBody(resp, 0)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(srv.conns.Load()), "conns")
}

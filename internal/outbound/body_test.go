package outbound

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestReadBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		body          string
		contentLength int64 // -1 when unknown
		limit         int64
		wantErr       bool
	}{
		{"empty", "", 0, 4, false},
		{"under", "abc", 3, 4, false},
		{"exactly", "abcd", 4, 4, false},
		{"over", "abcde", 5, 4, true},
		{"over, length unknown", "abcde", -1, 4, true},
		{"exactly, length unknown", "abcd", -1, 4, false},
		{"length announced over", "ab", 5, 4, true},
		{"default limit", strings.Repeat("x", 1000), -1, 0, false},
		{"no body, length announced", "", 5, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := &http.Response{Body: io.NopCloser(strings.NewReader(tt.body)), ContentLength: tt.contentLength}
			if tt.body == "" {
				resp.Body = http.NoBody
			}
			got, err := ReadBody(resp, tt.limit)
			if tt.wantErr {
				if !errors.Is(err, ErrResponseTooLarge) {
					t.Fatalf("err = %v, want ErrResponseTooLarge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.body {
				t.Errorf("body = %q, want %q", got, tt.body)
			}
		})
	}
}

func TestReadBodyReadsAtMostLimitPlusOne(t *testing.T) {
	t.Parallel()
	r := &countingReader{r: strings.NewReader(strings.Repeat("x", 1<<20))}
	_, err := ReadBody(&http.Response{Body: io.NopCloser(r), ContentLength: -1}, 100)
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("err = %v, want ErrResponseTooLarge", err)
	}
	if r.n > 101 {
		t.Errorf("read %d bytes, want at most 101", r.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestClientCapsBodies checks Options.MaxResponseBytes on the response body
// itself, for callers that read it without ReadBody.
func TestClientCapsBodies(t *testing.T) {
	t.Parallel()
	const limit = 1000
	srv := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Has("chunked") {
			w.Header().Set("Content-Type", "text/plain")
			for range n {
				io.WriteString(w, "x")
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		io.WriteString(w, strings.Repeat("x", n))
	}))
	c := NewClient(Options{AllowPrivate: true, MaxResponseBytes: limit})
	tests := []struct {
		name    string
		method  string
		query   string
		wantLen int
		wantErr bool
	}{
		{"under", http.MethodGet, "n=999", 999, false},
		{"exactly", http.MethodGet, "n=1000", 1000, false},
		{"over with length", http.MethodGet, "n=1001", 0, true},
		{"over chunked", http.MethodGet, "n=1001&chunked", limit, true},
		{"exactly chunked", http.MethodGet, "n=1000&chunked", 1000, false},
		{"HEAD announcing more", http.MethodHead, "n=5000", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if tt.wantErr != errors.Is(err, ErrResponseTooLarge) {
				t.Fatalf("err = %v, want too large: %v", err, tt.wantErr)
			}
			if !tt.wantErr && err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantLen {
				t.Errorf("read %d bytes, want %d", len(got), tt.wantLen)
			}
		})
	}
}

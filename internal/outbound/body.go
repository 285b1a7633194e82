package outbound

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// ErrResponseTooLarge is returned when a response body is longer than the
// allowed number of bytes.
var ErrResponseTooLarge = errors.New("outbound: response body too large")

// ReadBody reads resp.Body whole if it holds at most limit bytes, and fails
// with an error wrapping ErrResponseTooLarge beyond that, without reading
// more than limit+1 bytes. A limit of zero or less means 10 MiB. ReadBody does
// not close the body; the caller still does.
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	limit = positiveOr(limit, defaultMaxResponseBytes)
	// Responses without a body (HEAD, 204, 304) may still announce a length.
	if resp.Body == nil || resp.Body == http.NoBody {
		return []byte{}, nil
	}
	if resp.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if errors.Is(err, ErrResponseTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("reading response body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(limit)
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, limit)
}

// limitedBody fails with ErrResponseTooLarge once more than limit bytes would
// be read, so io.ReadAll on a client's response cannot exhaust memory.
type limitedBody struct {
	io.ReadCloser
	limit int64
	left  int64 // bytes still allowed; -1 once over
}

func newLimitedBody(body io.ReadCloser, contentLength, limit int64) *limitedBody {
	left := limit
	if contentLength > limit {
		left = -1 // fail on the first read, before any transfer
	}
	return &limitedBody{ReadCloser: body, limit: limit, left: left}
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, tooLarge(b.limit)
	}
	// Ask for one byte past the limit to tell "exactly limit" from "more".
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = -1
		return n, tooLarge(b.limit)
	}
	b.left -= int64(n)
	return n, err
}

// DecodeBody is an answer's body as a value: the JSON value when it is
// JSON (by its content type, or an object or array that parses), else its
// text; nil when empty.
func DecodeBody(contentType string, b []byte) any {
	if len(b) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if t := bytes.TrimSpace(b); isJSON || (len(t) > 0 && (t[0] == '{' || t[0] == '[')) {
		var v any
		if json.Unmarshal(b, &v) == nil {
			return v
		}
	}
	return string(b)
}

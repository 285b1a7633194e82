package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/mapping"
	"github.com/plugboard/plugboard/internal/outbound"
)

// items answers GET /items in pages of two over n items, by cursor
// (?cursor=), page number (?page=) or Link header (?after=).
func itemsAPI(t *testing.T, n int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from := 0
		q := r.URL.Query()
		switch {
		case q.Get("cursor") != "":
			from, _ = strconv.Atoi(q.Get("cursor"))
		case q.Get("page") != "":
			p, _ := strconv.Atoi(q.Get("page"))
			from = (p - 1) * 2
		case q.Get("after") != "":
			from, _ = strconv.Atoi(q.Get("after"))
		}
		var page []any
		for i := from; i < min(from+2, n); i++ {
			page = append(page, map[string]any{"id": fmt.Sprint("i", i), "seq": float64(i)})
		}
		next := ""
		if from+2 < n {
			next = strconv.Itoa(from + 2)
			w.Header().Set("Link", fmt.Sprintf(`<http://%s/items?after=%s>; rel="next"`, r.Host, next))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": page, "meta": map[string]any{"next": next}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPActionPagination(t *testing.T) {
	t.Parallel()
	srv := itemsAPI(t, 5)
	rt := &Runtime{HTTP: srv.Client()}
	for _, pg := range []*PaginationDef{
		{Type: PageCursor, ItemsPath: "data", CursorPath: "meta.next", CursorParam: "cursor"},
		{Type: PagePage, ItemsPath: "data", PageParam: "page"},
		{Type: PageLink, ItemsPath: "data"},
	} {
		def := &HTTPDef{RequestDef: RequestDef{Method: "GET", URL: srv.URL + "/items"}, Pagination: pg}
		req, err := compileRequest(def.RequestDef, nil)
		if err != nil {
			t.Fatal(err)
		}
		a := &httpAction{rt: rt, spec: component.Spec{Type: "x.List"}, def: def, req: req}
		emits, err := a.Invoke(context.Background(), component.Invocation{})
		if err != nil {
			t.Fatalf("%s: %v", pg.Type, err)
		}
		got, _ := emits[0].Value.([]any)
		if len(got) != 5 || got[4].(map[string]any)["id"] != "i4" {
			t.Errorf("%s: got %v", pg.Type, got)
		}
	}
}

func TestHTTPActionErrors(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	}))
	defer srv.Close()
	rt := &Runtime{HTTP: srv.Client()}
	invoke := func(url string) error {
		def := &HTTPDef{RequestDef: RequestDef{Method: "POST", URL: url}}
		req, _ := compileRequest(def.RequestDef, nil)
		_, err := (&httpAction{rt: rt, spec: component.Spec{Type: "x.Do"}, def: def, req: req}).Invoke(context.Background(), component.Invocation{})
		return err
	}
	if err := invoke(srv.URL); err == nil || component.IsPermanent(err) {
		t.Errorf("503: %v (want a retryable error)", err)
	}
	mu.Lock()
	status = http.StatusBadRequest
	mu.Unlock()
	if err := invoke(srv.URL); !component.IsPermanent(err) {
		t.Errorf("400: %v (want a permanent error)", err)
	}
	if err := invoke("/v2/contacts"); !errors.Is(err, ErrNeedsAccount) || !component.IsPermanent(err) {
		t.Errorf("a path: %v", err)
	}
}

func TestPollerEmitsEachItemOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	n := 3
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		since, _ := strconv.ParseFloat(r.URL.Query().Get("since"), 64)
		var list []any
		for i := 0; i < n; i++ {
			// The API may send items again (since is inclusive).
			if float64(i) >= since {
				list = append(list, map[string]any{"id": fmt.Sprint("i", i), "seq": float64(i)})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": list})
	}))
	defer srv.Close()
	def := &PollingDef{Request: RequestDef{URL: srv.URL + "/items"}, ItemsPath: "data", IDField: "id", CursorField: "seq", CursorParam: "since",
		Output: map[string]any{"contact": "{{ $.item.id }}"}}
	req, _ := compileRequest(def.Request, nil)
	out, _ := mapping.Compile(def.Output)
	p := &poller{rt: &Runtime{HTTP: srv.Client()}, spec: component.Spec{Type: "x.New"}, def: def, req: req, output: out}
	poll := func(state json.RawMessage) ([]any, json.RawMessage) {
		items, next, err := p.Poll(context.Background(), component.PollInvocation{State: state})
		if err != nil {
			t.Fatal(err)
		}
		return items, next
	}
	items, state := poll(nil)
	if len(items) != 0 {
		t.Fatalf("the first poll emitted %v (it only learns what exists)", items)
	}
	items, state = poll(state)
	if len(items) != 0 {
		t.Fatalf("nothing new, yet %v", items)
	}
	mu.Lock()
	n = 5
	mu.Unlock()
	items, state = poll(state)
	if len(items) != 2 || items[0].(map[string]any)["contact"] != "i3" || items[1].(map[string]any)["contact"] != "i4" {
		t.Fatalf("new items = %v", items)
	}
	if items, _ = poll(state); len(items) != 0 {
		t.Fatalf("items emitted twice: %v", items)
	}
	var st pollState
	_ = json.Unmarshal(state, &st)
	if st.Cursor != 4.0 {
		t.Fatalf("cursor = %v", st.Cursor)
	}
}

func TestHTTPActionLinkHeader(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RequestURI())
		mu.Unlock()
		switch r.URL.Query().Get("p") {
		case "":
			// Relative, and holding what would be a placeholder.
			w.Header().Set("Link", `</items?p=2&q={{ $.properties.secret }}>; rel="next"`)
		case "2":
			w.Header().Set("Link", `<http://elsewhere.example/items?p=3>; rel="next"`)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": []any{r.URL.Query().Get("p")}})
	}))
	defer srv.Close()
	def := &HTTPDef{RequestDef: RequestDef{Method: "GET", URL: srv.URL + "/items"}, Pagination: &PaginationDef{Type: PageLink, ItemsPath: "data"}}
	req, _ := compileRequest(def.RequestDef, nil)
	a := &httpAction{rt: &Runtime{HTTP: srv.Client()}, spec: component.Spec{Type: "x.List"}, def: def, req: req}
	_, err := a.Invoke(context.Background(), component.Invocation{Properties: map[string]any{"secret": "s3cret"}})
	if !component.IsPermanent(err) {
		t.Fatalf("a link to another host: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[1] != "/items?p=2&q=%7B%7B+%24.properties.secret+%7D%7D" {
		t.Fatalf("requests = %q (the link must be sent as given, never evaluated)", seen)
	}
}

func TestResolveURL(t *testing.T) {
	t.Parallel()
	base, err := outbound.ParseBaseURL("https://api.example.com/v2")
	if err != nil {
		t.Fatal(err)
	}
	// A request URL is a path (joined), or absolute; "//host" and other
	// schemes are neither.
	r := &compiledRequest{base: base}
	for raw, ok := range map[string]bool{
		"/contacts": true, "https://other.example/x": true,
		"//evil.example/x": false, "ftp://api.example.com/x": false, "contacts": false, "javascript:alert(1)": false,
	} {
		if _, err := r.resolveAt(raw, base); (err == nil) != ok {
			t.Errorf("resolve(%q): %v, want ok=%v", raw, err, ok)
		}
	}
	if _, err := (&compiledRequest{}).resolveAt("/contacts", nil); !errors.Is(err, ErrNeedsAccount) {
		t.Errorf("a path without a base: %v, want ErrNeedsAccount", err)
	}
}

// TestPollCatchesUp: a poll whose cursor moves asks again, so a backlog
// longer than one answer is learned by the first poll and emitted by a
// later one, each item once.
func TestPollCatchesUp(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	n := 5
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.Atoi(r.URL.Query().Get("after"))
		mu.Lock()
		defer mu.Unlock()
		var page []any
		for i := after + 1; i <= min(after+2, n); i++ {
			page = append(page, map[string]any{"id": fmt.Sprint("i", i), "seq": float64(i)})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": page}) // null when empty
	}))
	t.Cleanup(srv.Close)
	def := &PollingDef{Interval: "1m", Request: RequestDef{URL: srv.URL}, ItemsPath: "data", IDField: "id", CursorField: "seq", CursorParam: "after"}
	req, err := compileRequest(def.Request, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &poller{rt: &Runtime{HTTP: srv.Client()}, spec: component.Spec{Type: "t.Poll"}, def: def, req: req}
	items, state, err := p.Poll(t.Context(), component.PollInvocation{})
	if err != nil || len(items) != 0 {
		t.Fatalf("first poll: %v %v", items, err)
	}
	mu.Lock()
	n = 10
	mu.Unlock()
	items, _, err = p.Poll(t.Context(), component.PollInvocation{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(items) != "[map[id:i6 seq:6] map[id:i7 seq:7] map[id:i8 seq:8] map[id:i9 seq:9] map[id:i10 seq:10]]" {
		t.Fatalf("second poll emitted %v, want i6 to i10", items)
	}
}

// TestOversizedAnswerIsPermanent: an answer over the cap fails the step at
// once rather than being fetched again with each retry.
func TestOversizedAnswerIsPermanent(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 4096))
	}))
	t.Cleanup(srv.Close)
	req, err := compileRequest(RequestDef{URL: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The server's client stops at the cap itself.
	rt := &Runtime{HTTP: outbound.NewClient(outbound.Options{AllowPrivate: true, MaxResponseBytes: 1024}), MaxResponseBytes: 1024}
	if _, err := rt.do(t.Context(), caller{}, req, map[string]any{}, nil, ""); !component.IsPermanent(err) {
		t.Fatalf("an answer over the cap: %v, want a permanent error", err)
	}
}

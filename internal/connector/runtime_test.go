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
		req, err := compileRequest(def.RequestDef)
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
		req, _ := compileRequest(def.RequestDef)
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
	req, _ := compileRequest(def.Request)
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
	req, _ := compileRequest(def.RequestDef)
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

package connector

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/mapping"
	"github.com/plugboard/plugboard/internal/outbound"
)

// Runtime turns an installed package into components the engine runs.
type Runtime struct {
	// HTTP makes the components' requests (it refuses private addresses
	// unless the operator allows them).
	HTTP *http.Client
	// MaxResponseBytes caps a response body (default 10 MiB).
	MaxResponseBytes int64
	// PollInterval, when set, replaces every polling trigger's interval:
	// for tests and load runs, which cannot wait minutes.
	PollInterval time.Duration
}

// ErrNeedsAccount says a request names a path, to be joined to an
// account's domain, and accounts are not available yet.
var ErrNeedsAccount = errors.New("the request URL is a path, which needs an account's domain; accounts are not available yet, so use an absolute URL")

// Components builds the components of pkg that can run: declarative HTTP
// actions and polling triggers. Webhook-subscription triggers and script
// components are not run yet and are left out.
func (rt *Runtime) Components(pkg *Package) ([]component.Component, error) {
	m := pkg.Manifest
	var out []component.Component
	for i, c := range m.Components {
		spec := component.Spec{
			Type: c.Type(m.Name), Description: cmp.Or(c.Description, c.Label), OutputSample: c.OutputSample,
			OutPorts: []string{component.PortOut},
		}
		props, err := schemaProperties(c.Properties)
		if err != nil {
			return nil, fmt.Errorf("components[%d] %s: %w", i, c.Name, err)
		}
		spec.Properties = props
		switch {
		case c.HTTP != nil:
			spec.Kind, spec.InPorts, spec.IO = component.KindAction, []string{component.PortIn}, true
			req, err := compileRequest(c.HTTP.RequestDef)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", spec.Type, err)
			}
			a := &httpAction{rt: rt, spec: spec, def: c.HTTP, req: req}
			if c.HTTP.Output != nil {
				if a.output, err = mapping.Compile(c.HTTP.Output); err != nil {
					return nil, fmt.Errorf("%s: output: %w", spec.Type, err)
				}
			}
			out = append(out, a)
		case c.Polling != nil:
			spec.Kind = component.KindTrigger
			req, err := compileRequest(c.Polling.Request)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", spec.Type, err)
			}
			every, err := time.ParseDuration(c.Polling.Interval)
			if err != nil {
				return nil, fmt.Errorf("%s: interval: %w", spec.Type, err)
			}
			p := &poller{rt: rt, spec: spec, def: c.Polling, req: req, every: every}
			if c.Polling.Output != nil {
				if p.output, err = mapping.Compile(c.Polling.Output); err != nil {
					return nil, fmt.Errorf("%s: output: %w", spec.Type, err)
				}
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// schemaProperties reads the top level of a component's properties schema
// into property specs, which flows are checked against.
func schemaProperties(raw json.RawMessage) ([]component.Property, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var s struct {
		Properties map[string]struct {
			Type        any    `json:"type"`
			Description string `json:"description"`
			Default     any    `json:"default"`
			Enum        []any  `json:"enum"`
			Examples    []any  `json:"examples"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("reading properties schema: %w", err)
	}
	var out []component.Property
	for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
		p := s.Properties[name]
		prop := component.Property{
			Name: name, Type: jsonType(p.Type), Description: p.Description, Default: p.Default,
			Required: slices.Contains(s.Required, name),
		}
		for _, e := range p.Enum {
			if str, ok := e.(string); ok {
				prop.Enum = append(prop.Enum, str)
			}
		}
		if len(p.Examples) > 0 {
			prop.Example = p.Examples[0]
		}
		out = append(out, prop)
	}
	return out, nil
}

// jsonType maps a JSON Schema type to a property type.
func jsonType(t any) component.PropertyType {
	switch t {
	case "string":
		return component.TypeString
	case "number", "integer":
		return component.TypeNumber
	case "boolean":
		return component.TypeBoolean
	case "object":
		return component.TypeObject
	case "array":
		return component.TypeArray
	}
	return component.TypeAny
}

// compiledRequest is a RequestDef with its templates compiled.
type compiledRequest struct {
	method                    string
	url, headers, query, body *mapping.Template
	hasBody                   bool
	// next, when set, is the URL of a next page as the provider gave it
	// (a Link header): sent as it is, never read as a template.
	next string
}

func compileRequest(d RequestDef) (*compiledRequest, error) {
	r := &compiledRequest{method: strings.ToUpper(cmp.Or(d.Method, http.MethodGet)), hasBody: d.Body != nil}
	var err error
	if r.url, err = mapping.Compile(d.URL); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if r.headers, err = mapping.Compile(anyMap(d.Headers)); err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	if r.query, err = mapping.Compile(anyMap(d.Query)); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if r.body, err = mapping.Compile(d.Body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return r, nil
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// response is what a request's templates see as $.response.
type response struct {
	Status  int
	Headers http.Header
	Body    any
	size    int64    // bytes of the body
	url     *url.URL // where it came from
}

func (r *response) value() map[string]any {
	h := make(map[string]any, len(r.Headers))
	for k, v := range r.Headers {
		h[k] = strings.Join(v, ", ")
	}
	return map[string]any{"status": float64(r.Status), "headers": h, "body": r.Body}
}

// do resolves req against scope (plus extra query parameters) and sends
// it. Network errors, 408, 429 and 5xx are retryable; other 4xx are not.
func (rt *Runtime) do(ctx context.Context, req *compiledRequest, scope map[string]any, extra url.Values, idempotencyKey string) (*response, error) {
	rawURL := req.next
	if rawURL == "" {
		var err error
		if rawURL, err = evalString(req.url, scope); err != nil {
			return nil, component.Permanent(fmt.Errorf("url: %w", err))
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		if strings.HasPrefix(rawURL, "/") {
			return nil, component.Permanent(ErrNeedsAccount)
		}
		return nil, component.Permanent(fmt.Errorf("url %q is not an absolute http or https URL", rawURL))
	}
	q := u.Query()
	if v, err := req.query.Eval(scope); err != nil {
		return nil, component.Permanent(fmt.Errorf("query: %w", err))
	} else if m, ok := v.(map[string]any); ok {
		for k, val := range m {
			if val != nil && val != "" {
				q.Set(k, scalar(val))
			}
		}
	}
	for k, vs := range extra {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	var body io.Reader
	if req.hasBody {
		v, err := req.body.Eval(scope)
		if err != nil {
			return nil, component.Permanent(fmt.Errorf("body: %w", err))
		}
		data, err := json.Marshal(v)
		if err != nil {
			return nil, component.Permanent(fmt.Errorf("body: %w", err))
		}
		body = bytes.NewReader(data)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, component.Permanent(fmt.Errorf("building request: %w", err))
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json")
	if v, err := req.headers.Eval(scope); err != nil {
		return nil, component.Permanent(fmt.Errorf("headers: %w", err))
	} else if m, ok := v.(map[string]any); ok {
		for k, val := range m {
			hr.Header.Set(k, scalar(val))
		}
	}
	if idempotencyKey != "" {
		hr.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := rt.HTTP.Do(hr)
	if err != nil {
		err = fmt.Errorf("calling %s %s%s: %w", req.method, u.Host, u.Path, err)
		if outbound.IsBlocked(err) {
			return nil, component.Permanent(err) // retrying cannot reach it either
		}
		return nil, err
	}
	defer resp.Body.Close()
	limit := cmp.Or(rt.MaxResponseBytes, 10<<20)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading answer of %s %s%s: %w", req.method, u.Host, u.Path, err)
	}
	if int64(len(raw)) > limit {
		return nil, component.Permanent(fmt.Errorf("the answer of %s %s%s is larger than %d bytes", req.method, u.Host, u.Path, limit))
	}
	r := &response{Status: resp.StatusCode, Headers: resp.Header, size: int64(len(raw)), url: u}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			r.Body = string(raw)
		}
	}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, fmt.Errorf("%s %s%s answered %d", req.method, u.Host, u.Path, resp.StatusCode)
	case resp.StatusCode >= 400:
		return nil, component.Permanent(fmt.Errorf("%s %s%s answered %d: %s", req.method, u.Host, u.Path, resp.StatusCode, snippet(raw)))
	}
	return r, nil
}

func evalString(t *mapping.Template, scope map[string]any) (string, error) {
	v, err := t.Eval(scope)
	if err != nil {
		return "", err
	}
	return scalar(v), nil
}

func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.ToValidUTF8(string(b), "")
}

// at reads a dot path ("data.items") in v; "" is v itself.
func at(v any, path string) any {
	if path == "" {
		return v
	}
	for _, key := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[key]
	}
	return v
}

// httpAction is a declarative HTTP request.
type httpAction struct {
	rt     *Runtime
	spec   component.Spec
	def    *HTTPDef
	req    *compiledRequest
	output *mapping.Template
}

func (a *httpAction) Spec() component.Spec { return a.spec }

// Invoke makes the request (every page of it, with pagination) and maps
// the answer to the output.
func (a *httpAction) Invoke(ctx context.Context, inv component.Invocation) ([]component.Emit, error) {
	scope := map[string]any{"properties": inv.Properties}
	pg := a.def.Pagination
	if pg == nil {
		r, err := a.rt.do(ctx, a.req, scope, nil, inv.MessageID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.spec.Type, err)
		}
		return a.emit(scope, r, r.Body)
	}
	var items []any
	var last *response
	var total int64
	extra := url.Values{}
	if pg.SizeParam != "" {
		extra.Set(pg.SizeParam, strconv.Itoa(pg.PageSize))
	}
	page := 1
	if pg.StartPage != nil {
		page = *pg.StartPage
	}
	req := a.req
	limit := cmp.Or(a.rt.MaxResponseBytes, 10<<20)
	for n := 0; n < cmp.Or(pg.MaxPages, 100); n++ {
		if pg.Type == PagePage {
			extra.Set(pg.PageParam, strconv.Itoa(page))
		}
		r, err := a.rt.do(ctx, req, scope, extra, inv.MessageID)
		if err != nil {
			return nil, fmt.Errorf("%s: page %d: %w", a.spec.Type, n+1, err)
		}
		if total += r.size; total > limit {
			return nil, component.Permanent(fmt.Errorf("%s: the pages add up to more than %d bytes", a.spec.Type, limit))
		}
		last = r
		got, _ := at(r.Body, pg.ItemsPath).([]any)
		items = append(items, got...)
		switch pg.Type {
		case PageCursor:
			next := scalar(at(r.Body, pg.CursorPath))
			if next == "" {
				return a.emit(scope, last, items)
			}
			extra.Set(pg.CursorParam, next)
		case PagePage:
			if len(got) == 0 {
				return a.emit(scope, last, items)
			}
			page++
		case PageLink:
			link := nextLink(r.Headers.Get("Link"))
			if link == "" {
				return a.emit(scope, last, items)
			}
			next, err := r.url.Parse(link) // relative links resolve against this page
			if err != nil || next.Host != r.url.Host || next.Scheme != r.url.Scheme {
				return nil, component.Permanent(fmt.Errorf("%s: the next page link %q leaves the API's host", a.spec.Type, link))
			}
			req = &compiledRequest{method: req.method, url: req.url, headers: req.headers, query: req.query, body: req.body,
				hasBody: req.hasBody, next: next.String()}
			extra = url.Values{} // the link carries its own query
		}
	}
	return a.emit(scope, last, items)
}

func (a *httpAction) emit(scope map[string]any, r *response, body any) ([]component.Emit, error) {
	out := body
	if a.output != nil {
		s := map[string]any{"properties": scope["properties"], "response": r.value()}
		v, err := a.output.Eval(s)
		if err != nil {
			return nil, component.Permanent(fmt.Errorf("%s: output: %w", a.spec.Type, err))
		}
		out = v
	}
	return []component.Emit{{Port: component.PortOut, Value: out}}, nil
}

// nextLink returns the rel="next" URL of a Link header.
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		seg := strings.Split(part, ";")
		if len(seg) < 2 {
			continue
		}
		for _, p := range seg[1:] {
			if strings.ReplaceAll(strings.TrimSpace(p), " ", "") == `rel="next"` {
				return strings.Trim(strings.TrimSpace(seg[0]), "<>")
			}
		}
	}
	return ""
}

// maxSeen bounds the ids a poller remembers to skip items it emitted.
const maxSeen = 1000

// pollState is what a polling trigger keeps between polls.
type pollState struct {
	Cursor any      `json:"cursor,omitempty"`
	Seen   []string `json:"seen"`
}

// poller is a polling trigger.
type poller struct {
	rt     *Runtime
	spec   component.Spec
	def    *PollingDef
	req    *compiledRequest
	every  time.Duration
	output *mapping.Template
}

var _ component.Poller = (*poller)(nil)

func (p *poller) Spec() component.Spec { return p.spec }

// Interval is the manifest's interval (or the runtime's override).
func (p *poller) Interval(map[string]any) (time.Duration, error) {
	return cmp.Or(p.rt.PollInterval, p.every), nil
}

// Poll asks for the items since the cursor and emits those whose ids it
// has not seen. The first poll only learns what exists: it emits nothing.
func (p *poller) Poll(ctx context.Context, inv component.PollInvocation) ([]any, json.RawMessage, error) {
	var st pollState
	first := len(inv.State) == 0
	if !first {
		if err := json.Unmarshal(inv.State, &st); err != nil {
			return nil, nil, component.Permanent(fmt.Errorf("%s: reading poll state: %w", p.spec.Type, err))
		}
	}
	scope := map[string]any{"properties": inv.Properties, "cursor": st.Cursor}
	var extra url.Values
	if p.def.CursorParam != "" && st.Cursor != nil {
		extra = url.Values{p.def.CursorParam: {scalar(st.Cursor)}}
	}
	r, err := p.rt.do(ctx, p.req, scope, extra, "")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.spec.Type, err)
	}
	list, ok := at(r.Body, p.def.ItemsPath).([]any)
	if !ok && r.Body != nil {
		return nil, nil, component.Permanent(fmt.Errorf("%s: no list at %q in the answer", p.spec.Type, p.def.ItemsPath))
	}
	seen := make(map[string]bool, len(st.Seen))
	for _, id := range st.Seen {
		seen[id] = true
	}
	var items []any
	for _, it := range list {
		id := scalar(at(it, p.def.IDField))
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		st.Seen = append(st.Seen, id)
		if c := at(it, p.def.CursorField); p.def.CursorField != "" && c != nil && greater(c, st.Cursor) {
			st.Cursor = c
		}
		if first {
			continue
		}
		out := it
		if p.output != nil {
			v, err := p.output.Eval(map[string]any{"properties": inv.Properties, "item": it})
			if err != nil {
				return nil, nil, component.Permanent(fmt.Errorf("%s: output: %w", p.spec.Type, err))
			}
			out = v
		}
		items = append(items, out)
	}
	if len(st.Seen) > maxSeen {
		st.Seen = st.Seen[len(st.Seen)-maxSeen:]
	}
	state, err := json.Marshal(st)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.spec.Type, err)
	}
	return items, state, nil
}

// greater compares cursor values: numbers as numbers, anything else as
// text (ISO times sort as text).
func greater(a, b any) bool {
	if b == nil {
		return true
	}
	fa, okA := a.(float64)
	fb, okB := b.(float64)
	if okA && okB {
		return fa > fb
	}
	return scalar(a) > scalar(b)
}

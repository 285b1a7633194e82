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

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/mapping"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/script"
)

// Runtime turns an installed package into components the engine runs.
//
// The components of a connector whose manifest has auth (of a type other
// than none) call its API through an account: each has a required
// property account, and each request (of an action, a poll, a subscribe
// or unsubscribe, every page) goes through Accounts as the flow's owner,
// which adds the account's credentials. Paths are joined to the account's
// domain; an absolute URL must be on the domain's origin, so credentials
// never go to another host.
type Runtime struct {
	// HTTP makes the requests of connectors without auth (it refuses
	// private addresses unless the operator allows them).
	HTTP *http.Client
	// Accounts makes the requests of connectors with auth; it is required
	// when any is installed.
	Accounts *account.Service
	// MaxResponseBytes caps a response body (default 10 MiB).
	MaxResponseBytes int64
	// PollInterval, when set, replaces every polling trigger's interval:
	// for tests and load runs, which cannot wait minutes.
	PollInterval time.Duration
	// Sandbox runs script components; the server shares it with core.Code,
	// so that all scripts together keep to its limits. Nil gives each
	// script component a sandbox of its own with the default limits.
	Sandbox *script.Sandbox
}

// ErrNeedsAccount says a request of a connector without auth names a
// path, and the connector has no baseUrl to join it to.
var ErrNeedsAccount = errors.New("the request URL is a path, which needs the connector's baseUrl or an account's domain; " +
	"set baseUrl in the manifest, or an auth block so that requests go through an account, or use an absolute URL")

// AccountProperty is the property naming the account a component of a
// connector with auth calls its API through.
const AccountProperty = "account"

// Components builds the components of pkg: declarative HTTP actions,
// polling triggers, webhook-subscription triggers and script actions.
func (rt *Runtime) Components(pkg *Package) ([]component.Component, error) {
	m := pkg.Manifest
	var base *url.URL
	if m.BaseURL != "" {
		var err error
		if base, err = outbound.ParseBaseURL(m.BaseURL); err != nil {
			return nil, err
		}
	}
	// Through an account of this connector, or straight ("").
	via := ""
	if m.Auth.UsesAccounts() {
		via = m.Name
	}
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
		// Script components make no request, so they need no account.
		if via != "" && c.Script == "" {
			spec.Properties = withAccount(props, m.Name)
		}
		comp, err := rt.component(pkg, c, spec, base, via)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Type, err)
		}
		out = append(out, comp)
	}
	return out, nil
}

// withAccount puts the account property first in props (replacing one
// the schema may define).
func withAccount(props []component.Property, connector string) []component.Property {
	out := []component.Property{{
		Name: AccountProperty, Type: component.TypeString, Required: true,
		Description: fmt.Sprintf("Id of the account to call the API through: an account of connector %s, "+
			"owned by the flow's owner.", connector),
	}}
	for _, p := range props {
		if p.Name != AccountProperty {
			out = append(out, p)
		}
	}
	return out
}

// component builds the component c describes; via names the connector
// whose accounts its requests go through ("" for none).
func (rt *Runtime) component(pkg *Package, c ComponentDef, spec component.Spec, base *url.URL, via string) (component.Component, error) {
	switch {
	case c.HTTP != nil:
		spec.Kind, spec.InPorts, spec.IO = component.KindAction, []string{component.PortIn}, true
		req, err := compileRequest(c.HTTP.RequestDef, base)
		if err != nil {
			return nil, err
		}
		req.via = via
		a := &httpAction{rt: rt, spec: spec, def: c.HTTP, req: req}
		if a.output, err = compileOutput(c.HTTP.Output); err != nil {
			return nil, err
		}
		return a, nil
	case c.Polling != nil:
		spec.Kind = component.KindTrigger
		req, err := compileRequest(c.Polling.Request, base)
		if err != nil {
			return nil, err
		}
		req.via = via
		every, err := time.ParseDuration(c.Polling.Interval)
		if err != nil {
			return nil, fmt.Errorf("interval: %w", err)
		}
		p := &poller{rt: rt, spec: spec, def: c.Polling, req: req, every: every}
		if p.output, err = compileOutput(c.Polling.Output); err != nil {
			return nil, err
		}
		return p, nil
	case c.Subscription != nil:
		spec.Kind = component.KindTrigger
		s, err := rt.subscriber(spec, c.Subscription, base)
		if err != nil {
			return nil, err
		}
		s.subscribe.via, s.unsubscribe.via = via, via
		return s, nil
	case c.Script != "":
		spec.Kind, spec.InPorts, spec.IO = component.KindAction, []string{component.PortIn}, true
		src, ok := pkg.Files[c.Script]
		if !ok {
			return nil, fmt.Errorf("the script %q is not in the package", c.Script)
		}
		return &scriptAction{spec: spec, src: string(src), code: core.NewCodeWith(rt.Sandbox)}, nil
	}
	return nil, errors.New("the component has none of http, polling, subscription or script")
}

// compileOutput compiles an output mapping; nil when there is none.
func compileOutput(def any) (*mapping.Template, error) {
	if def == nil {
		return nil, nil
	}
	t, err := mapping.Compile(def)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	return t, nil
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
	// base is the URL a path URL is joined to; nil without one. With an
	// account, the account's domain takes its place.
	base *url.URL
	// via, when set, names the connector whose account (the step's
	// account property) the request goes through.
	via string
	// next, when set, is the URL of a next page as the provider gave it
	// (a Link header): sent as it is, never read as a template.
	next string
}

func compileRequest(d RequestDef, base *url.URL) (*compiledRequest, error) {
	r := &compiledRequest{method: strings.ToUpper(cmp.Or(d.Method, http.MethodGet)), hasBody: d.Body != nil, base: base}
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
// it: through the step's account, as c, when the connector has auth, else
// straight. Network errors, 408, 429 and 5xx are retryable; other 4xx are
// not.
func (rt *Runtime) do(ctx context.Context, c caller, req *compiledRequest, scope map[string]any, extra url.Values, idempotencyKey string) (*response, error) {
	rawURL := req.next
	if rawURL == "" {
		var err error
		if rawURL, err = evalString(req.url, scope); err != nil {
			return nil, component.Permanent(fmt.Errorf("url: %w", err))
		}
	}
	var query, headers map[string]any
	if v, err := req.query.Eval(scope); err != nil {
		return nil, component.Permanent(fmt.Errorf("query: %w", err))
	} else if m, ok := v.(map[string]any); ok {
		query = m
	}
	var data []byte
	if req.hasBody {
		v, err := req.body.Eval(scope)
		if err != nil {
			return nil, component.Permanent(fmt.Errorf("body: %w", err))
		}
		if data, err = json.Marshal(v); err != nil {
			return nil, component.Permanent(fmt.Errorf("body: %w", err))
		}
	}
	if v, err := req.headers.Eval(scope); err != nil {
		return nil, component.Permanent(fmt.Errorf("headers: %w", err))
	} else if m, ok := v.(map[string]any); ok {
		headers = m
	}
	build := func(base *url.URL) (*http.Request, error) {
		u, err := req.resolveAt(rawURL, base)
		if err != nil {
			return nil, err
		}
		q := u.Query()
		for k, val := range query {
			if val != nil && val != "" {
				q.Set(k, scalar(val))
			}
		}
		for k, vs := range extra {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
		var body io.Reader
		if data != nil {
			body = bytes.NewReader(data)
		}
		hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
		if err != nil {
			return nil, fmt.Errorf("building request: %w", err)
		}
		if body != nil {
			hr.Header.Set("Content-Type", "application/json")
		}
		hr.Header.Set("Accept", "application/json")
		for k, val := range headers {
			hr.Header.Set(k, scalar(val))
		}
		if idempotencyKey != "" {
			hr.Header.Set("Idempotency-Key", idempotencyKey)
		}
		return hr, nil
	}
	resp, u, err := rt.send(ctx, c, req, scope, build)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := outbound.ReadBody(resp, rt.MaxResponseBytes)
	if err != nil {
		return nil, component.PermanentIfFinal(fmt.Errorf("reading answer of %s %s%s: %w", req.method, u.Host, u.Path, err))
	}
	r := &response{Status: resp.StatusCode, Headers: resp.Header, size: int64(len(raw)), url: u}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			r.Body = string(raw)
		}
	}
	if resp.StatusCode >= 400 {
		return nil, component.StatusFailure(resp.StatusCode, &statusError{status: resp.StatusCode,
			msg: fmt.Sprintf("%s %s%s answered %d: %s", req.method, u.Host, u.Path, resp.StatusCode, snippet(raw))})
	}
	return r, nil
}

// send sends the request build makes, and returns its answer and the URL
// it went to: straight, or through the account the step names, as c
// (build then joins paths to the account's domain). A request that cannot
// be built fails at once.
func (rt *Runtime) send(ctx context.Context, c caller, req *compiledRequest, scope map[string]any,
	build func(base *url.URL) (*http.Request, error)) (*http.Response, *url.URL, error) {
	if req.via == "" {
		hr, err := build(req.base)
		if err != nil {
			return nil, nil, component.Permanent(err)
		}
		resp, err := rt.HTTP.Do(hr)
		if err != nil {
			return nil, nil, component.PermanentIfFinal(fmt.Errorf("calling %s %s%s: %w", req.method, hr.URL.Host, hr.URL.Path, err))
		}
		return resp, hr.URL, nil
	}
	props, _ := scope["properties"].(map[string]any)
	id, _ := props[AccountProperty].(string)
	if id == "" {
		return nil, nil, component.Permanent(fmt.Errorf("%s: connector %s calls its API through an account: set the id of one",
			AccountProperty, req.via))
	}
	if c.owner == "" {
		return nil, nil, component.Permanent(fmt.Errorf("account %s: the request has no flow owner to act as", id))
	}
	var buildErr error
	var u *url.URL // the URL last built
	resp, err := rt.Accounts.Send(ctx, account.Caller{UserID: c.owner}, id, req.via, c.source, func(base *url.URL) (*http.Request, error) {
		hr, err := build(base)
		if buildErr = err; err == nil {
			u = hr.URL
		}
		return hr, err
	})
	if buildErr != nil {
		return nil, nil, component.Permanent(fmt.Errorf("account %s: %w", id, buildErr))
	}
	if err != nil {
		where := ""
		if u != nil {
			where = " " + u.Host + u.Path
		}
		return nil, nil, AccountError(id, fmt.Errorf("calling %s%s: %w", req.method, where, err))
	}
	return resp, u, nil
}

// caller is who a connector's requests act as (the flow's owner) and
// where they come from, for the account's audit log.
type caller struct {
	owner, source string
}

// callerOf returns the caller of the requests a step of flowID's
// componentID makes for ownerID.
func callerOf(ownerID, flowID, componentID string) caller {
	return caller{owner: ownerID, source: "flow:" + flowID + "/" + componentID}
}

// statusError is an answer with an error status.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// resolveAt makes the request's URL: a path (a URL the manifest writes
// starting with "/" always comes out as one) is joined to base and must
// stay under it; anything else must be an absolute http(s) URL ("//host"
// is neither), which, for a request through an account, must be on the
// origin of base (the account's domain): credentials never go to another
// host.
func (r *compiledRequest) resolveAt(raw string, base *url.URL) (*url.URL, error) {
	if strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") {
		if base == nil {
			return nil, ErrNeedsAccount
		}
		return outbound.JoinPath(base, raw)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("url %q is not an absolute http or https URL, nor a path starting with /", raw)
	}
	if r.via != "" && (base == nil || !outbound.SameOrigin(u, base)) {
		domain := "(none)"
		if base != nil {
			domain = base.Scheme + "://" + base.Host
		}
		return nil, fmt.Errorf("url %s://%s%s is not on the account's domain %s: an account's credentials go nowhere else",
			u.Scheme, u.Host, u.Path, domain)
	}
	return u, nil
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
	c := callerOf(inv.OwnerID, inv.FlowID, inv.ComponentID)
	scope := map[string]any{"properties": inv.Properties}
	pg := a.def.Pagination
	if pg == nil {
		r, err := a.rt.do(ctx, c, a.req, scope, nil, inv.MessageID)
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
		r, err := a.rt.do(ctx, c, req, scope, extra, inv.MessageID)
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
			nr := *req
			nr.next = next.String()
			req = &nr
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

// maxPollPages bounds the requests of one poll.
const maxPollPages = 10

// maxPollItems bounds the items one poll returns (the engine refuses
// more than 1,000); the cursor keeps the rest for the next poll.
const maxPollItems = 1000

// Poll asks for the items since the cursor and emits those whose ids it
// has not seen. While the cursor moves on, it asks again (at most
// maxPollPages times), so a backlog longer than one answer is read in one
// poll. The first poll only learns what exists: it emits nothing.
func (p *poller) Poll(ctx context.Context, inv component.PollInvocation) ([]any, json.RawMessage, error) {
	c := callerOf(inv.OwnerID, inv.FlowID, inv.ComponentID)
	var st pollState
	first := len(inv.State) == 0
	if !first {
		if err := json.Unmarshal(inv.State, &st); err != nil {
			return nil, nil, component.Permanent(fmt.Errorf("%s: reading poll state: %w", p.spec.Type, err))
		}
	}
	seen := make(map[string]bool, len(st.Seen))
	for _, id := range st.Seen {
		seen[id] = true
	}
	var items []any
	for range maxPollPages {
		scope := map[string]any{"properties": inv.Properties, "cursor": st.Cursor}
		var extra url.Values
		if p.def.CursorParam != "" && st.Cursor != nil {
			extra = url.Values{p.def.CursorParam: {scalar(st.Cursor)}}
		}
		r, err := p.rt.do(ctx, c, p.req, scope, extra, "")
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p.spec.Type, err)
		}
		v := at(r.Body, p.def.ItemsPath)
		list, ok := v.([]any)
		if !ok && v != nil { // a missing or null list is an empty one
			return nil, nil, component.Permanent(fmt.Errorf("%s: no list at %q in the answer", p.spec.Type, p.def.ItemsPath))
		}
		moved, pageCursor := false, st.Cursor
		for _, it := range list {
			if len(items) >= maxPollItems {
				// The rest come with the next poll, which asks again from
				// where this page started (the ids emitted are skipped).
				st.Cursor, moved = pageCursor, false
				break
			}
			id := scalar(at(it, p.def.IDField))
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			st.Seen = append(st.Seen, id)
			if c := at(it, p.def.CursorField); p.def.CursorField != "" && c != nil && greater(c, st.Cursor) {
				st.Cursor, moved = c, true
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
		if !moved || len(items) >= maxPollItems {
			break
		}
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

// AccountError turns an error of the account service about account id
// into a step's error, naming the account. What trying again cannot mend
// (account.IsFinal) fails at once, so that the message is set aside with
// that reason; anything else is retried.
func AccountError(id string, err error) error {
	if err == nil {
		return nil
	}
	if !strings.Contains(err.Error(), id) {
		err = fmt.Errorf("account %s: %w", id, err)
	}
	if account.IsFinal(err) {
		return component.Permanent(err)
	}
	return err
}

// StepAccounts gives the account service to core.ServerActivity (as
// core.Deps.Accounts); nil when svc is nil. Flow steps act as their
// flow's owner, never as an admin.
func StepAccounts(svc *account.Service) core.Accounts {
	if svc == nil {
		return nil
	}
	return stepAccounts{svc}
}

// stepAccounts adapts the account service to core.Accounts.
type stepAccounts struct{ svc *account.Service }

func (a stepAccounts) Do(ctx context.Context, ownerID, id string, req core.AccountRequest, source string) (*core.AccountResult, error) {
	res, err := a.svc.Do(ctx, account.Caller{UserID: ownerID}, id, accountRequest(req, true), source)
	if err != nil {
		return nil, AccountError(id, err)
	}
	return &core.AccountResult{Status: res.Status, Headers: res.Headers, Body: res.Value()}, nil
}

func (a stepAccounts) Enqueue(ctx context.Context, ownerID, id string, req core.AccountRequest, source string) (string, error) {
	reqID, err := a.svc.Enqueue(ctx, account.Caller{UserID: ownerID}, id, accountRequest(req, false), source)
	if err != nil {
		return "", AccountError(id, err)
	}
	return reqID, nil
}

func accountRequest(r core.AccountRequest, wait bool) account.Request {
	return account.Request{Method: r.Method, Path: r.Path, Query: r.Query, Headers: r.Headers, Body: r.Body, Timeout: r.Timeout, Wait: &wait}
}

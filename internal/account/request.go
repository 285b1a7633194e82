package account

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
)

// prepared is a checked Request, ready to be sent any number of times.
type prepared struct {
	method string
	// url is the joined URL with the caller's query, without an API key.
	url *url.URL
	// header holds the caller's headers; reserved ones are left out when
	// the request is built.
	header http.Header
	body   []byte
	// bodyType is the Content-Type of body unless the caller set one.
	bodyType string
	timeout  time.Duration
}

// target names what a use of an account called, for the audit log and
// error messages: never the query, which may hold an API key.
type target struct {
	method, host, path string
}

func (t target) String() string { return t.method + " " + t.host + t.path }

func targetOf(method string, u *url.URL) target {
	return target{method: method, host: u.Host, path: u.EscapedPath()}
}

// requestTarget names req as asked, for a request that was refused before
// it had a URL.
func requestTarget(a *store.Account, req Request) target {
	t := target{method: strings.ToUpper(cmp.Or(req.Method, http.MethodGet))}
	if base, err := outbound.ParseBaseURL(a.Domain); err == nil {
		t.host = base.Host
	}
	p, _, _ := strings.Cut(req.Path, "?")
	t.path, _, _ = strings.Cut(p, "#")
	return t
}

// errDeadline is the cause of a request's own timeout.
var errDeadline = errors.New("request timeout reached")

// call checks req and makes it through a (which the caller has loaded
// for who), recording the use whatever happens.
func (s *Service) call(ctx context.Context, who string, a *store.Account, req Request, source string) (*Result, error) {
	if err := usable(a); err != nil {
		s.record(ctx, a, who, source, requestTarget(a, req), time.Now(), 0, err)
		return nil, err
	}
	p, err := s.prepare(a, req)
	if err != nil {
		s.record(ctx, a, who, source, requestTarget(a, req), time.Now(), 0, err)
		return nil, err
	}
	return s.do(ctx, who, a, p, source)
}

// prepare checks req against account a: the method, a path that stays
// below the account's domain, query values, headers, body and timeout.
// Problems are an *InputError.
func (s *Service) prepare(a *store.Account, req Request) (*prepared, error) {
	var probs problems
	p := &prepared{method: strings.ToUpper(cmp.Or(req.Method, http.MethodGet)), header: http.Header{}}
	if !allowedMethods[p.method] {
		probs.add("/method", "must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS")
	}
	base, err := outbound.ParseBaseURL(a.Domain)
	if err != nil {
		probs.add("/domain", "the account's domain is not an absolute http or https URL")
	} else if p.url, err = joinPath(base, req.Path); err != nil {
		probs.add("/path", err.Error())
	}
	if p.url != nil && len(req.Query) > 0 {
		q := p.url.Query()
		for name, v := range req.Query {
			vals, ok := queryValues(v)
			switch {
			case name == "":
				probs.add("/query/", "a query parameter needs a name")
			case !ok:
				probs.add(pointer("query", name), "must be a string, number, boolean or an array of them")
			}
			for _, val := range vals {
				q.Add(name, val)
			}
		}
		p.url.RawQuery = q.Encode()
	}
	for name, value := range req.Headers {
		switch {
		case !isToken(name):
			probs.add(pointer("headers", name), "is not a valid header name")
		case !isHeaderValue(value):
			probs.add(pointer("headers", name), "the value holds control characters")
		default:
			p.header.Set(name, value)
		}
	}
	switch raw := bytes.TrimSpace(req.Body); {
	case len(raw) == 0 || string(raw) == "null":
	case !json.Valid(raw):
		probs.add("/body", "is not JSON")
	case raw[0] == '"':
		var text string
		_ = json.Unmarshal(raw, &text)
		p.body, p.bodyType = []byte(text), "text/plain; charset=utf-8"
	default:
		p.body, p.bodyType = raw, "application/json"
	}
	p.timeout = s.cfg.DefaultTimeout
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		switch {
		case err != nil || d <= 0:
			probs.add("/timeout", "must be a positive duration such as 10s or 1m30s")
		case d > s.cfg.MaxTimeout:
			probs.add("/timeout", fmt.Sprintf("at most %s", s.cfg.MaxTimeout))
		default:
			p.timeout = d
		}
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// joinPath joins raw to the account's domain. Its errors quote nothing
// of raw, whose query may hold a secret.
func joinPath(base *url.URL, raw string) (*url.URL, error) {
	switch {
	case raw == "":
		return nil, errors.New("required: a path below the account's domain, such as /contacts")
	case raw[0] != '/':
		return nil, errors.New("must start with /")
	}
	u, err := outbound.JoinPath(base, raw)
	if err != nil {
		return nil, errors.New("may not leave the account's domain (another host, \"..\" above the domain's path, encoded slashes or dots)")
	}
	return u, nil
}

// queryValues renders a query value: a scalar, or an array of scalars;
// nil is no value.
func queryValues(v any) ([]string, bool) {
	if list, ok := v.([]any); ok {
		out := make([]string, 0, len(list))
		for _, x := range list {
			s, ok := scalar(x)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	if v == nil {
		return nil, true
	}
	s, ok := scalar(v)
	if !ok {
		return nil, false
	}
	return []string{s}, true
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case json.Number:
		return x.String(), true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), true
	}
	return "", false
}

// do sends p through a (whose use is allowed) and reads the answer,
// within p's timeout.
func (s *Service) do(ctx context.Context, who string, a *store.Account, p *prepared, source string) (*Result, error) {
	var body []byte
	build := func(ctx context.Context) (*http.Request, error) { return s.newRequest(ctx, a, p) }
	read := func(resp *http.Response) (err error) {
		defer resp.Body.Close()
		body, err = outbound.ReadBody(resp, s.cfg.MaxResponseBytes)
		return err
	}
	resp, err := s.exchange(ctx, who, a, source, targetOf(p.method, p.url), p.timeout, build, read)
	if err != nil {
		return nil, err
	}
	return &Result{Status: resp.StatusCode, Headers: flatHeaders(resp.Header), Body: answerBody(resp.Header.Get("Content-Type"), body)}, nil
}

// exchange sends the requests build makes (with ctx) to t through a,
// whose use is allowed, within timeout unless it is 0: it takes a's rate
// limit and adds a's credentials; an oauth2 account gets one fresh token
// and a second request after a 401. read, when not nil, reads the answer
// before it is recorded (and closes its body). Every try is recorded.
func (s *Service) exchange(ctx context.Context, who string, a *store.Account, source string, t target, timeout time.Duration,
	build func(ctx context.Context) (*http.Request, error), read func(*http.Response) error) (*http.Response, error) {
	if err := s.limits.take(a, s.cfg.Now()); err != nil {
		s.record(ctx, a, who, source, t, time.Now(), 0, err)
		return nil, err
	}
	sec, err := s.open(a)
	if err != nil {
		s.record(ctx, a, who, source, t, time.Now(), 0, err)
		return nil, err
	}
	tctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(ctx, timeout, errDeadline)
		defer cancel()
	}
	for try := 0; ; try++ {
		start := time.Now()
		hreq, err := build(tctx)
		if err != nil {
			s.record(ctx, a, who, source, t, start, 0, err)
			return nil, err
		}
		token := ""
		if a.AuthType == AuthOAuth2 {
			if token, err = s.accessToken(hreq.Context(), a, sec, try > 0); err != nil {
				err = s.callError(hreq.Context(), a, t, timeout, err)
				s.record(ctx, a, who, source, t, start, 0, err)
				return nil, err
			}
		}
		authorize(hreq, a, sec, token)
		resp, err := s.http.Do(hreq)
		if err != nil {
			err = s.callError(hreq.Context(), a, t, timeout, err)
			s.record(ctx, a, who, source, t, start, 0, err)
			return nil, err
		}
		if resp.StatusCode == http.StatusUnauthorized && a.AuthType == AuthOAuth2 && try == 0 {
			discard(resp)
			s.record(ctx, a, who, source, t, start, resp.StatusCode, nil)
			continue
		}
		if read != nil {
			if err := read(resp); err != nil {
				err = s.callError(hreq.Context(), a, t, timeout, err)
				s.record(ctx, a, who, source, t, start, resp.StatusCode, err)
				return nil, err
			}
		}
		s.record(ctx, a, who, source, t, start, resp.StatusCode, nil)
		return resp, nil
	}
}

// newRequest builds one try of p, without a's credentials.
func (s *Service) newRequest(ctx context.Context, a *store.Account, p *prepared) (*http.Request, error) {
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	u := *p.url
	hreq, err := http.NewRequestWithContext(withDomain(ctx, a), p.method, u.String(), body)
	if err != nil {
		// Not %w: the error may quote the URL.
		return nil, fmt.Errorf("preparing %s %s through account %s: not a valid request", p.method, u.Host, a.ID)
	}
	for name, values := range p.header {
		if !reservedHeader(name) {
			hreq.Header[name] = values
		}
	}
	if p.body != nil && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", p.bodyType)
	}
	if hreq.Header.Get("User-Agent") == "" {
		hreq.Header.Set("User-Agent", "Plugboard")
	}
	return hreq, nil
}

// authorize adds a's extra headers and credentials to hreq, over any
// credential or header of the same name already there. Names are
// compared as servers may read them (sameHeader): a caller's X_Api_Key
// next to the account's X-Api-Key, or a Proxy_Authorization, is dropped.
func authorize(hreq *http.Request, a *store.Account, sec *secrets, token string) {
	for name := range hreq.Header {
		if shadowsAccount(name, a, sec) {
			delete(hreq.Header, name)
		}
	}
	for name, value := range sec.Headers {
		if !reservedHeader(name) { // an extra header stored before it was reserved
			hreq.Header.Set(name, value)
		}
	}
	switch a.AuthType {
	case AuthBasic:
		hreq.SetBasicAuth(a.Username, sec.Password)
	case AuthToken:
		hreq.Header.Set("Authorization", cmp.Or(a.AuthPrefix, "Bearer")+" "+sec.Token)
	case AuthOAuth2:
		hreq.Header.Set("Authorization", cmp.Or(a.AuthPrefix, "Bearer")+" "+token)
	case AuthAPIKey:
		if a.APIKeyIn == InQuery {
			q := hreq.URL.Query()
			q.Set(a.APIKeyName, sec.APIKey)
			hreq.URL.RawQuery = q.Encode()
		} else {
			hreq.Header.Set(a.APIKeyName, sec.APIKey)
		}
	}
}

// shadowsAccount reports whether a header of the caller named name could
// be read by a server as a credential header or as one that account a
// (holding sec) sets.
func shadowsAccount(name string, a *store.Account, sec *secrets) bool {
	if reservedHeader(name) {
		return true
	}
	if a.AuthType == AuthAPIKey && a.APIKeyIn == InHeader && sameHeader(name, a.APIKeyName) {
		return true
	}
	for have := range sec.Headers {
		if sameHeader(name, have) {
			return true
		}
	}
	return false
}

// callError turns a failed call to t into the error the caller sees:
// ErrTimeout when the time ran out, the error of an account that cannot
// be used as it is, else an *UpstreamError. It never quotes the query.
func (s *Service) callError(ctx context.Context, a *store.Account, t target, timeout time.Duration, err error) error {
	if errors.Is(err, ErrRevoked) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
		return err
	}
	if errors.Is(context.Cause(ctx), errDeadline) || errors.Is(err, context.DeadlineExceeded) {
		if timeout > 0 {
			return fmt.Errorf("calling %s through account %s: %w after %s", t, a.ID, ErrTimeout, timeout)
		}
		return fmt.Errorf("calling %s through account %s: %w", t, a.ID, ErrTimeout)
	}
	// A *url.Error quotes the whole URL, query included.
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("calling %s through account %s: %w", t, a.ID, err)
	}
	return &UpstreamError{Err: fmt.Errorf("calling %s through account %s: %w", t, a.ID, err)}
}

// send is Send once the account is loaded.
func (s *Service) send(ctx context.Context, who string, a *store.Account, source string, build func(base *url.URL) (*http.Request, error)) (*http.Response, error) {
	base, err := outbound.ParseBaseURL(a.Domain)
	if err != nil {
		return nil, fmt.Errorf("using account %s: its domain is not an absolute http or https URL", a.ID)
	}
	buildReq := func() (*http.Request, error) {
		b := *base
		hreq, err := build(&b)
		if err != nil {
			return nil, err
		}
		if outbound.Origin(hreq.URL) != outbound.Origin(base) {
			return nil, &InputError{Problems: []FieldProblem{{Field: "/url", Message: "leaves the domain of account " + a.ID}}}
		}
		if !allowedMethods[strings.ToUpper(hreq.Method)] {
			return nil, &InputError{Problems: []FieldProblem{{Field: "/method", Message: "must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"}}}
		}
		return hreq.WithContext(withDomain(hreq.Context(), a)), nil
	}
	first, err := buildReq()
	if err != nil {
		return nil, err
	}
	t := targetOf(first.Method, first.URL)
	if err := usable(a); err != nil {
		s.record(ctx, a, who, source, t, time.Now(), 0, err)
		return nil, err
	}
	// The request is built once per try (its body is read by each): the
	// first one is already.
	return s.exchange(ctx, who, a, source, t, 0, func(context.Context) (*http.Request, error) {
		if hreq := first; hreq != nil {
			first = nil
			return hreq, nil
		}
		return buildReq()
	}, nil)
}

// discard reads a little of an answer that is not used, so that its
// connection can be reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// domainKey is the context key of the domain of the account a request
// goes through (a *url.URL), for the redirect policy.
type domainKey struct{}

// withDomain notes a's domain in ctx for sameOrigin.
func withDomain(ctx context.Context, a *store.Account) context.Context {
	base, err := outbound.ParseBaseURL(a.Domain)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, domainKey{}, base)
}

// sameOrigin wraps next, the client's redirect policy: a redirect is
// followed only within the origin of the first request and, for a
// request through an account (see withDomain), at or below the path of
// its domain, as outbound.JoinPath allows paths. One that leaves them is
// not followed: its 3xx answer is the result, so neither the account's
// credentials and headers nor an API key in the query reach another
// origin, or another API (a tenant) on the same one.
func sameOrigin(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if outbound.Origin(req.URL) != outbound.Origin(via[0].URL) {
			return http.ErrUseLastResponse
		}
		if base, ok := req.Context().Value(domainKey{}).(*url.URL); ok && !belowDomain(base, req.URL) {
			return http.ErrUseLastResponse
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// belowDomain reports whether u's path is at or below base's path by
// the rule of outbound.JoinPath: no encoded slashes, and dot segments
// (encoded ones too) resolved before the path is compared.
func belowDomain(base, u *url.URL) bool {
	root := &url.URL{Scheme: base.Scheme, Host: base.Host}
	j, err := outbound.JoinPath(root, cmp.Or(u.EscapedPath(), "/"))
	if err != nil {
		return false
	}
	basePath := strings.TrimSuffix(base.Path, "/")
	return basePath == "" || j.Path == basePath || strings.HasPrefix(j.Path, basePath+"/")
}

// flatHeaders joins the values of each header with ", ".
func flatHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for name, values := range h {
		out[name] = strings.Join(values, ", ")
	}
	return out
}

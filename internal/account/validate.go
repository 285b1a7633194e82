package account

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store"
)

// Limits of an account's fields.
const (
	maxNameLength   = 200
	maxPrefixLength = 64
	maxHeaders      = 64
	maxHeaderValue  = 8 << 10
)

// problems collects what is wrong with an input.
type problems []FieldProblem

func (p *problems) add(field, msg string) {
	*p = append(*p, FieldProblem{Field: field, Message: msg})
}

// err is nil when nothing is wrong, else an *InputError.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &InputError{Problems: p}
}

// pointer makes a JSON pointer of parts, escaping "~" and "/".
func pointer(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
	}
	return b.String()
}

// connectionHeaders belong to the connection, which the HTTP client
// manages: nobody sets them. Accept-Encoding is among them: the client
// asks for gzip itself and hands the answer over decompressed, which it
// does not when the request names an encoding.
var connectionHeaders = map[string]bool{
	"Host": true, "Connection": true, "Content-Length": true, "Transfer-Encoding": true, "Te": true,
	"Trailer": true, "Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true, "Accept-Encoding": true,
}

// credentialHeaders carry credentials, which only the account adds.
var credentialHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Cookie2": true,
}

// reservedKeys holds the headerKey of every connection and credential
// header.
var reservedKeys = func() map[string]bool {
	m := map[string]bool{}
	for name := range connectionHeaders {
		m[headerKey(name)] = true
	}
	for name := range credentialHeaders {
		m[headerKey(name)] = true
	}
	return m
}()

// reservedHeader reports whether name may be neither an account's extra
// header nor a caller's. Names are compared as headerKey does, so
// "Proxy_Authorization" is reserved too.
func reservedHeader(name string) bool {
	return reservedKeys[headerKey(name)]
}

// headerKey is the name of a header as servers may read it: without case,
// and with '_' as '-' (CGI and many frameworks turn both into
// HTTP_X_API_KEY, and merge or pick among headers that differ only so).
func headerKey(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// sameHeader reports whether header names a and b may reach a server as
// the same header.
func sameHeader(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

// foldHeaderByte is c as headerKey reads it.
func foldHeaderByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	}
	return c
}

// allowedMethods are the methods a request through an account may use.
// TRACE (which echoes the request, credentials included, back to the
// caller), CONNECT and methods of other protocols are refused.
var allowedMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// isToken reports whether s is an HTTP token (RFC 9110): a header name,
// a method, an auth scheme.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isHeaderValue reports whether s can be sent as a header value: no
// control characters but tab.
func isHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// strays refuses the fields of another auth type than in's, so that a
// secret given by mistake is not kept unseen.
func strays(p *problems, in Input) {
	t := in.AuthType
	if in.Token != "" && t != AuthToken {
		p.add("/token", "only token accounts take a token")
	}
	if in.Username != "" && t != AuthBasic {
		p.add("/username", "only basic accounts take a username")
	}
	if in.Password != "" && t != AuthBasic {
		p.add("/password", "only basic accounts take a password")
	}
	if in.APIKey != nil && t != AuthAPIKey {
		p.add("/apiKey", "only apiKey accounts take an API key")
	}
	if in.AuthPrefix != "" && t != AuthToken && t != AuthOAuth2 {
		p.add("/authPrefix", "only token and oauth2 accounts take a prefix")
	}
}

// applyConnector fills in's auth type, API key placement, prefix and
// domain from the connector's auth, and refuses values that disagree.
func applyConnector(p *problems, in *Input, auth *ConnectorAuth) {
	agree := func(field, given, want string, fold bool) string {
		switch {
		case want == "":
			return given
		case given == "":
			return want
		case given != want && !(fold && strings.EqualFold(given, want)):
			p.add(field, fmt.Sprintf("connector %q sets %q", in.Connector, want))
		}
		return given
	}
	in.AuthType = agree("/authType", in.AuthType, auth.Type, false)
	if in.AuthType == AuthAPIKey && auth.Type == AuthAPIKey {
		if in.APIKey == nil {
			in.APIKey = &APIKey{}
		}
		in.APIKey.In = agree("/apiKey/in", in.APIKey.In, auth.In, false)
		in.APIKey.Name = agree("/apiKey/name", in.APIKey.Name, auth.Name, in.APIKey.In == InHeader)
	}
	if in.AuthType == AuthToken || in.AuthType == AuthOAuth2 {
		in.AuthPrefix = agree("/authPrefix", in.AuthPrefix, auth.Prefix, false)
	}
	if in.AuthType == AuthOAuth2 && auth.Type == AuthOAuth2 {
		// The token is issued to the admin's client of the connector: it
		// goes to the connector's API only, never to a domain of the
		// user's choosing.
		switch {
		case auth.BaseURL == "":
			p.add("/connector", fmt.Sprintf("connector %q has no baseUrl: it cannot have oauth2 accounts", in.Connector))
		case in.Domain != "" && !sameDomain(in.Domain, auth.BaseURL):
			p.add("/domain", fmt.Sprintf("the domain of an oauth2 account is the baseUrl of connector %q (%s)", in.Connector, auth.BaseURL))
		}
		in.Domain = auth.BaseURL
		return
	}
	in.Domain = cmp.Or(in.Domain, auth.BaseURL)
}

// sameDomain reports whether domains a and b are the same, a trailing
// slash aside.
func sameDomain(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// checkAccount lists what is wrong with account a holding sec. Messages
// never quote a value: it might be a secret, or hold one.
func checkAccount(a *store.Account, sec *secrets) problems {
	var p problems
	switch name := strings.TrimSpace(a.Name); {
	case name == "":
		p.add("/name", "required")
	case utf8.RuneCountInString(a.Name) > maxNameLength:
		p.add("/name", fmt.Sprintf("at most %d characters", maxNameLength))
	}
	switch {
	case a.Domain == "":
		p.add("/domain", "required: the root URL of the API")
	default:
		if _, err := outbound.ParseBaseURL(a.Domain); err != nil {
			p.add("/domain", "must be an absolute http or https URL without query, fragment or user information")
		}
	}
	if len(sec.Headers) > maxHeaders {
		p.add("/headers", fmt.Sprintf("at most %d headers", maxHeaders))
	}
	for name, value := range sec.Headers {
		field := pointer("headers", name)
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !isToken(name):
			p.add(field, "is not a valid header name")
		case reservedHeader(canon):
			p.add(field, "is set by Plugboard or by the connection; it cannot be an extra header")
		case a.AuthType == AuthAPIKey && a.APIKeyIn == InHeader && sameHeader(name, a.APIKeyName):
			p.add(field, "is the header of the API key")
		case !isHeaderValue(value):
			p.add(field, "the value holds control characters")
		case len(value) > maxHeaderValue:
			p.add(field, fmt.Sprintf("the value is longer than %d bytes", maxHeaderValue))
		}
	}
	switch a.AuthType {
	case "":
		p.add("/authType", "required: basic, token, apiKey or oauth2")
	case AuthBasic:
		switch {
		case a.Username == "":
			p.add("/username", "required")
		case strings.Contains(a.Username, ":") || !isHeaderValue(a.Username):
			p.add("/username", "may hold neither ':' nor control characters")
		}
		if sec.Password == "" {
			p.add("/password", "required")
		}
	case AuthToken:
		switch {
		case sec.Token == "":
			p.add("/token", "required")
		case !isHeaderValue(sec.Token):
			p.add("/token", "holds control characters")
		}
	case AuthAPIKey:
		checkAPIKey(&p, a, sec)
	case AuthOAuth2:
	default:
		p.add("/authType", "must be basic, token, apiKey or oauth2")
	}
	if a.AuthPrefix != "" && (!isToken(a.AuthPrefix) || len(a.AuthPrefix) > maxPrefixLength) {
		p.add("/authPrefix", fmt.Sprintf("must be a word of at most %d letters, digits or !#$%%&'*+-.^_`|~", maxPrefixLength))
	}
	if math.IsNaN(a.RateLimit) || math.IsInf(a.RateLimit, 0) || a.RateLimit < 0 {
		p.add("/rateLimit", "must be 0 (no limit) or a number of requests per second")
	}
	return p
}

func checkAPIKey(p *problems, a *store.Account, sec *secrets) {
	switch a.APIKeyIn {
	case InHeader:
		switch name := http.CanonicalHeaderKey(a.APIKeyName); {
		case a.APIKeyName == "":
			p.add("/apiKey/name", "required")
		case !isToken(a.APIKeyName):
			p.add("/apiKey/name", "is not a valid header name")
		case reservedHeader(name):
			p.add("/apiKey/name", "is a header of the connection or of other credentials")
		}
		if sec.APIKey != "" && !isHeaderValue(sec.APIKey) {
			p.add("/apiKey/value", "holds control characters")
		}
	case InQuery:
		if a.APIKeyName == "" {
			p.add("/apiKey/name", "required")
		}
	case "":
		p.add("/apiKey/in", "required: header or query")
	default:
		p.add("/apiKey/in", "must be header or query")
	}
	if sec.APIKey == "" {
		p.add("/apiKey/value", "required")
	}
}

// applyPatch changes a and its secrets sec by patch and checks the
// result. A secret left out stays; a header with an empty value is
// removed, others are set.
func applyPatch(a *store.Account, sec *secrets, patch Patch) error {
	var p problems
	t := a.AuthType
	if patch.Name != nil {
		a.Name = *patch.Name
	}
	if patch.Domain != nil {
		switch {
		case t == AuthOAuth2 && !sameDomain(*patch.Domain, a.Domain):
			// Its token belongs to the connector's OAuth2 client.
			p.add("/domain", fmt.Sprintf("the domain of an oauth2 account is the baseUrl of its connector %q; it cannot change", a.Connector))
		case t != AuthOAuth2:
			a.Domain = *patch.Domain
		}
	}
	if patch.Headers != nil {
		for name, value := range *patch.Headers {
			for have := range sec.Headers {
				if sameHeader(have, name) {
					delete(sec.Headers, have)
				}
			}
			if value != "" {
				if sec.Headers == nil {
					sec.Headers = map[string]string{}
				}
				sec.Headers[name] = value
			}
		}
	}
	if patch.AuthPrefix != nil {
		prefix := cmp.Or(*patch.AuthPrefix, "Bearer")
		switch {
		case t != AuthToken && t != AuthOAuth2:
			p.add("/authPrefix", "only token and oauth2 accounts take a prefix")
		case a.Connector != "" && prefix != a.AuthPrefix:
			p.add("/authPrefix", fmt.Sprintf("set by connector %q", a.Connector))
		default:
			a.AuthPrefix = prefix
		}
	}
	if patch.Token != nil {
		if t != AuthToken {
			p.add("/token", "only token accounts take a token")
		} else {
			sec.Token = *patch.Token
		}
	}
	if patch.Username != nil {
		if t != AuthBasic {
			p.add("/username", "only basic accounts take a username")
		} else {
			a.Username = *patch.Username
		}
	}
	if patch.Password != nil {
		if t != AuthBasic {
			p.add("/password", "only basic accounts take a password")
		} else {
			sec.Password = *patch.Password
		}
	}
	if k := patch.APIKey; k != nil {
		switch {
		case t != AuthAPIKey:
			p.add("/apiKey", "only apiKey accounts take an API key")
		case a.Connector != "" && ((k.In != "" && k.In != a.APIKeyIn) || (k.Name != "" && k.Name != a.APIKeyName)):
			p.add("/apiKey", fmt.Sprintf("where the key goes is set by connector %q", a.Connector))
		default:
			a.APIKeyIn = cmp.Or(k.In, a.APIKeyIn)
			a.APIKeyName = cmp.Or(k.Name, a.APIKeyName)
			sec.APIKey = cmp.Or(k.Value, sec.APIKey)
		}
	}
	if patch.RateLimit != nil {
		a.RateLimit = *patch.RateLimit
	}
	p = append(p, checkAccount(a, sec)...)
	return p.err()
}

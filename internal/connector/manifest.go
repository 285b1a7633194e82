// Package connector reads and checks connector packages: zip archives
// holding a manifest (connector.json, or connector.yaml or connector.yml
// in YAML), a changelog (CHANGELOG.md) and the files the manifest names
// (an icon, JavaScript modules). It also compares connector versions. The
// format is described in docs/connectors.md.
//
// Nothing here writes to disk: ReadArchive checks an archive in memory, and
// storing, installing and running connectors belong to other packages.
package connector

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plugboard/plugboard/internal/mapping"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Names of the files every package holds at its root: one manifest, in
// JSON (ManifestFile) or YAML (ManifestYAMLFile or ManifestYMLFile), and
// the changelog.
const (
	ManifestFile     = "connector.json"
	ManifestYAMLFile = "connector.yaml"
	ManifestYMLFile  = "connector.yml"
	ChangelogFile    = "CHANGELOG.md"
)

// manifestFiles are the names a manifest may have, in the order problems
// name them.
var manifestFiles = [...]string{ManifestFile, ManifestYAMLFile, ManifestYMLFile}

// MaxManifestBytes bounds the manifest: the file, and for YAML also the
// JSON it stands for, aliases expanded.
const MaxManifestBytes = 1 << 20

// maxComponents is the schema's maxItems of components.
const maxComponents = 200

// Bounds of a polling trigger's interval.
const (
	MinPollInterval = 30 * time.Second
	MaxPollInterval = 24 * time.Hour
)

// Auth types.
const (
	AuthNone   = "none"
	AuthAPIKey = "apiKey"
	AuthBasic  = "basic"
	AuthToken  = "token"
	AuthOAuth2 = "oauth2"
)

// OAuth2 grants of an oauth2 auth block.
const (
	// GrantAuthorizationCode: a user signs in at the provider, which
	// redirects back with a code (with PKCE). The default.
	GrantAuthorizationCode = "authorizationCode"
	// GrantClientCredentials: the server gets tokens with the client id
	// and secret the admin set for the connector; no user sign-in.
	GrantClientCredentials = "clientCredentials"
)

// Component kinds.
const (
	KindTrigger = "trigger"
	KindAction  = "action"
)

// Manifest is connector.json, or the same document in YAML.
type Manifest struct {
	// Name is lowercase letters, digits and '-', 2 to 64 long, not "core".
	Name string `json:"name"`
	// Version is a semantic version MAJOR.MINOR.PATCH, pre-release allowed.
	Version     string `json:"version"`
	Label       string `json:"label"`
	Description string `json:"description"`
	// Icon is the path of an image inside the archive, or a data: URL.
	Icon string `json:"icon,omitempty"`
	// BaseURL is the API's absolute http(s) URL that request URLs written
	// as paths ("/v2/contacts") are joined to. An account's domain, when a
	// step uses one, takes its place.
	BaseURL    string         `json:"baseUrl,omitempty"`
	Auth       *AuthDef       `json:"auth,omitempty"`
	Components []ComponentDef `json:"components"`
}

// AuthDef defines how the connector's accounts authenticate. It is only a
// definition: secrets live in accounts (the vault), never in a package.
type AuthDef struct {
	// Type is none, apiKey, basic, token or oauth2.
	Type string `json:"type"`
	// In and Name say where an apiKey goes: the header or query parameter
	// of that name.
	In   string `json:"in,omitempty"`
	Name string `json:"name,omitempty"`
	// Prefix goes before a token in the Authorization header ("Bearer",
	// "Session"); empty means "Bearer".
	Prefix string `json:"prefix,omitempty"`
	// Grant is the oauth2 grant: GrantAuthorizationCode (when empty) or
	// GrantClientCredentials.
	Grant string `json:"grant,omitempty"`
	// AuthorizationURL (authorization-code grant only), TokenURL and
	// Scopes define an oauth2 flow.
	AuthorizationURL string   `json:"authorizationUrl,omitempty"`
	TokenURL         string   `json:"tokenUrl,omitempty"`
	Scopes           []string `json:"scopes,omitempty"`
	// Test, when set, is a request that succeeds only with valid
	// credentials; it checks an account when it is created.
	Test *RequestDef `json:"test,omitempty"`
}

// UsesAccounts reports whether the connector's requests go through
// accounts: it has auth of a type other than none.
func (a *AuthDef) UsesAccounts() bool {
	return a != nil && a.Type != AuthNone && a.Type != ""
}

// ComponentDef is one trigger or action of a connector. Exactly one of
// HTTP, Polling, Subscription and Script is set; Polling and Subscription
// only on triggers, HTTP and Script only on actions.
type ComponentDef struct {
	// Name becomes the component type "<connector>.<Name>", such as
	// "acme-crm.CreateContact".
	Name        string `json:"name"`
	Kind        string `json:"kind"` // "trigger" or "action"
	Label       string `json:"label,omitempty"`
	Description string `json:"description"`
	// Properties is a JSON Schema (an object schema) of the component's
	// properties.
	Properties   json.RawMessage  `json:"properties,omitempty"`
	OutputSample any              `json:"outputSample,omitempty"`
	HTTP         *HTTPDef         `json:"http,omitempty"`
	Polling      *PollingDef      `json:"polling,omitempty"`
	Subscription *SubscriptionDef `json:"subscription,omitempty"`
	// Script is the path of a JavaScript module inside the archive: the
	// body of a function of input and $, run in the core.Code sandbox.
	Script string `json:"script,omitempty"`
}

// RequestDef is a declarative HTTP request. URL, header and query values
// and strings anywhere in Body are templates: they may hold placeholders
// such as {{ $.properties.email }}. A URL starting with "/" is joined to
// the account's domain.
type RequestDef struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Query   map[string]string `json:"query,omitempty"`
	Body    any               `json:"body,omitempty"`
}

// HTTPDef is an action made of one request (or several, when paginated).
type HTTPDef struct {
	RequestDef
	Pagination *PaginationDef `json:"pagination,omitempty"`
	// Output maps the response to the component's output; it sees
	// $.response (status, headers, body) and $.properties. Absent, the
	// output is the response body (with pagination, the list of items).
	Output any `json:"output,omitempty"`
}

// Pagination types.
const (
	PageCursor = "cursor"
	PagePage   = "page"
	PageLink   = "link"
)

// PaginationDef says how to fetch every page of a list.
type PaginationDef struct {
	// Type is cursor (a value in each response names the next page), page
	// (a page number in the query) or link (the Link header's rel="next").
	Type string `json:"type"`
	// ItemsPath is the dot path of the items in each page's body; empty
	// when the body is the array.
	ItemsPath string `json:"itemsPath"`
	// CursorPath is the dot path of the next cursor in the body; the list
	// ends when it is missing or empty. CursorParam is the query parameter
	// that sends it.
	CursorPath  string `json:"cursorPath,omitempty"`
	CursorParam string `json:"cursorParam,omitempty"`
	// PageParam is the query parameter of the page number, which starts at
	// StartPage (default 1); the list ends at the first empty page.
	PageParam string `json:"pageParam,omitempty"`
	StartPage *int   `json:"startPage,omitempty"`
	// SizeParam and PageSize, when set, ask for pages of that size.
	SizeParam string `json:"sizeParam,omitempty"`
	PageSize  int    `json:"pageSize,omitempty"`
	// MaxPages bounds how many pages one run fetches (default 100).
	MaxPages int `json:"maxPages,omitempty"`
}

// PollingDef is a trigger that runs a request every Interval and emits
// each item it has not seen before.
type PollingDef struct {
	// Interval is a duration such as "5m", between MinPollInterval and
	// MaxPollInterval.
	Interval string     `json:"interval"`
	Request  RequestDef `json:"request"`
	// ItemsPath is the dot path of the items in the body; empty when the
	// body is the array.
	ItemsPath string `json:"itemsPath,omitempty"`
	// IDField is the dot path, inside an item, of its id; an id seen
	// before is not emitted again.
	IDField string `json:"idField"`
	// CursorField is the dot path, inside an item, of a value that grows
	// (an update time, a sequence number). The greatest one seen is kept
	// and the request can use it as {{ $.cursor }}, or sends it in the
	// query parameter CursorParam.
	CursorField string `json:"cursorField,omitempty"`
	CursorParam string `json:"cursorParam,omitempty"`
	// Output maps each item ($.item) to the trigger's output; absent, the
	// item is the output.
	Output any `json:"output,omitempty"`
}

// SubscriptionDef is a trigger that registers a webhook with the provider
// when its flow starts and removes it when the flow stops.
type SubscriptionDef struct {
	// Subscribe is sent on start; it can use {{ $.webhookUrl }}, the URL
	// the provider must post to.
	Subscribe RequestDef `json:"subscribe"`
	// Unsubscribe is sent on stop; it can use {{ $.subscription }} (the
	// body the subscribe request answered) and {{ $.subscriptionId }}.
	Unsubscribe RequestDef `json:"unsubscribe"`
	// IDPath is the dot path of the subscription's id in the subscribe
	// response's body.
	IDPath string `json:"idPath,omitempty"`
	// ItemsPath is the dot path of the events in a delivery's body; empty
	// when each delivery is one event.
	ItemsPath string `json:"itemsPath,omitempty"`
	// Output maps each event ($.item) to the trigger's output.
	Output any `json:"output,omitempty"`
}

// Type returns the component type of c in connector name: "name.Component".
func (c ComponentDef) Type(name string) string { return name + "." + c.Name }

//go:embed manifest.schema.json
var manifestSchemaJSON []byte

const manifestSchemaURL = "https://plugboard.dev/schemas/connector.json"

// manifestSchema compiles the embedded schema once.
var manifestSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(manifestSchemaJSON))
	if err != nil {
		return nil, fmt.Errorf("reading the manifest schema: %w", err)
	}
	c := newCompiler()
	if err := c.AddResource(manifestSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("adding the manifest schema: %w", err)
	}
	s, err := c.Compile(manifestSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("compiling the manifest schema: %w", err)
	}
	return s, nil
})

// ManifestSchema returns the JSON Schema connector.json (and the JSON a
// YAML manifest stands for) must satisfy.
func ManifestSchema() []byte { return bytes.Clone(manifestSchemaJSON) }

// noLoader refuses to load any schema by URL: a package's schemas must be
// self-contained, and checking one must never read files or the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not available: references must stay inside the schema", url)
}

func newCompiler() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	return c
}

// ParseManifest decodes and checks connector.json. Every problem found is
// returned in one *Error of kind KindManifest, each with its JSON pointer.
// Files the manifest names (icon, scripts) are checked by ReadArchive.
func ParseManifest(data []byte) (*Manifest, error) {
	m, _, err := parseManifest(ManifestFile, data)
	return m, err
}

// ParseManifestYAML decodes and checks connector.yaml: the same document as
// connector.json, in YAML, held to the same rules, with its problems
// reported the same way, at JSON pointers. The YAML must map cleanly to
// JSON; see yamlToJSON.
func ParseManifestYAML(data []byte) (*Manifest, error) {
	m, _, err := parseManifest(ManifestYAMLFile, data)
	return m, err
}

// parseManifest decodes and checks the manifest file name holds, and
// returns it with its JSON: data itself for connector.json, the JSON a
// YAML manifest stands for otherwise.
func parseManifest(name string, data []byte) (*Manifest, []byte, error) {
	ps := &problems{kind: KindManifest}
	if len(data) > MaxManifestBytes {
		ps.add("", "%s is %d bytes long; at most %d are allowed", name, len(data), MaxManifestBytes)
		return nil, nil, ps.err()
	}
	if name != ManifestFile {
		data = yamlToJSON(ps, name, data)
		if err := ps.err(); err != nil {
			sortByPath(ps)
			return nil, nil, ps.err()
		}
	}
	doc, err := decodeJSON(data)
	if err != nil {
		ps.add("", "%s is not valid JSON: %v", name, err)
		return nil, nil, ps.err()
	}
	schema, err := manifestSchema()
	if err != nil {
		return nil, nil, err
	}
	if err := schema.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, nil, fmt.Errorf("validating %s: %w", name, err)
		}
		schemaProblems(ps, ve)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		// The schema has already said why, if it could.
		if len(ps.list) == 0 {
			ps.add("", "decoding %s: %v", name, err)
		}
		return nil, nil, ps.err()
	}
	m.check(ps)
	sortByPath(ps)
	if err := ps.err(); err != nil {
		return nil, nil, err
	}
	return &m, data, nil
}

// sortByPath orders problems by path, keeping the order of those at one
// path.
func sortByPath(ps *problems) {
	slices.SortStableFunc(ps.list, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
}

// decodeJSON decodes one JSON value, numbers as json.Number, as the
// schema validator wants them.
func decodeJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the top-level value")
	}
	return v, nil
}

// schemaProblems adds the leaves of a validation error, the failures that
// name a keyword, each at its instance location.
func schemaProblems(ps *problems, ve *jsonschema.ValidationError) {
	seen := map[Problem]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		p := Problem{Path: pointer(e.InstanceLocation), Message: schemaMessage(e)}
		if !seen[p] {
			seen[p] = true
			ps.list = append(ps.list, p)
		}
	}
	walk(ve)
}

// patternMeaning says in words what the schema's patterns ask for.
var patternMeaning = map[string]string{
	`^[a-z0-9][a-z0-9-]*[a-z0-9]$`:     "lowercase letters, digits and '-', starting and ending with a letter or digit",
	`^[A-Z][A-Za-z0-9]*$`:              "an uppercase letter, then letters and digits",
	`^https?://`:                       "an http:// or https:// URL",
	`^([^.]+(\.[^.]+)*)?$`:             "a dot path such as data.items",
	`^[^.]+(\.[^.]+)*$`:                "a dot path such as data.id",
	`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`: "a duration such as 30s, 5m or 1h",
}

func schemaMessage(e *jsonschema.ValidationError) string {
	if k, ok := e.ErrorKind.(*kind.Pattern); ok {
		if k.Want == semverPattern.String() {
			return fmt.Sprintf("%q is not a semantic version MAJOR.MINOR.PATCH such as 1.4.2", k.Got)
		}
		if m, ok := patternMeaning[k.Want]; ok {
			return fmt.Sprintf("%q is not %s", k.Got, m)
		}
	}
	out := e.BasicOutput()
	if out.Error != nil {
		return out.Error.String()
	}
	return "invalid value"
}

// pointer builds a JSON pointer from its reference tokens.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

var (
	iconExt     = regexp.MustCompile(`(?i)\.(png|svg|jpe?g|webp|gif)$`)
	iconDataURL = regexp.MustCompile(`^data:image/(png|svg\+xml|jpeg|webp|gif);base64,[A-Za-z0-9+/]+=*$`)
)

// check adds the problems a schema cannot express.
func (m *Manifest) check(ps *problems) {
	if m.Name == "core" {
		ps.add("/name", "the name core is reserved for the built-in components")
	}
	if _, err := parseVersion(m.Version); err != nil && m.Version != "" {
		// The schema's pattern reports malformed versions; this catches
		// anything the two disagree on.
		if !hasProblem(ps, "/version") {
			ps.add("/version", "%v", err)
		}
	}
	if m.BaseURL != "" && !hasProblem(ps, "/baseUrl") {
		if _, err := outbound.ParseBaseURL(m.BaseURL); err != nil {
			ps.add("/baseUrl", "%v", err)
		}
	}
	if m.Icon != "" {
		if strings.HasPrefix(m.Icon, "data:") {
			if !iconDataURL.MatchString(m.Icon) {
				ps.add("/icon", "a data: URL icon must be a base64 PNG, SVG, JPEG, WebP or GIF image")
			}
		} else {
			if msg := checkFilePath(m.Icon); msg != "" {
				ps.add("/icon", "%s", msg)
			} else if !iconExt.MatchString(m.Icon) {
				ps.add("/icon", "the icon must be a .png, .svg, .jpg, .jpeg, .webp or .gif file")
			}
		}
	}
	if m.Auth != nil {
		m.Auth.check(ps, "/auth")
	}
	names := map[string]int{}
	// The schema refuses more components; checking each of them would only
	// cost time.
	for i := range min(len(m.Components), maxComponents) {
		c := &m.Components[i]
		p := "/components/" + strconv.Itoa(i)
		if c.Name != "" {
			if j, ok := names[c.Name]; ok {
				ps.add(p+"/name", "component name %q is also used by /components/%d", c.Name, j)
			} else {
				names[c.Name] = i
			}
		}
		c.check(ps, p)
	}
}

func hasProblem(ps *problems, path string) bool {
	for _, p := range ps.list {
		if p.Path == path {
			return true
		}
	}
	return false
}

func (a *AuthDef) check(ps *problems, p string) {
	if a.Type != AuthAPIKey && (a.In != "" || a.Name != "") {
		ps.add(p, "in and name apply only to the apiKey auth type")
	}
	if a.Type != AuthOAuth2 && (a.AuthorizationURL != "" || a.TokenURL != "" || len(a.Scopes) > 0) {
		ps.add(p, "authorizationUrl, tokenUrl and scopes apply only to the oauth2 auth type")
	}
	if a.Type != AuthOAuth2 && a.Grant != "" {
		ps.add(p+"/grant", "grant applies only to the oauth2 auth type")
	}
	if a.Type == AuthOAuth2 && a.Grant == GrantClientCredentials && a.AuthorizationURL != "" {
		ps.add(p+"/authorizationUrl", "authorizationUrl applies only to the authorizationCode grant; the clientCredentials grant uses tokenUrl alone")
	}
	if a.Type != AuthToken && a.Type != AuthOAuth2 && a.Prefix != "" {
		ps.add(p+"/prefix", "prefix applies only to the token and oauth2 auth types")
	}
	if t := a.Test; t != nil {
		t.check(ps, p+"/test")
		// The server sends the test as a request for the account's domain
		// with its credentials alone.
		if !hasProblem(ps, p+"/test/url") && (!strings.HasPrefix(t.URL, "/") || strings.HasPrefix(t.URL, "//") || strings.Contains(t.URL, "{{")) {
			ps.add(p+"/test/url", "the credential test's url must be a literal path starting with /, joined to the account's domain")
		}
		if len(t.Headers) > 0 || len(t.Query) > 0 || t.Body != nil {
			ps.add(p+"/test", "the credential test is a method and a path: it takes no headers, query or body")
		}
	}
}

func (c *ComponentDef) check(ps *problems, p string) {
	var set []string
	if c.HTTP != nil {
		set = append(set, "http")
	}
	if c.Polling != nil {
		set = append(set, "polling")
	}
	if c.Subscription != nil {
		set = append(set, "subscription")
	}
	if c.Script != "" {
		set = append(set, "script")
	}
	switch len(set) {
	case 0:
		ps.add(p, "a component needs exactly one of http, polling, subscription or script")
	case 1:
	default:
		ps.add(p, "a component needs exactly one of http, polling, subscription or script, not %s", strings.Join(set, " and "))
	}
	if c.Kind == KindAction {
		if c.Polling != nil {
			ps.add(p+"/polling", "only a trigger can poll; set kind to trigger")
		}
		if c.Subscription != nil {
			ps.add(p+"/subscription", "only a trigger can subscribe to webhooks; set kind to trigger")
		}
	}
	if c.Kind == KindTrigger && c.HTTP != nil {
		ps.add(p+"/http", "a trigger cannot be a single request; use polling or subscription")
	}
	if c.Kind == KindTrigger && c.Script != "" {
		ps.add(p+"/script", "a script runs as an action; a trigger polls or subscribes")
	}
	if len(c.Properties) > 0 {
		if msg := checkPropertiesSchema(c.Properties); msg != "" {
			ps.add(p+"/properties", "%s", msg)
		}
	}
	if c.HTTP != nil {
		c.HTTP.RequestDef.check(ps, p+"/http")
		checkTemplate(ps, p+"/http/output", c.HTTP.Output)
		if pg := c.HTTP.Pagination; pg != nil {
			if pg.Type != PageCursor && (pg.CursorPath != "" || pg.CursorParam != "") {
				ps.add(p+"/http/pagination", "cursorPath and cursorParam apply only to cursor pagination")
			}
			if pg.Type != PagePage && (pg.PageParam != "" || pg.StartPage != nil) {
				ps.add(p+"/http/pagination", "pageParam and startPage apply only to page pagination")
			}
			if (pg.SizeParam == "") != (pg.PageSize == 0) {
				ps.add(p+"/http/pagination", "sizeParam and pageSize go together")
			}
		}
	}
	if pl := c.Polling; pl != nil {
		if pl.Interval != "" && !hasProblem(ps, p+"/polling/interval") {
			d, err := time.ParseDuration(pl.Interval)
			switch {
			case err != nil:
				ps.add(p+"/polling/interval", "not a duration such as \"5m\": %v", err)
			case d < MinPollInterval || d > MaxPollInterval:
				ps.add(p+"/polling/interval", "the interval must be between %s and %s", MinPollInterval, MaxPollInterval)
			}
		}
		pl.Request.check(ps, p+"/polling/request")
		if pl.CursorParam != "" && pl.CursorField == "" {
			ps.add(p+"/polling/cursorParam", "cursorParam needs a cursorField")
		}
		checkTemplate(ps, p+"/polling/output", pl.Output)
	}
	if s := c.Subscription; s != nil {
		s.Subscribe.check(ps, p+"/subscription/subscribe")
		s.Unsubscribe.check(ps, p+"/subscription/unsubscribe")
		checkTemplate(ps, p+"/subscription/output", s.Output)
	}
	if c.Script != "" {
		if msg := checkFilePath(c.Script); msg != "" {
			ps.add(p+"/script", "%s", msg)
		} else if !strings.HasSuffix(c.Script, ".js") {
			ps.add(p+"/script", "a script must be a .js file")
		}
	}
}

func (r *RequestDef) check(ps *problems, p string) {
	if r.URL != "" {
		u := r.URL
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") &&
			!strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "{{") {
			ps.add(p+"/url", "the URL must be absolute (http:// or https://) or a path starting with / joined to the account's domain")
		}
		checkTemplate(ps, p+"/url", u)
	}
	for k, v := range r.Headers {
		checkTemplate(ps, p+"/headers/"+pointer([]string{k})[1:], v)
	}
	for k, v := range r.Query {
		checkTemplate(ps, p+"/query/"+pointer([]string{k})[1:], v)
	}
	checkTemplate(ps, p+"/body", r.Body)
	if r.Body != nil && (r.Method == "GET" || r.Method == "HEAD") {
		ps.add(p+"/body", "a %s request has no body", r.Method)
	}
}

// checkTemplate checks the placeholders of a template value.
func checkTemplate(ps *problems, p string, v any) {
	if v == nil {
		return
	}
	if _, err := mapping.Compile(v); err != nil {
		ps.add(p, "%v", err)
	}
}

// checkPropertiesSchema reports why raw is not a JSON Schema of an object,
// or "".
func checkPropertiesSchema(raw json.RawMessage) string {
	doc, err := decodeJSON(raw)
	if err != nil {
		return fmt.Sprintf("not valid JSON: %v", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return "properties must be a JSON Schema object"
	}
	if t, ok := obj["type"]; !ok || t != "object" {
		return `properties must be the schema of an object ("type": "object")`
	}
	const url = "https://plugboard.invalid/properties.json"
	c := newCompiler()
	if err := c.AddResource(url, doc); err != nil {
		return fmt.Sprintf("not a valid JSON Schema: %v", err)
	}
	if _, err := c.Compile(url); err != nil {
		return fmt.Sprintf("not a valid JSON Schema: %s", strings.ReplaceAll(err.Error(), url, "properties"))
	}
	return ""
}

// checkFilePath reports why name cannot be the path of a file inside a
// package, or "".
func checkFilePath(name string) string {
	if msg := unsafeName(name); msg != "" {
		return msg
	}
	if strings.HasSuffix(name, "/") {
		return "the path names a directory, not a file"
	}
	return ""
}

// unsafeName reports why name is not a safe relative slash path, or "".
func unsafeName(name string) string {
	switch {
	case name == "":
		return "the path is empty"
	case strings.ContainsRune(name, '\\'):
		return "the path contains a backslash"
	case strings.HasPrefix(name, "/"):
		return "the path is absolute"
	case len(name) >= 2 && name[1] == ':':
		return "the path starts with a drive letter"
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "the path contains control characters"
	}
	for _, seg := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if seg == ".." {
			return "the path contains a .. segment"
		}
	}
	if c := path.Clean(name); c != strings.TrimSuffix(name, "/") {
		return fmt.Sprintf("the path is not clean (it means %q)", c)
	}
	return ""
}

package connector_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/connector"
)

// acmeYAML is the example's connector.json in YAML, with the comments,
// block and flow styles, folded text, a timestamp and an alias a person
// might write.
const acmeYAML = `# Acme CRM, as examples/connectors/acme-crm/connector.json says it.
name: acme-crm
version: 1.2.0
label: Acme CRM
description: >-
  Create, list and watch contacts in Acme CRM, a fictional customer
  relationship manager whose REST API lives at https://api.acme-crm.example/v2.
icon: icon.svg
baseUrl: https://api.acme-crm.example
auth:
  type: token
  prefix: Bearer
  test: {method: GET, url: /v2/me}
components:
  - name: CreateContact
    kind: action
    label: Create contact
    description: Creates a contact and returns its id and profile URL.
    properties:
      type: object
      required: [email]
      properties:
        email: {type: string, format: email, description: The contact's email address.}
        firstName: {type: string}
        lastName: {type: string}
        tags:
          type: array
          items: {type: string}
    outputSample: {id: c_19ab, email: ada@example.com, url: "https://app.acme-crm.example/contacts/c_19ab"}
    http:
      method: POST
      url: /v2/contacts
      headers:
        Content-Type: application/json
      body:
        email: "{{ $.properties.email }}"
        first_name: "{{ $.properties.firstName }}"
        last_name: "{{ $.properties.lastName }}"
        tags: "{{ $.properties.tags }}"
      output:
        id: "{{ $.response.body.data.id }}"
        email: "{{ $.response.body.data.email }}"
        url: "https://app.acme-crm.example/contacts/{{ $.response.body.data.id }}"

  - name: ListContacts
    kind: action
    label: List contacts
    description: Lists every contact, optionally only those with a tag, following the API's cursor from page to page.
    properties:
      type: object
      properties:
        tag: {type: string, description: Only contacts with this tag.}
    outputSample:
      - id: c_19ab
        email: ada@example.com
    http:
      method: GET
      url: /v2/contacts
      query: {tag: "{{ $.properties.tag }}"}
      pagination:
        type: cursor
        itemsPath: data
        cursorPath: meta.next_cursor
        cursorParam: cursor
        sizeParam: limit
        pageSize: 100
        maxPages: 50

  - name: NewContact
    kind: trigger
    label: New contact
    description: Emits each contact created since the last poll, once.
    properties: &noProperties {type: object, properties: {}}
    outputSample: {id: c_19ab, email: ada@example.com, createdAt: 2026-11-02T09:30:00Z}
    polling:
      interval: 5m
      request:
        method: GET
        url: /v2/contacts
        query: {sort: created_at, limit: "100"}
      itemsPath: data
      idField: id
      cursorField: created_at
      cursorParam: created_after
      output:
        id: "{{ $.item.id }}"
        email: "{{ $.item.email }}"
        createdAt: "{{ $.item.created_at }}"

  - name: ContactUpdated
    kind: trigger
    label: Contact updated
    description: Emits a contact each time Acme CRM reports a change to it, through a webhook subscription made when the flow starts.
    properties: *noProperties
    outputSample: {id: c_19ab, changes: [email]}
    subscription:
      subscribe:
        method: POST
        url: /v2/webhooks
        body: {event: contact.updated, target_url: "{{ $.webhookUrl }}"}
      unsubscribe:
        method: DELETE
        url: "/v2/webhooks/{{ $.subscriptionId }}"
      idPath: data.id
      itemsPath: events
      output:
        id: "{{ $.item.contact.id }}"
        changes: "{{ $.item.changed_fields }}"

  - name: ScoreContact
    kind: action
    label: Score contact
    description: Scores a contact from 0 to 100 by how complete its profile is, in JavaScript.
    properties:
      type: object
      required: [contact]
      properties:
        contact: {type: object, description: "A contact, as CreateContact or NewContact output it."}
    outputSample: {id: c_19ab, score: 75}
    script: scripts/score.js
`

// sameManifest fails t unless a and b say the same thing. Properties are
// raw JSON, compared as values: a YAML manifest's are compact.
func sameManifest(t *testing.T, a, b *connector.Manifest) {
	t.Helper()
	norm := func(m *connector.Manifest) (connector.Manifest, []any) {
		c := *m
		c.Components = append([]connector.ComponentDef(nil), m.Components...)
		var props []any
		for i := range c.Components {
			var v any
			if raw := c.Components[i].Properties; len(raw) > 0 {
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Fatalf("component %d: properties %s: %v", i, raw, err)
				}
			}
			props = append(props, v)
			c.Components[i].Properties = nil
		}
		return c, props
	}
	ma, pa := norm(a)
	mb, pb := norm(b)
	if !reflect.DeepEqual(pa, pb) {
		t.Errorf("properties differ:\n%v\n%v", pa, pb)
	}
	if !reflect.DeepEqual(ma, mb) {
		ja, _ := json.MarshalIndent(ma, "", "  ")
		jb, _ := json.MarshalIndent(mb, "", "  ")
		t.Errorf("manifests differ:\n%s\n%s", ja, jb)
	}
}

func TestParseManifestYAMLMatchesJSON(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(exampleDir, "connector.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := connector.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := connector.ParseManifestYAML([]byte(acmeYAML))
	if err != nil {
		t.Fatal(err)
	}
	sameManifest(t, got, want)
}

// TestParseManifestYAMLConvertsScalarsAsJSON: what each kind of YAML
// scalar becomes, seen through a component's outputSample.
func TestParseManifestYAMLConvertsScalarsAsJSON(t *testing.T) {
	t.Parallel()
	const doc = `name: tiny
version: 0.1.0
label: Tiny
description: A tiny connector.
components:
  - name: Ping
    kind: action
    description: Pings.
    http: {method: GET, url: "https://tiny.example/ping"}
    outputSample:
      plain: hello
      quoted: "true"
      yes: yes
      int: 42
      negative: -7
      hex: 0x1F
      octal: 0o17
      zip: 01234
      float: 1.50
      exponent: 1e3
      huge: 123456789012345678901234567890
      bool: true
      nothing: ~
      empty:
      date: 2026-11-02
      literal: |
        two
        lines
      '<<': a quoted key is only a key
`
	m, err := connector.ParseManifestYAML([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(m.Components[0].OutputSample)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"\u003c\u003c":"a quoted key is only a key","bool":true,"date":"2026-11-02","empty":null,"exponent":1000,` +
		`"float":1.5,"hex":31,"huge":1.2345678901234568e+29,"int":42,"literal":"two\nlines\n","negative":-7,` +
		`"nothing":null,"octal":15,"plain":"hello","quoted":"true","yes":"yes","zip":668}`
	if string(got) != want {
		t.Fatalf("output sample\n%s\nwant\n%s", got, want)
	}
}

func TestParseManifestYAMLReportsProblemsAtJSONPointers(t *testing.T) {
	t.Parallel()
	// head is a valid manifest up to its first component's http, which
	// each test completes.
	const head = `name: tiny
version: 0.1.0
label: Tiny
description: A tiny connector.
components:
  - name: Ping
    kind: action
    description: Pings.
    http:
      method: GET
      url: https://tiny.example/ping
`
	tests := []struct {
		name    string
		doc     string
		path    string // a problem must have this path
		message string // ... and a message containing this
	}{
		{name: "schema", doc: strings.Replace(head, "method: GET", "method: FETCH", 1), path: "/components/0/http/method", message: "GET"},
		{name: "semantic version", doc: strings.Replace(head, "0.1.0", `"1.2"`, 1), path: "/version", message: "semantic version"},
		{name: "version as a number", doc: strings.Replace(head, "0.1.0", "1.2", 1), path: "/version", message: "string"},
		{name: "unknown field", doc: head + "      retries: 3\n", path: "/components/0/http", message: "retries"},
		{name: "check", doc: strings.Replace(head, "kind: action", "kind: trigger", 1), path: "/components/0/http", message: "trigger"},
		{name: "placeholder", doc: head + "      headers: {X-A: \"{{ $.a + }}\"}\n", path: "/components/0/http/headers/X-A"},
		{name: "number key", doc: head + "      headers: {200: ok}\n", path: "/components/0/http/headers/200", message: "line 12: the key 200 is a number, not a string; quote it"},
		{name: "boolean key", doc: head + "      query:\n        true: x\n", path: "/components/0/http/query/true", message: "is a boolean"},
		{name: "null key", doc: head + "      query:\n        ~: x\n", path: "/components/0/http/query/~0", message: "is null"},
		{name: "mapping key", doc: head + "      query:\n        ? {a: b}\n        : x\n", path: "/components/0/http/query", message: "not a mapping"},
		{name: "merge key", doc: "base: &base {name: tiny}\n<<: *base\n", path: "/<<", message: "merge keys"},
		{name: "duplicate key", doc: head + "      method: POST\n", path: "/components/0/http/method", message: "line 12: the key \"method\" is already set on line 10"},
		{name: "infinity", doc: head + "      body: .inf\n", path: "/components/0/http/body", message: ".inf is not a number"},
		{name: "nan", doc: head + "      body: [1, .nan]\n", path: "/components/0/http/body/1", message: "not a number"},
		{name: "custom tag", doc: head + "      body: !secret x\n", path: "/components/0/http/body", message: "the tag !secret"},
		{name: "binary", doc: head + "      body: !!binary aGk=\n", path: "/components/0/http/body", message: "!!binary"},
		{name: "set", doc: head + "      body: !!set {a, b}\n", path: "/components/0/http/body", message: "!!set"},
		{name: "wrong explicit tag", doc: head + "      body: !!int abc\n", path: "/components/0/http/body", message: "line 12"},
		{name: "not YAML", doc: head + "  - [\n", path: "", message: "connector.yaml is not valid YAML: line"},
		{name: "tabs", doc: "name:\n\t- x\n", path: "", message: "not valid YAML"},
		{name: "empty", doc: "# nothing\n", path: "", message: "connector.yaml is empty"},
		{name: "two documents", doc: head + "---\nname: other\n", path: "", message: "more than one YAML document (a second one starts at line 12)"},
		{name: "two documents, the second empty", doc: head + "---\n", path: "", message: "more than one YAML document"},
		{name: "a list", doc: "- a\n", path: "", message: "object"},
		{name: "too long", doc: head + "# " + strings.Repeat("-", connector.MaxManifestBytes) + "\n", path: "", message: "bytes long; at most 1048576 are allowed"},
		{name: "unknown alias", doc: "name: *nope\n", path: "", message: "unknown anchor"},
		{name: "alias loop", doc: "components: &c [{name: A, http: *c}]\n", path: "/components/0/http", message: "the alias *c is used inside the value it names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := connector.ParseManifestYAML([]byte(tt.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			e := asError(t, err)
			if e.Kind() != "manifest" || e.Status() != 422 {
				t.Fatalf("kind %q status %d", e.Kind(), e.Status())
			}
			for _, p := range e.Problems {
				if p.Path == tt.path && strings.Contains(p.Message, tt.message) {
					return
				}
			}
			t.Fatalf("no problem at %q containing %q in %v", tt.path, tt.message, e.Problems)
		})
	}
}

// TestParseManifestYAMLRefusesAliasBombs: aliases are expanded, but only
// up to the size limit, and never by walking an alias's value again.
func TestParseManifestYAMLRefusesAliasBombs(t *testing.T) {
	t.Parallel()
	laughs := `name: tiny
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
	// Nesting: eleven anchors, each 1,000 levels deep around an alias of
	// the one before, nest 11,000 levels in a few kilobytes.
	var deep strings.Builder
	for i := range 11 {
		deep.WriteString("a" + itoa(i) + ": &a" + itoa(i) + " " + strings.Repeat("[", 1000))
		if i > 0 {
			deep.WriteString("*a" + itoa(i-1))
		}
		deep.WriteString(strings.Repeat("]", 1000) + "\n")
	}
	tests := []struct {
		name, doc, message string
	}{
		{name: "billion laughs", doc: laughs, message: "more than 1048576 bytes of JSON"},
		{name: "deep", doc: deep.String(), message: "more than 10000 levels deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := connector.ParseManifestYAML([]byte(tt.doc))
			took := time.Since(start)
			e := asError(t, err)
			if len(e.Problems) != 1 || !strings.Contains(e.Problems[0].Message, tt.message) {
				t.Fatalf("problems %v", e.Problems)
			}
			// Expanding the bomb would take minutes and gigabytes; refusing
			// it takes milliseconds. The bound leaves room for slow
			// machines and the race detector.
			if took > 5*time.Second {
				t.Errorf("took %s", took)
			}
		})
	}
}

// TestParseManifestYAMLExpandsAliases: within the limit, an alias is the
// value it names.
func TestParseManifestYAMLExpandsAliases(t *testing.T) {
	t.Parallel()
	const doc = `name: tiny
version: 0.1.0
label: Tiny
description: A tiny connector.
components:
  - name: Ping
    kind: action
    description: Pings.
    http: &ping
      method: GET
      url: https://tiny.example/ping
      headers: {Accept: application/json}
  - name: PingAgain
    kind: action
    description: Pings again.
    http: *ping
`
	m, err := connector.ParseManifestYAML([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Components[0].HTTP, m.Components[1].HTTP
	if a == nil || b == nil || !reflect.DeepEqual(*a, *b) || a.Headers["Accept"] != "application/json" {
		t.Fatalf("http %+v and %+v", a, b)
	}
}

func FuzzYAMLManifest(f *testing.F) {
	// Not named FuzzManifest...: CI fuzzes -fuzz FuzzManifest, which must
	// match a single target. Run this one with -fuzz FuzzYAMLManifest.
	f.Add([]byte(acmeYAML))
	f.Add([]byte(minimalManifest)) // JSON is YAML too, mostly
	f.Add([]byte("name: tiny\nversion: 0.1.0\nlabel: Tiny\ndescription: d\ncomponents:\n  - {name: P, kind: action, description: d, http: {method: GET, url: /p}}\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b, {<<: *b}]\n"))
	f.Add([]byte("? [a]\n: 1\n2: !!binary aGk=\n---\nx: .inf\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := connector.ParseManifestYAML(data)
		if err != nil {
			if _, ok := err.(*connector.Error); !ok {
				t.Fatalf("error %T %v", err, err)
			}
			if m != nil {
				t.Fatal("manifest with an error")
			}
			return
		}
		if m.Name == "" || m.Name == "core" || len(m.Components) == 0 {
			t.Fatalf("accepted %+v", m)
		}
		if _, err := connector.CompareVersions(m.Version, m.Version); err != nil {
			t.Fatalf("accepted version %q: %v", m.Version, err)
		}
	})
}

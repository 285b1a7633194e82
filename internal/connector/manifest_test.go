package connector_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/connector"
)

func TestParseManifestReportsEveryProblemWithItsPath(t *testing.T) {
	t.Parallel()
	bad := `{
  "name": "Core!",
  "version": "1.2",
  "label": "",
  "description": "x",
  "surprise": true,
  "icon": "../icon.png",
  "auth": {"type": "oauth2", "tokenUrl": "https://t.example/token"},
  "components": [
    {"name": "Ok", "kind": "action", "description": "d", "http": {"method": "GET", "url": "/a"}},
    {"name": "Ok", "kind": "action", "description": "d", "http": {"method": "FETCH", "url": "/a"}},
    {"name": "Poll", "kind": "action", "description": "d", "polling": {"interval": "5m", "request": {"method": "GET", "url": "/a"}, "idField": "id"}},
    {"name": "Both", "kind": "trigger", "description": "d", "script": "a.js",
     "subscription": {"subscribe": {"method": "POST", "url": "/h"}, "unsubscribe": {"method": "DELETE", "url": "/h"}}},
    {"name": "None", "kind": "action", "description": "d"},
    {"name": "Props", "kind": "action", "description": "d", "script": "p.js", "properties": {"type": "object", "properties": {"a": {"type": "nope"}}}},
    {"name": "Fast", "kind": "trigger", "description": "d", "polling": {"interval": "1s", "request": {"method": "GET", "url": "/a"}, "idField": "id"}},
    {"name": "Tpl", "kind": "action", "description": "d", "http": {"method": "POST", "url": "/a/{{ $.x + }}"}},
    {"name": "Page", "kind": "action", "description": "d", "http": {"method": "GET", "url": "/a", "pagination": {"type": "cursor", "itemsPath": "data"}}},
    {"name": "ScriptTrigger", "kind": "trigger", "description": "d", "script": "t.js"}
  ],
  "baseUrl": "ftp://api.example.com"
}`
	_, err := connector.ParseManifest([]byte(bad))
	e := asError(t, err)
	if e.Kind() != "manifest" || e.Status() != 422 {
		t.Fatalf("kind %q status %d", e.Kind(), e.Status())
	}
	want := map[string]string{
		"/name":                          "",
		"/version":                       "",
		"/label":                         "",
		"":                               "surprise",
		"/auth":                          "authorizationUrl",
		"/icon":                          "..",
		"/components/1/name":             "also used by /components/0",
		"/components/1/http/method":      "",
		"/components/2/polling":          "only a trigger",
		"/components/3":                  "not subscription and script",
		"/components/4":                  "exactly one",
		"/components/5/properties":       "not a valid JSON Schema",
		"/components/6/polling/interval": "between",
		"/components/7/http/url":         "",
		"/components/8/http/pagination":  "cursorPath",
		"/components/9/script":           "runs as an action",
		"/baseUrl":                       "",
	}
	for path, msg := range want {
		found := false
		for _, p := range e.Problems {
			if p.Path == path && strings.Contains(p.Message, msg) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no problem at %q containing %q", path, msg)
		}
	}
	if t.Failed() {
		for _, p := range e.Problems {
			t.Logf("%s", p)
		}
	}
}

func TestParseManifestAcceptsTheExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(exampleDir, "connector.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := connector.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Components) != 5 {
		t.Fatalf("%d components", len(m.Components))
	}
}

// TestParseManifestChecksBaseURL: a baseUrl the runtime could not use is
// refused when the package is checked, not when it is loaded.
func TestParseManifestChecksBaseURL(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(exampleDir, "connector.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"https://u:p@api.example.com", "https://exa mple.com", "https://api.example.com/v2?x=1", "ftp://x"} {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		m["baseUrl"] = base
		raw, _ := json.Marshal(m)
		_, err := connector.ParseManifest(raw)
		if e := asError(t, err); !slices.ContainsFunc(e.Problems, func(p connector.Problem) bool { return p.Path == "/baseUrl" }) {
			t.Errorf("baseUrl %q: %v, want a problem at /baseUrl", base, err)
		}
	}
}

// TestManifestSchemaIsServed: the schema handed out (for editors and the
// back office) is JSON and names the fields a manifest must have.
func TestManifestSchemaIsServed(t *testing.T) {
	t.Parallel()
	var s struct {
		Schema   string   `json:"$schema"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(connector.ManifestSchema(), &s); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"name", "version", "components"} {
		if !slices.Contains(s.Required, f) {
			t.Errorf("the schema does not require %s (requires %v)", f, s.Required)
		}
	}
}

func FuzzManifest(f *testing.F) {
	f.Add([]byte(minimalManifest))
	if data, err := os.ReadFile(filepath.Join(exampleDir, "connector.json")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"name":"a","components":[{"properties":{"type":"object","$ref":"http://x/y"}}]}`))
	f.Add([]byte(`{"components":[{"http":{"url":"{{ $.a ? }}","body":{"x":[1,"{{ 1 }}"]}}}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := connector.ParseManifest(data)
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

func FuzzReadArchive(f *testing.F) {
	f.Add(build(f, valid()))
	if data, err := connector.Pack(exampleDir); err == nil {
		f.Add(data)
	}
	f.Add(build(f, []entry{{name: "connector.yaml", data: []byte(minimalYAML)}, valid()[1]}))
	f.Add(build(f, append(valid(), entry{name: "connector.yml", data: []byte(minimalYAML)})))
	f.Add(build(f, append(valid(), entry{name: "../x", data: []byte("x")})))
	f.Add(build(f, append(valid(), entry{name: "z", data: make([]byte, 1<<20)})))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkg, err := connector.ReadArchive(data)
		if err != nil {
			if _, ok := err.(*connector.Error); !ok {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		var total int
		for name, b := range pkg.Files {
			total += len(b)
			if strings.Contains(name, "..") && strings.Contains("/"+name+"/", "/../") || strings.HasPrefix(name, "/") {
				t.Fatalf("accepted name %q", name)
			}
		}
		if total > connector.MaxUnpacked {
			t.Fatalf("accepted %d bytes", total)
		}
		if _, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("accepted a non-zip: %v", err)
		}
	})
}

func TestParseManifestBoundsItsProblems(t *testing.T) {
	t.Parallel()
	c := `{"properties":{"type":"object","properties":{"a":{"type":"nope"}}},"http":{"url":"{{ a + }}"}}`
	n := (connector.MaxManifestBytes - 100) / (len(c) + 1)
	doc := `{"components":[` + strings.Repeat(c+",", n-1) + c + `]}`
	_, err := connector.ParseManifest([]byte(doc))
	e := asError(t, err)
	if len(e.Problems) != connector.MaxProblems+1 {
		t.Fatalf("%d problems", len(e.Problems))
	}
	if last := e.Problems[len(e.Problems)-1]; last.Path != "" || !strings.Contains(last.Message, "more problems") {
		t.Fatalf("last problem %v", last)
	}
}

package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/api"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// newOpenAPIServer builds an API server on a fresh database; the engine is
// not started, as these tests send no messages.
func newOpenAPIServer(t *testing.T) (*api.Server, *engine.Engine) {
	t.Helper()
	st := storetest.Open(t, "sqlite")
	comps := component.NewRegistry()
	core.Register(comps, core.Deps{HTTP: outbound.NewClient(outbound.Options{}), MaxResponseBytes: 1 << 20})
	eng, err := engine.New(t.Context(), engine.Config{Store: st, Registry: comps})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Store: st, Engine: eng, Registry: comps})
	if err != nil {
		t.Fatal(err)
	}
	return srv, eng
}

// openAPIDoc decodes the embedded document.
func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(api.OpenAPIDocument(), &doc); err != nil {
		t.Fatalf("decoding openapi.json: %v", err)
	}
	return doc
}

// documentedOperations returns "METHOD /path" for every operation in doc.
func documentedOperations(t *testing.T, doc map[string]any) []string {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.json has no paths object")
	}
	var ops []string
	for path, item := range paths {
		item, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", path)
		}
		for _, m := range openAPIMethods {
			if _, ok := item[m]; ok {
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	doc := openAPIDoc(t)

	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}

	// Every operation has a summary, a unique operationId and responses.
	seen := map[string]string{}
	for _, op := range documentedOperations(t, doc) {
		method, path, _ := strings.Cut(op, " ")
		o := doc["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
		if s, _ := o["summary"].(string); s == "" {
			t.Errorf("%s has no summary", op)
		}
		id, _ := o["operationId"].(string)
		switch prev, dup := seen[id]; {
		case id == "":
			t.Errorf("%s has no operationId", op)
		case dup:
			t.Errorf("%s and %s share operationId %q", prev, op, id)
		}
		seen[id] = op
		if r, _ := o["responses"].(map[string]any); len(r) == 0 {
			t.Errorf("%s has no responses", op)
		}
	}

	// Every $ref points inside the document.
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if k == "$ref" {
					ref, _ := child.(string)
					if _, err := resolvePointer(doc, ref); err != "" {
						t.Errorf("%s: $ref %q: %s", at, ref, err)
					}
					continue
				}
				walk(at+"/"+k, child)
			}
		case []any:
			for i, child := range v {
				walk(at+"/"+strconv.Itoa(i), child)
			}
		}
	}
	walk("#", doc)
}

// resolvePointer resolves a local reference such as
// "#/components/schemas/Flow"; it returns a reason when it cannot.
func resolvePointer(doc map[string]any, ref string) (any, string) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, "not a reference inside the document"
	}
	var cur any = doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, "goes through a non-object before " + tok
		}
		if cur, ok = obj[tok]; !ok {
			return nil, "no " + tok
		}
	}
	return cur, ""
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	srv, _ := newOpenAPIServer(t)
	served := srv.APIRoutes()
	if len(served) == 0 {
		t.Fatal("the server reports no API routes")
	}
	documented := documentedOperations(t, openAPIDoc(t))

	for _, route := range served {
		if !slices.Contains(documented, route) {
			t.Errorf("route %s is served but not in openapi.json", route)
		}
	}
	for _, op := range documented {
		if _, path, _ := strings.Cut(op, " "); strings.HasPrefix(path, "/api/v1/") && !slices.Contains(served, op) {
			t.Errorf("openapi.json describes %s, which is not served", op)
		}
	}
	for _, op := range []string{"POST /hooks/{token}", "GET /healthz", "GET /readyz", "GET /metrics"} {
		if !slices.Contains(documented, op) {
			t.Errorf("openapi.json does not describe %s", op)
		}
	}
}

// TestOpenAPIExampleFlowIsValid keeps the documented example flow in step
// with the components: it must pass the same checks as a flow sent to the API.
func TestOpenAPIExampleFlowIsValid(t *testing.T) {
	t.Parallel()
	_, eng := newOpenAPIServer(t)
	doc := openAPIDoc(t)
	ex, reason := resolvePointer(doc, "#/components/examples/SignupsToCrm/value")
	if reason != "" {
		t.Fatalf("example flow: %s", reason)
	}
	raw, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := flow.Parse(raw)
	if err != nil {
		t.Fatalf("parsing the example flow: %v", err)
	}
	if _, err := eng.Compile(fd); err != nil {
		t.Fatalf("the example flow is rejected: %v", err)
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv, _ := newOpenAPIServer(t)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	resp, err := http.Get(hs.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(body, api.OpenAPIDocument()) {
		t.Error("the served document differs from the embedded one")
	}
}

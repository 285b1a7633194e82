package api_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/mapping"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// sampledTrigger is a test-only trigger whose instances give their own
// output sample, built from their "sample" and "label" properties.
type sampledTrigger struct{}

var _ component.Sampler = sampledTrigger{}

func (sampledTrigger) Spec() component.Spec {
	return component.Spec{
		Type: "test.Sampled", Kind: component.KindTrigger, Description: "A trigger with a sample per instance.",
		Properties: []component.Property{
			{Name: "sample", Type: component.TypeAny, Description: "Example event data."},
			{Name: "label", Type: component.TypeString, Description: "A label.", Default: "the default label"},
		},
		OutPorts:     []string{component.PortOut},
		OutputSample: map[string]any{"fromSpec": true},
	}
}

func (sampledTrigger) Sample(props map[string]any) any {
	if props["sample"] == nil {
		return nil
	}
	return map[string]any{"label": props["label"], "data": props["sample"]}
}

// newVariablesEnv is newEnv with sampledTrigger registered too.
func newVariablesEnv(t *testing.T, backend string) *env {
	t.Helper()
	e := newNode(t, storetest.Config(t, backend), "test", func(r *component.Registry) { r.Register(sampledTrigger{}) })
	if _, err := createAdmin(e); err != nil {
		t.Fatal(err)
	}
	e.signInAdmin()
	return e
}

type variableItem struct {
	Component   string          `json:"component"`
	Path        string          `json:"path"`
	Placeholder string          `json:"placeholder"`
	Type        string          `json:"type"`
	Example     json.RawMessage `json:"example"`
	Source      string          `json:"source"`
}

type variableAnswer struct {
	Items     []variableItem `json:"items"`
	Truncated bool           `json:"truncated"`
}

func (e *env) variables(token, flowID, comp string) variableAnswer {
	e.t.Helper()
	var v variableAnswer
	e.do("GET", "/api/v1/flows/"+flowID+"/components/"+comp+"/variables", token, nil, http.StatusOK, &v)
	return v
}

// item returns the item with path, failing the test when there is none.
func (v variableAnswer) item(t *testing.T, path string) variableItem {
	t.Helper()
	for _, it := range v.Items {
		if it.Path == path {
			return it
		}
	}
	t.Fatalf("no variable %s among %s", path, v.paths())
	return variableItem{}
}

func (v variableAnswer) paths() []string {
	out := make([]string, len(v.Items))
	for i, it := range v.Items {
		out[i] = it.Path
	}
	return out
}

// expect checks an item's type, source and, unless example is "", its
// example (as JSON).
func (v variableAnswer) expect(t *testing.T, path, typ, source, example string) {
	t.Helper()
	it := v.item(t, path)
	if it.Type != typ || it.Source != source || it.Placeholder != "{{ "+path+" }}" {
		t.Errorf("%s: type %s, source %s, placeholder %s; want %s, %s", path, it.Type, it.Source, it.Placeholder, typ, source)
	}
	if example != "" && !sameJSON(it.Example, []byte(example)) {
		t.Errorf("%s: example %s, want %s", path, it.Example, example)
	}
}

// inOrder checks that the paths appear in this order.
func (v variableAnswer) inOrder(t *testing.T, paths ...string) {
	t.Helper()
	all := v.paths()
	last := -1
	for _, p := range paths {
		i := slices.Index(all, p)
		if i <= last {
			t.Fatalf("%s is missing or out of order in %s", p, all)
		}
		last = i
	}
}

// resolves checks that every placeholder compiles, reads only its own
// component, and evaluated against scope gives the item's example.
func (v variableAnswer) resolves(t *testing.T, scope map[string]any) {
	t.Helper()
	for _, it := range v.Items {
		tmpl, err := mapping.Compile(it.Placeholder)
		if err != nil {
			t.Errorf("%s does not compile: %v", it.Placeholder, err)
			continue
		}
		if refs := tmpl.References(); !slices.Equal(refs, []string{it.Component}) {
			t.Errorf("%s reads %v, want [%s]", it.Placeholder, refs, it.Component)
		}
		got, err := tmpl.Eval(scope)
		if err != nil {
			t.Errorf("%s: %v", it.Placeholder, err)
			continue
		}
		if it.Example == nil {
			continue // a large object or array
		}
		raw, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(raw, it.Example) {
			t.Errorf("%s gives %s, but the example is %s", it.Placeholder, raw, it.Example)
		}
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// lastOutputs waits until component comp has a successful log in the run
// corr, then returns the outputs of that run's components.
func (e *env) lastOutputs(token, flowID, corr, comp string) map[string]any {
	e.t.Helper()
	var logs struct {
		Items []struct {
			ComponentID string `json:"componentId"`
			Status      string `json:"status"`
			Output      string `json:"output"`
		} `json:"items"`
	}
	eventually(e.t, 20*time.Second, comp+" to run", func() bool {
		e.do("GET", "/api/v1/flows/"+flowID+"/logs?correlationId="+corr, token, nil, http.StatusOK, &logs)
		for _, l := range logs.Items {
			if l.ComponentID == comp && l.Status == store.StatusSuccess {
				return true
			}
		}
		return false
	})
	out := map[string]any{}
	for _, l := range logs.Items {
		var v any
		if err := json.Unmarshal([]byte(l.Output), &v); err == nil {
			out[l.ComponentID] = v
		}
	}
	return out
}

func postJSON(t *testing.T, url string, header map[string]string, body any) string {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", url, strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var acc struct{ CorrelationID string }
	if err := json.NewDecoder(resp.Body).Decode(&acc); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook answered %d (%v)", resp.StatusCode, err)
	}
	return acc.CorrelationID
}

func TestVariables(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testVariables(t, newVariablesEnv(t, backend))
		})
	}
}

func testVariables(t *testing.T, e *env) {
	userID, user := e.user("designer@example.com")
	_, other := e.user("other@example.com")
	sink := newSink(t, 0)
	var f flowResp
	e.do("POST", "/api/v1/flows", user, forwardFlow(sink.srv.URL, 3), http.StatusCreated, &f)

	// Before any run: the specs' output samples.
	v := e.variables(user, f.ID, "call")
	v.inOrder(t, "$.hook", "$.hook.body", "$.hook.body.user", "$.hook.body.user.email", "$.hook.headers",
		`$.hook.headers["Content-Type"]`, "$.map", "$.map.email")
	v.expect(t, "$.hook", "object", "spec", "")
	v.expect(t, "$.hook.body", "object", "spec", `{"user":{"email":"ada@example.com"}}`)
	v.expect(t, "$.hook.body.user.email", "string", "spec", `"ada@example.com"`)
	v.expect(t, `$.hook.headers["Content-Type"]`, "string", "spec", `"application/json"`)
	v.expect(t, "$.map.email", "string", "spec", `"ada@example.com"`)
	for _, it := range v.Items {
		if it.Component != "hook" && it.Component != "map" {
			t.Errorf("variables of call list %s of %s", it.Path, it.Component)
		}
	}
	var specs struct {
		Items []component.Spec `json:"items"`
	}
	e.do("GET", "/api/v1/components", user, nil, http.StatusOK, &specs)
	samples := map[string]any{}
	for _, s := range specs.Items {
		samples[s.Type] = s.OutputSample
	}
	v.resolves(t, map[string]any{"hook": samples["core.Webhook"], "map": samples["core.Set"]})

	// The component itself and those after it are not upstream.
	if v := e.variables(user, f.ID, "map"); slices.ContainsFunc(v.Items, func(it variableItem) bool { return it.Component != "hook" }) {
		t.Errorf("variables of map: %v", v.paths())
	}
	if v := e.variables(user, f.ID, "hook"); len(v.Items) != 0 {
		t.Errorf("variables of the trigger: %v", v.paths())
	}

	// Unknown flows and components, and other users' flows, are not found;
	// an admin sees every flow.
	e.do("GET", "/api/v1/flows/"+f.ID+"/components/nope/variables", user, nil, http.StatusNotFound, nil)
	e.do("GET", "/api/v1/flows/nope/components/call/variables", user, nil, http.StatusNotFound, nil)
	e.do("GET", "/api/v1/flows/"+f.ID+"/components/call/variables", other, nil, http.StatusNotFound, nil)
	e.do("GET", "/api/v1/flows/"+f.ID+"/components/call/variables", "", nil, http.StatusUnauthorized, nil)
	if v := e.variables(e.admin, f.ID, "call"); len(v.Items) == 0 {
		t.Errorf("the admin sees no variables in %s's flow", userID)
	}

	// After a real run: its outputs, odd keys in brackets.
	e.do("POST", "/api/v1/flows/"+f.ID, user, map[string]string{"command": "start"}, http.StatusOK, nil)
	body := map[string]any{
		"user": map[string]any{"email": "grace@example.com", "age": 36, "vip": true, "nickname": nil,
			"tags": []any{"navy", "cobol"}, "first name": "Grace", "in": "keyword", `say "hi"`: "quoted", "a}}b": "braces"},
		"items": []any{map[string]any{"sku": "A-1", "qty": 2.5}},
		"empty": []any{},
		"n":     7,
	}
	corr := postJSON(t, f.Components["hook"].WebhookURL+"?source=ads", map[string]string{"X-Request-Id": "req-1"}, body)
	outputs := e.lastOutputs(user, f.ID, corr, "map")

	v = e.variables(user, f.ID, "call")
	v.inOrder(t, "$.hook", "$.hook.body", "$.hook.body.empty", "$.hook.body.items", "$.hook.body.items[0]",
		"$.hook.body.items[0].qty", "$.hook.body.items[0].sku", "$.hook.body.n", "$.hook.body.user",
		"$.hook.body.user.age", `$.hook.body.user["a}}b"]`, "$.hook.body.user.email", `$.hook.body.user["first name"]`,
		`$.hook.body.user["in"]`, "$.hook.body.user.nickname", `$.hook.body.user["say \"hi\""]`, "$.hook.body.user.tags",
		"$.hook.body.user.tags[0]", "$.hook.body.user.vip", "$.hook.headers", `$.hook.headers["X-Request-Id"]`,
		"$.hook.method", "$.hook.query", "$.hook.query.source", "$.map", "$.map.email", "$.map.n", "$.map.source")
	v.expect(t, "$.hook.body.user.email", "string", "lastRun", `"grace@example.com"`)
	v.expect(t, "$.hook.body.user.age", "number", "lastRun", `36`)
	v.expect(t, "$.hook.body.user.vip", "boolean", "lastRun", `true`)
	v.expect(t, "$.hook.body.user.nickname", "null", "lastRun", `null`)
	v.expect(t, "$.hook.body.user.tags", "array", "lastRun", `["navy","cobol"]`)
	v.expect(t, "$.hook.body.user.tags[0]", "string", "lastRun", `"navy"`)
	v.expect(t, "$.hook.body.items[0].qty", "number", "lastRun", `2.5`)
	v.expect(t, "$.hook.body.empty", "array", "lastRun", `[]`)
	v.expect(t, `$.hook.headers["X-Request-Id"]`, "string", "lastRun", `"req-1"`)
	v.expect(t, "$.hook.query.source", "string", "lastRun", `"ads"`)
	v.expect(t, "$.map.email", "string", "lastRun", `"grace@example.com"`)
	v.expect(t, "$.map.n", "number", "lastRun", `7`)
	if slices.Contains(v.paths(), "$.hook.body.empty[0]") {
		t.Error("an empty array lists a first element")
	}
	v.resolves(t, outputs)

	// A run whose trigger output was cut by the log size cap is no
	// example: the trigger's variables come from the run before, while
	// those of map, whose output is whole, come from the new run.
	big := map[string]any{"user": map[string]any{"email": "big@example.com"}, "pad": strings.Repeat("x", 40<<10)}
	corr = postJSON(t, f.Components["hook"].WebhookURL, nil, big)
	e.lastOutputs(user, f.ID, corr, "map")
	v = e.variables(user, f.ID, "call")
	v.expect(t, "$.hook.body.user.email", "string", "lastRun", `"grace@example.com"`)
	v.expect(t, "$.map.email", "string", "lastRun", `"big@example.com"`)
	if slices.Contains(v.paths(), "$.hook.body.pad") {
		t.Error("variables come from a cut output")
	}

	testSampledVariables(t, e, user)
}

// testSampledVariables covers component.Sampler, component ids that need
// brackets, and the limits.
func testSampledVariables(t *testing.T, e *env, user string) {
	sample := map[string]any{"email": "ada@example.com", "dash-key": 1, "日本": "yes", "long": strings.Repeat("é", 700)}
	set := func(values map[string]any) map[string]any {
		return map[string]any{"type": "core.Set", "properties": map[string]any{"values": values}}
	}
	doc := map[string]any{
		"name": "sampled",
		"components": map[string]any{
			"ev-1":  map[string]any{"type": "test.Sampled", "properties": map[string]any{"sample": sample}},
			"bare":  map[string]any{"type": "test.Sampled", "properties": map[string]any{}},
			"after": set(map[string]any{"x": `{{ $["ev-1"].data.email }}`}),
		},
		"links": []map[string]string{{"from": "ev-1", "to": "after"}, {"from": "bare", "to": "after"}},
	}
	var f flowResp
	e.do("POST", "/api/v1/flows", user, doc, http.StatusCreated, &f)
	v := e.variables(user, f.ID, "after")
	v.inOrder(t, "$.bare", "$.bare.fromSpec", `$["ev-1"]`, `$["ev-1"].data`, `$["ev-1"].data["dash-key"]`,
		`$["ev-1"].data.email`, `$["ev-1"].data.long`, `$["ev-1"].data["日本"]`, `$["ev-1"].label`)
	v.expect(t, "$.bare.fromSpec", "boolean", "spec", `true`)
	v.expect(t, `$["ev-1"].data.email`, "string", "sample", `"ada@example.com"`)
	v.expect(t, `$["ev-1"].label`, "string", "sample", `"the default label"`)
	long := v.item(t, `$["ev-1"].data.long`)
	var cut string
	if err := json.Unmarshal(long.Example, &cut); err != nil || len(cut) > 1024+len("…") || !strings.HasSuffix(cut, "é…") {
		t.Errorf("a long text's example is %d bytes: %.40q…", len(cut), cut)
	}
	if ex := v.item(t, `$["ev-1"]`).Example; ex != nil {
		t.Errorf("an object of more than 1 KiB has the example %.40s…", ex)
	}
	delete(sample, "long")
	v.Items = slices.DeleteFunc(v.Items, func(it variableItem) bool { return strings.Contains(it.Path, "long") })
	v.resolves(t, map[string]any{"ev-1": map[string]any{"label": "the default label", "data": sample}, "bare": map[string]any{"fromSpec": true}})

	// Limits: at most 8 levels below an output, and 500 items.
	deep := any("bottom")
	for range 12 {
		deep = map[string]any{"d": deep}
	}
	wide := map[string]any{}
	for i := range 600 {
		wide[strings.Repeat("k", 1+i%7)+string(rune('a'+i%26))+string(rune('a'+i/26))] = i
	}
	doc["components"].(map[string]any)["ev-1"] = map[string]any{"type": "test.Sampled", "properties": map[string]any{"sample": map[string]any{"deep": deep}}}
	doc["components"].(map[string]any)["bare"] = map[string]any{"type": "test.Sampled", "properties": map[string]any{"sample": wide}}
	e.do("PUT", "/api/v1/flows/"+f.ID, user, doc, http.StatusOK, nil)
	v = e.variables(user, f.ID, "after")
	if len(v.Items) != 500 || !v.Truncated {
		t.Fatalf("%d items, truncated %v; want 500, true", len(v.Items), v.Truncated)
	}
	if v.Items[0].Path != "$.bare" || v.Items[499].Component != "bare" {
		t.Errorf("the first items are not those of the first component: %s … %s", v.Items[0].Path, v.Items[499].Path)
	}
	doc["components"].(map[string]any)["bare"] = map[string]any{"type": "test.Sampled", "properties": map[string]any{}}
	e.do("PUT", "/api/v1/flows/"+f.ID, user, doc, http.StatusOK, nil)
	v = e.variables(user, f.ID, "after")
	if v.Truncated {
		t.Error("a short list is marked truncated")
	}
	deepest := `$["ev-1"].data.deep` + strings.Repeat(".d", 6)
	v.expect(t, deepest, "object", "sample", "")
	if slices.Contains(v.paths(), deepest+".d") {
		t.Errorf("the list goes deeper than 8 levels: %v", v.paths())
	}
}

package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/flow"
)

// Limits of a variables listing, documented in docs/variables.md.
const (
	// maxVariableDepth is how many levels below a component's output the
	// listing goes; deeper values are listed as a whole.
	maxVariableDepth = 8
	// maxVariables caps the items of one answer.
	maxVariables = 500
	// maxExampleBytes caps an example: longer text is cut, and an object
	// or array whose JSON is longer has no example.
	maxExampleBytes = 1024
)

// Where the example output of an upstream component comes from, in order
// of preference.
const (
	sourceLastRun = "lastRun" // its last successful run in this flow
	sourceSample  = "sample"  // the instance's own sample (component.Sampler)
	sourceSpec    = "spec"    // the component spec's output sample
)

// variable is one value a component's placeholders can read.
type variable struct {
	Component   string          `json:"component"`
	Path        string          `json:"path"`
	Placeholder string          `json:"placeholder"`
	Type        string          `json:"type"`
	Example     json.RawMessage `json:"example,omitempty"`
	Source      string          `json:"source"`
}

// variableList is the answer: the variables, and whether maxVariables cut
// the list short.
type variableList struct {
	Items     []variable `json:"items"`
	Truncated bool       `json:"truncated,omitempty"`
}

// flowVariables lists the placeholders the component componentId of a flow
// can use: the outputs of the components upstream of it, field by field,
// as their last real run or their samples show them.
func (s *Server) flowVariables(w http.ResponseWriter, r *http.Request, p principal) error {
	ctx := r.Context()
	f, err := s.store.OwnedFlow(ctx, p.ownerScope(), r.PathValue("id"))
	if err != nil {
		return err
	}
	doc, err := flow.Parse(f.Document)
	if err != nil {
		return fmt.Errorf("reading flow %s: %w", f.ID, err)
	}
	target := r.PathValue("componentId")
	if _, ok := doc.Components[target]; !ok {
		return problem(http.StatusNotFound, "flow %s has no component %q", f.ID, target)
	}
	compiled, err := s.engine.Compile(doc)
	if err != nil {
		return fmt.Errorf("compiling flow %s: %w", f.ID, err)
	}
	upstream, _ := compiled.Upstream(target)
	last, err := s.store.LastOutputs(ctx, f.ID, upstream)
	if err != nil {
		return err
	}
	l := variableList{Items: []variable{}}
	for _, id := range upstream {
		v, source, ok := exampleOutput(compiled.Nodes[id], doc.Components[id].Properties, last[id])
		if ok && !l.add(id, source, pathKey("$", id), v, 0) {
			break
		}
	}
	return writeJSON(w, http.StatusOK, l)
}

// exampleOutput picks what stands for n's output: its last real output if
// there is one, else the instance's sample, else the spec's. ok is false
// when there is none.
func exampleOutput(n *flow.Node, props map[string]any, last json.RawMessage) (v any, source string, ok bool) {
	if last != nil {
		if v, ok := decodeExample(last); ok {
			return emitted(v), sourceLastRun, true
		}
	}
	sample, fromInstance := component.InstanceSample(n.Component, props)
	if fromInstance {
		if v, ok := normalizeExample(sample); ok {
			return v, sourceSample, true
		}
		sample = n.Spec.OutputSample
	}
	if v, ok := normalizeExample(sample); ok {
		return v, sourceSpec, true
	}
	return nil, "", false
}

// normalizeExample turns a sample given as Go values into what decoding
// its JSON gives, as a real output would be.
func normalizeExample(sample any) (any, bool) {
	if sample == nil {
		return nil, false
	}
	raw, err := json.Marshal(sample)
	if err != nil {
		return nil, false
	}
	return decodeExample(raw)
}

// decodeExample decodes JSON keeping numbers as written.
func decodeExample(raw []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// emitted undoes how the logs hold a run that emitted several values at
// once, [{"port": ..., "value": ...}, ...]: its first value stands for all.
func emitted(v any) any {
	list, ok := v.([]any)
	if !ok || len(list) < 2 {
		return v
	}
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok || len(m) != 2 {
			return v
		}
		if _, ok := m["port"].(string); !ok {
			return v
		}
		if _, ok := m["value"]; !ok {
			return v
		}
	}
	return list[0].(map[string]any)["value"]
}

// add lists v, found at path in the output of component comp, then, depth
// first, the fields of an object in key order or the first element of an
// array. It reports false, marking the list truncated, once the list is
// full.
func (l *variableList) add(comp, source, path string, v any, depth int) bool {
	if len(l.Items) == maxVariables {
		l.Truncated = true
		return false
	}
	l.Items = append(l.Items, variable{
		Component: comp, Path: path, Placeholder: "{{ " + path + " }}",
		Type: jsonType(v), Example: example(v), Source: source,
	})
	if depth == maxVariableDepth {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if !l.add(comp, source, pathKey(path, k), x[k], depth+1) {
				return false
			}
		}
	case []any:
		if len(x) > 0 {
			return l.add(comp, source, path+"[0]", x[0], depth+1)
		}
	}
	return true
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

// example renders v for the answer: text is cut to maxExampleBytes, and an
// object or array whose JSON is longer than that gets no example (its
// fields are listed below it).
func example(v any) json.RawMessage {
	container := false
	switch x := v.(type) {
	case string:
		if len(x) > maxExampleBytes {
			cut := maxExampleBytes
			for cut > 0 && !utf8.RuneStart(x[cut]) {
				cut--
			}
			v = x[:cut] + "…"
		}
	case map[string]any, []any:
		if jsonSize(v, maxExampleBytes) > maxExampleBytes {
			return nil
		}
		container = true
	}
	raw, err := json.Marshal(v)
	if err != nil || container && len(raw) > maxExampleBytes {
		return nil
	}
	return raw
}

// jsonSize is at most the length of v's JSON; it stops counting once the
// count passes limit.
func jsonSize(v any, limit int) int {
	switch x := v.(type) {
	case string:
		return len(x) + 2
	case json.Number:
		return len(x)
	case bool:
		return 4
	case []any:
		n := 2
		for _, e := range x {
			if n > limit {
				break
			}
			n += jsonSize(e, limit-n) + 1
		}
		return n
	case map[string]any:
		n := 2
		for k, e := range x {
			if n > limit {
				break
			}
			n += len(k) + 4 + jsonSize(e, limit-n)
		}
		return n
	}
	return 4 // null
}

// pathKey appends an object key to a placeholder path in the syntax of
// docs/expressions.md: ".name" for a plain name, `["odd key"]` for any
// other.
func pathKey(path, key string) string {
	if plainName(key) {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// operatorWords are the words the expression language uses as operators.
// They read as names after a dot, but brackets leave no doubt.
var operatorWords = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "matches": true, "contains": true,
	"startsWith": true, "endsWith": true, "let": true, "if": true, "else": true,
}

// plainName reports whether key can follow a dot: an ASCII letter or '_',
// then letters, digits or '_', and not an operator word.
func plainName(key string) bool {
	if key == "" || operatorWords[key] {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

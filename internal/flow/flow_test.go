package flow_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/flow"
)

func registry() *component.Registry {
	r := component.NewRegistry()
	core.Register(r, core.Deps{})
	return r
}

func TestCompile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		doc   string
		field string // expected problem field ("" = valid)
		msg   string
	}{
		{"valid", `{"name":"f","components":{"hook":{"type":"core.Webhook"},"map":{"type":"core.Set","properties":{"values":{"e":"{{ $.hook.body.e }}"}}}},"links":[{"from":"hook","to":"map"}]}`, "", ""},
		{"no name", `{"components":{"hook":{"type":"core.Webhook"}}}`, "name", "required"},
		{"no components", `{"name":"f","components":{}}`, "components", "at least one"},
		{"bad id", `{"name":"f","components":{"9x":{"type":"core.Webhook"}}}`, "", "component id"},
		{"unknown type", `{"name":"f","components":{"a":{"type":"core.Nope"}}}`, "type", "core.Nope"},
		{"unknown property", `{"name":"f","components":{"a":{"type":"core.Set","properties":{"values":{},"colour":1}}}}`, "properties.colour", "no property"},
		{"wrong type", `{"name":"f","components":{"a":{"type":"core.Set","properties":{"values":"x"}}}}`, "properties.values", "type object"},
		{"enum", `{"name":"f","components":{"a":{"type":"core.HttpRequest","properties":{"url":"http://x","method":"BREW"}}}}`, "properties.method", "one of"},
		{"missing required", `{"name":"f","components":{"a":{"type":"core.HttpRequest","properties":{}}}}`, "properties.url", "required"},
		{"bad retry", `{"name":"f","components":{"a":{"type":"core.Set","properties":{"values":{}},"retry":{"initialInterval":"soon"}}}}`, "retry", "initialInterval"},
		{"link into trigger", `{"name":"f","components":{"a":{"type":"core.Webhook"},"b":{"type":"core.Webhook"}},"links":[{"from":"a","to":"b"}]}`, "links[0].toPort", "no input port"},
		{"missing port", `{"name":"f","components":{"a":{"type":"core.Webhook"},"b":{"type":"core.Set","properties":{"values":{}}}},"links":[{"from":"a","fromPort":"x","to":"b"}]}`, "links[0].fromPort", "no output port"},
		{"cycle", `{"name":"f","components":{"a":{"type":"core.Set","properties":{"values":{}}},"b":{"type":"core.Set","properties":{"values":{}}}},"links":[{"from":"a","to":"b"},{"from":"b","to":"a"}]}`, "links", "cycle"},
		{"not upstream", `{"name":"f","components":{"hook":{"type":"core.Webhook"},"a":{"type":"core.Set","properties":{"values":{"x":"{{ $.b.y }}"}}},"b":{"type":"core.Set","properties":{"values":{}}}},"links":[{"from":"hook","to":"a"},{"from":"hook","to":"b"}]}`, "properties", "not upstream"},
		{"duplicate link", `{"name":"f","components":{"a":{"type":"core.Webhook"},"b":{"type":"core.Set","properties":{"values":{}}}},"links":[{"from":"a","to":"b"},{"from":"a","fromPort":"out","to":"b"}]}`, "links[1]", "duplicates"},
		{"fan-out", fanOut(12), "links", "at most 1000"},
		{"syntax", `{"name":"f","components":{"a":{"type":"core.Set","properties":{"values":{"x":"{{ 1 + }}"}}}}}`, "properties.values.x", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			doc, err := flow.Parse([]byte(c.doc))
			if err != nil {
				t.Fatal(err)
			}
			compiled, err := flow.Compile(doc, registry())
			if c.field == "" && c.msg == "" {
				if err != nil {
					t.Fatalf("valid flow refused: %v", err)
				}
				if got := compiled.Nodes["hook"].Out["out"]; len(got) != 1 || got[0].Node.ID != "map" {
					t.Fatalf("routing = %+v", got)
				}
				return
			}
			var ve *flow.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a ValidationError", err)
			}
			for _, p := range ve.Problems {
				if (c.field == "" || p.Field == c.field) && strings.Contains(p.Message, c.msg) {
					return
				}
			}
			t.Fatalf("problems %+v do not include field %q with %q", ve.Problems, c.field, c.msg)
		})
	}
}

// fanOut builds a chain of n diamonds: 2^n paths through the last node.
func fanOut(n int) string {
	comps := `"hook":{"type":"core.Webhook"}`
	links := ""
	prev := "hook"
	for i := range n {
		a, b, j := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i), fmt.Sprintf("j%d", i)
		for _, id := range []string{a, b, j} {
			comps += `,"` + id + `":{"type":"core.Set","properties":{"values":{}}}`
		}
		links += fmt.Sprintf(`{"from":%q,"to":%q},{"from":%q,"to":%q},{"from":%q,"to":%q},{"from":%q,"to":%q},`, prev, a, prev, b, a, j, b, j)
		prev = j
	}
	return `{"name":"f","components":{` + comps + `},"links":[` + strings.TrimSuffix(links, ",") + `]}`
}

func TestParseStrict(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{`{"name":"f","colour":1}`, `{"name":`, `{"name":"f"} {}`, `[]`} {
		if _, err := flow.Parse([]byte(doc)); !errors.Is(err, flow.ErrMalformed) {
			t.Errorf("Parse(%s) = %v, want ErrMalformed", doc, err)
		}
	}
}

// literalAction has a literal property, as core.Code has for its script.
type literalAction struct{}

func (literalAction) Spec() component.Spec {
	return component.Spec{
		Type: "test.Literal", Kind: component.KindAction,
		Properties: []component.Property{
			{Name: "source", Type: component.TypeString, Required: true, Literal: true},
			{Name: "note", Type: component.TypeString},
			{Name: "size", Type: component.TypeNumber, Literal: true},
		},
		InPorts: []string{component.PortIn}, OutPorts: []string{component.PortOut},
	}
}

func (literalAction) Invoke(context.Context, component.Invocation) ([]component.Emit, error) {
	return nil, nil
}

// TestLiteralProperties: a literal value is passed as written, "{{" and
// all, and is checked as a constant; the other properties still resolve.
func TestLiteralProperties(t *testing.T) {
	t.Parallel()
	reg := registry()
	reg.Register(literalAction{})
	const source = `if (a) { return "{{ $.hook.body.x }}"; } // {{ not closed`
	doc := &flow.Document{
		Name: "f",
		Components: map[string]flow.ComponentDoc{
			"hook": {Type: "core.Webhook"},
			"lit":  {Type: "test.Literal", Properties: map[string]any{"source": source, "note": "x={{ $.hook.body.x }}"}},
		},
		Links: []flow.Link{{From: "hook", To: "lit"}},
	}
	compiled, err := flow.Compile(doc, reg)
	if err != nil {
		t.Fatal(err)
	}
	n := compiled.Nodes["lit"]
	got, err := n.Properties.Eval(map[string]any{"hook": map[string]any{"body": map[string]any{"x": 7.0}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"source": source, "note": "x=7"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("properties = %#v, want %#v", got, want)
	}
	if refs := n.Properties.References(); !reflect.DeepEqual(refs, []string{"hook"}) {
		t.Fatalf("references = %v", refs)
	}

	// A literal value is a constant: its type is checked when the flow is
	// saved, "{{" or not.
	doc.Components["lit"] = flow.ComponentDoc{Type: "test.Literal", Properties: map[string]any{"source": source, "size": "{{ 1 }}"}}
	_, err = flow.Compile(doc, reg)
	var ve *flow.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Field != "properties.size" {
		t.Fatalf("got %v, want a problem with properties.size", err)
	}
}

// TestCodeIsCheckedOnSave: core.Code's script is compiled when the flow
// is saved; "{{" in it is JavaScript, not a placeholder.
func TestCodeIsCheckedOnSave(t *testing.T) {
	t.Parallel()
	for code, wantErr := range map[string]string{
		`return "{{ $.hook }}".length;`: "",
		"const a = 1;\nreturn {;":       "SyntaxError: Unexpected token ; (line 2, column",
		"":                              "empty",
	} {
		doc := &flow.Document{
			Name: "f",
			Components: map[string]flow.ComponentDoc{
				"hook": {Type: "core.Webhook"},
				"code": {Type: "core.Code", Properties: map[string]any{"code": code}},
			},
			Links: []flow.Link{{From: "hook", To: "code"}},
		}
		_, err := flow.Compile(doc, registry())
		if wantErr == "" {
			if err != nil {
				t.Errorf("%q: %v", code, err)
			}
			continue
		}
		var ve *flow.ValidationError
		if !errors.As(err, &ve) || ve.Problems[0].Field != "properties.code" || !strings.Contains(ve.Problems[0].Message, wantErr) {
			t.Errorf("%q: got %v, want a problem with properties.code: %s", code, err, wantErr)
		}
	}
}

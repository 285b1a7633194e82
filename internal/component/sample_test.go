package component_test

import (
	"reflect"
	"testing"

	"github.com/plugboard/plugboard/internal/component"
)

// sampler builds its sample with fn; its spec has an output sample and a
// property with a default.
type sampler struct {
	fn func(props map[string]any) any
}

func (sampler) Spec() component.Spec {
	return component.Spec{
		Type: "test.Sampler", Kind: component.KindTrigger,
		Properties:   []component.Property{{Name: "label", Type: component.TypeString, Default: "default"}},
		OutputSample: map[string]any{"spec": true},
	}
}

func (s sampler) Sample(props map[string]any) any { return s.fn(props) }

// plain has only a spec.
type plain struct{}

func (plain) Spec() component.Spec {
	return component.Spec{Type: "test.Plain", Kind: component.KindAction, OutputSample: map[string]any{"plain": 1}}
}

func TestInstanceSample(t *testing.T) {
	t.Parallel()
	echo := sampler{fn: func(props map[string]any) any {
		if props["sample"] == nil {
			return nil
		}
		props["changed"] = true // must not reach the caller's map
		return map[string]any{"label": props["label"], "data": props["sample"]}
	}}
	props := map[string]any{"sample": map[string]any{"a": 1}}
	cases := []struct {
		name         string
		c            component.Component
		props        map[string]any
		want         any
		fromInstance bool
	}{
		{"own sample, with defaults", echo, props, map[string]any{"label": "default", "data": map[string]any{"a": 1}}, true},
		{"set property wins over default", echo, map[string]any{"sample": 1, "label": "mine"}, map[string]any{"label": "mine", "data": 1}, true},
		{"no own sample", echo, map[string]any{}, map[string]any{"spec": true}, false},
		{"not a sampler", plain{}, props, map[string]any{"plain": 1}, false},
		{"panicking sampler", sampler{fn: func(map[string]any) any { panic("boom") }}, props, map[string]any{"spec": true}, false},
	}
	for _, tc := range cases {
		got, fromInstance := component.InstanceSample(tc.c, tc.props)
		if !reflect.DeepEqual(got, tc.want) || fromInstance != tc.fromInstance {
			t.Errorf("%s: got %v, %v; want %v, %v", tc.name, got, fromInstance, tc.want, tc.fromInstance)
		}
	}
	if _, changed := props["changed"]; changed || len(props) != 1 {
		t.Errorf("InstanceSample let the sampler change the instance's properties: %v", props)
	}
}

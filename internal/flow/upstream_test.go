package flow_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/plugboard/plugboard/internal/flow"
)

func TestUpstream(t *testing.T) {
	t.Parallel()
	set := map[string]any{"type": "core.Set", "properties": map[string]any{"values": map[string]any{}}}
	// hook feeds z and a, which join; "b2 -> a1" runs against the
	// alphabet; "side" is beside the join, not upstream of it.
	raw, err := json.Marshal(map[string]any{
		"name": "upstream",
		"components": map[string]any{
			"hook": map[string]any{"type": "core.Webhook"},
			"z":    set, "a": set, "join": set, "end": set, "side": set, "b2": set, "a1": set,
		},
		"links": []map[string]string{
			{"from": "hook", "to": "z"}, {"from": "hook", "to": "a"}, {"from": "z", "to": "join"},
			{"from": "a", "to": "join"}, {"from": "join", "to": "end"}, {"from": "hook", "to": "side"},
			{"from": "z", "to": "b2"}, {"from": "b2", "to": "a1"}, {"from": "a1", "to": "end"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := flow.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, err := flow.Compile(doc, registry())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id   string
		want []string
	}{
		{"hook", []string{}},
		{"z", []string{"hook"}},
		{"join", []string{"hook", "a", "z"}},
		{"a1", []string{"hook", "z", "b2"}},
		{"end", []string{"hook", "a", "z", "b2", "a1", "join"}},
		{"side", []string{"hook"}},
	}
	for _, tc := range cases {
		got, ok := c.Upstream(tc.id)
		if !ok || !slices.Equal(got, tc.want) {
			t.Errorf("Upstream(%s) = %v, %v; want %v", tc.id, got, ok, tc.want)
		}
	}
	if got, ok := c.Upstream("nope"); ok || got != nil {
		t.Errorf("Upstream(nope) = %v, %v; want nil, false", got, ok)
	}
}

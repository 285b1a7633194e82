package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestCheckAppEventAnswer(t *testing.T) {
	t.Parallel()
	ids := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = `"c` + strings.Repeat("x", i%3+1) + `"`
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	tests := []struct {
		name, body, wantErr string
	}{
		{"all started", `{"flows":3,"correlationIds":` + ids(3) + `}`, ""},
		{"fewer flows", `{"flows":2,"correlationIds":` + ids(2) + `}`, "started 2 flows, want 3"},
		{"none", `{"flows":0,"correlationIds":[]}`, "started 0 flows, want 3"},
		{"ids missing", `{"flows":3,"correlationIds":` + ids(2) + `}`, "2 correlation ids, want 3"},
		{"empty id", `{"flows":3,"correlationIds":["a","","b"]}`, "empty correlation id"},
		{"no flows field", `{"correlationIds":` + ids(3) + `}`, "no flows"},
		{"empty body", ``, "decoding app event answer"},
		{"not JSON", `accepted`, "decoding app event answer"},
	}
	for _, tt := range tests {
		err := checkAppEventAnswer([]byte(tt.body), 3)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: checkAppEventAnswer = %v, want nil", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: checkAppEventAnswer = %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestDeliveryCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		scenario scenario
		steps    int
		body     string
		wantID   string // empty: the body must be refused
	}{
		{"webhook", scenarioWebhook, 0, `{"email":"u7@example.com","n":7,"source":"bench"}`, "7"},
		{"webhook without email", scenarioWebhook, 0, `{"n":7,"source":"bench"}`, ""},
		{"webhook without n", scenarioWebhook, 0, `{"email":"u7@example.com","source":"bench"}`, ""},
		{"webhook, wrong source", scenarioWebhook, 0, `{"email":"u7@example.com","n":7,"source":"web"}`, ""},
		{"app event", scenarioAppEvents, 0, `{"n":7,"flow":42,"source":"bench"}`, "7/42"},
		{"app event, first flow", scenarioAppEvents, 0, `{"n":7,"flow":0,"source":"bench"}`, "7/0"},
		{"app event without flow", scenarioAppEvents, 0, `{"n":7,"source":"bench"}`, ""},
		{"app event, flow out of range", scenarioAppEvents, 0, `{"n":7,"flow":100,"source":"bench"}`, ""},
		{"app event, n null", scenarioAppEvents, 0, `{"n":null,"flow":1,"source":"bench"}`, ""},
		{"steps, end of chain", scenarioSteps, 10, `{"email":"u7@example.com","n":7,"source":"bench","step":10}`, "7"},
		{"steps, no steps", scenarioSteps, 0, `{"email":"u7@example.com","n":7,"source":"bench","step":0}`, "7"},
		{"steps, chain cut short", scenarioSteps, 10, `{"email":"u7@example.com","n":7,"source":"bench","step":8}`, ""},
		{"steps, no step", scenarioSteps, 10, `{"email":"u7@example.com","n":7,"source":"bench"}`, ""},
		{"not JSON", scenarioWebhook, 0, `n=7`, ""},
	}
	for _, tt := range tests {
		id, err := tt.scenario.deliveryCheck(variant{steps: tt.steps})([]byte(tt.body))
		if tt.wantID == "" {
			if err == nil {
				t.Errorf("%s: accepted %s as %q", tt.name, tt.body, id)
			}
			continue
		}
		if err != nil || id != tt.wantID {
			t.Errorf("%s: id = %q, %v; want %q", tt.name, id, err, tt.wantID)
		}
	}
}

func TestStepKinds(t *testing.T) {
	t.Parallel()
	const s, f, c = typeSet, typeFilter, typeCode
	tests := []struct {
		n    int
		code bool
		want []string
	}{
		{0, false, []string{}},
		{1, false, []string{s}},
		{10, false, []string{f, s, f, s, f, s, f, s, f, s}},
		{10, true, []string{s, f, c, s, f, c, s, f, c, s}},
		{4, true, []string{s, f, c, s}},
		{5, true, []string{c, s, f, c, s}},
	}
	for _, tt := range tests {
		if got := stepKinds(tt.n, tt.code); !slices.Equal(got, tt.want) {
			t.Errorf("stepKinds(%d, %v) = %v, want %v", tt.n, tt.code, got, tt.want)
		}
	}
}

func TestDescribeSteps(t *testing.T) {
	t.Parallel()
	got := describeSteps(stepKinds(10, true))
	if want := "10 steps: 4 core.Set, 3 core.Filter, 3 core.Code"; got != want {
		t.Errorf("describeSteps = %q, want %q", got, want)
	}
}

func TestCodeStep(t *testing.T) {
	t.Parallel()
	spec := func(typ string, io bool, props ...[3]string) componentSpec {
		s := componentSpec{Type: typ, IO: io}
		for _, p := range props {
			s.Properties = append(s.Properties, struct {
				Name     string `json:"name"`
				Type     string `json:"type"`
				Required bool   `json:"required"`
			}{p[0], p[1], p[2] == "required"})
		}
		return s
	}
	set := spec(typeSet, false, [3]string{"values", "object", "required"})
	tests := []struct {
		name        string
		specs       []componentSpec
		prop, cause string
	}{
		{"missing", []componentSpec{set}, "", "not registered"},
		{"found", []componentSpec{set, spec(typeCode, false, [3]string{"code", "string", "required"}, [3]string{"timeout", "string", ""})}, "code", ""},
		{"I/O", []componentSpec{spec(typeCode, true, [3]string{"code", "string", "required"})}, "", "I/O step"},
		{"two required texts", []componentSpec{spec(typeCode, false, [3]string{"a", "string", "required"}, [3]string{"b", "string", "required"})}, "", "no single required text"},
	}
	for _, tt := range tests {
		prop, cause := codeStep(tt.specs)
		if prop != tt.prop || !strings.Contains(cause, tt.cause) || (tt.cause == "") != (cause == "") {
			t.Errorf("%s: codeStep = %q, %q; want %q and a reason containing %q", tt.name, prop, cause, tt.prop, tt.cause)
		}
	}
}

func TestStepsFlow(t *testing.T) {
	t.Parallel()
	kinds := stepKinds(4, true) // Set, Filter, Code, Set
	doc := stepsFlow("http://sink", kinds, "code")
	links, _ := doc["links"].([]map[string]string)
	want := []map[string]string{
		{"from": "hook", "to": "step01"},
		{"from": "step01", "to": "step02"},
		{"from": "step02", "fromPort": "true", "to": "step03"},
		{"from": "step03", "to": "step04"},
		{"from": "step04", "to": "call"},
	}
	if len(links) != len(want) {
		t.Fatalf("links = %v, want %v", links, want)
	}
	for i := range want {
		if !maps.Equal(links[i], want[i]) {
			t.Errorf("link %d = %v, want %v", i, links[i], want[i])
		}
	}
	comps, _ := doc["components"].(map[string]any)
	call, _ := comps["call"].(map[string]any)
	props, _ := call["properties"].(map[string]any)
	if props["body"] != "{{ $.step04 }}" {
		t.Errorf("call body = %v, want the last step's output", props["body"])
	}
	code, _ := comps["step03"].(map[string]any)
	if code["type"] != typeCode {
		t.Errorf("step03 = %v, want %s", code, typeCode)
	}

	bare := stepsFlow("http://sink", nil, "")
	links, _ = bare["links"].([]map[string]string)
	if len(links) != 1 || links[0]["from"] != "hook" || links[0]["to"] != "call" {
		t.Errorf("flow without steps: links = %v, want hook -> call", links)
	}
}

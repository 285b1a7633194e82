package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// scenario is the traffic Plugboard is loaded with. Every scenario but
// polls and proxy runs the same baseline first; those two have their own.
type scenario string

const (
	// scenarioWebhook: webhooks into hook -> map (core.Set) -> call
	// (core.HttpRequest).
	scenarioWebhook scenario = "webhook"
	// scenarioAppEvents: app events, each starting appEventFlows flows of
	// one user, every one of which posts to the sink.
	scenarioAppEvents scenario = "appevents"
	// scenarioSteps: webhooks into a flow with stepsCount non-I/O steps
	// before the call, and into one with none, to price one step.
	scenarioSteps scenario = "steps"
	// scenarioPolls: many flows whose connector trigger polls an API in
	// the load tool, against a plain Go poller (see polls.go).
	scenarioPolls scenario = "polls"
	// scenarioProxy: requests through an account to an API in a process
	// of the load tool's, against the same requests sent to it directly
	// (see proxy.go).
	scenarioProxy scenario = "proxy"
)

var scenarios = []scenario{scenarioWebhook, scenarioAppEvents, scenarioSteps, scenarioPolls, scenarioProxy}

const (
	appEventName  = "bench-event"
	appEventFlows = 100
	appEventUser  = "bench-user@example.com"
	stepsCount    = 10
	benchSource   = "bench" // a constant every delivered body carries

	typeSet    = "core.Set"
	typeFilter = "core.Filter"
	typeCode   = "core.Code"
)

// parseScenario reads the -scenario flag.
func parseScenario(s string) (scenario, error) {
	for _, sc := range scenarios {
		if s == string(sc) {
			return sc, nil
		}
	}
	names := make([]string, len(scenarios))
	for i, sc := range scenarios {
		names[i] = string(sc)
	}
	return "", fmt.Errorf("-scenario: %q is not one of %s", s, strings.Join(names, ", "))
}

// variant is one Plugboard run of a scenario at one concurrency.
type variant struct {
	steps int // scenarioSteps: non-I/O steps between the webhook and the call
}

// variants lists the Plugboard runs a scenario makes at each concurrency,
// after the baseline, in order.
func (s scenario) variants() []variant {
	if s == scenarioSteps {
		return []variant{{steps: 0}, {steps: stepsCount}}
	}
	return []variant{{}}
}

// workload is a scenario set up on a running server: where the load goes,
// how an answer is checked and how many deliveries each accepted request
// must cause.
type workload struct {
	url    string
	token  string             // sent as "Authorization: Bearer", when set
	check  func([]byte) error // checks the body of a 202; nil accepts any
	fanOut int64              // deliveries per accepted request
	note   string             // printed below the table
}

// setup creates and starts the scenario's flows on a server on which api is
// signed in as the admin, all of them delivering to sinkURL.
func (s scenario) setup(ctx context.Context, api *apiClient, sinkURL string, v variant) (workload, error) {
	switch s {
	case scenarioAppEvents:
		return setupAppEvents(ctx, api, sinkURL)
	case scenarioSteps:
		return setupSteps(ctx, api, sinkURL, v.steps)
	}
	return setupWebhookFlow(ctx, api, webhookFlow(sinkURL))
}

// setupWebhookFlow creates and starts doc, whose trigger is the core.Webhook
// "hook", and loads its webhook URL.
func setupWebhookFlow(ctx context.Context, api *apiClient, doc map[string]any) (workload, error) {
	f, err := api.createFlow(ctx, doc)
	if err != nil {
		return workload{}, err
	}
	if f.WebhookURL == "" {
		return workload{}, errors.New("creating flow: answer lacks components.hook.webhookUrl")
	}
	if err := api.startFlow(ctx, f.ID); err != nil {
		return workload{}, err
	}
	return workload{url: f.WebhookURL, fanOut: 1}, nil
}

// setupAppEvents creates a virtual user with a token, and appEventFlows
// running flows of that user taking the app event appEventName. The load
// sends the event with the user's token.
func setupAppEvents(ctx context.Context, api *apiClient, sinkURL string) (workload, error) {
	id, err := api.createVirtualUser(ctx, appEventUser)
	if err != nil {
		return workload{}, err
	}
	token, err := api.createToken(ctx, id)
	if err != nil {
		return workload{}, err
	}
	user := api.as(token)
	for i := range appEventFlows {
		f, err := user.createFlow(ctx, appEventFlow(sinkURL, i))
		if err != nil {
			return workload{}, fmt.Errorf("flow %d of %d: %w", i+1, appEventFlows, err)
		}
		if err := user.startFlow(ctx, f.ID); err != nil {
			return workload{}, fmt.Errorf("flow %d of %d: %w", i+1, appEventFlows, err)
		}
	}
	return workload{
		url:    api.base + "/api/v1/app-events/" + appEventName,
		token:  token,
		check:  func(b []byte) error { return checkAppEventAnswer(b, appEventFlows) },
		fanOut: appEventFlows,
	}, nil
}

// setupSteps creates the flow with steps non-I/O steps; with core.Code
// among them when the server has it.
func setupSteps(ctx context.Context, api *apiClient, sinkURL string, steps int) (workload, error) {
	var (
		codeProp string
		missing  string
	)
	if steps > 0 {
		specs, err := api.components(ctx)
		if err != nil {
			return workload{}, err
		}
		codeProp, missing = codeStep(specs)
	}
	kinds := stepKinds(steps, codeProp != "")
	wl, err := setupWebhookFlow(ctx, api, stepsFlow(sinkURL, kinds, codeProp))
	if err != nil {
		return workload{}, err
	}
	if steps > 0 {
		wl.note = describeSteps(kinds)
		if missing != "" {
			wl.note += "; " + missing + ": " + typeSet + " and " + typeFilter + " only"
		}
	}
	return wl, nil
}

// checkAppEventAnswer checks the body of a 202 to an app event: it must
// say that flows flows started, with one correlation id each.
func checkAppEventAnswer(body []byte, flows int) error {
	var ans struct {
		Flows          *int     `json:"flows"`
		CorrelationIDs []string `json:"correlationIds"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("decoding app event answer: %w", err)
	}
	switch {
	case ans.Flows == nil:
		return errors.New("app event answer has no flows")
	case *ans.Flows != flows:
		return fmt.Errorf("app event started %d flows, want %d", *ans.Flows, flows)
	case len(ans.CorrelationIDs) != flows:
		return fmt.Errorf("app event answer has %d correlation ids, want %d", len(ans.CorrelationIDs), flows)
	}
	for _, id := range ans.CorrelationIDs {
		if id == "" {
			return errors.New("app event answer has an empty correlation id")
		}
	}
	return nil
}

// webhookFlow is hook (core.Webhook) -> map (core.Set) -> call
// (core.HttpRequest), the last posting the mapped body to sinkURL.
func webhookFlow(sinkURL string) map[string]any {
	return map[string]any{
		"name": "bench",
		"components": map[string]any{
			"hook": component("core.Webhook", map[string]any{}),
			"map": component(typeSet, map[string]any{
				"values": map[string]any{
					"email":  "{{ $.hook.body.user.email }}",
					"n":      "{{ $.hook.body.n }}",
					"source": benchSource,
				},
			}),
			"call": postTo(sinkURL, "{{ $.map }}"),
		},
		"links": []map[string]string{
			{"from": "hook", "to": "map"},
			{"from": "map", "to": "call"},
		},
	}
}

// appEventFlow is number i of the app event flows: trigger
// (core.OnAppEvent) -> call (core.HttpRequest), posting the event's
// sequence number and i to sinkURL.
func appEventFlow(sinkURL string, i int) map[string]any {
	return map[string]any{
		"name": fmt.Sprintf("bench %d", i),
		"components": map[string]any{
			"trigger": component("core.OnAppEvent", map[string]any{
				"event":  appEventName,
				"sample": map[string]any{"user": map[string]any{"email": "u1@example.com"}, "n": 1},
			}),
			"call": postTo(sinkURL, map[string]any{
				"n":      "{{ $.trigger.data.n }}",
				"flow":   i,
				"source": benchSource,
			}),
		},
		"links": []map[string]string{{"from": "trigger", "to": "call"}},
	}
}

// stepsFlow is hook (core.Webhook) -> step01 ... stepNN (kinds) -> call
// (core.HttpRequest). Every core.Set maps the webhook's fields and its own
// position; filters pass on port true (their condition always holds); a
// core.Code step, through property codeProp, returns its input. The last
// step is a core.Set, whose output call posts to sinkURL; without steps,
// call maps the same fields itself.
func stepsFlow(sinkURL string, kinds []string, codeProp string) map[string]any {
	comps := map[string]any{"hook": component("core.Webhook", map[string]any{})}
	var links []map[string]string
	prev, prevPort := "hook", ""
	link := func(to string) {
		l := map[string]string{"from": prev, "to": to}
		if prevPort != "" {
			l["fromPort"] = prevPort
		}
		links = append(links, l)
	}
	for i, kind := range kinds {
		id := fmt.Sprintf("step%02d", i+1)
		port := ""
		switch kind {
		case typeSet:
			comps[id] = component(kind, map[string]any{"values": mappedValues(i + 1)})
		case typeFilter:
			comps[id] = component(kind, map[string]any{"condition": "{{ $.hook.body.n > 0 }}"})
			port = "true"
		case typeCode:
			comps[id] = component(kind, map[string]any{codeProp: "return input;"})
		}
		link(id)
		prev, prevPort = id, port
	}
	var body any = mappedValues(0)
	if len(kinds) > 0 {
		body = "{{ $." + prev + " }}"
	}
	comps["call"] = postTo(sinkURL, body)
	link("call")
	return map[string]any{
		"name":       fmt.Sprintf("bench %d steps", len(kinds)),
		"components": comps,
		"links":      links,
	}
}

// mappedValues are the fields a core.Set of the steps flow emits; step is
// its position in the chain.
func mappedValues(step int) map[string]any {
	return map[string]any{
		"email":  "{{ $.hook.body.user.email }}",
		"n":      "{{ $.hook.body.n }}",
		"source": benchSource,
		"step":   step,
	}
}

func component(typ string, props map[string]any) map[string]any {
	return map[string]any{"type": typ, "properties": props}
}

func postTo(sinkURL string, body any) map[string]any {
	return component("core.HttpRequest", map[string]any{"method": "POST", "url": sinkURL, "body": body})
}

// stepKinds returns the component types of n steps: core.Filter and
// core.Set in turn, or core.Set, core.Filter and core.Code in turn with
// code, always ending with a core.Set.
func stepKinds(n int, code bool) []string {
	cycle := []string{typeFilter, typeSet}
	if code {
		cycle = []string{typeSet, typeFilter, typeCode}
	}
	// Shift the cycle so that position n-1 falls on core.Set.
	last := 0
	for i, k := range cycle {
		if k == typeSet {
			last = i
		}
	}
	shift := ((last-(n-1))%len(cycle) + len(cycle)) % len(cycle)
	kinds := make([]string, n)
	for i := range kinds {
		kinds[i] = cycle[(i+shift)%len(cycle)]
	}
	return kinds
}

// describeSteps says how many steps of each type kinds holds, in the order
// they first appear: "10 steps: 5 core.Filter, 5 core.Set".
func describeSteps(kinds []string) string {
	var order []string
	count := map[string]int{}
	for _, k := range kinds {
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = strconv.Itoa(count[k]) + " " + k
	}
	return fmt.Sprintf("%d steps: %s", len(kinds), strings.Join(parts, ", "))
}

// codeStep finds core.Code among the server's components. It returns the
// property that holds the script, or why core.Code cannot be used: it is
// missing, it is an I/O step (which would run as a job rather than inline),
// or its script property is not the one required text property.
func codeStep(specs []componentSpec) (prop, missing string) {
	for _, s := range specs {
		if s.Type != typeCode {
			continue
		}
		if s.IO {
			return "", typeCode + " is an I/O step on this server"
		}
		var text []string
		for _, p := range s.Properties {
			if p.Required && p.Type == "string" {
				text = append(text, p.Name)
			}
		}
		if len(text) != 1 {
			return "", typeCode + " has no single required text property for its script"
		}
		return text[0], ""
	}
	return "", typeCode + " is not registered on this server"
}

// deliveryCheck returns the sink's check of a delivered body for this
// scenario: it returns the body's identity, which must be unique among
// deliveries (the webhook's sequence number; with app events, that and
// the flow's index), or why the body is not what the flow sends.
func (s scenario) deliveryCheck(v variant) func(body []byte) (string, error) {
	return func(body []byte) (string, error) {
		var d struct {
			Email  string          `json:"email"`
			N      json.RawMessage `json:"n"`
			Source string          `json:"source"`
			Step   *int            `json:"step"`
			Flow   *int            `json:"flow"`
		}
		if err := json.Unmarshal(body, &d); err != nil {
			return "", fmt.Errorf("decoding body: %w", err)
		}
		n := string(bytes.TrimSpace(d.N))
		switch {
		case d.Source != benchSource:
			return "", fmt.Errorf("source is %q, want %q", d.Source, benchSource)
		case n == "" || n == "null":
			return "", errors.New("no sequence number n")
		}
		switch s {
		case scenarioAppEvents:
			if d.Flow == nil || *d.Flow < 0 || *d.Flow >= appEventFlows {
				return "", fmt.Errorf("flow must be an index below %d", appEventFlows)
			}
			return n + "/" + strconv.Itoa(*d.Flow), nil
		case scenarioSteps:
			if d.Step == nil || *d.Step != v.steps {
				return "", fmt.Errorf("step must be %d, the last of the chain", v.steps)
			}
		}
		if !strings.HasSuffix(d.Email, "@example.com") {
			return "", fmt.Errorf("email %q is not the mapped one", d.Email)
		}
		return n, nil
	}
}

package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugboard/plugboard/internal/api"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// pingAction is a test component of an installable connector: it passes
// its input on.
type pingAction struct{ typ string }

func (p pingAction) Spec() component.Spec {
	return component.Spec{Type: p.typ, Kind: component.KindAction, Description: "Passes its input on.",
		InPorts: []string{component.PortIn}, OutPorts: []string{component.PortOut}}
}

func (p pingAction) Invoke(_ context.Context, inv component.Invocation) ([]component.Emit, error) {
	return []component.Emit{{Port: component.PortOut, Value: inv.Input}}, nil
}

// installedList is the connectors the test has "installed".
type installedList struct {
	mu    sync.Mutex
	names []string
}

func (l *installedList) InstalledConnectors(context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.names), nil
}

func (l *installedList) install(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, name)
}

// newACLEnv is an API node whose registry holds the core components and
// alpha.Ping and beta.Ping, of which only core and alpha are installed.
// No message runs, so the engine is not started.
func newACLEnv(t *testing.T, backend string) (*env, *installedList) {
	t.Helper()
	st := storetest.Open(t, backend)
	comps := component.NewRegistry()
	core.Register(comps, core.Deps{HTTP: outbound.NewClient(outbound.Options{}), MaxResponseBytes: 1 << 20})
	comps.Register(pingAction{"alpha.Ping"})
	comps.Register(pingAction{"beta.Ping"})
	eng, err := engine.New(t.Context(), engine.Config{Store: st, Registry: comps, Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	installed := &installedList{names: []string{"alpha", "core"}}
	a, err := api.New(api.Config{Store: st, Engine: eng, Registry: comps, Installed: installed})
	if err != nil {
		t.Fatal(err)
	}
	a.SetReady(true)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, store: st, srv: srv, shutdown: srv.Close}
	if _, err := createAdmin(e); err != nil {
		t.Fatal(err)
	}
	e.signInAdmin()
	return e, installed
}

// pingFlow is "webhook -> each of types", the components named c0, c1...
func pingFlow(types ...string) map[string]any {
	comps := map[string]any{"hook": map[string]any{"type": "core.Webhook", "properties": map[string]any{}}}
	var links []map[string]any
	for i, typ := range types {
		id := fmt.Sprintf("c%d", i)
		props := map[string]any{}
		if typ == "core.Set" {
			props["values"] = map[string]any{"n": 1}
		}
		comps[id] = map[string]any{"type": typ, "properties": props}
		links = append(links, map[string]any{"from": "hook", "to": id})
	}
	return map[string]any{"name": "ping", "components": comps, "links": links}
}

type aclRules struct {
	Rules []map[string]string `json:"rules"`
}

type aclProblem struct {
	Detail string `json:"detail"`
	Errors []struct {
		Component string `json:"component"`
		Field     string `json:"field"`
	} `json:"errors"`
}

var defaultRule = map[string]string{"role": "user", "resource": "*", "action": "*"}

// componentTypes lists the component types the token's user may use.
func (e *env) componentTypes(token string) []string {
	e.t.Helper()
	var l struct{ Items []struct{ Type string } }
	e.do("GET", "/api/v1/components", token, nil, http.StatusOK, &l)
	var out []string
	for _, it := range l.Items {
		out = append(out, it.Type)
	}
	return out
}

func (e *env) putRules(rules ...map[string]string) {
	e.t.Helper()
	if rules == nil {
		rules = []map[string]string{}
	}
	e.do("PUT", "/api/v1/acl/rules", e.admin, aclRules{Rules: rules}, http.StatusOK, nil)
}

func (e *env) rules() []map[string]string {
	e.t.Helper()
	var got aclRules
	e.do("GET", "/api/v1/acl/rules", e.admin, nil, http.StatusOK, &got)
	return got.Rules
}

// checkDenied checks a 403 answer names the connector and the components.
func checkDenied(t *testing.T, body []byte, connector string, components ...string) {
	t.Helper()
	var p aclProblem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Detail, connector) {
		t.Errorf("detail %q does not name connector %s", p.Detail, connector)
	}
	var got []string
	for _, e := range p.Errors {
		got = append(got, e.Component)
	}
	if !slices.Equal(got, components) {
		t.Errorf("errors name components %v, want %v", got, components)
	}
}

func TestACLRulesEndpoints(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e, _ := newACLEnv(t, backend)
			aliceID, alice := e.user("alice@example.com")

			if got := e.rules(); len(got) != 1 || !mapsEqual(got[0], defaultRule) {
				t.Fatalf("rules of a new installation = %v, want the default rule", got)
			}

			// Users may not read or change the rules.
			e.do("GET", "/api/v1/acl/rules", alice, nil, http.StatusForbidden, nil)
			e.do("PUT", "/api/v1/acl/rules", alice, aclRules{Rules: []map[string]string{}}, http.StatusForbidden, nil)
			e.do("POST", "/api/v1/acl/rules/installed-connectors", alice, nil, http.StatusForbidden, nil)

			// A bad rule is refused with its index and field; nothing changes.
			for _, tc := range []struct {
				rule  map[string]string
				field string
			}{
				{map[string]string{"resource": "*", "action": "*"}, "rules[1].role"},
				{map[string]string{"role": "user", "userId": aliceID, "resource": "*", "action": "*"}, "rules[1].userId"},
				{map[string]string{"role": "guest", "resource": "*", "action": "*"}, "rules[1].role"},
				{map[string]string{"role": "user", "resource": "alpha.Ping", "action": "*"}, "rules[1].resource"},
				{map[string]string{"role": "user", "resource": "alpha", "action": "delete"}, "rules[1].action"},
				{map[string]string{"userId": "no-such-user", "resource": "alpha", "action": "use"}, "rules[1].userId"},
				{map[string]string{"role": "user", "resource": "alpha", "action": "use"}, "rules[1].role"},
			} {
				var p struct {
					Errors []struct{ Field string } `json:"errors"`
				}
				e.do("PUT", "/api/v1/acl/rules", e.admin, aclRules{Rules: []map[string]string{
					{"role": "user", "resource": "alpha", "action": "use"}, tc.rule,
				}}, http.StatusUnprocessableEntity, &p)
				if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
					t.Errorf("rule %v: errors %+v, want field %s", tc.rule, p.Errors, tc.field)
				}
			}
			e.do("PUT", "/api/v1/acl/rules", e.admin, `{}`, http.StatusUnprocessableEntity, nil)
			e.do("PUT", "/api/v1/acl/rules", e.admin, `{"rules":[{"role":"user","resource":"*","action":"*","extra":1}]}`, http.StatusBadRequest, nil)
			if got := e.rules(); len(got) != 1 || !mapsEqual(got[0], defaultRule) {
				t.Fatalf("rules after refused changes = %v, want the default rule", got)
			}

			// A valid list replaces every rule, in order.
			want := []map[string]string{
				{"userId": aliceID, "resource": "beta", "action": "*"},
				{"role": "user", "resource": "alpha", "action": "use"},
			}
			e.putRules(want...)
			if got := e.rules(); !slices.EqualFunc(got, want, mapsEqual) {
				t.Errorf("rules = %v, want %v", got, want)
			}
		})
	}
}

func TestACLDefaultRuleAndRevoke(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e, _ := newACLEnv(t, backend)
			_, alice := e.user("alice@example.com")

			// The default rule lets a user use everything.
			types := e.componentTypes(alice)
			if !slices.Contains(types, "alpha.Ping") || !slices.Contains(types, "beta.Ping") || !slices.Contains(types, "core.Webhook") {
				t.Fatalf("components under the default rule = %v", types)
			}
			running := e.startFlow(alice, pingFlow("alpha.Ping"))
			var stopped flowResp
			e.do("POST", "/api/v1/flows", alice, pingFlow("beta.Ping"), http.StatusCreated, &stopped)

			// Removing it revokes every installed connector, not core.
			e.putRules()
			types = e.componentTypes(alice)
			if slices.Contains(types, "alpha.Ping") || slices.Contains(types, "beta.Ping") || !slices.Contains(types, "core.Webhook") {
				t.Errorf("components once revoked = %v, want core only", types)
			}
			body := e.do("POST", "/api/v1/flows", alice, pingFlow("core.Set", "alpha.Ping", "alpha.Ping"), http.StatusForbidden, nil)
			checkDenied(t, body, "alpha", "c1", "c2")
			body = e.do("PUT", "/api/v1/flows/"+running.ID, alice, pingFlow("alpha.Ping"), http.StatusForbidden, nil)
			checkDenied(t, body, "alpha", "c0")
			body = e.do("POST", "/api/v1/flows/"+stopped.ID, alice, map[string]string{"command": "start"}, http.StatusForbidden, nil)
			checkDenied(t, body, "beta", "c0")
			e.do("POST", "/api/v1/flows", alice, pingFlow("core.Set"), http.StatusCreated, nil)

			// A flow already running keeps running, and can be stopped.
			var f flowResp
			e.do("GET", "/api/v1/flows/"+running.ID, alice, nil, http.StatusOK, &f)
			if f.Stage != "running" {
				t.Errorf("running flow is %s after the revoke, want running", f.Stage)
			}
			e.do("POST", "/api/v1/flows/"+running.ID, alice, map[string]string{"command": "stop"}, http.StatusOK, nil)
			e.do("POST", "/api/v1/flows/"+running.ID, alice, map[string]string{"command": "start"}, http.StatusForbidden, nil)

			// Admins always pass, for their own flows.
			if types := e.componentTypes(e.admin); !slices.Contains(types, "alpha.Ping") || !slices.Contains(types, "beta.Ping") {
				t.Errorf("components of an admin = %v, want all", types)
			}
			e.startFlow(e.admin, pingFlow("alpha.Ping", "beta.Ping"))

			// Restoring the default rule grants everything again.
			e.putRules(defaultRule)
			e.do("POST", "/api/v1/flows/"+stopped.ID, alice, map[string]string{"command": "start"}, http.StatusOK, nil)
		})
	}
}

func TestACLPerConnectorAndPerUserRules(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e, _ := newACLEnv(t, backend)
			_, alice := e.user("alice@example.com")
			bobID, bob := e.user("bob@example.com")
			var aliceFlow flowResp
			e.do("POST", "/api/v1/flows", alice, pingFlow("core.Set"), http.StatusCreated, &aliceFlow)

			e.putRules(
				map[string]string{"role": "user", "resource": "alpha", "action": "use"},
				map[string]string{"userId": bobID, "resource": "beta", "action": "*"},
			)
			if types := e.componentTypes(alice); !slices.Contains(types, "alpha.Ping") || slices.Contains(types, "beta.Ping") {
				t.Errorf("alice's components = %v, want alpha but not beta", types)
			}
			if types := e.componentTypes(bob); !slices.Contains(types, "alpha.Ping") || !slices.Contains(types, "beta.Ping") {
				t.Errorf("bob's components = %v, want alpha and beta", types)
			}
			e.do("POST", "/api/v1/flows", alice, pingFlow("alpha.Ping"), http.StatusCreated, nil)
			e.do("POST", "/api/v1/flows", alice, pingFlow("beta.Ping"), http.StatusForbidden, nil)
			e.startFlow(bob, pingFlow("alpha.Ping", "beta.Ping"))

			// An admin saving alice's flow is held to alice's rights: the
			// flow runs as its owner.
			body := e.do("PUT", "/api/v1/flows/"+aliceFlow.ID, e.admin, pingFlow("beta.Ping"), http.StatusForbidden, nil)
			checkDenied(t, body, "beta", "c0")
		})
	}
}

func TestACLInstalledConnectors(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e, installed := newACLEnv(t, backend)
			_, alice := e.user("alice@example.com")
			alphaRule := map[string]string{"role": "user", "resource": "alpha", "action": "use"}

			// One rule per installed connector (core needs none), added once.
			for range 2 {
				var got aclRules
				e.do("POST", "/api/v1/acl/rules/installed-connectors", e.admin, nil, http.StatusOK, &got)
				if want := []map[string]string{defaultRule, alphaRule}; !slices.EqualFunc(got.Rules, want, mapsEqual) {
					t.Fatalf("rules = %v, want %v", got.Rules, want)
				}
			}
			e.putRules(alphaRule)

			// beta is installed later: hidden from users until granted.
			installed.install("beta")
			if types := e.componentTypes(alice); !slices.Contains(types, "alpha.Ping") || slices.Contains(types, "beta.Ping") {
				t.Errorf("components = %v, want alpha but not beta", types)
			}
			body := e.do("POST", "/api/v1/flows", alice, pingFlow("beta.Ping"), http.StatusForbidden, nil)
			checkDenied(t, body, "beta", "c0")

			var got aclRules
			e.do("POST", "/api/v1/acl/rules/installed-connectors", e.admin, nil, http.StatusOK, &got)
			betaRule := map[string]string{"role": "user", "resource": "beta", "action": "use"}
			if want := []map[string]string{alphaRule, betaRule}; !slices.EqualFunc(got.Rules, want, mapsEqual) {
				t.Fatalf("rules = %v, want %v", got.Rules, want)
			}
			if types := e.componentTypes(alice); !slices.Contains(types, "beta.Ping") {
				t.Errorf("components once granted = %v, want beta", types)
			}
			e.do("POST", "/api/v1/flows", alice, pingFlow("beta.Ping"), http.StatusCreated, nil)
		})
	}
}

// TestACLChangeReachesOtherNodes checks that a node sees rules changed on
// another node within acl.MaxStale.
func TestACLChangeReachesOtherNodes(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e, _ := newACLEnv(t, backend)
			_, alice := e.user("alice@example.com")
			if !slices.Contains(e.componentTypes(alice), "alpha.Ping") {
				t.Fatal("alpha hidden under the default rule")
			}
			// Another node writes straight to the shared database.
			if err := e.store.ReplaceACLRules(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "the revoke to apply", func() bool {
				return !slices.Contains(e.componentTypes(alice), "alpha.Ping")
			})
		})
	}
}

func mapsEqual(a, b map[string]string) bool { return maps.Equal(a, b) }

// TestACLInstalledConnectorsOfStore runs the grant on the default list of
// installed connectors: core is built in and needs no rule, and nothing
// else is installed yet.
func TestACLInstalledConnectorsOfStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	var got aclRules
	e.do("POST", "/api/v1/acl/rules/installed-connectors", e.admin, nil, http.StatusOK, &got)
	if want := []map[string]string{defaultRule}; !slices.EqualFunc(got.Rules, want, mapsEqual) {
		t.Fatalf("rules = %v, want %v", got.Rules, want)
	}
}

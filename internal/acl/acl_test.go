package acl_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/acl"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/store"
)

func TestACLAllowed(t *testing.T) {
	t.Parallel()
	ada := acl.Subject{UserID: "ada", Role: store.RoleUser}
	bob := acl.Subject{UserID: "bob", Role: store.RoleUser}
	root := acl.Subject{UserID: "root", Role: store.RoleAdmin}
	tests := []struct {
		name      string
		rules     []acl.Rule
		sub       acl.Subject
		connector string
		want      bool
	}{
		{"default rule grants everything", []acl.Rule{acl.DefaultRule}, ada, "crm", true},
		{"no rules deny", nil, ada, "crm", false},
		{"core is always usable", nil, ada, acl.CoreConnector, true},
		{"admins always pass", nil, root, "crm", true},
		{"per-connector rule grants it", []acl.Rule{{Role: "user", Resource: "crm", Action: "use"}}, ada, "crm", true},
		{"per-connector rule grants nothing else", []acl.Rule{{Role: "user", Resource: "crm", Action: "use"}}, ada, "mail", false},
		{"per-user rule grants that user", []acl.Rule{{UserID: "ada", Resource: "crm", Action: "*"}}, ada, "crm", true},
		{"per-user rule grants no one else", []acl.Rule{{UserID: "ada", Resource: "crm", Action: "*"}}, bob, "crm", false},
		{"admin-role rule does not grant users", []acl.Rule{{Role: "admin", Resource: "*", Action: "*"}}, ada, "crm", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := acl.Allowed(tt.rules, tt.sub, tt.connector); got != tt.want {
				t.Errorf("Allowed = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestACLValidate(t *testing.T) {
	t.Parallel()
	ok := acl.Rule{Role: "user", Resource: "crm", Action: "use"}
	tests := []struct {
		name  string
		rules []acl.Rule
		index int
		field string // "" when valid
	}{
		{"valid", []acl.Rule{acl.DefaultRule, ok, {UserID: "u1", Resource: "*", Action: "use"}}, 0, ""},
		{"empty list", nil, 0, ""},
		{"no subject", []acl.Rule{ok, {Resource: "*", Action: "*"}}, 1, "role"},
		{"both subjects", []acl.Rule{{Role: "user", UserID: "u1", Resource: "*", Action: "*"}}, 0, "userId"},
		{"unknown role", []acl.Rule{{Role: "guest", Resource: "*", Action: "*"}}, 0, "role"},
		{"bad resource", []acl.Rule{ok, {Role: "user", Resource: "core.Webhook", Action: "*"}}, 1, "resource"},
		{"empty resource", []acl.Rule{{Role: "user", Action: "*"}}, 0, "resource"},
		{"bad action", []acl.Rule{{Role: "user", Resource: "*", Action: "write"}}, 0, "action"},
		{"duplicate", []acl.Rule{ok, ok}, 1, "role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := acl.Validate(tt.rules)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var re *acl.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("Validate = %v, want a *RuleError", err)
			}
			if re.Index != tt.index || re.Field != tt.field {
				t.Errorf("error at rules[%d].%s, want rules[%d].%s (%v)", re.Index, re.Field, tt.index, tt.field, err)
			}
		})
	}
}

func TestACLDenied(t *testing.T) {
	t.Parallel()
	rules := []acl.Rule{{Role: "user", Resource: "crm", Action: "use"}}
	got := acl.Denied(rules, acl.Subject{UserID: "ada", Role: "user"}, map[string]string{
		"hook": "core.Webhook", "b": "mail.Send", "a": "mail.Send", "c": "crm.Find",
	})
	if len(got) != 1 || !slices.Equal(got["mail"], []string{"a", "b"}) {
		t.Errorf("Denied = %v, want map[mail:[a b]]", got)
	}
}

type spec struct{ typ string }

func (s spec) Spec() component.Spec { return component.Spec{Type: s.typ, Kind: component.KindTrigger} }

func TestACLConnectors(t *testing.T) {
	t.Parallel()
	reg := component.NewRegistry()
	for _, typ := range []string{"crm.Find", "core.Webhook", "crm.Create", "core.Set"} {
		reg.Register(spec{typ})
	}
	got, err := acl.Connectors(reg, nil).InstalledConnectors(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"core", "crm"}) {
		t.Errorf("installed = %v, want [core crm]", got)
	}
}

// source counts loads and serves whatever rules it holds.
type source struct {
	mu    sync.Mutex
	rules []acl.Rule
	loads int
}

func (s *source) ACLRules(context.Context) ([]acl.Rule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	return slices.Clone(s.rules), nil
}

func TestACLCacheReloadsWhenStale(t *testing.T) {
	t.Parallel()
	src := &source{rules: []acl.Rule{acl.DefaultRule}}
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := acl.NewCache(src, clock)

	rules, err := c.Rules(t.Context())
	if err != nil || len(rules) != 1 {
		t.Fatalf("Rules = %v, %v", rules, err)
	}
	// Another node changes the rules: served from memory until stale.
	src.mu.Lock()
	src.rules = nil
	src.mu.Unlock()
	advance(acl.MaxStale / 2)
	if rules, _ := c.Rules(t.Context()); len(rules) != 1 || src.loads != 1 {
		t.Fatalf("fresh cache reloaded: %v after %d loads", rules, src.loads)
	}
	advance(acl.MaxStale)
	if rules, _ := c.Rules(t.Context()); len(rules) != 0 || src.loads != 2 {
		t.Fatalf("stale cache not reloaded: %v after %d loads", rules, src.loads)
	}
	// A change made on this node applies at once.
	c.Set([]acl.Rule{acl.DefaultRule})
	if rules, _ := c.Rules(t.Context()); len(rules) != 1 || src.loads != 2 {
		t.Fatalf("Set not served: %v after %d loads", rules, src.loads)
	}
}

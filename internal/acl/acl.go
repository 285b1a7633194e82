// Package acl decides which connectors a user may use. Rules name a role
// or a user, a resource (a connector name or "*") and an action ("use" or
// "*"); a user may use a connector when some rule grants it. Admins may
// always use every connector, and the built-in core connector is the
// platform itself: it is always usable, whatever the rules say.
package acl

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/store"
)

// Rule is one access rule.
type Rule = store.ACLRule

// Wildcards and actions.
const (
	// Any matches every resource or every action.
	Any = "*"
	// ActionUse is using a connector: seeing its components, saving and
	// starting flows with them.
	ActionUse = "use"
)

// CoreConnector is the built-in connector. It is exempt from the rules:
// this is the one place that decides so.
const CoreConnector = "core"

// Exempt reports whether connector is usable by everyone, whatever the
// rules say.
func Exempt(connector string) bool { return connector == CoreConnector }

// DefaultRule is the rule a new installation starts with: every user may
// use every connector.
var DefaultRule = Rule{Role: store.RoleUser, Resource: Any, Action: Any}

// Subject is who asks: a user id and its role.
type Subject struct {
	UserID string
	Role   string
}

// ConnectorOf returns the connector of a component type such as
// "core.Webhook" (the part before the first dot).
func ConnectorOf(componentType string) string {
	name, _, _ := strings.Cut(componentType, ".")
	return name
}

// Allowed reports whether sub may use connector under rules. Admins and
// the exempt core connector always pass.
func Allowed(rules []Rule, sub Subject, connector string) bool {
	if sub.Role == store.RoleAdmin || Exempt(connector) {
		return true
	}
	for _, r := range rules {
		who := (r.Role != "" && r.Role == sub.Role) || (r.UserID != "" && r.UserID == sub.UserID)
		if who && (r.Resource == Any || r.Resource == connector) && (r.Action == Any || r.Action == ActionUse) {
			return true
		}
	}
	return false
}

// RuleError is an invalid rule: its index in the list and the field at
// fault.
type RuleError struct {
	Index   int
	Field   string
	Message string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rules[%d].%s: %s", e.Index, e.Field, e.Message)
}

var connectorName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// Validate checks every rule and returns a *RuleError for the first one at
// fault; a rule written twice is an error too.
func Validate(rules []Rule) error {
	seen := make(map[Rule]int, len(rules))
	for i, r := range rules {
		if err := validate(r); err != nil {
			err.Index = i
			return err
		}
		if j, dup := seen[r]; dup {
			field := "role"
			if r.UserID != "" {
				field = "userId"
			}
			return &RuleError{Index: i, Field: field, Message: fmt.Sprintf("repeats rules[%d]", j)}
		}
		seen[r] = i
	}
	return nil
}

func validate(r Rule) *RuleError {
	switch {
	case r.Role == "" && r.UserID == "":
		return &RuleError{Field: "role", Message: "a rule needs a role or a userId"}
	case r.Role != "" && r.UserID != "":
		return &RuleError{Field: "userId", Message: "a rule has a role or a userId, not both"}
	case r.Role != "" && r.Role != store.RoleAdmin && r.Role != store.RoleUser:
		return &RuleError{Field: "role", Message: "must be admin or user"}
	case r.Resource != Any && !connectorName.MatchString(r.Resource):
		return &RuleError{Field: "resource", Message: `must be a connector name (letters, digits, "_" and "-") or "*"`}
	case r.Action != Any && r.Action != ActionUse:
		return &RuleError{Field: "action", Message: `must be "use" or "*"`}
	}
	return nil
}

// Installed lists the names of the installed connectors.
type Installed interface {
	InstalledConnectors(ctx context.Context) ([]string, error)
}

// InstalledFunc adapts a function to Installed.
type InstalledFunc func(ctx context.Context) ([]string, error)

// InstalledConnectors calls f.
func (f InstalledFunc) InstalledConnectors(ctx context.Context) ([]string, error) { return f(ctx) }

// Connectors lists as installed the connectors of the components
// registered in reg (the built-in ones) and those installed in st (nil for
// none), sorted.
func Connectors(reg *component.Registry, st *store.Store) Installed {
	return InstalledFunc(func(ctx context.Context) ([]string, error) {
		var out []string
		for _, s := range reg.Specs() {
			out = append(out, ConnectorOf(s.Type))
		}
		if st != nil {
			installed, err := st.InstalledConnectors(ctx)
			if err != nil {
				return nil, err
			}
			for _, c := range installed {
				out = append(out, c.Name)
			}
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	})
}

// Source loads the stored rules.
type Source interface {
	ACLRules(ctx context.Context) ([]Rule, error)
}

// MaxStale is how long a Cache serves rules without reading them again:
// a change made on another node applies here within that time.
const MaxStale = time.Second

// Cache holds the rules in memory and reads them again when they are
// older than MaxStale. It is safe for concurrent use.
type Cache struct {
	src Source
	now func() time.Time

	mu       sync.Mutex
	rules    []Rule
	loadedAt time.Time
	loaded   bool
}

// NewCache returns a cache over src; now is the clock (nil for time.Now).
func NewCache(src Source, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{src: src, now: now}
}

// Rules returns the current rules. The slice must not be changed.
func (c *Cache) Rules(ctx context.Context) ([]Rule, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded && c.now().Sub(c.loadedAt) < MaxStale {
		return c.rules, nil
	}
	rules, err := c.src.ACLRules(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading access rules: %w", err)
	}
	c.rules, c.loadedAt, c.loaded = rules, c.now(), true
	return rules, nil
}

// Set replaces the cached rules with rules just written to the store.
func (c *Cache) Set(rules []Rule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rules, c.loadedAt, c.loaded = slices.Clone(rules), c.now(), true
}

// Denied takes the components of a flow (id to type) and returns, by
// connector, the sorted ids of those whose connector sub may not use.
func Denied(rules []Rule, sub Subject, components map[string]string) map[string][]string {
	out := map[string][]string{}
	for id, typ := range components {
		if c := ConnectorOf(typ); !Allowed(rules, sub, c) {
			out[c] = append(out[c], id)
		}
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

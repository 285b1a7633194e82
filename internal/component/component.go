// Package component defines what a flow step is: its declarative spec, the
// interfaces triggers and actions implement, and the registry that maps a
// namespaced type such as "core.Webhook" to its implementation.
package component

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plugboard/plugboard/internal/outbound"
)

// Kind tells whether a component starts a flow or acts on a message.
type Kind string

// Component kinds.
const (
	KindTrigger Kind = "trigger"
	KindAction  Kind = "action"
)

// Default port names.
const (
	PortIn  = "in"
	PortOut = "out"
)

// PropertyType is the JSON type a property value must have once its
// placeholders are resolved.
type PropertyType string

// Property types.
const (
	TypeString  PropertyType = "string"
	TypeNumber  PropertyType = "number"
	TypeBoolean PropertyType = "boolean"
	TypeObject  PropertyType = "object"
	TypeArray   PropertyType = "array"
	TypeAny     PropertyType = "any"
)

// Property describes one configurable field of a component.
type Property struct {
	Name        string       `json:"name"`
	Type        PropertyType `json:"type"`
	Description string       `json:"description"`
	Required    bool         `json:"required,omitempty"`
	Default     any          `json:"default,omitempty"`
	Enum        []string     `json:"enum,omitempty"`
	Example     any          `json:"example,omitempty"`
	// Literal marks a value that is passed to the component exactly as
	// written: "{{" in it is text, not a placeholder. For source code and
	// templates of other languages.
	Literal bool `json:"literal,omitempty"`
}

// Spec is the declarative description of a component. It drives flow
// validation, documentation and the designer's forms.
type Spec struct {
	Type         string     `json:"type"`
	Kind         Kind       `json:"kind"`
	Description  string     `json:"description"`
	Properties   []Property `json:"properties"`
	InPorts      []string   `json:"inPorts"`
	OutPorts     []string   `json:"outPorts"`
	OutputSample any        `json:"outputSample,omitempty"`
	// ExampleFlow is a small flow document using the component, shown in
	// the reference documentation (a test checks that it compiles).
	ExampleFlow map[string]any `json:"exampleFlow,omitempty"`
	// IO is true when an invocation talks to the outside world. Such a step
	// runs as a durable job of its own; steps without I/O run inline in the
	// job (or the accept) before them.
	IO bool `json:"io"`
}

// Property returns the named property spec.
func (s Spec) Property(name string) (Property, bool) {
	for _, p := range s.Properties {
		if p.Name == name {
			return p, true
		}
	}
	return Property{}, false
}

// HasPort reports whether ports contains name.
func HasPort(ports []string, name string) bool {
	for _, p := range ports {
		if p == name {
			return true
		}
	}
	return false
}

// Invocation is one run of an action on one message.
type Invocation struct {
	FlowID string
	// OwnerID is the user who owns the flow: a step acts as that user (for
	// instance when it uses one of their accounts), never as an admin.
	OwnerID       string
	ComponentID   string
	MessageID     string // idempotency key: stable across retries of this step
	CorrelationID string
	Attempt       int
	// Properties holds the component's property values with every
	// placeholder resolved against the message's scope.
	Properties map[string]any
	// Input is the value that arrived on the input port.
	Input any
	// Scope holds the outputs of the components upstream, by component id:
	// what placeholders read as $. Components must not change it.
	Scope map[string]any
}

// Emit is one output value on one port.
type Emit struct {
	Port  string
	Value any
}

// Action is a component that acts on a message and emits values.
type Action interface {
	Spec() Spec
	Invoke(ctx context.Context, inv Invocation) ([]Emit, error)
}

// Trigger is a component that starts a flow from outside events. The engine
// and API feed triggers; the interface carries only the spec.
type Trigger interface {
	Spec() Spec
}

// Component is either a Trigger or an Action.
type Component interface {
	Spec() Spec
}

// PermanentError marks a failure that retrying cannot fix (a 4xx answer, a
// bad property). The engine moves the message to the unprocessed store at
// once instead of retrying.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err, or any error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// PermanentIfFinal marks err, of an outbound call, permanent when trying
// again cannot mend it (outbound.IsFinal: a refused address, an answer
// over the cap); otherwise it returns err as it is, to be retried.
func PermanentIfFinal(err error) error {
	if outbound.IsFinal(err) {
		return Permanent(err)
	}
	return err
}

// StatusFailure is err, the failure of an answer with error status code:
// retried when the call may pass if made again (outbound.RetryableStatus:
// 408, 429, 5xx), permanent otherwise.
func StatusFailure(code int, err error) error {
	if outbound.RetryableStatus(code) {
		return err
	}
	return Permanent(err)
}

// RetryPolicy says how often and how fast a failing step is retried.
type RetryPolicy struct {
	MaxAttempts     int
	InitialInterval time.Duration
	MaxInterval     time.Duration
}

// DefaultRetry is the policy of a component that sets none.
var DefaultRetry = RetryPolicy{MaxAttempts: 10, InitialInterval: time.Second, MaxInterval: time.Hour}

// Registry maps component types to implementations. The built-in ones are
// registered at start-up; an installed connector's are set, replaced and
// removed while the server runs (SetConnector), so it is safe for
// concurrent use. Generation changes whenever the set changes, so that
// flows compiled against an older set are compiled again.
type Registry struct {
	mu     sync.RWMutex
	byType map[string]Component
	order  []string
	gen    atomic.Uint64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byType: map[string]Component{}} }

// Register adds c. It panics on a duplicate type: registration happens at
// start-up, and a duplicate is a programming error.
func (r *Registry) Register(c Component) {
	t := c.Spec().Type
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byType[t]; dup {
		panic(fmt.Sprintf("component: duplicate registration of %s", t))
	}
	r.byType[t] = c
	r.order = append(r.order, t)
	r.gen.Add(1)
}

// SetConnector makes comps the components of connector name (types
// "<name>.<component>"), replacing any it had; no comps removes them.
func (r *Registry) SetConnector(name string, comps []Component) error {
	prefix := name + "."
	seen := map[string]bool{}
	for _, c := range comps {
		t := c.Spec().Type
		if !strings.HasPrefix(t, prefix) {
			return fmt.Errorf("component %s is not of connector %s", t, name)
		}
		if seen[t] {
			return fmt.Errorf("component %s is given twice", t)
		}
		seen[t] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	order := r.order[:0:0]
	for _, t := range r.order {
		if strings.HasPrefix(t, prefix) {
			delete(r.byType, t)
			continue
		}
		order = append(order, t)
	}
	for _, c := range comps {
		t := c.Spec().Type
		r.byType[t] = c
		order = append(order, t)
	}
	r.order = order
	r.gen.Add(1)
	return nil
}

// Generation changes every time a component is added, replaced or removed.
func (r *Registry) Generation() uint64 { return r.gen.Load() }

// Lookup returns the component registered under typ.
func (r *Registry) Lookup(typ string) (Component, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.byType[typ]
	return c, ok
}

// Specs lists every registered spec in registration order.
func (r *Registry) Specs() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Spec, 0, len(r.order))
	for _, t := range r.order {
		out = append(out, r.byType[t].Spec())
	}
	return out
}

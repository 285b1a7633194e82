// Package flow holds the flow document (components joined by links), its
// validation against the component specs, and the compiled form the engine
// routes messages through.
package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/mapping"
)

// Document is a flow as users write it.
type Document struct {
	Name       string                  `json:"name"`
	Components map[string]ComponentDoc `json:"components"`
	Links      []Link                  `json:"links"`
}

// ComponentDoc is one component instance in a flow.
type ComponentDoc struct {
	Type       string         `json:"type"`
	Properties map[string]any `json:"properties"`
	Retry      *RetryDoc      `json:"retry,omitempty"`
}

// RetryDoc overrides a component's retry policy.
type RetryDoc struct {
	MaxAttempts     int    `json:"maxAttempts,omitempty"`
	InitialInterval string `json:"initialInterval,omitempty"`
	MaxInterval     string `json:"maxInterval,omitempty"`
}

// Link joins an output port to an input port.
type Link struct {
	From     string `json:"from"`
	FromPort string `json:"fromPort,omitempty"`
	To       string `json:"to"`
	ToPort   string `json:"toPort,omitempty"`
}

// Problem is one thing wrong with a flow, naming where it is.
type Problem struct {
	Component string `json:"component,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
}

// ValidationError lists every problem found in a flow.
type ValidationError struct{ Problems []Problem }

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		var where []string
		if p.Component != "" {
			where = append(where, "component "+p.Component)
		}
		if p.Field != "" {
			where = append(where, p.Field)
		}
		if len(where) > 0 {
			parts = append(parts, strings.Join(where, " ")+": "+p.Message)
		} else {
			parts = append(parts, p.Message)
		}
	}
	return "invalid flow: " + strings.Join(parts, "; ")
}

// ErrMalformed marks a document that is not valid JSON of the right shape.
var ErrMalformed = errors.New("malformed flow document")

// Parse decodes a flow document strictly: unknown fields are errors.
func Parse(data []byte) (*Document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the document", ErrMalformed)
	}
	return &d, nil
}

// Node is a compiled component instance.
type Node struct {
	ID        string
	Type      string
	Spec      component.Spec
	Component component.Component
	// Properties resolves the component's property values per message.
	Properties *Properties
	Retry      component.RetryPolicy
	// Out maps an output port to the components it feeds.
	Out map[string][]Target
}

// Target is the far end of a link.
type Target struct {
	Node *Node
	Port string
}

// Compiled is a validated flow ready to route messages.
type Compiled struct {
	Nodes map[string]*Node
}

var idPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// Compile validates doc against the registry and returns its compiled form,
// or a *ValidationError naming every problem.
func Compile(doc *Document, reg *component.Registry) (*Compiled, error) {
	return compile(doc, reg, false)
}

// CompileStored compiles a flow that was valid when it was saved. A
// component whose type is no longer registered (its connector was
// removed) becomes a *Missing step, which fails each attempt until the
// type is back, rather than the whole flow failing to compile: the
// flow's triggers still accept events, and its steps retry, then
// dead-letter.
func CompileStored(doc *Document, reg *component.Registry) (*Compiled, error) {
	return compile(doc, reg, true)
}

func compile(doc *Document, reg *component.Registry, lenient bool) (*Compiled, error) {
	var probs []Problem
	add := func(comp, field, format string, args ...any) {
		probs = append(probs, Problem{Component: comp, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(doc.Name) == "" {
		add("", "name", "is required")
	}
	if len(doc.Components) == 0 {
		add("", "components", "a flow needs at least one component")
	}
	c := &Compiled{Nodes: make(map[string]*Node, len(doc.Components))}
	for _, id := range slices.Sorted(maps.Keys(doc.Components)) {
		cd := doc.Components[id]
		if !idPattern.MatchString(id) {
			add(id, "", "component id must start with a letter and hold only letters, digits, '-' and '_' (at most 64)")
			continue
		}
		comp, ok := reg.Lookup(cd.Type)
		if !ok && lenient && cd.Type != "" {
			comp, ok = newMissing(id, cd, doc.Links), true
		}
		if !ok {
			add(id, "type", "unknown component type %q", cd.Type)
			continue
		}
		spec := comp.Spec()
		n := &Node{ID: id, Type: cd.Type, Spec: spec, Component: comp, Out: map[string][]Target{}}
		checkProperties(id, spec, cd.Properties, add)
		props := make(map[string]any, len(cd.Properties))
		for k, v := range cd.Properties {
			props[k] = v
		}
		for _, p := range spec.Properties {
			if _, set := props[p.Name]; !set && p.Default != nil {
				props[p.Name] = p.Default
			}
		}
		np, err := compileProperties(spec, props)
		if err != nil {
			field := "properties"
			var me *mapping.Error
			if errors.As(err, &me) && me.Path != "" {
				field += "." + me.Path
			}
			add(id, field, "%v", err)
		}
		n.Properties = np
		if v, ok := comp.(component.Validator); ok && err == nil {
			if prop, verr := v.Validate(constants(spec, props)); verr != nil {
				add(id, "properties."+prop, "%v", verr)
			}
		}
		retry, err := retryPolicy(cd.Retry)
		if err != nil {
			add(id, "retry", "%v", err)
		}
		n.Retry = retry
		c.Nodes[id] = n
	}
	seenLinks := map[Link]bool{}
	for i, l := range doc.Links {
		field := fmt.Sprintf("links[%d]", i)
		key := Link{From: l.From, FromPort: cmpOr(l.FromPort, component.PortOut), To: l.To, ToPort: cmpOr(l.ToPort, component.PortIn)}
		if seenLinks[key] {
			add(l.From, field, "duplicates an earlier link")
			continue
		}
		seenLinks[key] = true
		from, okFrom := c.Nodes[l.From]
		to, okTo := c.Nodes[l.To]
		if _, known := doc.Components[l.From]; !known {
			add(l.From, field+".from", "link from a missing component %q", l.From)
		}
		if _, known := doc.Components[l.To]; !known {
			add(l.To, field+".to", "link to a missing component %q", l.To)
		}
		if !okFrom || !okTo {
			continue
		}
		fp := cmpOr(l.FromPort, component.PortOut)
		tp := cmpOr(l.ToPort, component.PortIn)
		if !component.HasPort(from.Spec.OutPorts, fp) {
			add(l.From, field+".fromPort", "%s has no output port %q (has %s)", from.Type, fp, portList(from.Spec.OutPorts))
			continue
		}
		if !component.HasPort(to.Spec.InPorts, tp) {
			add(l.To, field+".toPort", "%s has no input port %q (has %s)", to.Type, tp, portList(to.Spec.InPorts))
			continue
		}
		from.Out[fp] = append(from.Out[fp], Target{Node: to, Port: tp})
	}
	if len(probs) == 0 {
		if cyc := findCycle(c); cyc != "" {
			add(cyc, "links", "links form a cycle through %s", cyc)
		}
	}
	if len(probs) == 0 {
		if n := c.stepsPerEvent(); n > MaxStepsPerEvent {
			add("", "links", "one event would run %d steps; a flow may run at most %d per event", n, MaxStepsPerEvent)
		}
	}
	if len(probs) == 0 {
		checkReferences(c, add)
	}
	if len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	return c, nil
}

// constants returns the properties whose values hold no placeholder:
// literal properties and those without "{{".
func constants(spec component.Spec, props map[string]any) map[string]any {
	out := make(map[string]any, len(props))
	for k, v := range props {
		if p, ok := spec.Property(k); ok && p.Literal {
			out[k] = v
		} else if t, err := mapping.Compile(v); err == nil && t.Static() {
			out[k] = v
		}
	}
	return out
}

// Properties resolves a component's property values for one message:
// placeholders are resolved against the message's scope, and the values
// of literal properties (component.Property.Literal) are passed as
// written. It is immutable and safe for concurrent use.
type Properties struct {
	tmpl     *mapping.Template
	literals map[string]any
}

// compileProperties splits props into literal values and a template for
// the rest.
func compileProperties(spec component.Spec, props map[string]any) (*Properties, error) {
	p := &Properties{}
	resolved := props
	for _, sp := range spec.Properties {
		v, set := props[sp.Name]
		if !sp.Literal || !set {
			continue
		}
		if p.literals == nil {
			p.literals = map[string]any{}
			resolved = maps.Clone(props)
		}
		p.literals[sp.Name] = v
		delete(resolved, sp.Name)
	}
	tmpl, err := mapping.Compile(resolved)
	if err != nil {
		return nil, err
	}
	p.tmpl = tmpl
	return p, nil
}

// Eval returns the property values, as an object, with every placeholder
// resolved against scope. The object is fresh; values of literal
// properties and values read from scope are shared.
func (p *Properties) Eval(scope map[string]any) (any, error) {
	if p == nil {
		return nil, nil
	}
	v, err := p.tmpl.Eval(scope)
	if err != nil || len(p.literals) == 0 {
		return v, err
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = make(map[string]any, len(p.literals))
	}
	for k, lv := range p.literals {
		m[k] = lv
	}
	return m, nil
}

// References returns the ids of the components the placeholders read, as
// mapping.Template.References does.
func (p *Properties) References() []string {
	if p == nil {
		return nil
	}
	return p.tmpl.References()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func portList(ports []string) string {
	if len(ports) == 0 {
		return "none"
	}
	return strings.Join(ports, ", ")
}

// checkProperties checks required, unknown and statically typed properties.
func checkProperties(id string, spec component.Spec, props map[string]any, add func(comp, field, format string, args ...any)) {
	for _, p := range spec.Properties {
		v, set := props[p.Name]
		if p.Required && (!set || v == nil) {
			add(id, "properties."+p.Name, "is required")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(props)) {
		p, ok := spec.Property(name)
		if !ok {
			add(id, "properties."+name, "%s has no property %q", spec.Type, name)
			continue
		}
		v := props[name]
		if s, isStr := v.(string); isStr && !p.Literal && strings.Contains(s, "{{") {
			continue // resolved per message
		}
		if v != nil && !typeMatches(p.Type, v) {
			add(id, "properties."+name, "must be of type %s", p.Type)
			continue
		}
		if s, isStr := v.(string); isStr && len(p.Enum) > 0 && !contains(p.Enum, s) {
			add(id, "properties."+name, "must be one of %s", strings.Join(p.Enum, ", "))
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func typeMatches(t component.PropertyType, v any) bool {
	switch t {
	case component.TypeString:
		_, ok := v.(string)
		return ok
	case component.TypeNumber:
		_, ok := v.(float64)
		return ok
	case component.TypeBoolean:
		_, ok := v.(bool)
		return ok
	case component.TypeObject:
		_, ok := v.(map[string]any)
		return ok
	case component.TypeArray:
		_, ok := v.([]any)
		return ok
	}
	return true
}

func retryPolicy(r *RetryDoc) (component.RetryPolicy, error) {
	p := component.DefaultRetry
	if r == nil {
		return p, nil
	}
	if r.MaxAttempts < 0 || r.MaxAttempts > 100 {
		return p, fmt.Errorf("maxAttempts must be between 1 and 100")
	}
	if r.MaxAttempts > 0 {
		p.MaxAttempts = r.MaxAttempts
	}
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{{"initialInterval", r.InitialInterval, &p.InitialInterval}, {"maxInterval", r.MaxInterval, &p.MaxInterval}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v <= 0 {
			return p, fmt.Errorf("%s must be a positive duration such as \"1s\" or \"5m\"", d.name)
		}
		*d.dst = v
	}
	if p.MaxInterval < p.InitialInterval {
		return p, fmt.Errorf("maxInterval must not be shorter than initialInterval")
	}
	return p, nil
}

// MaxStepsPerEvent bounds how many component runs one event may cause, so
// that links fanning out and joining again cannot multiply without end.
const MaxStepsPerEvent = 1000

// stepsPerEvent counts the component runs one event causes in the worst
// case: every path from a component without inputs is a run of each
// component on it. The count saturates above MaxStepsPerEvent.
func (c *Compiled) stepsPerEvent() int {
	memo := map[string]int{}
	var runs func(n *Node) int // runs caused by one message arriving at n, n included
	runs = func(n *Node) int {
		if v, ok := memo[n.ID]; ok {
			return v
		}
		total := 1
		for _, ts := range n.Out {
			for _, t := range ts {
				total += runs(t.Node)
				if total > MaxStepsPerEvent {
					total = MaxStepsPerEvent + 1
				}
			}
		}
		memo[n.ID] = total
		return total
	}
	hasInput := map[string]bool{}
	for _, n := range c.Nodes {
		for _, ts := range n.Out {
			for _, t := range ts {
				hasInput[t.Node.ID] = true
			}
		}
	}
	worst := 0
	for id, n := range c.Nodes {
		if !hasInput[id] {
			worst = max(worst, runs(n))
		}
	}
	return worst
}

// findCycle returns a component on a cycle, or "".
func findCycle(c *Compiled) string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var visit func(n *Node) string
	visit = func(n *Node) string {
		color[n.ID] = grey
		for _, ts := range n.Out {
			for _, t := range ts {
				switch color[t.Node.ID] {
				case grey:
					return t.Node.ID
				case white:
					if id := visit(t.Node); id != "" {
						return id
					}
				}
			}
		}
		color[n.ID] = black
		return ""
	}
	for _, id := range slices.Sorted(maps.Keys(c.Nodes)) {
		if color[id] == white {
			if cyc := visit(c.Nodes[id]); cyc != "" {
				return cyc
			}
		}
	}
	return ""
}

// checkReferences makes sure placeholders only read components upstream.
func checkReferences(c *Compiled, add func(comp, field, format string, args ...any)) {
	upstream := c.upstream()
	for _, id := range slices.Sorted(maps.Keys(c.Nodes)) {
		n := c.Nodes[id]
		if n.Properties == nil {
			continue
		}
		for _, ref := range n.Properties.References() {
			if _, known := c.Nodes[ref]; !known {
				add(id, "properties", "placeholder reads $.%s, which is not a component of this flow", ref)
			} else if !upstream[id][ref] {
				add(id, "properties", "placeholder reads $.%s, which is not upstream of %s", ref, id)
			}
		}
	}
}

// upstream maps each node to the set of nodes that can reach it.
func (c *Compiled) upstream() map[string]map[string]bool {
	up := map[string]map[string]bool{}
	for id := range c.Nodes {
		up[id] = map[string]bool{}
	}
	var walk func(root string, n *Node)
	walk = func(root string, n *Node) {
		for _, ts := range n.Out {
			for _, t := range ts {
				if !up[t.Node.ID][root] {
					up[t.Node.ID][root] = true
					walk(root, t.Node)
				}
			}
		}
	}
	for id, n := range c.Nodes {
		walk(id, n)
	}
	return up
}

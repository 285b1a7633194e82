package flow

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/plugboard/plugboard/internal/component"
)

// Missing stands in, in a stored flow, for a component whose type is not
// registered any more. Each attempt fails (and is retried), so a step
// queued while its connector is removed runs once the connector is
// installed again, or dead-letters when its attempts run out.
type Missing struct {
	spec component.Spec
}

var _ component.Action = (*Missing)(nil)

// newMissing builds the stand-in of component id: a trigger when no link
// leads to it, else an I/O action, with the ports its links use and an
// untyped property for each it sets.
func newMissing(id string, cd ComponentDoc, links []Link) *Missing {
	in, out := map[string]bool{component.PortIn: true}, map[string]bool{component.PortOut: true}
	kind := component.KindTrigger
	for _, l := range links {
		if l.To == id {
			in[cmpOr(l.ToPort, component.PortIn)] = true
			kind = component.KindAction
		}
		if l.From == id {
			out[cmpOr(l.FromPort, component.PortOut)] = true
		}
	}
	spec := component.Spec{
		Type: cd.Type, Kind: kind, IO: kind == component.KindAction,
		Description: "A component whose type is not installed.",
		OutPorts:    slices.Sorted(maps.Keys(out)),
	}
	if kind == component.KindAction {
		spec.InPorts = slices.Sorted(maps.Keys(in))
	}
	for _, name := range slices.Sorted(maps.Keys(cd.Properties)) {
		spec.Properties = append(spec.Properties, component.Property{Name: name, Type: component.TypeAny})
	}
	return &Missing{spec: spec}
}

// Spec describes the stand-in.
func (m *Missing) Spec() component.Spec { return m.spec }

// Err says why the component cannot run.
func (m *Missing) Err() error {
	return fmt.Errorf("component type %s is not installed (was its connector removed?)", m.spec.Type)
}

// Invoke fails, to be retried: the type may be installed again.
func (m *Missing) Invoke(context.Context, component.Invocation) ([]component.Emit, error) {
	return nil, m.Err()
}

package component

// Sampler is implemented by a component whose output sample depends on how
// an instance is configured, such as a trigger whose "sample" property the
// flow's author fills with example event data. The flow designer lists the
// fields later components can read from that sample.
type Sampler interface {
	// Sample returns an example of what an instance configured with props
	// emits, or nil when props give none. props are the instance's
	// properties as written in the flow, placeholders unresolved, with the
	// spec's defaults for those not set; Sample must not change them. The
	// result must encode as JSON.
	Sample(props map[string]any) any
}

// InstanceSample returns an example output of an instance of c configured
// with props: the instance's own sample when c is a Sampler and gives one
// (fromInstance is then true), else the spec's OutputSample, which may be
// nil. A Sample that panics counts as giving none.
func InstanceSample(c Component, props map[string]any) (sample any, fromInstance bool) {
	spec := c.Spec()
	s, ok := c.(Sampler)
	if !ok {
		return spec.OutputSample, false
	}
	withDefaults := make(map[string]any, len(props)+len(spec.Properties))
	for k, v := range props {
		withDefaults[k] = v
	}
	for _, p := range spec.Properties {
		if _, set := withDefaults[p.Name]; !set && p.Default != nil {
			withDefaults[p.Name] = p.Default
		}
	}
	if v := safeSample(s, withDefaults); v != nil {
		return v, true
	}
	return spec.OutputSample, false
}

func safeSample(s Sampler, props map[string]any) (v any) {
	defer func() {
		if recover() != nil {
			v = nil
		}
	}()
	return s.Sample(props)
}

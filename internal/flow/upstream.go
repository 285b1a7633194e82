package flow

import (
	"maps"
	"slices"
)

// Upstream returns the components upstream of id: every component from
// which links lead to id, directly or through others. They are the
// components whose outputs id's placeholders may read, the same set the
// flow's validation checks placeholders against; id itself is not one of
// them. The ids come in topological order (a component before every
// component it feeds), ties broken by id, so the order is stable. ok is
// false when the flow has no component id.
func (c *Compiled) Upstream(id string) (ids []string, ok bool) {
	if _, ok := c.Nodes[id]; !ok {
		return nil, false
	}
	set := c.upstream()[id]
	// Any component on a path between two upstream components is itself
	// upstream, so ordering the links inside the set orders every path.
	indegree := make(map[string]int, len(set))
	for from := range set {
		for _, ts := range c.Nodes[from].Out {
			for _, t := range ts {
				if set[t.Node.ID] {
					indegree[t.Node.ID]++
				}
			}
		}
	}
	var ready []string
	for _, u := range slices.Sorted(maps.Keys(set)) {
		if indegree[u] == 0 {
			ready = append(ready, u)
		}
	}
	ids = make([]string, 0, len(set))
	for len(ready) > 0 {
		u := ready[0]
		ready = ready[1:]
		ids = append(ids, u)
		for _, ts := range c.Nodes[u].Out {
			for _, t := range ts {
				v := t.Node.ID
				if !set[v] {
					continue
				}
				// Two links from u to v (different ports) count twice in
				// indegree, and are taken off twice here.
				if indegree[v]--; indegree[v] == 0 {
					i, _ := slices.BinarySearch(ready, v)
					ready = slices.Insert(ready, i, v)
				}
			}
		}
	}
	return ids, true
}

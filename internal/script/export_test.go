package script

// VMsCreated reports how many VMs s has made.
func VMsCreated(s *Sandbox) int64 { return s.created.Load() }

// CachedPrograms reports how many compiled scripts s keeps.
func CachedPrograms(s *Sandbox) int {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return len(s.cache.m)
}

// JSONTooDeep exposes jsonTooDeep.
var JSONTooDeep = jsonTooDeep

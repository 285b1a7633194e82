package script

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// The JavaScript engine has no heap of its own to cap: scripts allocate
// on the Go heap like everything else in the process. So the sandbox
// measures. While runs are executing, a watchdog samples the size of the
// Go heap every memoryTick. The first sample a run sees is its base; when
// the heap has grown more than Limits.Memory past the base of a run, the
// watchdog collects garbage (at most once per minGCInterval) to tell live
// memory from garbage, and interrupts the runs whose base the live heap
// still exceeds by more than the limit.
//
// This bounds what a script can keep alive to about the limit plus the
// garbage present at its first sample, plus what it allocates in the
// time the watchdog needs to notice (a tick and a collection). It does
// not attribute memory exactly: another run growing the heap at the same
// time counts against every run that overlaps it. Runs shorter than a
// tick are never measured; what one built-in call can allocate is
// bounded separately by the prelude.
const (
	memoryTick    = 10 * time.Millisecond
	minGCInterval = 250 * time.Millisecond
)

const heapMetric = "/memory/classes/heap/objects:bytes"

type memoryWatch struct {
	s      *Sandbox
	active atomic.Bool // a watchdog goroutine is running
	// Used by the watchdog goroutine only.
	sample   []metrics.Sample
	suspects []*vm
	lastGC   time.Time
}

func (m *memoryWatch) init(s *Sandbox) {
	m.s = s
	m.sample = []metrics.Sample{{Name: heapMetric}}
}

// start makes sure a watchdog runs; it stops by itself once no run is
// executing.
func (m *memoryWatch) start() {
	if !m.active.Load() && m.active.CompareAndSwap(false, true) {
		go m.loop()
	}
}

func (m *memoryWatch) loop() {
	t := time.NewTicker(memoryTick)
	defer t.Stop()
	for range t.C {
		if m.check() {
			continue
		}
		m.active.Store(false)
		// A run may have started between the check and the store and
		// found the watchdog still active.
		if !m.anyRunning() || !m.active.CompareAndSwap(false, true) {
			return
		}
	}
}

func (m *memoryWatch) anyRunning() bool {
	for i := range m.s.running {
		if m.s.running[i].Load() != nil {
			return true
		}
	}
	return false
}

// check samples the heap once and interrupts runs over their limit. It
// reports whether any run is executing.
func (m *memoryWatch) check() bool {
	limit := uint64(m.s.limits.Memory)
	heap := m.heap()
	m.suspects = m.suspects[:0]
	busy := false
	for i := range m.s.running {
		v := m.s.running[i].Load()
		if v == nil {
			continue
		}
		busy = true
		if v.observe(heap, limit) {
			m.suspects = append(m.suspects, v)
		}
	}
	if len(m.suspects) > 0 && time.Since(m.lastGC) >= minGCInterval {
		runtime.GC()
		m.lastGC = time.Now()
		heap = m.heap()
		for _, v := range m.suspects {
			v.overMemory(heap, limit)
		}
	}
	clear(m.suspects)
	return busy
}

func (m *memoryWatch) heap() uint64 {
	metrics.Read(m.sample)
	if m.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return m.sample[0].Value.Uint64()
}

// observe records the heap size at the run's first sample and reports
// whether the heap has grown more than limit since.
func (v *vm) observe(heap, limit uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.running || v.reason != nil {
		return false
	}
	if v.base == 0 {
		v.base = heap
		return false
	}
	return heap > v.base && heap-v.base > limit
}

// overMemory interrupts the run if the heap, measured after a collection,
// is still more than limit past its base.
func (v *vm) overMemory(heap, limit uint64) {
	v.mu.Lock()
	if v.running && v.reason == nil && v.base != 0 && heap > v.base && heap-v.base > limit {
		v.reason = ErrMemory
		v.rt.Interrupt(ErrMemory)
	}
	v.mu.Unlock()
}

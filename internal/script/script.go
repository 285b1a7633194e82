// Package script runs user JavaScript in a sandbox: the body of a function
// of the input message (input) and the upstream outputs ($), whose return
// value is converted to plain JSON values.
//
// The sandbox has no file system, network, process, timer or module access
// (the engine, goja, has none unless the host adds it, and this package
// adds nothing), no eval or Function constructor, and no binary buffers.
// Each run is bounded in time (interrupted by a timer and by its context),
// in call depth, in what single built-in calls may allocate, and in heap
// growth (see Limits). Runs share pooled VMs but never state: every
// built-in object of a VM is frozen before the VM's first run, and each
// script is a strict-mode function, so it cannot add globals or change
// anything a later run could see.
//
// goja types never leave this package.
package script

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"
)

// Defaults and bounds of Limits.
const (
	DefaultTimeout  = time.Second
	MaxTimeout      = 30 * time.Second
	DefaultMemory   = 128 << 20
	DefaultMaxStack = 1024
)

// Limits bound what one run may use. Zero fields take their defaults.
type Limits struct {
	// Timeout is used when Run is given none; at most MaxTimeout.
	Timeout time.Duration
	// Memory is how much the Go heap may grow during one run before the run
	// is interrupted. Measured, not enforced per allocation: see memory.go.
	Memory int64
	// MaxCallStack bounds the depth of JavaScript calls.
	MaxCallStack int
	// MaxSourceBytes bounds the size of a script.
	MaxSourceBytes int
	// MaxStringLength bounds strings built by one built-in call (repeat,
	// padStart, padEnd, concat, join, replace, JSON.stringify), in UTF-16
	// code units.
	MaxStringLength int
	// MaxArrayLength bounds the length of arrays built-in array functions
	// accept, iterate or build.
	MaxArrayLength int
	// MaxDepth bounds the nesting of JSON text, of values passed to
	// JSON.stringify and Array.prototype.flat, and of the returned value.
	MaxDepth int
	// MaxOutputBytes bounds the returned value, measured as JSON.
	MaxOutputBytes int
	// Concurrency is how many runs may execute at once; more wait. It is
	// also how many idle VMs are kept.
	Concurrency int
	// CacheEntries bounds how many compiled scripts are kept.
	CacheEntries int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	l.Timeout = min(l.Timeout, MaxTimeout)
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	def(&l.MaxCallStack, DefaultMaxStack)
	def(&l.MaxSourceBytes, 64<<10)
	def(&l.MaxStringLength, 16<<20)
	def(&l.MaxArrayLength, 1<<20)
	def(&l.MaxDepth, 1000)
	def(&l.MaxOutputBytes, 4<<20)
	def(&l.Concurrency, 2*runtime.GOMAXPROCS(0))
	def(&l.CacheEntries, 256)
	return l
}

// Kind classifies a failed run.
type Kind int

// Kinds of failure.
const (
	// KindSyntax: the script does not compile. Retrying cannot help.
	KindSyntax Kind = iota + 1
	// KindThrown: the script threw (or overflowed its call stack).
	KindThrown
	// KindOutput: the script returned something that is not JSON (a
	// function, a cycle, a value too large). Retrying cannot help.
	KindOutput
	// KindTimeout: the run took longer than its time limit.
	KindTimeout
	// KindMemory: the heap grew more than Limits.Memory during the run.
	KindMemory
	// KindCanceled: the run's context ended first.
	KindCanceled
)

// Sentinels the errors of runs that were interrupted wrap.
var (
	ErrTimeout = errors.New("time limit exceeded")
	ErrMemory  = errors.New("memory limit exceeded")
)

// Error is a failed run.
type Error struct {
	Kind Kind
	// Message is the JavaScript error ("TypeError: x is not a function")
	// or what went wrong.
	Message string
	// Line and Column locate the error in the script, from 1; 0 when
	// unknown.
	Line, Column int
	err          error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return e.Message + " (line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Column) + ")"
	}
	return e.Message
}

// Unwrap returns ErrTimeout, ErrMemory or the context's error for
// interrupted runs.
func (e *Error) Unwrap() error { return e.err }

// Permanent reports whether running the same script on the same message
// again is bound to fail the same way.
func (e *Error) Permanent() bool { return e.Kind == KindSyntax || e.Kind == KindOutput }

// Sandbox runs scripts. It is safe for concurrent use; one Sandbox serves
// the whole process.
type Sandbox struct {
	limits Limits
	cache  *programCache
	// slots holds the free run slots; a run holds one while it executes,
	// and running[slot] is its VM, for the memory watchdog.
	slots   chan int
	running []atomic.Pointer[vm]
	idle    chan *vm
	mem     memoryWatch
	created atomic.Int64 // VMs made, for tests
}

// New returns a sandbox with the given limits.
func New(l Limits) *Sandbox {
	l = l.withDefaults()
	s := &Sandbox{
		limits:  l,
		cache:   newProgramCache(l.CacheEntries),
		slots:   make(chan int, l.Concurrency),
		running: make([]atomic.Pointer[vm], l.Concurrency),
		idle:    make(chan *vm, l.Concurrency),
	}
	for i := range l.Concurrency {
		s.slots <- i
	}
	s.mem.init(s)
	return s
}

// Limits returns the sandbox's limits with defaults filled in.
func (s *Sandbox) Limits() Limits { return s.limits }

// Run runs src, the body of a function of input and $, and returns what
// it returns as a JSON value (map[string]any, []any, string, float64,
// bool or nil; undefined becomes nil). input and scope (what the script
// sees as $; nil is an empty object) must be JSON-like values; they are
// copied into the run, never shared with it. timeout 0 takes the
// sandbox's default; it is capped at MaxTimeout. Failures are *Error.
func (s *Sandbox) Run(ctx context.Context, src string, input, scope any, timeout time.Duration) (any, error) {
	if timeout <= 0 {
		timeout = s.limits.Timeout
	}
	timeout = min(timeout, MaxTimeout)
	prog, err := s.cache.get(src, s.limits.MaxSourceBytes)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, canceled(err)
	}
	var slot int
	select {
	case slot = <-s.slots:
	case <-ctx.Done():
		return nil, canceled(ctx.Err())
	}
	defer func() { s.slots <- slot }()
	v, err := s.vm()
	if err != nil {
		return nil, err
	}
	s.running[slot].Store(v)
	s.mem.start()
	out, err := v.run(ctx, prog, input, scope, timeout)
	s.running[slot].Store(nil)
	if v.reusable() {
		select {
		case s.idle <- v:
		default:
		}
	}
	return out, err
}

// Check compiles src, as Run would, and returns its syntax error, if it
// has one, as an *Error. The compiled script is cached for Run.
func (s *Sandbox) Check(src string) error {
	_, err := s.cache.get(src, s.limits.MaxSourceBytes)
	return err
}

// vm returns an idle VM or makes one.
func (s *Sandbox) vm() (*vm, error) {
	select {
	case v := <-s.idle:
		return v, nil
	default:
	}
	v, err := newVM(s.limits)
	if err != nil {
		return nil, fmt.Errorf("preparing a script VM: %w", err)
	}
	s.created.Add(1)
	return v, nil
}

func canceled(err error) *Error {
	return &Error{Kind: KindCanceled, Message: "the run was canceled: " + err.Error(), err: err}
}

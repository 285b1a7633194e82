package script

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"
)

//go:embed prelude.js
var preludeSource string

// prelude is compiled once per process; a compiled program can run in
// any number of VMs.
var prelude = sync.OnceValues(func() (*goja.Program, error) {
	return goja.Compile("prelude", preludeSource, true)
})

var promiseType = reflect.TypeFor[*goja.Promise]()

// maxMessage bounds the length of error messages taken from scripts.
const maxMessage = 1000

// vm is one JavaScript runtime, hardened by the prelude, used by one run
// at a time.
type vm struct {
	rt       *goja.Runtime
	sanitize goja.Callable
	describe goja.Callable
	timer    *time.Timer
	// funcs holds the script functions this VM has made, by program. A
	// script cannot reach its own function object, so reusing it shares
	// nothing between runs.
	funcs map[*goja.Program]goja.Callable
	// keys is scratch space for sorting object keys in toJS.
	keys []string

	// mu guards the run state against the watchdogs (timer, context,
	// memory), which interrupt from other goroutines.
	mu       sync.Mutex
	gen      uint64 // counts runs, so a late context callback hits no later run
	running  bool
	deadline time.Time
	timeout  time.Duration
	reason   error  // why the current run was interrupted, if it was
	base     uint64 // heap size at the run's first memory check
	broken   bool   // interrupted or failed in a way that may leave state behind
}

func newVM(l Limits) (*vm, error) {
	p, err := prelude()
	if err != nil {
		return nil, fmt.Errorf("compiling the prelude: %w", err)
	}
	rt := goja.New()
	rt.SetMaxCallStackSize(l.MaxCallStack)
	fnv, err := rt.RunProgram(p)
	if err != nil {
		return nil, fmt.Errorf("running the prelude: %w", err)
	}
	fn, ok := goja.AssertFunction(fnv)
	if !ok {
		return nil, errors.New("the prelude is not a function")
	}
	limits := rt.NewObject()
	for k, v := range map[string]int{"maxString": l.MaxStringLength, "maxArray": l.MaxArrayLength, "maxDepth": l.MaxDepth, "maxOutput": l.MaxOutputBytes} {
		if err := limits.Set(k, v); err != nil {
			return nil, fmt.Errorf("passing limits to the prelude: %w", err)
		}
	}
	res, err := fn(goja.Undefined(), limits, rt.ToValue(func(call goja.FunctionCall) goja.Value {
		return rt.ToValue(jsonTooDeep(call.Argument(0).String(), int(call.Argument(1).ToInteger())))
	}))
	if err != nil {
		return nil, fmt.Errorf("running the prelude: %w", err)
	}
	helpers, ok := res.(*goja.Object)
	if !ok {
		return nil, errors.New("the prelude returned no helpers")
	}
	v := &vm{rt: rt, funcs: map[*goja.Program]goja.Callable{}}
	if v.sanitize, ok = goja.AssertFunction(helpers.Get("0")); !ok {
		return nil, errors.New("the prelude returned no sanitize helper")
	}
	if v.describe, ok = goja.AssertFunction(helpers.Get("1")); !ok {
		return nil, errors.New("the prelude returned no describe helper")
	}
	v.timer = time.AfterFunc(time.Hour, v.onTimer)
	v.timer.Stop()
	return v, nil
}

// run runs prog with input and scope under the time limit and ctx.
func (v *vm) run(ctx context.Context, prog *goja.Program, input, scope any, timeout time.Duration) (out any, err error) {
	gen := v.begin(timeout)
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { v.interrupt(gen, ctx.Err()) })
	}
	defer func() {
		if stop != nil {
			stop()
		}
		// The engine reports script errors as values; a panic is a fault of
		// the engine itself. The VM is not used again.
		if r := recover(); r != nil {
			v.markBroken()
			out, err = nil, &Error{Kind: KindThrown, Message: fmt.Sprintf("the script engine failed: %v", r)}
		}
		v.end()
	}()
	return v.call(prog, input, scope)
}

func (v *vm) begin(timeout time.Duration) uint64 {
	v.mu.Lock()
	v.gen++
	gen := v.gen
	v.running = true
	v.reason = nil
	v.base = 0
	v.timeout = timeout
	v.deadline = time.Now().Add(timeout)
	v.mu.Unlock()
	v.timer.Reset(timeout)
	return gen
}

// end closes the run. No interrupt can reach the VM after it returns.
func (v *vm) end() {
	v.timer.Stop()
	v.mu.Lock()
	v.running = false
	if v.reason != nil {
		v.broken = true
	}
	v.rt.ClearInterrupt()
	v.mu.Unlock()
}

// reusable reports whether the VM may serve another run.
func (v *vm) reusable() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return !v.broken
}

// interrupt stops run gen with reason, if it is still running.
func (v *vm) interrupt(gen uint64, reason error) {
	v.mu.Lock()
	if v.running && v.gen == gen && v.reason == nil {
		v.reason = reason
		v.rt.Interrupt(reason)
	}
	v.mu.Unlock()
}

// onTimer interrupts the current run if it is past its deadline. The
// timer is shared by the VM's runs; a late firing for an earlier run finds
// the current one within its time and does nothing.
func (v *vm) onTimer() {
	v.mu.Lock()
	if v.running && v.reason == nil && !time.Now().Before(v.deadline) {
		v.reason = ErrTimeout
		v.rt.Interrupt(ErrTimeout)
	}
	v.mu.Unlock()
}

// call runs the script function and converts its result.
func (v *vm) call(prog *goja.Program, input, scope any) (any, error) {
	fn, err := v.function(prog)
	if err != nil {
		return nil, err
	}
	in, sc := v.arguments(input, scope)
	res, err := fn(goja.Undefined(), in, sc)
	if err != nil {
		return nil, v.failure(err)
	}
	if obj, ok := res.(*goja.Object); ok && obj.ExportType() == promiseType {
		if p, ok := obj.Export().(*goja.Promise); ok {
			switch p.State() {
			case goja.PromiseStateFulfilled:
				res = p.Result()
			case goja.PromiseStateRejected:
				return nil, v.thrown(p.Result(), nil)
			default:
				return nil, &Error{Kind: KindThrown, Message: "the script returned a promise that never settled (there are no timers or I/O to wait for)"}
			}
		}
	}
	pair, err := v.sanitize(goja.Undefined(), res)
	if err != nil {
		return nil, v.failure(err)
	}
	exported, _ := pair.Export().([]any)
	if len(exported) != 2 {
		return nil, &Error{Kind: KindOutput, Message: "the returned value could not be converted"}
	}
	if problem, ok := exported[0].(string); ok {
		return nil, &Error{Kind: KindOutput, Message: problem}
	}
	return fromJS(exported[1]), nil
}

// maxFuncs bounds the script functions a VM keeps.
const maxFuncs = 64

// function returns the function prog evaluates to, made once per VM.
func (v *vm) function(prog *goja.Program) (goja.Callable, error) {
	if fn, ok := v.funcs[prog]; ok {
		return fn, nil
	}
	fnv, err := v.rt.RunProgram(prog)
	if err != nil {
		return nil, v.failure(err)
	}
	fn, ok := goja.AssertFunction(fnv)
	if !ok {
		return nil, &Error{Kind: KindSyntax, Message: "the script did not compile to a function"}
	}
	if len(v.funcs) >= maxFuncs {
		clear(v.funcs)
	}
	v.funcs[prog] = fn
	return fn, nil
}

// failure turns an error of goja into an *Error.
func (v *vm) failure(err error) *Error {
	var ie *goja.InterruptedError
	var so *goja.StackOverflowError
	var ex *goja.Exception
	switch {
	case errors.As(err, &ie):
		v.markBroken()
		return v.interrupted(ie.Value())
	case errors.As(err, &so):
		v.markBroken()
		e := &Error{Kind: KindThrown, Message: "RangeError: Maximum call stack size exceeded"}
		e.Line, e.Column = position(so.Stack())
		return e
	case errors.As(err, &ex):
		return v.thrown(ex.Value(), ex.Stack())
	}
	v.markBroken()
	return &Error{Kind: KindThrown, Message: err.Error()}
}

func (v *vm) interrupted(reason any) *Error {
	v.mu.Lock()
	timeout := v.timeout
	v.mu.Unlock()
	switch r := reason.(type) {
	case error:
		switch {
		case errors.Is(r, ErrTimeout):
			return &Error{Kind: KindTimeout, Message: "the script ran longer than its time limit of " + timeout.String(), err: ErrTimeout}
		case errors.Is(r, ErrMemory):
			return &Error{Kind: KindMemory, Message: "the script used more memory than allowed", err: ErrMemory}
		default:
			return canceled(r)
		}
	}
	return &Error{Kind: KindThrown, Message: fmt.Sprintf("the script was interrupted: %v", reason)}
}

// thrown describes a value the script threw (or rejected a promise with).
func (v *vm) thrown(val goja.Value, stack []goja.StackFrame) *Error {
	e := &Error{Kind: KindThrown, Message: "the script threw a value that cannot be shown"}
	if val != nil {
		d, err := v.describe(goja.Undefined(), val)
		if err != nil {
			return v.failure(err)
		}
		e.Message = d.String()
	}
	if len(e.Message) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(e.Message[cut]) {
			cut--
		}
		e.Message = e.Message[:cut] + "…"
	}
	e.Line, e.Column = position(stack)
	return e
}

func (v *vm) markBroken() {
	v.mu.Lock()
	v.broken = true
	v.mu.Unlock()
}

// position returns where in the script the innermost frame of the script
// is, or 0, 0.
func position(stack []goja.StackFrame) (int, int) {
	for i := range stack {
		if stack[i].SrcName() != scriptName {
			continue
		}
		p := stack[i].Position()
		return scriptPosition(p.Line, p.Column)
	}
	return 0, 0
}

func init() {
	// goja runs the regular expressions RE2 cannot (lookaround,
	// back-references) on a backtracking engine, natively, where the time
	// limit cannot stop a match. Each such match gives up after this long
	// and counts as no match. This is a setting of the process; this
	// package is the only user of the engine.
	regexp2.DefaultMatchTimeout = DefaultTimeout
}

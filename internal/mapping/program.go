package mapping

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Limits. They are part of the documented behaviour (docs/expressions.md).
const (
	// MaxExpressionLen is the longest expression, in bytes, between "{{" and "}}".
	MaxExpressionLen = 4096
	// MaxPlaceholders is the most placeholders one value may hold.
	MaxPlaceholders = 1000
	// maxNodes caps the syntax tree of one expression.
	maxNodes = 1000
	// evalBudget is the work one Eval may do, in units. Each value handed
	// to a function or returned by one, produced by "+", compared, or
	// resulting from a placeholder costs one unit plus its size: one unit
	// per element of arrays and objects, at any depth, and per bytesPerUnit
	// bytes of text. Each step of a loop costs one unit plus one per
	// nodesPerUnit nodes of the loop's body.
	evalBudget = 4_000_000
	// nodesPerUnit is how many syntax nodes of a loop's body count as one
	// unit for each step of the loop, on top of one unit per step.
	nodesPerUnit = 8
	// bytesPerUnit is how many bytes of text count as one unit of evalBudget.
	bytesPerUnit = 8
	// regexpStepsPerUnit is how many steps of matching a regular expression
	// (bytes of text times instructions of the pattern) count as one unit.
	regexpStepsPerUnit = 16
	// maxRegexpInsts caps the compiled size of a regular expression.
	maxRegexpInsts = 5000
	// maxCachedPatterns caps the patterns computed at run time that one
	// evaluation keeps compiled.
	maxCachedPatterns = 16
	// maxTextLen caps the text repeat and replace may produce.
	maxTextLen = 1 << 20
	// maxDepth caps how deeply results may nest.
	maxDepth = 10000
)

// ErrLimit is wrapped by errors caused by one of the limits on expressions:
// length, placeholders, syntax size, evaluation budget or nesting.
var ErrLimit = errors.New("limit exceeded")

// Names in the environment of a program besides "$", the scope. The
// compiler inserts calls to them; "$" cannot start a name a user would
// reach by accident, and reaching them on purpose does no harm.
const (
	envScope  = "$"
	fnGet     = "$get"
	fnCharge  = "$charge"
	fnStep    = "$step"
	fnMatches = "$matches"
	meterVar  = "$meter"
)

// compileEnv gives the compiler the types of the environment's entries.
// Functions held in the environment, with these signatures, are called by
// programs without allocating, unlike registered functions.
var compileEnv = map[string]any{
	envScope: map[string]any(nil),
	fnGet:    (func(any, any) any)(nil),
	fnCharge: (func(any) any)(nil),
	fnStep:   (func(any, any) any)(nil),
	meterVar: (*meter)(nil),
}

// meter counts the work of one Eval against evalBudget.
type meter struct {
	used     int
	patterns map[string]*pattern
}

// charge adds the cost of handling v and fails once the budget is spent.
func (m *meter) charge(v any) error {
	return m.spend(1 + size(v, evalBudget-m.used))
}

// spend adds units to the work done and fails once the budget is spent.
func (m *meter) spend(units int) error {
	m.used += units
	if m.used > evalBudget {
		return fmt.Errorf("%w: the expressions did too much work", ErrLimit)
	}
	return nil
}

// pass charges v and returns it. Programs call it through $charge; it
// panics with an error when the budget is spent, which the program recovers
// and returns as its error.
func (m *meter) pass(v any) any {
	m.must(m.charge(v))
	return v
}

// step charges one step of a loop, whose body has the given weight, and
// returns the body's value v. Programs call it through $step.
func (m *meter) step(v, weight any) any {
	// The weight comes from the compiler, but an expression can call $step
	// itself: it must never give units back.
	w, _ := weight.(int)
	m.must(m.spend(max(w, 1)))
	return v
}

func (m *meter) must(err error) {
	if err != nil {
		panic(err)
	}
}

// size estimates the cost of v in budget units, giving up past limit.
func size(v any, limit int) int {
	switch v := v.(type) {
	case nil, bool, int, float64:
		return 0
	case string:
		return len(v) / bytesPerUnit
	case []any:
		n := len(v)
		for _, e := range v {
			if n > limit {
				break
			}
			n += size(e, limit-n)
		}
		return n
	case map[string]any:
		n := len(v)
		for k, e := range v {
			if n > limit {
				break
			}
			n += len(k)/bytesPerUnit + size(e, limit-n)
		}
		return n
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len()
	case reflect.String:
		return rv.Len() / bytesPerUnit
	}
	return 0
}

// compileExpr compiles one placeholder expression and returns the ids it
// reads from the scope.
func compileExpr(src string) (prog *vm.Program, refs []string, err error) {
	if len(src) > MaxExpressionLen {
		return nil, nil, fmt.Errorf("%w: expression is %d bytes long, the maximum is %d", ErrLimit, len(src), MaxExpressionLen)
	}
	p := &patcher{}
	defer func() {
		// The library is not expected to panic on any input; if it does,
		// the expression is rejected rather than the process brought down.
		if r := recover(); r != nil {
			prog, refs, err = nil, nil, fmt.Errorf("cannot compile expression: %v", r)
		}
	}()
	prog, err = expr.Compile(src,
		expr.Env(compileEnv),
		expr.MaxNodes(maxNodes),
		expr.Patch(p),
		function("now", now, new(func() time.Time)),
		function(fnMatches, matches, new(func(string, any, *meter) bool)),
		function("trim", trim, new(func(string) string), new(func(string, string) string)),
		function("uniq", uniq, new(func(any) []any)),
		function("timezone", timezone, new(func(string) *time.Location)),
		function("date", date,
			new(func(string) time.Time),
			new(func(string, string) time.Time),
			new(func(string, string, string) time.Time)),
		function("string", toString, new(func(any) string)),
		function("toJSON", toJSON, new(func(any) string)),
		function("repeat", repeat, new(func(string, int) string)),
		function("replace", replace,
			new(func(string, string, string) string),
			new(func(string, string, string, int) string)),
	)
	if err != nil {
		return nil, nil, exprError(err)
	}
	if p.err != nil {
		return nil, nil, p.err
	}
	return prog, p.refs, nil
}

// function registers fn under name with the given signatures, replacing a
// builtin of the same name.
func function(name string, fn func(...any) (any, error), types ...any) expr.Option {
	f := &builtin.Function{Name: name, Func: fn}
	for _, t := range types {
		f.Types = append(f.Types, reflect.TypeOf(t).Elem())
	}
	return func(c *conf.Config) { c.Functions[name] = f }
}

// exprError turns an error of the expression library into one of ours,
// keeping its message, position and wrapped cause.
func exprError(err error) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return err
	}
	if errors.Is(fe.Prev, ErrLimit) {
		return fe.Prev
	}
	msg := fe.Message
	if msg == "memory budget exceeded" {
		return fmt.Errorf("%w: the expression used too much memory", ErrLimit)
	}
	if strings.Contains(msg, "exceeds maximum allowed nodes") {
		return fmt.Errorf("%w: expression is too complex", ErrLimit)
	}
	return &positionError{msg: readable(msg), col: fe.Column + 1, err: fe.Prev}
}

// readable rewrites the Go type assertion failures the library reports for
// a value of the wrong type into words about JSON types.
func readable(msg string) string {
	const prefix = "interface conversion: interface {} is "
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		return msg
	}
	got, want, ok := strings.Cut(rest, ", not ")
	if !ok {
		return msg
	}
	return fmt.Sprintf("expected %s, got %s", goTypeName(want), goTypeName(got))
}

func goTypeName(t string) string {
	switch t {
	case "string":
		return "a string"
	case "float64", "int", "float32", "int64":
		return "a number"
	case "bool":
		return "a boolean"
	case "map[string]interface {}":
		return "an object"
	case "[]interface {}":
		return "an array"
	case "nil":
		return "null"
	case "time.Time":
		return "a date"
	case "time.Duration":
		return "a duration"
	}
	return t
}

type positionError struct {
	msg string
	col int
	err error
}

func (e *positionError) Error() string { return fmt.Sprintf("%s (column %d)", e.msg, e.col) }
func (e *positionError) Unwrap() error { return e.err }

// patcher rewrites an expression's syntax tree before it is compiled:
//
//   - member access (a.b, a[i]) becomes a call to $get, which yields nil for
//     a missing key, an index out of range, or a nil or non-container base;
//   - the values handed to and returned by functions, the results of "+"
//     and the operands of comparisons pass through $charge, and loop
//     bodies through $step, which meter the work of an evaluation so that
//     no expression can run away;
//   - "matches" becomes a call to $matches, which meters matching;
//   - it records the component ids read as $.<id>.
type patcher struct {
	refs []string
	err  error
}

func (p *patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		if n.Method {
			return
		}
		base := n.Node
		if c, ok := base.(*ast.ChainNode); ok {
			base = c.Node
		}
		if id, ok := base.(*ast.IdentifierNode); ok && id.Value == envScope {
			if s, ok := n.Property.(*ast.StringNode); ok {
				p.refs = append(p.refs, s.Value)
			}
		}
		ast.Patch(node, call(fnGet, base, n.Property))
	case *ast.ChainNode:
		if _, ok := n.Node.(*ast.MemberNode); !ok {
			ast.Patch(node, n.Node)
		}
	case *ast.PredicateNode:
		// Each step of a loop costs in proportion to its body.
		var c counter
		ast.Walk(&n.Node, &c)
		w := &ast.IntegerNode{Value: 1 + int(c)/nodesPerUnit}
		w.SetLocation(n.Node.Location())
		n.Node = call(fnStep, n.Node, w)
	case *ast.BinaryNode:
		switch n.Operator {
		case "+":
			ast.Patch(node, chargeNode(n))
		case "matches":
			pattern := n.Right
			if str, ok := pattern.(*ast.StringNode); ok {
				pat, err := compilePattern(str.Value)
				if err != nil {
					p.fail(err)
					return
				}
				pattern = &ast.ConstantNode{Value: pat}
				pattern.SetLocation(str.Location())
			}
			m := &ast.IdentifierNode{Value: meterVar}
			m.SetLocation(n.Location())
			ast.Patch(node, call(fnMatches, n.Left, pattern, m))
		case "==", "!=":
			// Comparing with a scalar written in the expression is cheap.
			if !scalar(n.Left) && !scalar(n.Right) {
				n.Left = chargeNode(n.Left)
				n.Right = chargeNode(n.Right)
			}
		case "<", "<=", ">", ">=", "in", "contains", "startsWith", "endsWith":
			n.Left = chargeNode(n.Left)
			n.Right = chargeNode(n.Right)
		}
	case *ast.BuiltinNode:
		for i, a := range n.Arguments {
			if _, ok := a.(*ast.PredicateNode); !ok {
				n.Arguments[i] = chargeNode(a)
			}
		}
		ast.Patch(node, chargeNode(n))
	case *ast.CallNode:
		if isCall(n, fnGet) || isCall(n, fnCharge) || isCall(n, fnStep) || isCall(n, fnMatches) {
			return
		}
		for i, a := range n.Arguments {
			n.Arguments[i] = chargeNode(a)
		}
		ast.Patch(node, chargeNode(n))
	}
}

// counter counts the nodes of a syntax tree.
type counter int

func (c *counter) Visit(*ast.Node) { *c++ }

func (p *patcher) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func call(name string, args ...ast.Node) *ast.CallNode {
	c := &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: args}
	c.Callee.SetLocation(args[0].Location())
	c.SetLocation(args[0].Location())
	return c
}

func isCall(n ast.Node, name string) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	return ok && id.Value == name
}

// chargeNode wraps n in a call to $charge unless n is a scalar written in
// the expression or is already charged.
func chargeNode(n ast.Node) ast.Node {
	if scalar(n) || isCall(n, fnCharge) {
		return n
	}
	return call(fnCharge, n)
}

// scalar reports whether n is a literal nil, number, boolean or text.
func scalar(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode:
		return true
	case *ast.ConstantNode:
		switch reflect.ValueOf(n.Value).Kind() {
		case reflect.Slice, reflect.Array, reflect.Map, reflect.String:
			return false
		}
		return true
	}
	return false
}

// runner holds what one evaluation needs; runners are pooled.
type runner struct {
	vm    vm.VM
	env   map[string]any
	meter meter
}

var runners = sync.Pool{New: func() any {
	r := new(runner)
	r.env = map[string]any{
		envScope: nil,
		fnGet:    r.meter.get,
		fnCharge: r.meter.pass,
		fnStep:   r.meter.step,
		meterVar: &r.meter,
	}
	return r
}}

func (r *runner) run(p *vm.Program) (any, error) {
	r.vm.MemoryBudget = conf.DefaultMemoryBudget
	out, err := r.vm.Run(p, r.env)
	if err != nil {
		return nil, exprError(err)
	}
	return out, nil
}

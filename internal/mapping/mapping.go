// Package mapping compiles component property values whose strings hold
// placeholders, "{{ <expression> }}", and resolves them against the outputs
// of upstream components.
//
// The scope an expression sees is a map from component id to that
// component's output, reachable as "$": "{{ $.hook.body.user.email }}".
// A string that is exactly one placeholder keeps the expression's JSON type;
// a string mixing text and placeholders is a string. Reading a missing key
// yields null. The language, functions and limits are described in
// docs/expressions.md.
package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/vm"
)

// Error is a problem with one placeholder, found when compiling or
// evaluating a value.
type Error struct {
	// Path locates the string inside the value: "values.email",
	// "items[2]", `headers["X Y"]`; "" for the value itself.
	Path string
	// Expr is the placeholder's expression, without the braces; "" when the
	// problem is not with one expression.
	Expr string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Expr != "" {
		src := e.Expr
		if len(src) > 80 {
			src = strings.ToValidUTF8(src[:77], "") + "..."
		}
		fmt.Fprintf(&b, "{{ %s }}: ", src)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid placeholder")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Template is a compiled property value. It is immutable and safe for
// concurrent use.
type Template struct {
	root   *node
	static bool
	refs   []string
}

type kind uint8

const (
	kindLiteral kind = iota // a scalar without placeholders
	kindExpr                // a string that is exactly one placeholder
	kindText                // a string mixing text and placeholders
	kindObject
	kindArray
)

type node struct {
	kind  kind
	path  string
	lit   any     // kindLiteral
	prog  program // kindExpr
	parts []part  // kindText
	keys  []string
	elems []*node // kindObject (one per key) and kindArray
}

type program struct {
	src string
	p   *vm.Program
}

// part is literal text or, when prog.p is set, a placeholder.
type part struct {
	text string
	prog program
}

// Compile compiles a property value as decoded by encoding/json into any:
// map[string]any, []any, string, float64, bool or nil. Other Go scalars,
// slices and maps with string keys are accepted too. Strings may hold
// placeholders; objects and arrays are walked recursively. A syntax error
// fails with an *Error naming the path inside the value and the expression.
func Compile(v any) (*Template, error) {
	c := &compiler{refs: map[string]bool{}}
	root, err := c.compile(v, "")
	if err != nil {
		return nil, err
	}
	t := &Template{root: root, static: c.placeholders == 0}
	for id := range c.refs {
		t.refs = append(t.refs, id)
	}
	slices.Sort(t.refs)
	return t, nil
}

type compiler struct {
	placeholders int
	refs         map[string]bool
}

func (c *compiler) compile(v any, path string) (*node, error) {
	switch v := v.(type) {
	case string:
		return c.compileString(v, path)
	case map[string]any:
		n := &node{kind: kindObject, path: path, keys: make([]string, 0, len(v))}
		for k := range v {
			n.keys = append(n.keys, k)
		}
		slices.Sort(n.keys)
		for _, k := range n.keys {
			e, err := c.compile(v[k], keyPath(path, k))
			if err != nil {
				return nil, err
			}
			n.elems = append(n.elems, e)
		}
		return n, nil
	case []any:
		n := &node{kind: kindArray, path: path, elems: make([]*node, len(v))}
		for i, e := range v {
			ce, err := c.compile(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			n.elems[i] = ce
		}
		return n, nil
	case nil, bool, int:
		return &node{kind: kindLiteral, path: path, lit: v}, nil
	}
	nv, err := normalize(v)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	switch nv.(type) {
	case string, map[string]any, []any:
		return c.compile(nv, path)
	}
	return &node{kind: kindLiteral, path: path, lit: nv}, nil
}

func (c *compiler) compileString(s, path string) (*node, error) {
	segs, err := scan(s)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	for _, sg := range segs {
		if sg.isExpr {
			c.placeholders++
		}
	}
	if c.placeholders > MaxPlaceholders {
		return nil, &Error{Path: path, Err: fmt.Errorf("%w: a value may hold at most %d placeholders", ErrLimit, MaxPlaceholders)}
	}
	if src, ok := single(segs); ok {
		p, err := c.compileExpr(src, path)
		if err != nil {
			return nil, err
		}
		return &node{kind: kindExpr, path: path, prog: p}, nil
	}
	if len(segs) == 1 && !segs[0].isExpr {
		return &node{kind: kindLiteral, path: path, lit: segs[0].text}, nil
	}
	n := &node{kind: kindText, path: path, parts: make([]part, len(segs))}
	for i, sg := range segs {
		if !sg.isExpr {
			n.parts[i] = part{text: sg.text}
			continue
		}
		p, err := c.compileExpr(sg.expr, path)
		if err != nil {
			return nil, err
		}
		n.parts[i] = part{prog: p}
	}
	return n, nil
}

func (c *compiler) compileExpr(src, path string) (program, error) {
	p, refs, err := compileExpr(src)
	if err != nil {
		return program{}, &Error{Path: path, Expr: src, Err: err}
	}
	for _, id := range refs {
		c.refs[id] = true
	}
	return program{src: src, p: p}, nil
}

// keyPath appends an object key to path.
func keyPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

// Static reports whether the value holds no placeholders.
func (t *Template) Static() bool {
	return t == nil || t.static
}

// References returns the sorted, unique ids of the components the value
// reads as $.<id> or $["<id>"]. Reads computed at run time, like $[name],
// and uses of $ as a whole are not listed.
func (t *Template) References() []string {
	if t == nil {
		return nil
	}
	return slices.Clone(t.refs)
}

// Eval resolves every placeholder against scope, a map from component id to
// output, and returns a fresh value made of nil, bool, string, int, float64,
// []any and map[string]any; values read from scope may be shared with it.
// A failing placeholder yields an *Error.
func (t *Template) Eval(scope map[string]any) (any, error) {
	if t == nil {
		return nil, nil
	}
	if t.static {
		return t.root.eval(nil)
	}
	r := runners.Get().(*runner)
	r.meter = meter{}
	r.env[envScope] = scope
	defer func() {
		r.env[envScope] = nil
		runners.Put(r)
	}()
	return t.root.eval(r)
}

func (n *node) eval(r *runner) (any, error) {
	switch n.kind {
	case kindLiteral:
		return n.lit, nil
	case kindExpr:
		return n.run(r, n.prog)
	case kindText:
		var b strings.Builder
		for _, p := range n.parts {
			if p.prog.p == nil {
				b.WriteString(p.text)
				continue
			}
			v, err := n.run(r, p.prog)
			if err != nil {
				return nil, err
			}
			s, err := text(v)
			if err != nil {
				return nil, &Error{Path: n.path, Expr: p.prog.src, Err: err}
			}
			b.WriteString(s)
		}
		return b.String(), nil
	case kindObject:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			v, err := n.elems[i].eval(r)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case kindArray:
		a := make([]any, len(n.elems))
		for i, e := range n.elems {
			v, err := e.eval(r)
			if err != nil {
				return nil, err
			}
			a[i] = v
		}
		return a, nil
	}
	return nil, &Error{Path: n.path, Err: errors.New("unknown template node")}
}

// run evaluates one placeholder, normalizes its result and charges it.
func (n *node) run(r *runner, p program) (any, error) {
	v, err := r.run(p.p)
	if err == nil {
		v, err = normalize(v)
	}
	if err == nil {
		err = r.meter.charge(v)
	}
	if err != nil {
		return nil, &Error{Path: n.path, Expr: p.src, Err: err}
	}
	return v, nil
}

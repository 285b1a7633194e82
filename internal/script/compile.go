package script

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// scriptName names user scripts in stack traces; positions are reported
// only for frames of this name.
const scriptName = "script"

// A script is compiled as the body of a function expression. The head
// ends with a newline, so lines in the script are one more in the
// compiled source and columns are unchanged.
const (
	head      = "(function (input, $) {\n"
	asyncHead = "(async function (input, $) {\n"
	tail      = "\n})"
)

// programCache keeps compiled scripts (and compile errors) by source. It
// is bounded; when full, an arbitrary entry makes room.
type programCache struct {
	seed maphash.Seed
	max  int
	mu   sync.RWMutex
	m    map[uint64]*compiled
}

type compiled struct {
	src  string
	prog *goja.Program
	err  *Error
}

func newProgramCache(max int) *programCache {
	return &programCache{seed: maphash.MakeSeed(), max: max, m: make(map[uint64]*compiled, max)}
}

// get returns the compiled program of src, compiling it once.
func (c *programCache) get(src string, maxBytes int) (*goja.Program, error) {
	if len(src) > maxBytes {
		return nil, &Error{Kind: KindSyntax, Message: fmt.Sprintf("the script is %d bytes long; at most %d are allowed", len(src), maxBytes)}
	}
	key := maphash.String(c.seed, src)
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e == nil || e.src != src {
		e = compile(src)
		c.mu.Lock()
		if len(c.m) >= c.max {
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
		c.m[key] = e
		c.mu.Unlock()
	}
	if e.err != nil {
		return nil, e.err
	}
	return e.prog, nil
}

func compile(src string) *compiled {
	h := head
	// await is only valid in an async function; such a script's result is
	// a promise, which the run settles before it returns.
	if strings.Contains(src, "await") {
		h = asyncHead
	}
	wrapped := h + src + tail
	tree, err := parser.ParseFile(nil, scriptName, wrapped, 0)
	if err != nil {
		return &compiled{src: src, err: syntaxError(err, src)}
	}
	if !isOneFunction(tree) {
		return &compiled{src: src, err: &Error{Kind: KindSyntax,
			Message: "SyntaxError: the script has a closing brace without an opening one; it must be the body of a function"}}
	}
	prog, err := goja.CompileAST(tree, true)
	if err != nil {
		return &compiled{src: src, err: syntaxError(err, src)}
	}
	return &compiled{src: src, prog: prog}
}

// isOneFunction reports whether tree is exactly the function expression
// the script was wrapped in, so a script cannot close the function early
// and run code (or declare bindings) at the top level.
func isOneFunction(tree *ast.Program) bool {
	if len(tree.Body) != 1 {
		return false
	}
	st, ok := tree.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return false
	}
	_, ok = st.Expression.(*ast.FunctionLiteral)
	return ok
}

// syntaxError turns a parser or compiler error into an *Error located in
// the script.
func syntaxError(err error, src string) *Error {
	e := &Error{Kind: KindSyntax}
	var list parser.ErrorList
	var ce *goja.CompilerSyntaxError
	switch {
	case errors.As(err, &list) && len(list) > 0:
		e.Message = list[0].Message
		e.Line, e.Column = scriptPosition(list[0].Position.Line, list[0].Position.Column)
	case errors.As(err, &ce):
		e.Message = ce.Message
		if ce.File != nil {
			p := ce.File.Position(ce.Offset)
			e.Line, e.Column = scriptPosition(p.Line, p.Column)
		}
	default:
		e.Message = err.Error()
	}
	e.Message = "SyntaxError: " + e.Message
	// An error found at the end of the wrapper (an unclosed brace) is at
	// the end of the script.
	if lines := strings.Count(src, "\n") + 1; e.Line > lines {
		e.Line = lines
		e.Column = len(src) - strings.LastIndexByte(src, '\n')
	}
	return e
}

// scriptPosition maps a position in the wrapped source to the script, or
// to 0, 0 when it falls in the wrapper.
func scriptPosition(line, column int) (int, int) {
	if line < 2 {
		return 0, 0
	}
	return line - 1, column
}

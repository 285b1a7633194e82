package connector

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/script"
)

// scriptAction is a JavaScript module of a package, run in the same
// sandbox as core.Code: the body of a function of input (the message) and
// $ (the outputs of the components upstream, and the step's properties as
// $.properties), whose return value is emitted.
type scriptAction struct {
	rt   *Runtime
	spec component.Spec
	src  string
}

var _ component.Action = (*scriptAction)(nil)

func (a *scriptAction) Spec() component.Spec { return a.spec }

// sandbox returns the runtime's sandbox, making one with default limits
// the first time if it was given none.
func (rt *Runtime) sandbox() *script.Sandbox {
	rt.sandboxOnce.Do(func() {
		if rt.Sandbox == nil {
			rt.Sandbox = script.New(script.Limits{})
		}
	})
	return rt.Sandbox
}

// Invoke runs the script on the message. A thrown error or a timeout is
// retried; a syntax error or an output that is not JSON fails at once.
func (a *scriptAction) Invoke(ctx context.Context, inv component.Invocation) ([]component.Emit, error) {
	scope := make(map[string]any, len(inv.Scope)+1)
	maps.Copy(scope, inv.Scope)
	scope["properties"] = inv.Properties
	out, err := a.rt.sandbox().Run(ctx, a.src, inv.Input, scope, script.DefaultTimeout)
	if err != nil {
		err = fmt.Errorf("%s: %w", a.spec.Type, err)
		var se *script.Error
		if errors.As(err, &se) && se.Permanent() {
			return nil, component.Permanent(err)
		}
		return nil, err
	}
	return []component.Emit{{Port: component.PortOut, Value: out}}, nil
}

package connector

import (
	"context"
	"fmt"
	"maps"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
)

// scriptAction is a JavaScript module of a package, run as core.Code runs
// its script (same sandbox, limits and error rules): the body of a
// function of input (the message) and $ (the outputs of the components
// upstream, and the step's properties as $.properties), whose return value
// is emitted.
type scriptAction struct {
	spec component.Spec
	src  string
	code *core.Code
}

var _ component.Action = (*scriptAction)(nil)

func (a *scriptAction) Spec() component.Spec { return a.spec }

// Invoke runs the script on the message. A thrown error or a timeout is
// retried; a syntax error or an output that is not JSON fails at once.
func (a *scriptAction) Invoke(ctx context.Context, inv component.Invocation) ([]component.Emit, error) {
	scope := make(map[string]any, len(inv.Scope)+1)
	maps.Copy(scope, inv.Scope)
	scope["properties"] = inv.Properties
	inv.Scope, inv.Properties = scope, map[string]any{"code": a.src}
	out, err := a.code.Invoke(ctx, inv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.spec.Type, err)
	}
	return out, nil
}

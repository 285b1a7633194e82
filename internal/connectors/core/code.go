package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/script"
)

// CodeType is the type name of the JavaScript step.
const CodeType = "core.Code"

// Code runs a JavaScript function body in a sandbox and emits what it
// returns.
type Code struct {
	sandbox *script.Sandbox
}

var (
	_ component.Action    = (*Code)(nil)
	_ component.Validator = (*Code)(nil)
)

// NewCodeWith returns the component running scripts in sandbox; nil
// means a sandbox of its own with the default limits.
func NewCodeWith(sandbox *script.Sandbox) *Code {
	if sandbox == nil {
		sandbox = script.New(script.Limits{})
	}
	return &Code{sandbox: sandbox}
}

// Spec describes the component.
func (*Code) Spec() component.Spec {
	return component.Spec{
		Type: CodeType,
		Kind: component.KindAction,
		ExampleFlow: exampleFlow("Score signups",
			map[string]any{
				"hook": node(WebhookType, nil),
				"score": node(CodeType, map[string]any{"code": "const user = input.body.user;\n" +
					"return { email: user.email.toLowerCase(), vip: (user.orders || []).length > 10 };"}),
				"call": post("https://api.example.com/contacts", "{{ $.score }}"),
			},
			link("hook", "score"), link("score", "call")),
		Description: "Runs JavaScript in a sandbox: the body of a function that sees the input message as `input` and the " +
			"outputs of the components upstream as `$` (`$.hook.body.email`), and whose return value is emitted on `out`. " +
			"No network, files, timers or modules; time and memory are limited. A thrown error or a timeout is retried " +
			"with backoff; a syntax error fails at once.",
		Properties: []component.Property{
			{
				Name: "code", Type: component.TypeString, Required: true, Literal: true,
				Description: "The function body. Taken as written: placeholders are not resolved here; read `input` and `$` instead.",
				Example:     "return { email: $.hook.body.email.toLowerCase(), vip: input.body.orders.length > 10 };",
			},
			{
				Name: "timeout", Type: component.TypeString, Default: script.DefaultTimeout.String(),
				Description: fmt.Sprintf("Longest a run may take, at most %s.", script.MaxTimeout),
			},
		},
		InPorts:      []string{component.PortIn},
		OutPorts:     []string{component.PortOut},
		OutputSample: map[string]any{"email": "ada@example.com", "vip": false},
	}
}

// Validate compiles the script when the flow is saved, so that a syntax
// error is reported then, with its line and column.
func (c *Code) Validate(props map[string]any) (string, error) {
	if v, set := props["code"]; set {
		src, _ := v.(string)
		if src == "" {
			return "code", errors.New("the script is empty")
		}
		if err := c.sandbox.Check(src); err != nil {
			return "code", err
		}
	}
	if s, ok := props["timeout"].(string); ok {
		if _, err := codeTimeout(s); err != nil {
			return "timeout", err
		}
	}
	return "", nil
}

// codeTimeout parses the timeout property.
func codeTimeout(s string) (time.Duration, error) {
	if s == "" {
		return script.DefaultTimeout, nil
	}
	d, err := ParseDuration(s)
	if err != nil || d < time.Millisecond || d > script.MaxTimeout {
		return 0, fmt.Errorf("timeout %q must be a duration between 1ms and %s", s, script.MaxTimeout)
	}
	return d, nil
}

// Invoke runs the script on the message.
func (c *Code) Invoke(ctx context.Context, inv component.Invocation) ([]component.Emit, error) {
	src, ok := inv.Properties["code"].(string)
	if !ok || src == "" {
		return nil, component.Permanent(fmt.Errorf("%s: code is required", CodeType))
	}
	timeout := script.DefaultTimeout
	if s, ok := inv.Properties["timeout"].(string); ok {
		d, err := codeTimeout(s)
		if err != nil {
			return nil, component.Permanent(fmt.Errorf("%s: %w", CodeType, err))
		}
		timeout = d
	}
	out, err := c.sandbox.Run(ctx, src, inv.Input, inv.Scope, timeout)
	if err != nil {
		err = fmt.Errorf("%s: %w", CodeType, err)
		var se *script.Error
		if errors.As(err, &se) && se.Permanent() {
			return nil, component.Permanent(err)
		}
		return nil, err
	}
	return []component.Emit{{Port: component.PortOut, Value: out}}, nil
}

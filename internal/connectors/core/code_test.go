package core_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
)

func codeAction(t *testing.T) component.Action {
	t.Helper()
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{})
	c, ok := reg.Lookup(core.CodeType)
	if !ok {
		t.Fatal("core.Code is not registered")
	}
	return c.(component.Action)
}

// invokeCode runs code on input, with scope as the upstream outputs the
// engine hands the step.
func invokeCode(a component.Action, ctx context.Context, code string, input any, scope map[string]any, extra map[string]any) (any, error) {
	// A time limit generous enough for a loaded machine and the race
	// detector, unless the test sets its own.
	props := map[string]any{"code": code, "timeout": "10s"}
	for k, v := range extra {
		props[k] = v
	}
	emits, err := a.Invoke(ctx, component.Invocation{Properties: props, Input: input, Scope: scope})
	if err != nil {
		return nil, err
	}
	if len(emits) != 1 || emits[0].Port != component.PortOut {
		return nil, fmt.Errorf("emits = %+v", emits)
	}
	return emits[0].Value, nil
}

func TestCodeSpec(t *testing.T) {
	t.Parallel()
	spec := codeAction(t).Spec()
	code, ok := spec.Property("code")
	if !ok || !code.Literal || !code.Required || spec.IO {
		t.Fatalf("spec = %+v", spec)
	}
	v := codeAction(t).(component.Validator)
	for _, c := range []struct {
		props map[string]any
		field string
	}{
		{map[string]any{"code": "return 1;", "timeout": "2s"}, ""},
		{map[string]any{"code": "return {;"}, "code"},
		{map[string]any{"code": ""}, "code"},
		{map[string]any{"code": "return 1;", "timeout": "31s"}, "timeout"},
	} {
		field, err := v.Validate(c.props)
		if field != c.field || (err == nil) != (c.field == "") {
			t.Errorf("Validate(%v) = %q, %v; want field %q", c.props, field, err, c.field)
		}
	}
}

func TestCode(t *testing.T) {
	t.Parallel()
	a := codeAction(t)
	hook := map[string]any{"body": map[string]any{"email": "Ada@Example.com", "items": []any{1.0, 2.5, []any{3.0}}}}
	scope := map[string]any{"hook": hook}
	cases := []struct {
		name string
		code string
		want any
	}{
		{"maps input and scope", `
			const body = input.body;
			return { email: $.hook.body.email.toLowerCase(), count: body.items.length, same: input === $.hook };`,
			map[string]any{"email": "ada@example.com", "count": 3.0, "same": true}},
		{"numbers and nested arrays stay JSON", `return [1, 2 ** 31, -7, 0.25, [[input.body.items[2]]], { n: 10 / 4 }];`,
			[]any{1.0, 2147483648.0, -7.0, 0.25, []any{[]any{[]any{3.0}}}, map[string]any{"n": 2.5}}},
		{"undefined is null", `return;`, nil},
		{"placeholders are text", `return "{{ $.hook.body.email }}";`, "{{ $.hook.body.email }}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := invokeCode(a, context.Background(), c.code, hook, scope, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

func TestCodeFailures(t *testing.T) {
	t.Parallel()
	a := codeAction(t)
	cases := []struct {
		name      string
		code      string
		extra     map[string]any
		permanent bool
		msg       string
	}{
		{"thrown error", "const n = 1;\nthrow new Error(`boom ${n}`);", nil, false, "core.Code: Error: boom 1 (line 2, column 7)"},
		{"syntax error", "return {;", nil, true, "core.Code: SyntaxError"},
		{"function returned", "return () => 1;", nil, true, "is a function"},
		{"missing code", "", nil, true, "code is required"},
		{"bad timeout", "return 1;", map[string]any{"timeout": "soon"}, true, "timeout"},
		{"timeout too long", "return 1;", map[string]any{"timeout": "1h"}, true, "timeout"},
		{"runaway", "while (true) {}", map[string]any{"timeout": "50ms"}, false, "core.Code: the script ran longer than its time limit of 50ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := invokeCode(a, context.Background(), c.code, nil, nil, c.extra)
			if err == nil || component.IsPermanent(err) != c.permanent || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v (permanent %v), want permanent %v with %q", err, component.IsPermanent(err), c.permanent, c.msg)
			}
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Fatalf("took %v", elapsed)
			}
		})
	}
}

func TestCodeSandbox(t *testing.T) {
	t.Parallel()
	a := codeAction(t)
	got, err := invokeCode(a, context.Background(),
		`return [typeof require, typeof fetch, typeof process, typeof setTimeout, typeof XMLHttpRequest];`, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []any{"undefined", "undefined", "undefined", "undefined", "undefined"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	// One flow's script cannot leave anything for the next run of the
	// same or of another flow's script.
	if _, err := invokeCode(a, context.Background(), `globalThis.shared = 1; return 1;`, nil, nil, nil); err == nil {
		t.Fatal("a script added a global")
	}
	if _, err := invokeCode(a, context.Background(), `Object.prototype.shared = 1; return 1;`, nil, nil, nil); err == nil {
		t.Fatal("a script changed Object.prototype")
	}
	for _, code := range []string{
		`return [typeof shared, ({}).shared === undefined];`,
		`/* another flow */ return [typeof shared, ({}).shared === undefined];`,
	} {
		got, err := invokeCode(a, context.Background(), code, nil, nil, nil)
		if err != nil || !reflect.DeepEqual(got, []any{"undefined", true}) {
			t.Fatalf("%s: %v, %v", code, got, err)
		}
	}
}

func TestCodeCancellation(t *testing.T) {
	t.Parallel()
	a := codeAction(t)
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(20*time.Millisecond, cancel)
	defer timer.Stop()
	_, err := invokeCode(a, ctx, `while (true) {}`, nil, nil, map[string]any{"timeout": "30s"})
	if !errors.Is(err, context.Canceled) || component.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable cancellation", err)
	}
}

func TestCodeConcurrent(t *testing.T) {
	t.Parallel()
	a := codeAction(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				got, err := invokeCode(a, context.Background(), `return { n: input.n * 2, from: $.start.id };`,
					map[string]any{"n": float64(i)}, map[string]any{"start": map[string]any{"id": float64(g)}}, nil)
				if want := map[string]any{"n": float64(2 * i), "from": float64(g)}; err != nil || !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("goroutine %d run %d: %v, %v", g, i, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

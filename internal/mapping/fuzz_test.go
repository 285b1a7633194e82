package mapping

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzCompile feeds arbitrary strings as values: Compile must never panic,
// and a value that compiles must evaluate against a small scope without
// panicking and, when it succeeds, give a value JSON can encode.
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		"",
		"plain text",
		"{{ $.hook.body.user.email }}",
		"Hello {{ $.hook.body.user.name }}, you have {{ $.hook.body.count + 1 }} items",
		"{{ $.hook.body.missing.deeper }}",
		"{{ $.hook.body.items[-1].sku ?? 'none' }}",
		`\{{ escaped }} \\{{ 1 }}`,
		"{{ 1 + }}",
		"{{ unterminated",
		"{{ }}",
		`{{ {"a": {"b": "}}"}} }}`,
		"{{ map($.hook.body.items, {{'sku': upper(.sku)}}) }}",
		"{{ reduce(1..40, #acc + #acc, 'x') }}",
		"{{ 1..1000000000 }}",
		"{{ toJSON($) }} {{ fromJSON('[1, {}]') }}",
		"{{ date($.hook.body.when).Format('2006') }} {{ now() }}",
		"{{ $meter }} {{ $env }} {{ $charge(1, nil) }} {{ $get(nil) }}",
		"{{ 1 / 0 }} {{ -0.0 }} {{ 0.1 + 0.2 }}",
		"{{ let x = 1; x }}{{ 'a' matches '(' }}",
		"{{ $.hook.body.user.name[0] }}{{ $[''] }}",
	} {
		f.Add(seed)
	}
	scope := map[string]any{
		"hook": map[string]any{"body": map[string]any{
			"user":  map[string]any{"email": "ada@example.com", "name": "Ada"},
			"count": 41.0,
			"items": []any{map[string]any{"sku": "x1"}, map[string]any{"sku": "y2"}},
			"when":  "2024-03-01T10:00:00Z",
			"empty": nil,
		}},
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := Compile(s)
		if err != nil {
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("Compile error %T is not an *Error: %v", err, err)
			}
			return
		}
		for _, v := range []any{s, map[string]any{"k": []any{s}}} {
			tm, err := Compile(v)
			if err != nil {
				t.Fatalf("%q compiles alone but not nested: %v", s, err)
			}
			out, err := tm.Eval(scope)
			if err != nil {
				var me *Error
				if !errors.As(err, &me) {
					t.Fatalf("Eval error %T is not an *Error: %v", err, err)
				}
				continue
			}
			if _, err := json.Marshal(out); err != nil {
				t.Fatalf("result %#v of %q does not marshal: %v", out, s, err)
			}
		}
		_ = tm.References()
	})
}

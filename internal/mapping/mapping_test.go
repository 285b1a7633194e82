package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// testScope is what upstream components produced, as the engine would hand
// it over after decoding their JSON outputs.
func testScope(t testing.TB) map[string]any {
	t.Helper()
	const doc = `{
		"hook": {"body": {
			"user": {"email": "ada@example.com", "name": "Ada Lovelace", "admin": true, "tags": ["a", "b"]},
			"count": 41,
			"price": 9.5,
			"items": [{"sku": "x1", "qty": 2, "price": 3}, {"sku": "y2", "qty": 1, "price": 10.25}],
			"empty": null,
			"when": "2024-03-01T10:00:00Z",
			"html": "<b>&</b>"
		}},
		"lookup": {"status": 200, "ids": [3, 1, 2]}
	}`
	var scope map[string]any
	if err := json.Unmarshal([]byte(doc), &scope); err != nil {
		t.Fatal(err)
	}
	return scope
}

func mustCompile(t testing.TB, v any) *Template {
	t.Helper()
	tm, err := Compile(v)
	if err != nil {
		t.Fatalf("Compile(%#v): %v", v, err)
	}
	return tm
}

func eval(t testing.TB, v any) any {
	t.Helper()
	out, err := mustCompile(t, v).Eval(testScope(t))
	if err != nil {
		t.Fatalf("Eval(%#v): %v", v, err)
	}
	return out
}

func TestTypePreservation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"string", "{{ $.hook.body.user.email }}", "ada@example.com"},
		{"number", "{{ $.hook.body.count }}", 41.0},
		{"arithmetic on a read number", "{{ $.hook.body.count + 1 }}", 42.0},
		{"integer arithmetic", "{{ 2 * 3 }}", 6},
		{"division", "{{ 10 / 4 }}", 2.5},
		{"bool", "{{ $.hook.body.user.admin }}", true},
		{"comparison", "{{ $.lookup.status == 200 }}", true},
		{"object", "{{ $.hook.body.user }}", map[string]any{
			"email": "ada@example.com", "name": "Ada Lovelace", "admin": true, "tags": []any{"a", "b"},
		}},
		{"array", "{{ $.hook.body.user.tags }}", []any{"a", "b"}},
		{"null", "{{ $.hook.body.empty }}", nil},
		{"surrounding whitespace", "  {{ $.hook.body.count }}\n", 41.0},
		{"no inner whitespace", "{{$.hook.body.count}}", 41.0},
		{"object literal", `{{ {"a": {"b": [1, true]}} }}`, map[string]any{"a": map[string]any{"b": []any{1, true}}}},
		{"array of objects", "{{ map($.hook.body.items, {{'sku': .sku}}) }}", []any{map[string]any{"sku": "x1"}, map[string]any{"sku": "y2"}}},
		{"string array from a function", "{{ split('a,b', ',') }}", []any{"a", "b"}},
		{"date becomes text", "{{ date('2024-03-01T10:00:00Z') }}", "2024-03-01T10:00:00Z"},
		{"duration becomes text", "{{ duration('90m') }}", "1h30m0s"},
		{"grouping keys become text", "{{ groupBy([1, 2, 3], # > 1) }}", map[string]any{"false": []any{1}, "true": []any{2, 3}}},
		{"bytes become text", `{{ b"hi" }}`, "hi"},
		{"whole scope", "{{ $.lookup }}", map[string]any{"status": 200.0, "ids": []any{3.0, 1.0, 2.0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := eval(t, tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("result does not marshal: %v", err)
			}
		})
	}
}

func TestInterpolation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{"Hello {{ $.hook.body.user.name }}!", "Hello Ada Lovelace!"},
		{"n={{ $.hook.body.count }}", "n=41"},
		{"n={{ $.hook.body.count + 1 }}", "n=42"},
		{"n={{ 1e21 }}", "n=1000000000000000000000"},
		{"n={{ 2 ** 70 }}", "n=1180591620717411300000"},
		{"n={{ -3.0 }}", "n=-3"},
		{"p={{ $.hook.body.price }}", "p=9.5"},
		{"p={{ 0.1 + 0.2 }}", "p=0.30000000000000004"},
		{"p={{ 0.0000001 }}", "p=1e-7"},
		{"i={{ 7 }}", "i=7"},
		{"b={{ $.hook.body.user.admin }},{{ !true }}", "b=true,false"},
		{"[{{ $.hook.body.empty }}]", "[]"},
		{"[{{ $.hook.body.missing }}]", "[]"},
		{"u={{ $.hook.body.user }}", `u={"admin":true,"email":"ada@example.com","name":"Ada Lovelace","tags":["a","b"]}`},
		{"t={{ $.hook.body.user.tags }}", `t=["a","b"]`},
		{"h={{ $.hook.body.html }} {{ [$.hook.body.html] }}", `h=<b>&</b> ["<b>&</b>"]`},
		{"{{ 1 }}{{ 2 }}", "12"},
		{"d={{ date('2024-03-01').Format('02/01/2006') }}", "d=01/03/2024"},
		{"no placeholders", "no placeholders"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := eval(t, tt.in); got != tt.want {
				t.Errorf("got %#v, want %q", got, tt.want)
			}
		})
	}
}

func TestMissingValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want any
	}{
		{"{{ $.hook.body.missing }}", nil},
		{"{{ $.hook.body.missing.deeper }}", nil},
		{"{{ $.nosuchcomponent.body }}", nil},
		{"{{ $.hook.body.empty.field }}", nil},
		{"{{ $.hook.body.user.email.field }}", nil},
		{"{{ $.hook.body.count.field }}", nil},
		{"{{ $.hook.body.items.sku }}", nil},
		{"{{ $.hook.body.items[5] }}", nil},
		{"{{ $.hook.body.items[5].sku }}", nil},
		{"{{ $.hook.body.items[-1].sku }}", "y2"},
		{"{{ $.hook.body.items[-3] }}", nil},
		{"{{ $.hook.body.items[0.5] }}", nil},
		{"{{ $.hook.body.items['x'] }}", nil},
		{"{{ $.hook.body.user[0] }}", nil},
		{"{{ $.hook.body.user.name[0] }}", "A"},
		{"{{ $['hook']['body']['user']['email'] }}", "ada@example.com"},
		{"{{ $.hook.body[$.hook.body.missing] }}", nil},
		{"{{ $.hook?.body?.missing?.x }}", nil},
		{"{{ $.hook.body.missing ?? 'default' }}", "default"},
		{"{{ $.hook.body.missing.deeper ?? 'default' }}", "default"},
		{"{{ $.hook.body.missing == nil }}", true},
		{"{{ len($.hook.body.missing ?? []) }}", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := eval(t, tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestNestedValues(t *testing.T) {
	t.Parallel()
	in := map[string]any{
		"method":  "POST",
		"retries": 3.0,
		"enabled": true,
		"nothing": nil,
		"headers": map[string]any{
			"X-User":       "{{ $.hook.body.user.email }}",
			"Content-Type": "application/json",
		},
		"items": []any{
			"{{ $.hook.body.items[0].sku }}",
			map[string]any{"total": "{{ sum($.hook.body.items, .qty * .price) }}"},
			[]any{"{{ 1 }}", "x-{{ 2 }}"},
		},
		"empty": map[string]any{},
		"none":  []any{},
	}
	tm := mustCompile(t, in)
	if tm.Static() {
		t.Error("Static() = true for a value with placeholders")
	}
	got, err := tm.Eval(testScope(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"method":  "POST",
		"retries": 3.0,
		"enabled": true,
		"nothing": nil,
		"headers": map[string]any{
			"X-User":       "ada@example.com",
			"Content-Type": "application/json",
		},
		"items": []any{
			"x1",
			map[string]any{"total": 16.25},
			[]any{1, "x-2"},
		},
		"empty": map[string]any{},
		"none":  []any{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}

	// Each evaluation builds fresh containers: changing one result does not
	// leak into the next, nor into the compiled value.
	got.(map[string]any)["method"] = "GET"
	got.(map[string]any)["items"].([]any)[0] = "changed"
	again, err := tm.Eval(testScope(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, want) {
		t.Fatalf("second evaluation changed: %#v", again)
	}
	if in["method"] != "POST" {
		t.Fatal("Compile's input was changed")
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     any
		static bool
	}{
		{nil, true},
		{"plain", true},
		{`\{{ not a placeholder }}`, true},
		{map[string]any{"a": []any{1.0, "b", map[string]any{}}}, true},
		{"{{ 1 }}", false},
		{map[string]any{"a": []any{"x", "{{ 1 }}"}}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			t.Parallel()
			tm := mustCompile(t, tt.in)
			if tm.Static() != tt.static {
				t.Errorf("Static() = %v, want %v", tm.Static(), tt.static)
			}
			if tt.static {
				got, err := tm.Eval(nil)
				if err != nil {
					t.Fatal(err)
				}
				if want := unescapedStatic(tt.in); !reflect.DeepEqual(got, want) {
					t.Errorf("Eval = %#v, want %#v", got, want)
				}
			}
		})
	}
}

func unescapedStatic(v any) any {
	if s, ok := v.(string); ok {
		return strings.ReplaceAll(s, `\{{`, "{{")
	}
	return v
}

func TestCompileAcceptsGoValues(t *testing.T) {
	t.Parallel()
	in := map[string]any{
		"timeout": 30,
		"ratio":   float32(0.5),
		"names":   []string{"a", "{{ upper('b') }}"},
		"labels":  map[string]string{"env": "{{ 'prod' }}"},
	}
	got := eval(t, in)
	want := map[string]any{
		"timeout": 30,
		"ratio":   0.5,
		"names":   []any{"a", "B"},
		"labels":  map[string]any{"env": "prod"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
	if _, err := Compile(map[string]any{"f": func() {}}); err == nil {
		t.Fatal("Compile accepted a func")
	}
}

func TestEscaping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want any
	}{
		{`\{{ $.hook.body.count }}`, "{{ $.hook.body.count }}"},
		{`a \{{ b }} {{ $.hook.body.count }}`, "a {{ b }} 41"},
		{`\\{{ $.hook.body.count }}`, `\41`},
		{`C:\dir\{{ 1 }}`, `C:\dir{{ 1 }}`},
		{`C:\dir\\{{ 1 }}`, `C:\dir\1`},
		{`a\b \n`, `a\b \n`},
		{"}} and { and }", "}} and { and }"},
		{`{{ "}}" }}`, "}}"},
		{`{{ '}}' + "{{" }}`, "}}{{"},
		{"{{ `}}` }}", "}}"},
		{`{{ "a\"}}" }}`, `a"}}`},
		{`{{ {"a": {"b": 1}} }}`, map[string]any{"a": map[string]any{"b": 1}}},
		{`{{ {"a": 1}.a }}x`, "1x"},
		{"x{{ 1 }}}", "x1}"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := eval(t, tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       any
		path     string
		expr     string
		contains string
		limit    bool
	}{
		{"syntax at the root", "{{ 1 + }}", "", "1 +", "unexpected token", false},
		{"syntax in an object", map[string]any{"values": map[string]any{"email": "x {{ $.a. }}"}}, "values.email", "$.a.", "", false},
		{"syntax in an array", map[string]any{"items": []any{"ok", "{{ 1 }}", "{{ ( }}"}}, "items[2]", "(", "", false},
		{"key needing quotes", map[string]any{"headers": map[string]any{"X Y": "{{ ) }}"}}, `headers["X Y"]`, ")", "", false},
		{"unterminated", map[string]any{"a": "hello {{ $.x"}, "a", "", "unterminated", false},
		{"unterminated string", "{{ 'abc }}", "", "", "unterminated", false},
		{"empty", "{{  }}", "", "", "empty", false},
		{"unknown name", "{{ hook.body }}", "", "hook.body", "unknown name hook", false},
		{"unknown function", "{{ nosuch(1) }}", "", "nosuch(1)", "", false},
		{"wrong argument type", "{{ upper(1) }}", "", "upper(1)", "", false},
		{"too long", "{{ " + strings.Repeat("1+", MaxExpressionLen/2) + "1 }}", "", "", "4096", true},
		{"too complex", "{{ [" + strings.Repeat("1,", 1100) + "1] }}", "", "", "complex", true},
		{"too many placeholders", strings.Repeat("{{ 1 }}", MaxPlaceholders+1), "", "", "placeholders", true},
		{"invalid pattern", "{{ 'a' matches '(' }}", "", "'a' matches '('", "missing closing )", false},
		{"complex pattern", "{{ 'a' matches '[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}[a-z]{1000}' }}", "", "", "too complex", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tm, err := Compile(tt.in)
			if err == nil {
				t.Fatalf("Compile succeeded: %#v", tm)
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if me.Path != tt.path {
				t.Errorf("Path = %q, want %q", me.Path, tt.path)
			}
			if tt.expr != "" && me.Expr != tt.expr {
				t.Errorf("Expr = %q, want %q", me.Expr, tt.expr)
			}
			msg := err.Error()
			if tt.path != "" && !strings.HasPrefix(msg, tt.path+": ") {
				t.Errorf("message %q does not start with the path", msg)
			}
			if tt.expr != "" && !strings.Contains(msg, "{{ "+tt.expr+" }}") {
				t.Errorf("message %q does not name the expression", msg)
			}
			if !strings.Contains(msg, tt.contains) {
				t.Errorf("message %q does not contain %q", msg, tt.contains)
			}
			if errors.Is(err, ErrLimit) != tt.limit {
				t.Errorf("errors.Is(err, ErrLimit) = %v, want %v", !tt.limit, tt.limit)
			}
		})
	}
}

// TestErrorMessages pins the examples of docs/expressions.md.
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	_, err := Compile(map[string]any{"values": map[string]any{"email": "{{ $.hook.body.user.email + }}"}})
	if want := "values.email: {{ $.hook.body.user.email + }}: unexpected token EOF (column 24)"; err == nil || err.Error() != want {
		t.Errorf("compile error %q, want %q", err, want)
	}
	_, err = mustCompile(t, map[string]any{"values": map[string]any{"name": "{{ upper($.hook.body.count) }}"}}).Eval(testScope(t))
	if want := "values.name: {{ upper($.hook.body.count) }}: expected a string, got a number (column 1)"; err == nil || err.Error() != want {
		t.Errorf("runtime error %q, want %q", err, want)
	}
}

func TestRuntimeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       any
		path     string
		expr     string
		contains string
	}{
		{"wrong type", map[string]any{"values": map[string]any{"email": "{{ upper($.hook.body.count) }}"}}, "values.email", "upper($.hook.body.count)", "expected a string, got a number"},
		{"wrong type in text", map[string]any{"list": []any{"ok", "n: {{ lower($.hook.body.user.tags) }}"}}, "list[1]", "lower($.hook.body.user.tags)", "expected a string, got an array"},
		{"bad JSON", "{{ fromJSON('{') }}", "", "fromJSON('{')", "JSON"},
		{"bad number", "{{ int($.hook.body.user.name) }}", "", "int($.hook.body.user.name)", "int(Ada Lovelace)"},
		{"bad date", "{{ date('yesterday') }}", "", "date('yesterday')", "yesterday"},
		{"not a finite number", "{{ 1 / 0 }}", "", "1 / 0", "not a number JSON can hold"},
		{"calling a value", "{{ $.hook.body.user.name() }}", "", "$.hook.body.user.name()", ""},
		{"internal names hold nothing useful", "{{ $meter }}", "", "$meter", "cannot be used"},
		{"invalid pattern from data", "{{ 'a' matches ('(' + $.hook.body.user.name) }}", "", "'a' matches ('(' + $.hook.body.user.name)", "invalid regular expression"},
		{"matching a number", "{{ $.hook.body.count matches 'x' }}", "", "$.hook.body.count matches 'x'", "expects a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mustCompile(t, tt.in).Eval(testScope(t))
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %T is not an *Error: %v", err, err)
			}
			if me.Path != tt.path || me.Expr != tt.expr {
				t.Errorf("Path, Expr = %q, %q; want %q, %q", me.Path, me.Expr, tt.path, tt.expr)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("message %q does not contain %q", err, tt.contains)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	big := make([]any, 100_000)
	for i := range big {
		big[i] = float64(i)
	}
	scope := map[string]any{"hook": map[string]any{
		"big":     big,
		"text":    strings.Repeat("x", 100_000),
		"pattern": strings.Repeat("[a-z]{1000}", 10),
	}}
	tests := []struct {
		name string
		in   string
	}{
		{"huge range", "{{ 1..1000000000 }}"},
		{"huge range in a loop", "{{ count(1..1000, len(1..500000) > 0) }}"},
		{"nested loops", "{{ count(1..1000, count(1..1000, count(1..1000, true) > 0) > 0) }}"},
		{"nested loops over data", "{{ count($.hook.big, count($.hook.big, true) > 0) }}"},
		{"linear function in a loop", "{{ count($.hook.big, sum($.hook.big) > 0) }}"},
		{"membership in a loop", "{{ count($.hook.big, # in $.hook.big) }}"},
		{"text doubling in a loop", "{{ reduce(1..64, #acc + #acc, 'x') }}"},
		{"text doubling with variables", "{{ let a = $.hook.text; let b = a + a; let c = b + b; let d = c + c; let e = d + d; let f = e + e; let g = f + f; let h = g + g; let i = h + h; let j = i + i; let k = j + j; len(k) }}"},
		{"deep nesting", "{{ reduce(1..100000, [#acc], []) }}"},
		{"repeat", "{{ repeat(repeat('x', 1000000), 1000000) }}"},
		{"replace", "{{ replace($.hook.text, '', $.hook.text) }}"},
		{"long text from a loop", "{{ join(map(1..100000, $.hook.text)) }}"},
		{"internal functions give no budget back", "{{ $step(0, -100000000) + count($.hook.big, count($.hook.big, true) > 0) }}"},
		{"complex pattern from data", "{{ $.hook.text matches $.hook.pattern }}"},
		{"costly matching", "{{ $.hook.text matches repeat('[a-z]{1000}', 4) }}"},
		{"many patterns", "{{ count(1..100000, 'x' matches ('(a|b){100}' + string(#))) }}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tm := mustCompile(t, tt.in)
			start := time.Now()
			_, err := tm.Eval(scope)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v, want ErrLimit", err)
			}
			var me *Error
			if !errors.As(err, &me) || me.Expr == "" {
				t.Errorf("err = %#v, want an *Error naming the expression", err)
			}
			// Generous, as tests run in parallel: the point is that it stops.
			// Typical figures are well under a second.
			limit := 5 * time.Second
			if raceEnabled {
				limit = 5 * time.Minute
			}
			if d := time.Since(start); d > limit {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestLargeInputs checks that functions over large inputs do work in
// proportion to their size, and finish within the budget.
func TestLargeInputs(t *testing.T) {
	t.Parallel()
	const n = 100_000
	distinct := make([]any, n)
	for i := range distinct {
		distinct[i] = fmt.Sprint(i)
	}
	scope := map[string]any{"hook": map[string]any{
		"distinct": distinct,
		"text":     strings.Repeat("é", n),
		"cutset":   strings.Repeat("x", n) + "é",
	}}
	tests := []struct {
		in   string
		want any
	}{
		{"{{ len(uniq($.hook.distinct)) }}", n},
		{"{{ len(uniq(concat($.hook.distinct, $.hook.distinct))) }}", n},
		{"{{ trim($.hook.text, $.hook.cutset) }}", ""},
		{"{{ len(sort($.hook.distinct)) }}", n},
		{"{{ len(groupBy($.hook.distinct, #)) }}", n},
		{"{{ $.hook.text matches '^(é)+$' }}", true},
		{"{{ len(toJSON($.hook.distinct)) > 0 }}", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got, err := mustCompile(t, tt.in).Eval(scope)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			limit := 5 * time.Second
			if raceEnabled {
				limit = 5 * time.Minute
			}
			if d := time.Since(start); d > limit {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestBudgetIsPerEvaluation(t *testing.T) {
	t.Parallel()
	// A single placeholder well within the budget succeeds every time: the
	// meter starts afresh with each evaluation.
	tm := mustCompile(t, "{{ len(map(1..100000, # * 2)) }}")
	for range 5 {
		got, err := tm.Eval(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != 100000 {
			t.Fatalf("got %v", got)
		}
	}
}

func TestReferences(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want []string
	}{
		{"static", nil},
		{"{{ 1 + 2 }}", nil},
		{"{{ $.hook.body }}", []string{"hook"}},
		{map[string]any{
			"a": "{{ $.lookup.status }} {{ $.hook.body.x }}",
			"b": []any{"{{ $['hook'] }}", "{{ $?.zeta ?? $.alpha.x }}"},
			"c": "{{ map($.items.list, #.id + $.extra.offset) }}",
		}, []string{"alpha", "extra", "hook", "items", "lookup", "zeta"}},
		{"{{ $[$.hook.name] }}", []string{"hook"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			t.Parallel()
			tm := mustCompile(t, tt.in)
			got := tm.References()
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("References() = %q, want %q", got, tt.want)
			}
			got[0] = "changed"
			if tm.References()[0] == "changed" {
				t.Error("References() shares its slice")
			}
		})
	}
}

// TestFunctions runs the examples of docs/expressions.md.
func TestFunctions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want any
	}{
		// Text.
		{"{{ upper('ada') }}", "ADA"},
		{"{{ lower('ADA') }}", "ada"},
		{"{{ trim('  ada  ') }}", "ada"},
		{"{{ trim('xxadaxx', 'x') }}", "ada"},
		{"{{ trimPrefix('+33 1', '+33 ') }}", "1"},
		{"{{ trimSuffix('report.pdf', '.pdf') }}", "report"},
		{"{{ split('a,b,c', ',') }}", []any{"a", "b", "c"}},
		{"{{ splitAfter('a,b', ',') }}", []any{"a,", "b"}},
		{"{{ join(['a', 'b'], ', ') }}", "a, b"},
		{"{{ replace('a-b-c', '-', '+') }}", "a+b+c"},
		{"{{ repeat('ab', 3) }}", "ababab"},
		{"{{ indexOf('banana', 'an') }}", 1},
		{"{{ lastIndexOf('banana', 'an') }}", 3},
		{"{{ hasPrefix('invoice-42', 'invoice-') }}", true},
		{"{{ hasSuffix('photo.png', '.png') }}", true},
		{"{{ 'banana' contains 'nan' }}", true},
		{"{{ 'banana' startsWith 'ban' }}", true},
		{"{{ 'banana' endsWith 'na' }}", true},
		{"{{ 'ada@example.com' matches '^[^@]+@example[.]com$' }}", true},
		{"{{ $.hook.body.user.email matches ('^' + 'ada') }}", true},
		{"{{ not ('abc' matches 'd') }}", true},
		{"{{ count($.hook.body.items, .sku matches '^x') }}", 1},
		{"{{ len('ada') }}", 3},
		{"{{ 'ada'[0:2] }}", "ad"},
		{"{{ string(42) + '!' }}", "42!"},
		{"{{ string({'a': 1}) }}", `{"a":1}`},
		{"{{ string(nil) + string(1.5) + string(true) }}", "1.5true"},
		// Numbers.
		{"{{ abs(-2) }}", 2},
		{"{{ ceil(1.2) }}", 2.0},
		{"{{ floor(1.8) }}", 1.0},
		{"{{ round(1.5) }}", 2.0},
		{"{{ int('42') }}", 42},
		{"{{ int(3.9) }}", 3},
		{"{{ float('1.5') }}", 1.5},
		{"{{ max(1, 5, 3) }}", 5},
		{"{{ min([4, 2, 8]) }}", 2},
		{"{{ sum([1, 2, 3]) }}", 6},
		{"{{ mean([1, 2, 3, 4]) }}", 2.5},
		{"{{ median([1, 5, 2]) }}", 2.0},
		{"{{ 7 % 3 }}", 1},
		{"{{ 2 ** 10 }}", 1024.0},
		// Arrays.
		{"{{ len([1, 2]) }}", 2},
		{"{{ first([1, 2]) }}", 1},
		{"{{ last([1, 2]) }}", 2},
		{"{{ take([1, 2, 3], 2) }}", []any{1, 2}},
		{"{{ reverse([1, 2, 3]) }}", []any{3, 2, 1}},
		{"{{ sort([3, 1, 2]) }}", []any{1, 2, 3}},
		{"{{ sort(['b', 'a'], 'desc') }}", []any{"b", "a"}},
		{"{{ uniq([1, 1, 2]) }}", []any{1, 2}},
		{"{{ concat([1], [2, 3]) }}", []any{1, 2, 3}},
		{"{{ flatten([1, [2, [3]]]) }}", []any{1, 2, 3}},
		{"{{ 2 in [1, 2] }}", true},
		{"{{ map([1, 2], # * 10) }}", []any{10, 20}},
		{"{{ filter([1, 2, 3], # > 1) }}", []any{2, 3}},
		{"{{ find($.hook.body.items, .qty > 1).sku }}", "x1"},
		{"{{ findIndex([5, 6], # == 6) }}", 1},
		{"{{ findLast([1, 2, 3], # < 3) }}", 2},
		{"{{ count([1, 2, 3], # > 1) }}", 2},
		{"{{ all([1, 2], # > 0) }}", true},
		{"{{ any([1, 2], # > 1) }}", true},
		{"{{ none([1, 2], # > 2) }}", true},
		{"{{ one([1, 2], # > 1) }}", true},
		{"{{ sum($.hook.body.items, .qty * .price) }}", 16.25},
		{"{{ reduce([1, 2, 3], #acc + #, 0) }}", 6},
		{"{{ sortBy($.hook.body.items, .price, 'desc')[0].sku }}", "y2"},
		{"{{ groupBy(['ab', 'c'], len(#)) }}", map[string]any{"1": []any{"c"}, "2": []any{"ab"}}},
		{"{{ $.hook.body.items | map(.sku) | join(',') }}", "x1,y2"},
		{"{{ 1..3 }}", []any{1, 2, 3}},
		// Objects.
		{"{{ keys({'a': 1}) }}", []any{"a"}},
		{"{{ values({'a': 1}) }}", []any{1}},
		{"{{ toPairs({'a': 1}) }}", []any{[]any{"a", 1}}},
		{"{{ fromPairs([['a', 1]]) }}", map[string]any{"a": 1}},
		{"{{ get({'a': 1}, 'a') }}", 1},
		{"{{ type($.hook.body.user) }}", "map"},
		{"{{ [type([]), type(''), type(1.5), type(1), type(true), type(nil)] }}", []any{"array", "string", "float", "int", "bool", "nil"}},
		// JSON and encodings.
		{"{{ toJSON({'a': [1, 'x'], 'b': nil}) }}", `{"a":[1,"x"],"b":null}`},
		{`{{ fromJSON('{"a": [1, 2]}') }}`, map[string]any{"a": []any{1.0, 2.0}}},
		{"{{ toBase64('hello') }}", "aGVsbG8="},
		{"{{ fromBase64('aGVsbG8=') }}", "hello"},
		// Dates.
		{"{{ date('2024-03-01') }}", "2024-03-01T00:00:00Z"},
		{"{{ date('01/03/2024', '02/01/2006') }}", "2024-03-01T00:00:00Z"},
		{"{{ date('2024-03-01 10:00', '2006-01-02 15:04', 'Europe/Paris') }}", "2024-03-01T10:00:00+01:00"},
		{"{{ date($.hook.body.when).Format('2006-01-02') }}", "2024-03-01"},
		{"{{ date('2024-03-01').Add(duration('36h')).Format('Jan 2') }}", "Mar 2"},
		{"{{ date('2024-03-01').In(timezone('Asia/Tokyo')).Hour() }}", 9},
		{"{{ date('2024-03-01').Year() }}", 2024},
		{"{{ date('2024-03-01').Unix() }}", 1709251200},
		{"{{ date('2024-03-01').Month() }}", 3},
		{"{{ date('2024-03-01').Weekday() }}", 5},
		{"{{ date('2024-03-01').UnixMilli() }}", 1709251200000},
		{"{{ date('2024-01-31').AddDate(0, 1, 0) }}", "2024-03-02T00:00:00Z"},
		{"{{ date('2024-03-01T10:00:00Z').Format('Jan 2, 15:04') }}", "Mar 1, 10:00"},
		{"{{ now().After(date('2024-01-01')) }}", true},
		{"{{ (now() - duration('1h')).Before(now()) }}", true},
		{"{{ date('2024-03-02') > date('2024-03-01') }}", true},
		{"{{ (date('2024-03-02') - date('2024-03-01')).Hours() }}", 24.0},
		{"{{ duration('1h30m').Minutes() }}", 90.0},
		// Conditionals.
		{"{{ $.hook.body.count > 40 ? 'big' : 'small' }}", "big"},
		{"{{ if $.hook.body.user.admin { 'admin' } else { 'user' } }}", "admin"},
		{"{{ let n = $.hook.body.count; n * n }}", 1681.0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := eval(t, tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}

	t.Run("now", func(t *testing.T) {
		t.Parallel()
		got, ok := eval(t, "{{ now() }}").(string)
		if !ok {
			t.Fatalf("now() gave %T", got)
		}
		at, err := time.Parse(time.RFC3339Nano, got)
		if err != nil || at.Location() != time.UTC || time.Since(at) > time.Hour || time.Since(at) < -time.Hour {
			t.Fatalf("now() gave %q (%v)", got, err)
		}
	})
}

func TestConcurrentEval(t *testing.T) {
	t.Parallel()
	tm := mustCompile(t, map[string]any{"id": "{{ $.hook.id }}", "label": "n{{ $.hook.id * 2 }}"})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := float64(g*1000 + i)
				got, err := tm.Eval(map[string]any{"hook": map[string]any{"id": id}})
				if err != nil {
					errs <- err
					return
				}
				want := map[string]any{"id": id, "label": fmt.Sprintf("n%d", int(id)*2)}
				if !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("got %#v, want %#v", got, want)
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

func TestNilTemplate(t *testing.T) {
	t.Parallel()
	var tm *Template
	if v, err := tm.Eval(nil); v != nil || err != nil {
		t.Errorf("Eval = %v, %v", v, err)
	}
	if !tm.Static() || tm.References() != nil {
		t.Error("nil template is not static and empty")
	}
}

func BenchmarkEval(b *testing.B) {
	tm := mustCompile(b, map[string]any{
		"email":  "{{ $.hook.body.user.email }}",
		"source": "web",
		"n":      "{{ $.hook.body.count + 1 }}",
	})
	scope := testScope(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Eval(scope); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	v := map[string]any{
		"email":  "{{ $.hook.body.user.email }}",
		"source": "web",
		"n":      "{{ $.hook.body.count + 1 }}",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(v); err != nil {
			b.Fatal(err)
		}
	}
}

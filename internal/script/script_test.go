package script_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/script"
)

// run runs src with a time limit generous enough for a loaded machine and
// the race detector; the tests of the limit set their own.
func run(t *testing.T, s *script.Sandbox, src string, input, scope any) (any, error) {
	t.Helper()
	return s.Run(context.Background(), src, input, scope, 10*time.Second)
}

func asError(t *testing.T, err error) *script.Error {
	t.Helper()
	var se *script.Error
	if !errors.As(err, &se) {
		t.Fatalf("got %v (%T), want a *script.Error", err, err)
	}
	return se
}

func TestRunResults(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{})
	input := map[string]any{
		"n": 41.0, "i": 7, "i64": int64(-3), "list": []any{1.0, []any{"a", true, nil}},
		"__proto__": "plain key", "toString": "also plain",
	}
	scope := map[string]any{"hook": map[string]any{"body": map[string]any{"email": "Ada@Example.com"}}}
	cases := []struct {
		name string
		src  string
		want any
	}{
		{"input and scope", `return { answer: input.n + 1, email: $.hook.body.email.toLowerCase() };`,
			map[string]any{"answer": 42.0, "email": "ada@example.com"}},
		{"integers become float64", `return [input.i, input.i64, 2 ** 53, -0, 1.5];`,
			[]any{7.0, -3.0, 9007199254740992.0, 0.0, 1.5}},
		{"nested arrays", `return input.list.concat([[1, [2, [3]]]]);`,
			[]any{1.0, []any{"a", true, nil}, []any{1.0, []any{2.0, []any{3.0}}}}},
		{"odd keys are plain keys", `return [input["__proto__"], input.toString, Object.keys(input).length];`,
			[]any{"plain key", "also plain", 6.0}},
		{"keys in sorted order", `return Object.keys(input).join();`, "__proto__,i,i64,list,n,toString"},
		{"undefined is null", `return undefined;`, nil},
		{"no return is null", `const x = 1;`, nil},
		{"JSON rules", `return { u: undefined, nan: NaN, inf: -Infinity, arr: [undefined], d: new Date(0), boxed: new String("s"), j: { toJSON() { return "J"; } } };`,
			map[string]any{"nan": nil, "inf": nil, "arr": []any{nil}, "d": "1970-01-01T00:00:00.000Z", "boxed": "s", "j": "J"}},
		{"await", `const v = await Promise.resolve(input.n); return v + 1;`, 42.0},
		{"returned promise", `return Promise.resolve("done");`, "done"},
		{"strings with braces", `return "{{ $.hook }}";`, "{{ $.hook }}"},
		{"assignments that frozen prototypes would refuse", `
			class MyError extends Error { constructor(m) { super(m); this.name = "MyError"; } }
			const o = {}; o.toString = () => "mine"; o.constructor = 1; o.hasOwnProperty = 2;
			const e = new MyError("boom");
			return [String(o), o.constructor, o.hasOwnProperty, e.name, String(e)];`,
			[]any{"mine", 1.0, 2.0, "MyError", "MyError: boom"}},
		{"regexp replace patterns", `return ["2024-01-05".replace(/(?<y>\d+)-(\d+)-(\d+)/, "$<y>/$2/$3 $$ $&"), "aXbXc".replaceAll("X", "$'"), "a1b2".split(/(\d)/)];`,
			[]any{"2024/01/05 $ 2024-01-05", "abXcbcc", []any{"a", "1", "b", "2", ""}}},
		{"long strings take the loop paths", `
			const s = "ab,ab,".padStart(300006, "-");
			return [s.replace(/(a)(b)/g, "$2$1").slice(-6), s.split(/,/).length, s.match(/b/g).length, s.replaceAll(",", "").length, s.split(/(?=b)/).length];`,
			[]any{"ba,ba,", 3.0, 2.0, 300004.0, 3.0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := run(t, s, c.src, input, scope)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{MaxSourceBytes: 1000, MaxOutputBytes: 1000})
	cases := []struct {
		name      string
		src       string
		kind      script.Kind
		msg       string
		line, col int
	}{
		{"thrown error", "const x = 1;\n  throw new TypeError('bad ' + x);", script.KindThrown, "TypeError: bad 1", 2, 9},
		{"thrown string", `throw "plain"`, script.KindThrown, "plain", 1, 1},
		{"thrown object", `throw { code: 7 }`, script.KindThrown, `{"code":7}`, 1, 1},
		{"runtime TypeError", "const o = null;\n\no.x;", script.KindThrown, "TypeError: Cannot read property 'x' of", 3, 0},
		{"undeclared assignment", `x = 1;`, script.KindThrown, "ReferenceError: x is not defined", 1, 1},
		{"rejected promise", `return Promise.reject(new Error("nope"));`, script.KindThrown, "Error: nope", 0, 0},
		{"stack overflow", `function f() { return f(); } return f();`, script.KindThrown, "Maximum call stack size exceeded", 1, 0},
		{"syntax error", "const a = 1;\nconst b = ;", script.KindSyntax, "SyntaxError: Unexpected token ;", 2, 11},
		{"unclosed brace", "if (true) {\n  return 1;", script.KindSyntax, "SyntaxError", 2, 0},
		{"redeclaration", "let a = 1;\nlet a = 2;", script.KindSyntax, "SyntaxError", 2, 0},
		{"escaping the function", "}); globalThis.x = 1; (function () {", script.KindSyntax, "must be the body of a function", 0, 0},
		{"source too large", strings.Repeat(" ", 1001), script.KindSyntax, "at most 1000 are allowed", 0, 0},
		{"function returned", `return { f() {} };`, script.KindOutput, "the returned value.f is a function", 0, 0},
		{"symbol returned", `return [Symbol("s")];`, script.KindOutput, "the returned value[0] is a symbol", 0, 0},
		{"bigint returned", `return 1n;`, script.KindOutput, "BigInt", 0, 0},
		{"cycle returned", `const a = { b: {} }; a.b.a = a; return a;`, script.KindOutput, "the returned value.b.a refers to itself", 0, 0},
		{"map returned", `return new Map();`, script.KindOutput, "Map or Set", 0, 0},
		{"output too large", `return "x".repeat(2000);`, script.KindOutput, "larger than the limit of 1000 bytes", 0, 0},
		{"pending promise", `return new Promise(() => {});`, script.KindThrown, "never settled", 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := run(t, s, c.src, nil, nil)
			se := asError(t, err)
			if se.Kind != c.kind || !strings.Contains(se.Error(), c.msg) {
				t.Fatalf("got kind %d %q, want kind %d containing %q", se.Kind, se.Error(), c.kind, c.msg)
			}
			if c.line != 0 && se.Line != c.line {
				t.Fatalf("line %d, want %d (%v)", se.Line, c.line, se)
			}
			if c.col != 0 && se.Column != c.col {
				t.Fatalf("column %d, want %d (%v)", se.Column, c.col, se)
			}
			if want := c.kind == script.KindSyntax || c.kind == script.KindOutput; se.Permanent() != want {
				t.Fatalf("Permanent() = %v, want %v", se.Permanent(), want)
			}
		})
	}
}

// TestNoAmbientAuthority: the global scope holds the language, nothing
// that reaches outside the run.
func TestNoAmbientAuthority(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{})
	got, err := run(t, s, `
		const absent = ["require", "fetch", "process", "setTimeout", "setInterval", "setImmediate", "queueMicrotask",
			"XMLHttpRequest", "WebSocket", "console", "module", "exports", "global", "Deno", "Bun", "eval",
			"ArrayBuffer", "Uint8Array", "DataView", "WeakRef", "FinalizationRegistry", "GoError"];
		const present = absent.filter((name) => typeof globalThis[name] !== "undefined");
		let generated = "";
		for (const make of [() => Function("return 1"), () => new Function("return 1"),
			() => (function* () {}).constructor("yield 1"), () => (async function () {}).constructor("return 1")]) {
			try { make(); generated += "!"; } catch (e) { generated += e instanceof TypeError ? "." : "?"; }
		}
		return { present, requireType: typeof require, fetchType: typeof fetch, processType: typeof process,
			generated, globals: Object.getOwnPropertyNames(globalThis).sort() };`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := got.(map[string]any)
	if len(out["present"].([]any)) != 0 || out["requireType"] != "undefined" || out["fetchType"] != "undefined" ||
		out["processType"] != "undefined" || out["generated"] != "...." {
		t.Fatalf("sandbox exposes too much: %v", out)
	}
	want := strings.Fields(`AggregateError Array BigInt Boolean Date Error EvalError Function Infinity JSON Map Math NaN Number
		Object Promise Proxy RangeError ReferenceError Reflect RegExp Set String Symbol SyntaxError TypeError URIError WeakMap
		WeakSet decodeURI decodeURIComponent encodeURI encodeURIComponent escape globalThis isFinite isNaN parseFloat parseInt
		undefined unescape`)
	var globals []string
	for _, g := range out["globals"].([]any) {
		globals = append(globals, g.(string))
	}
	if !reflect.DeepEqual(globals, want) {
		t.Fatalf("globals:\n%v\nwant\n%v", globals, want)
	}
}

// mutations tries to change everything a script could share with a later
// run; it returns the attempts that did not throw.
const mutations = `
	const attempts = {
		globalVar: () => { globalThis.leak = 1; },
		defineGlobal: () => { Object.defineProperty(globalThis, "leak", { value: 1 }); },
		objectProto: () => { Object.prototype.leak = 1; },
		arrayProto: () => { Array.prototype.leak = 1; },
		arrayMethod: () => { Array.prototype.map = () => "leak"; },
		stringMethod: () => { String.prototype.trim = () => "leak"; },
		json: () => { JSON.parse = () => "leak"; },
		math: () => { Math.random = () => 4; },
		ctorStatic: () => { Object.leak = 1; },
		functionProto: () => { Function.prototype.leak = 1; },
		iteratorProto: () => { Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())).leak = 1; },
		arrayIterator: () => { Object.getPrototypeOf([][Symbol.iterator]()).next = () => ({ done: true }); },
		generatorProto: () => { Object.getPrototypeOf(function* () {}).prototype.leak = 1; },
		promiseProto: () => { Promise.prototype.then = () => "leak"; },
		errorProto: () => { Error.prototype.message = "leak"; },
		argumentsIterator: () => { (function () { return arguments; })()[Symbol.iterator].leak = 1; },
		throwTypeError: () => { Object.getOwnPropertyDescriptor((function () { "use strict"; return arguments; })(), "callee").get.leak = 1; },
		setProto: () => { Object.setPrototypeOf(Object.prototype, { leak: 1 }); },
		deleteBuiltin: () => { delete globalThis.JSON; },
		protoAccessor: () => { ({}).__proto__.leak = 1; },
		regexpStatics: () => { RegExp.leak = /x/.exec("x"); },
		symbolRegistry: () => { Symbol.for("leak").description.leak = 1; },
	};
	const succeeded = [];
	for (const [name, attempt] of Object.entries(attempts)) {
		try { attempt(); succeeded.push(name); } catch (e) { /* refused */ }
	}
	return succeeded;`

// observe returns whatever a previous run could have left behind.
const observe = `
	const seen = [];
	if (typeof leak !== "undefined" || "leak" in globalThis) seen.push("global");
	if (({}).leak !== undefined || [].leak !== undefined || Object.leak !== undefined) seen.push("object");
	if ((() => {}).leak !== undefined) seen.push("function");
	if ([1].map((x) => x)[0] !== 1 || " a ".trim() !== "a" || JSON.parse("1") !== 1) seen.push("method");
	if (Math.random() >= 1) seen.push("math");
	if ([...[1, 2]].length !== 2) seen.push("iterator");
	if (new Error().message !== "") seen.push("error");
	if (typeof JSON === "undefined") seen.push("deleted");
	return seen;`

// TestNoLeaksBetweenRuns runs the mutations and the observation in the
// same VM (the sandbox has one), as the same and as another script, and
// under concurrency.
func TestNoLeaksBetweenRuns(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{Concurrency: 1})
	got, err := run(t, s, mutations, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.([]any)) != 0 {
		t.Fatalf("these mutations were allowed: %v", got)
	}
	for i, src := range []string{observe, "/* another flow */ " + observe} {
		got, err := run(t, s, src, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.([]any)) != 0 {
			t.Fatalf("run %d saw what an earlier run left: %v", i, got)
		}
	}
	// A run that only reads and writes its own values leaves nothing
	// either: the same script sees a fresh scope each time.
	for i := range 3 {
		got, err := run(t, s, `let count = 0; count++; const o = input; o.seen = (o.seen || 0) + 1; return [count, o.seen];`, map[string]any{}, nil)
		if err != nil || !reflect.DeepEqual(got, []any{1.0, 1.0}) {
			t.Fatalf("run %d: %v, %v", i, got, err)
		}
	}
	if n := script.VMsCreated(s); n != 1 {
		t.Fatalf("%d VMs were made; the runs should have shared one", n)
	}
}

// TestEveryBuiltinIsFrozen walks every object a script can reach without
// making it itself (globals, their properties and prototypes, and the
// prototypes behind functions, iterators, generators and promises) and
// checks that each is frozen.
func TestEveryBuiltinIsFrozen(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{})
	got, err := run(t, s, `
		function* gen() {}
		async function af() {}
		const args = (function () { return arguments; })();
		// gen() and af() are left out: their prototypes are the script's
		// own (gen.prototype); what lies behind them is reached below.
		const instances = [[], "", 0, true, Symbol("s"), 1n, {}, () => {}, function () {}, class {}, gen, af,
			Object.getPrototypeOf(gen()),
			[][Symbol.iterator](), ""[Symbol.iterator](), new Map()[Symbol.iterator](), new Set()[Symbol.iterator](),
			"a".matchAll(/a/g), new Map(), new Set(), new WeakMap(), new WeakSet(), new Date(), /x/, new Error(),
			new TypeError(), Promise.resolve(), args, (() => {}).bind(null), new Proxy({}, {})];
		const roots = [globalThis];
		for (const x of instances) {
			roots.push(Object.getPrototypeOf(Object(x)));
			for (const key of Reflect.ownKeys(Object(x))) {
				const d = Object.getOwnPropertyDescriptor(Object(x), key);
				if (typeof x !== "function" || key !== "prototype") roots.push(d.get, d.set);
				if (x === args) roots.push(d.value);
			}
		}
		const seen = new Set();
		const thawed = [];
		const stack = roots.map((r) => [r, "root"]);
		while (stack.length > 0) {
			const [o, path] = stack.pop();
			if (o === null || (typeof o !== "object" && typeof o !== "function") || seen.has(o)) continue;
			seen.add(o);
			if (!Object.isFrozen(o)) thawed.push(path);
			stack.push([Object.getPrototypeOf(o), path + ".__proto__"]);
			for (const key of Reflect.ownKeys(o)) {
				const d = Object.getOwnPropertyDescriptor(o, key);
				const p = path + "." + String(key);
				stack.push([d.value, p], [d.get, p + "<get>"], [d.set, p + "<set>"]);
			}
		}
		return { thawed, checked: seen.size };`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := got.(map[string]any)
	if thawed := out["thawed"].([]any); len(thawed) != 0 {
		t.Fatalf("%d objects are not frozen: %v", len(thawed), thawed)
	}
	if out["checked"].(float64) < 500 {
		t.Fatalf("only %v objects checked", out["checked"])
	}
}

func TestTimeLimit(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{})
	const limit = 50 * time.Millisecond
	cases := map[string]string{
		"loop":             `while (true) {}`,
		"catch and loop":   `for (;;) { try { while (true) {} } catch (e) {} finally { continue; } }`,
		"callbacks":        `[1, 2].forEach(() => { while (true) {} });`,
		"grown iterator":   `const a = [1]; const it = a[Symbol.iterator](); a.length = 4e9; return [...it].length;`,
		"grown set":        `const a = [1]; const it = a[Symbol.iterator](); a.length = 4e9; return new Set(it).size;`,
		"microtasks":       `const loop = () => Promise.resolve().then(loop); loop(); return 1;`,
		"getter in output": `return { get x() { for (;;) {} } };`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := s.Run(context.Background(), src, nil, nil, limit)
			elapsed := time.Since(start)
			se := asError(t, err)
			if se.Kind != script.KindTimeout || !errors.Is(err, script.ErrTimeout) || se.Permanent() {
				t.Fatalf("got %v (kind %d), want a timeout", err, se.Kind)
			}
			// Generous for a loaded machine and the race detector: a run
			// that ignored the limit would take forever.
			if elapsed > 20*limit {
				t.Fatalf("stopped after %v, limit %v", elapsed, limit)
			}
		})
	}
	// The VM of an interrupted run is not reused, and the sandbox keeps
	// working.
	if got, err := s.Run(context.Background(), `return 1 + 1;`, nil, nil, limit); err != nil || got != 2.0 {
		t.Fatalf("after timeouts: %v, %v", got, err)
	}
}

func TestContextCancellation(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(20*time.Millisecond, cancel)
	defer timer.Stop()
	start := time.Now()
	_, err := s.Run(ctx, `while (true) {}`, nil, nil, script.MaxTimeout)
	se := asError(t, err)
	if se.Kind != script.KindCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v (kind %d), want a cancellation", err, se.Kind)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("stopped after %v", elapsed)
	}
	// A context that is already done does not start the run.
	_, err = s.Run(ctx, `return 1;`, nil, nil, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want a cancellation", err)
	}
}

// TestBuiltinLimits: built-ins that would allocate or loop without bound
// in one native call fail with a RangeError instead.
func TestBuiltinLimits(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{MaxStringLength: 1 << 16, MaxArrayLength: 1 << 12, MaxDepth: 100})
	cases := map[string]string{
		"repeat":            `"ab".repeat(1e9);`,
		"padEnd":            `"".padEnd(1e9, "x");`,
		"concat":            `const s = "x".repeat(60000); s.concat(s, s);`,
		"join of sparse":    `const a = []; a.length = 4e9; a.join("-");`,
		"join of many":      `new Array(4000).fill("x".repeat(60000)).join("");`,
		"array method":      `const a = []; a.length = 1e9; a.fill(0);`,
		"array-like":        `Array.prototype.map.call({ length: 1e9 }, (x) => x);`,
		"Array.from":        `Array.from({ length: 1e9 });`,
		"apply":             `Math.max.apply(null, { length: 1e9 });`,
		"Reflect.apply":     `Reflect.apply(Math.max, null, { length: 1e9 });`,
		"replace growth":    `const s = "x".repeat(300); "y".repeat(300).replace(/y/g, s);`,
		"replaceAll growth": `"x".repeat(300).replaceAll("", "y".repeat(300));`,
		"split":             `"x".repeat(60000).split("");`,
		"String.raw":        `String.raw({ raw: { length: 1e9 } });`,
		"JSON.parse depth":  `JSON.parse("[".repeat(5000) + "]".repeat(5000));`,
		"stringify depth":   `let a = []; for (let i = 0; i < 5000; i++) a = [a]; JSON.stringify(a);`,
		"stringify size":    `JSON.stringify(new Array(4000).fill("x".repeat(60000)));`,
		"flat depth":        `let a = []; for (let i = 0; i < 5000; i++) a = [a]; a.flat(Infinity);`,
		"string spread":     `[..."x".repeat(60000)];`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := run(t, s, src, nil, nil)
			se := asError(t, err)
			if se.Kind != script.KindThrown || !strings.Contains(se.Message, "RangeError") || !strings.Contains(se.Message, "sandbox limit") {
				t.Fatalf("got %v (kind %d), want a RangeError about a sandbox limit", err, se.Kind)
			}
		})
	}
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{Memory: 32 << 20})
	start := time.Now()
	_, err := s.Run(context.Background(), `
		const keep = [];
		for (;;) keep.push("x".repeat(1 << 20) + keep.length);`, nil, nil, script.MaxTimeout)
	se := asError(t, err)
	if se.Kind != script.KindMemory || !errors.Is(err, script.ErrMemory) || se.Permanent() {
		t.Fatalf("got %v (kind %d), want the memory limit", err, se.Kind)
	}
	if elapsed := time.Since(start); elapsed > 15*time.Second {
		t.Fatalf("stopped after %v", elapsed)
	}
}

func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{Concurrency: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				src := fmt.Sprintf("return { g: input.g, i: input.i, sum: $.a + %d };", g%4)
				got, err := s.Run(context.Background(), src, map[string]any{"g": float64(g), "i": float64(i)}, map[string]any{"a": 1.0}, 0)
				want := map[string]any{"g": float64(g), "i": float64(i), "sum": float64(1 + g%4)}
				if err != nil || !reflect.DeepEqual(got, want) {
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
	if n := script.VMsCreated(s); n > 3 {
		t.Fatalf("%d VMs made for 3 concurrent runs", n)
	}
	if n := script.CachedPrograms(s); n != 4 {
		t.Fatalf("%d programs cached, want 4", n)
	}
}

func TestProgramCacheIsBounded(t *testing.T) {
	t.Parallel()
	s := script.New(script.Limits{CacheEntries: 2})
	for i := range 5 {
		if _, err := run(t, s, fmt.Sprintf("return %d;", i), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := script.CachedPrograms(s); n > 2 {
		t.Fatalf("%d programs cached, limit 2", n)
	}
}

func TestJSONTooDeep(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]bool{
		`[[[]]]`:               false,
		`[[[[]]]]`:             true,
		`{"a":{"b":{"c":1}}}`:  false,
		`["[[[[[[", "\"[[[["]`: false,
		`{"a":[{"b":[]}]}`:     true,
	} {
		if got := script.JSONTooDeep(text, 3); got != want {
			t.Errorf("JSONTooDeep(%s, 3) = %v", text, got)
		}
	}
}

func BenchmarkRun(b *testing.B) {
	s := script.New(script.Limits{})
	input := map[string]any{"body": map[string]any{"items": []any{1.0, 2.0, 3.0}, "email": "Ada@Example.com"}}
	scope := map[string]any{"hook": input}
	const src = `return { email: $.hook.body.email.toLowerCase(), total: input.body.items.reduce((a, b) => a + b, 0) };`
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(ctx, src, input, scope, 0); err != nil {
			b.Fatal(err)
		}
	}
}

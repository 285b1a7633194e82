package script

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"

	"github.com/dop251/goja"
)

// maxInputDepth bounds the nesting of input values copied into a run;
// deeper parts become null. encoding/json refuses deeper documents anyway.
const maxInputDepth = 10000

// arguments converts the input and the scope. The input is usually one of
// the scope's values (the output of the component before); it is
// converted once, so that input === $.<that component> in the script.
func (v *vm) arguments(input, scope any) (goja.Value, goja.Value) {
	in := v.toJS(input, 0)
	m, ok := scope.(map[string]any)
	if !ok {
		if scope == nil {
			return in, v.rt.NewObject()
		}
		return in, v.toJS(scope, 0)
	}
	same := identity(input)
	o := v.rt.NewObject()
	start := len(v.keys)
	for k := range m {
		v.keys = append(v.keys, k)
	}
	slices.Sort(v.keys[start:])
	for i := range len(m) {
		// Nested copies push onto v.keys, which may move it.
		k := v.keys[start+i]
		e := m[k]
		var je goja.Value
		if same != nil && identity(e) == same {
			je = in
		} else {
			je = v.toJS(e, 1)
		}
		_ = o.DefineDataProperty(k, je, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
	}
	clear(v.keys[start:])
	v.keys = v.keys[:start]
	return in, o
}

// identity returns what makes a map or slice the same value, or nil.
func identity(x any) any {
	switch x.(type) {
	case map[string]any, []any:
		rv := reflect.ValueOf(x)
		if rv.Len() == 0 {
			return nil
		}
		return rv.UnsafePointer()
	}
	return nil
}

// toJS copies a JSON-like Go value into fresh JavaScript values owned by
// the run. Objects get their keys in sorted order, as encoding/json
// writes them, so a script sees the same order on every attempt. Values
// of other Go types go through encoding/json.
func (v *vm) toJS(x any, depth int) goja.Value {
	if depth > maxInputDepth {
		return goja.Null()
	}
	switch t := x.(type) {
	case nil:
		return goja.Null()
	case string:
		return v.rt.ToValue(t)
	case float64:
		return v.rt.ToValue(t)
	case bool:
		return v.rt.ToValue(t)
	case int:
		return v.rt.ToValue(t)
	case int64:
		return v.rt.ToValue(t)
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return v.rt.ToValue(t.String())
		}
		return v.rt.ToValue(f)
	case map[string]any:
		o := v.rt.NewObject()
		// v.keys is a stack of key lists, one per object being copied.
		start := len(v.keys)
		for k := range t {
			v.keys = append(v.keys, k)
		}
		slices.Sort(v.keys[start:])
		for i := range len(t) {
			// Nested copies push onto v.keys, which may move it.
			k := v.keys[start+i]
			// Defining, unlike assigning, treats keys such as "__proto__"
			// or "toString" as plain keys.
			_ = o.DefineDataProperty(k, v.toJS(t[k], depth+1), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
		}
		clear(v.keys[start:])
		v.keys = v.keys[:start]
		return o
	case []any:
		items := make([]any, len(t))
		for i, e := range t {
			items[i] = v.toJS(e, depth+1)
		}
		return v.rt.NewArray(items...)
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.rt.ToValue(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.rt.ToValue(float64(rv.Uint()))
	case reflect.Float32, reflect.Float64:
		return v.rt.ToValue(rv.Float())
	case reflect.String:
		return v.rt.ToValue(rv.String())
	case reflect.Bool:
		return v.rt.ToValue(rv.Bool())
	}
	b, err := json.Marshal(x)
	if err != nil {
		return goja.Null()
	}
	var decoded any
	if err := json.Unmarshal(b, &decoded); err != nil {
		return goja.Null()
	}
	return v.toJS(decoded, depth)
}

// fromJS normalises a value exported from the sanitized result to what
// encoding/json decodes JSON into: goja exports integers as int64, and
// every number becomes a float64. The value is fresh, so it is changed in
// place.
func fromJS(x any) any {
	switch t := x.(type) {
	case int64:
		return float64(t)
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil
		}
		return t
	case map[string]any:
		for k, e := range t {
			t[k] = fromJS(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = fromJS(e)
		}
		return t
	}
	return x
}

// jsonTooDeep reports whether the JSON text nests arrays and objects more
// than max levels deep. JSON.parse recurses natively, so the prelude
// checks the text first. Brackets inside strings do not count.
func jsonTooDeep(text string, max int) bool {
	depth := 0
	inString := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > max {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}

package mapping

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"time"
	// Time zones work the same whether or not the host has a time zone
	// database.
	_ "time/tzdata"
	"unicode/utf8"
)

// Functions that replace or complete the library's builtins. Each guards
// against inputs that would make it run away (quadratic work, unbounded
// output) and checks its argument types instead of panicking.

// now returns the current time in UTC. (The library's own time zone option
// breaks date(), so the builtin is replaced instead.)
func now(...any) (any, error) {
	return time.Now().UTC(), nil
}

// toJSON encodes its argument as compact JSON.
func toJSON(args ...any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("toJSON expects 1 argument, got %d", len(args))
	}
	v, err := normalize(args[0])
	if err != nil {
		return nil, err
	}
	return encodeJSON(v)
}

// toString formats its argument the way a placeholder inside text is.
func toString(args ...any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("string expects 1 argument, got %d", len(args))
	}
	v, err := normalize(args[0])
	if err != nil {
		return nil, err
	}
	return text(v)
}

func repeat(args ...any) (any, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("repeat expects 2 arguments, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("repeat expects a string, got %s", typeName(args[0]))
	}
	n, ok := integer(args[1])
	if !ok || n < 0 {
		return nil, fmt.Errorf("repeat expects a count of zero or more, got %v", args[1])
	}
	if n > 0 && len(s) > maxTextLen/n {
		return nil, fmt.Errorf("%w: repeat would produce more than %d bytes", ErrLimit, maxTextLen)
	}
	return strings.Repeat(s, n), nil
}

func replace(args ...any) (any, error) {
	if len(args) != 3 && len(args) != 4 {
		return nil, fmt.Errorf("replace expects 3 or 4 arguments, got %d", len(args))
	}
	var str [3]string
	for i := range str {
		s, ok := args[i].(string)
		if !ok {
			return nil, fmt.Errorf("replace expects strings, got %s", typeName(args[i]))
		}
		str[i] = s
	}
	s, old, repl := str[0], str[1], str[2]
	n := -1
	if len(args) == 4 {
		var ok bool
		if n, ok = integer(args[3]); !ok {
			return nil, fmt.Errorf("replace expects a whole count, got %v", args[3])
		}
	}
	if grow := len(repl) - len(old); grow > 0 {
		count := strings.Count(s, old)
		if n >= 0 && n < count {
			count = n
		}
		if int64(len(s))+int64(count)*int64(grow) > maxTextLen {
			return nil, fmt.Errorf("%w: replace would produce more than %d bytes", ErrLimit, maxTextLen)
		}
	}
	return strings.Replace(s, old, repl, n), nil
}

func integer(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case float64:
		if v == float64(int(v)) {
			return int(v), true
		}
	}
	return 0, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case time.Time:
		return "a date"
	case time.Duration:
		return "a duration"
	}
	return fmt.Sprintf("%T", v)
}

// trim removes spaces, or the characters of cutset, from both ends of s.
// Unlike a plain cutset scan, its work does not grow with the product of
// the two lengths.
func trim(args ...any) (any, error) {
	if len(args) != 1 && len(args) != 2 {
		return nil, fmt.Errorf("trim expects 1 or 2 arguments, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("trim expects a string, got %s", typeName(args[0]))
	}
	if len(args) == 1 {
		return strings.TrimSpace(s), nil
	}
	cutset, ok := args[1].(string)
	if !ok {
		return nil, fmt.Errorf("trim expects a string of characters, got %s", typeName(args[1]))
	}
	set := make(map[rune]bool, utf8.RuneCountInString(cutset))
	for _, r := range cutset {
		set[r] = true
	}
	return strings.TrimFunc(s, func(r rune) bool { return set[r] }), nil
}

// uniq returns the distinct elements of an array, in order of first
// appearance. Numbers are equal when their values are (1 and 1.0), objects
// and arrays when their contents are.
func uniq(args ...any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("uniq expects 1 argument, got %d", len(args))
	}
	v, err := normalize(args[0])
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("uniq expects an array, got %s", typeName(v))
	}
	var (
		texts   = make(map[string]bool, len(arr))
		numbers = map[float64]bool{}
		others  = map[any]bool{}
		out     = []any{}
	)
	for _, e := range arr {
		var dup bool
		switch v := e.(type) {
		case string:
			dup, texts[v] = texts[v], true
		case float64:
			dup, numbers[v] = numbers[v], true
		case int:
			dup, numbers[float64(v)] = numbers[float64(v)], true
		case nil, bool:
			dup, others[v] = others[v], true
		default:
			s, err := encodeJSON(v)
			if err != nil {
				return nil, err
			}
			// Keyed apart from texts, which live in their own map.
			dup, others[s] = others[s], true
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out, nil
}

// zones caches time zones by name, as loading one reads the time zone
// database. Only names that loaded are kept, so the cache is bounded by
// the database.
var zones sync.Map

func loadZone(name string) (*time.Location, error) {
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location), nil
	}
	if len(name) > 64 {
		return nil, fmt.Errorf("unknown time zone %.64q", name)
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	zones.Store(name, z)
	return z, nil
}

func timezone(args ...any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("timezone expects 1 argument, got %d", len(args))
	}
	name, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("timezone expects a string, got %s", typeName(args[0]))
	}
	return loadZone(name)
}

// dateLayouts are tried in turn by date(s).
var dateLayouts = []string{
	"2006-01-02",
	"15:04:05",
	"2006-01-02 15:04:05",
	time.RFC3339,
	time.RFC822,
	time.RFC850,
	time.RFC1123,
}

// date reads a date: date(s), date(s, layout) or date(s, layout, zone).
// Text without a zone is read as UTC, or in zone when given.
func date(args ...any) (any, error) {
	if len(args) < 1 || len(args) > 3 {
		return nil, fmt.Errorf("date expects 1 to 3 arguments, got %d", len(args))
	}
	var str [3]string
	for i, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("date expects strings, got %s", typeName(a))
		}
		str[i] = s
	}
	switch len(args) {
	case 1:
		for _, layout := range dateLayouts {
			if t, err := time.Parse(layout, str[0]); err == nil {
				return t, nil
			}
		}
		return nil, fmt.Errorf("invalid date %q", str[0])
	case 2:
		return time.Parse(str[1], str[0])
	}
	z, err := loadZone(str[2])
	if err != nil {
		return nil, err
	}
	return time.ParseInLocation(str[1], str[0], z)
}

// pattern is a compiled regular expression and the size of its program,
// which bounds the work of matching one byte.
type pattern struct {
	re    *regexp.Regexp
	insts int
}

// compilePattern compiles a regular expression, refusing large programs:
// matching costs up to the text's length times the program's size.
func compilePattern(p string) (*pattern, error) {
	if len(p) > MaxExpressionLen {
		return nil, fmt.Errorf("%w: a regular expression may be at most %d bytes long", ErrLimit, MaxExpressionLen)
	}
	parsed, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression: %w", err)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression: %w", err)
	}
	if len(prog.Inst) > maxRegexpInsts {
		return nil, fmt.Errorf("%w: regular expression %.40q is too complex", ErrLimit, p)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression: %w", err)
	}
	return &pattern{re: re, insts: len(prog.Inst)}, nil
}

// matches implements the matches operator: matches(s, pattern, meter). A
// pattern written in the expression arrives compiled; one computed at run
// time is compiled here, charged by its size, and kept for the rest of
// the evaluation. Matching is charged before it starts, in proportion to
// the text's length times the pattern's size.
func matches(args ...any) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("matches expects 3 arguments, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("matches expects a string on its left, got %s", typeName(args[0]))
	}
	m, ok := args[2].(*meter)
	if !ok || m == nil {
		return nil, errors.New("matches expects a meter")
	}
	var pat *pattern
	switch p := args[1].(type) {
	case *pattern:
		pat = p
	case string:
		if pat = m.patterns[p]; pat == nil {
			if err := m.spend(1 + len(p)/bytesPerUnit); err != nil {
				return nil, err
			}
			var err error
			if pat, err = compilePattern(p); err != nil {
				return nil, err
			}
			if err := m.spend(pat.insts); err != nil {
				return nil, err
			}
			if len(m.patterns) < maxCachedPatterns {
				if m.patterns == nil {
					m.patterns = map[string]*pattern{}
				}
				m.patterns[p] = pat
			}
		}
	default:
		return nil, fmt.Errorf("matches expects a regular expression on its right, got %s", typeName(args[1]))
	}
	cost := (float64(len(s)) + 1) * float64(pat.insts) / regexpStepsPerUnit
	if err := m.spend(int(math.Min(cost, evalBudget+1))); err != nil {
		return nil, err
	}
	return pat.re.MatchString(s), nil
}

// get reads key from base, yielding nil when there is nothing there. Its
// signature lets programs call it without allocating; it panics with an
// error, which the program turns into its own, when the budget is spent.
func (m *meter) get(base, key any) any {
	switch b := base.(type) {
	case nil:
		return nil
	case map[string]any:
		k, ok := key.(string)
		if !ok {
			return nil
		}
		return b[k]
	case []any:
		i, ok := index(key, len(b))
		if !ok {
			return nil
		}
		return b[i]
	case string:
		return m.char(b, key)
	}
	rv := reflect.ValueOf(base)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		i, ok := index(key, rv.Len())
		if !ok {
			return nil
		}
		return rv.Index(i).Interface()
	case reflect.Map:
		if key == nil {
			return nil
		}
		kv, kt := reflect.ValueOf(key), rv.Type().Key()
		if !kv.Type().AssignableTo(kt) {
			// Numbers convert to numbers and text to text; a number never
			// becomes a one-rune text.
			sameFamily := (kv.Kind() == reflect.String) == (kt.Kind() == reflect.String)
			if !sameFamily || !kv.Type().ConvertibleTo(kt) {
				return nil
			}
			kv = kv.Convert(kt)
		}
		v := rv.MapIndex(kv)
		if !v.IsValid() {
			return nil
		}
		return v.Interface()
	}
	return nil
}

// index resolves key as an index into a sequence of length n; negative
// indexes count from the end.
func index(key any, n int) (int, bool) {
	var i int
	switch k := key.(type) {
	case int:
		i = k
	case float64:
		if k != float64(int(k)) {
			return 0, false
		}
		i = int(k)
	default:
		rk := reflect.ValueOf(key)
		switch rk.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			i = int(rk.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if rk.Uint() > uint64(n) {
				return 0, false
			}
			i = int(rk.Uint())
		default:
			return 0, false
		}
	}
	if i < 0 {
		i += n
	}
	return i, i >= 0 && i < n
}

// char returns the character of s at index key, counting characters, not
// bytes; finding it costs up to the length of s.
func (m *meter) char(s string, key any) any {
	m.must(m.spend(1 + len(s)/bytesPerUnit))
	i, ok := index(key, utf8.RuneCountInString(s))
	if !ok {
		return nil
	}
	for _, r := range s {
		if i == 0 {
			return string(r)
		}
		i--
	}
	return nil
}

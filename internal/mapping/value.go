package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// normalize turns v into a JSON-friendly value: nil, bool, string, int,
// float64, json.Number, []any or map[string]any. Dates become RFC 3339
// strings and durations strings like "1h30m0s". It copies containers only
// where something had to change, so the result may share structure with v.
func normalize(v any) (any, error) {
	out, _, err := norm(v, 0)
	return out, err
}

func norm(v any, depth int) (out any, changed bool, err error) {
	switch v := v.(type) {
	case nil, bool, string, int, json.Number:
		return v, false, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false, fmt.Errorf("%v is not a number JSON can hold", v)
		}
		return v, false, nil
	case []any:
		if depth >= maxDepth {
			return nil, false, fmt.Errorf("%w: value nested more than %d levels deep", ErrLimit, maxDepth)
		}
		var cp []any
		for i, e := range v {
			ne, ch, err := norm(e, depth+1)
			if err != nil {
				return nil, false, err
			}
			if ch && cp == nil {
				cp = make([]any, len(v))
				copy(cp, v[:i])
			}
			if cp != nil {
				cp[i] = ne
			}
		}
		if cp == nil {
			return v, false, nil
		}
		return cp, true, nil
	case map[string]any:
		if depth >= maxDepth {
			return nil, false, fmt.Errorf("%w: value nested more than %d levels deep", ErrLimit, maxDepth)
		}
		var cp map[string]any
		for k, e := range v {
			ne, ch, err := norm(e, depth+1)
			if err != nil {
				return nil, false, err
			}
			if ch && cp == nil {
				cp = make(map[string]any, len(v))
				for k2, e2 := range v {
					cp[k2] = e2
				}
			}
			if cp != nil {
				cp[k] = ne
			}
		}
		if cp == nil {
			return v, false, nil
		}
		return cp, true, nil
	case float32:
		out, _, err := norm(float64(v), depth)
		return out, true, err
	case time.Time:
		return v.Format(time.RFC3339Nano), true, nil
	case time.Duration:
		return v.String(), true, nil
	case *time.Location:
		if v == nil {
			return nil, true, nil
		}
		return v.String(), true, nil
	case []byte:
		return string(v), true, nil
	}

	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int()), true, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt {
			return int(u), true, nil
		}
		return float64(rv.Uint()), true, nil
	case reflect.Float32, reflect.Float64:
		out, _, err := norm(rv.Float(), depth)
		return out, true, err
	case reflect.Bool:
		return rv.Bool(), true, nil
	case reflect.String:
		return rv.String(), true, nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, true, nil
		}
		if depth >= maxDepth {
			return nil, false, fmt.Errorf("%w: value nested more than %d levels deep", ErrLimit, maxDepth)
		}
		cp := make([]any, rv.Len())
		for i := range cp {
			ne, _, err := norm(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, false, err
			}
			cp[i] = ne
		}
		return cp, true, nil
	case reflect.Map:
		if rv.IsNil() {
			return nil, true, nil
		}
		if depth >= maxDepth {
			return nil, false, fmt.Errorf("%w: value nested more than %d levels deep", ErrLimit, maxDepth)
		}
		cp := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			k, err := mapKey(it.Key().Interface())
			if err != nil {
				return nil, false, err
			}
			ne, _, err := norm(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, false, err
			}
			cp[k] = ne
		}
		return cp, true, nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, true, nil
		}
	}
	return nil, false, fmt.Errorf("a value of Go type %T cannot be used in a mapping", v)
}

// mapKey turns a map key into an object key.
func mapKey(k any) (string, error) {
	if s, ok := k.(string); ok {
		return s, nil
	}
	nk, _, err := norm(k, maxDepth)
	if err != nil {
		return "", err
	}
	switch nk.(type) {
	case []any, map[string]any:
		return "", fmt.Errorf("an object key cannot be %s", typeName(nk))
	}
	return text(nk)
}

// text formats a normalized value for insertion into a string.
func text(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		return formatNumber(v), nil
	case json.Number:
		return string(v), nil
	}
	return encodeJSON(v)
}

// formatNumber writes whole numbers without exponent or fraction (42, not
// 4.2e+01) and other numbers the way JSON encoders do.
func formatNumber(f float64) string {
	if f == math.Trunc(f) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	if math.Abs(f) < 1e-6 {
		b := strconv.AppendFloat(nil, f, 'e', -1, 64)
		// 1e-07 becomes 1e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return string(b)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// encodeJSON encodes a normalized value as compact JSON, leaving <, > and &
// as they are.
func encodeJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

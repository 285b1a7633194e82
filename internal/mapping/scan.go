package mapping

import (
	"errors"
	"strings"
)

// segment is a piece of a string value: literal text, or the source of one
// placeholder's expression.
type segment struct {
	text   string
	expr   string
	isExpr bool
}

var (
	errUnterminated = errors.New(`unterminated placeholder: "{{" without a matching "}}"`)
	errEmpty        = errors.New("empty placeholder")
)

// scan splits s into literal text and placeholder expressions.
//
// "\{{" stands for a literal "{{", and "\\{{" for a backslash followed by a
// placeholder; any other backslash is literal. Inside a placeholder, braces
// and quoted strings are balanced, so "}}" closing a map literal or inside a
// string does not end the placeholder.
func scan(s string) ([]segment, error) {
	if !strings.Contains(s, "{{") {
		return []segment{{text: s}}, nil
	}
	var segs []segment
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			segs = append(segs, segment{text: text.String()})
			text.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], `\\{{`):
			text.WriteByte('\\')
			i += 2
		case strings.HasPrefix(s[i:], `\{{`):
			text.WriteString("{{")
			i += 3
		case strings.HasPrefix(s[i:], "{{"):
			end := closing(s, i+2)
			if end < 0 {
				return nil, errUnterminated
			}
			src := strings.TrimSpace(s[i+2 : end])
			if src == "" {
				return nil, errEmpty
			}
			flush()
			segs = append(segs, segment{expr: src, isExpr: true})
			i = end + 2
		default:
			text.WriteByte(s[i])
			i++
		}
	}
	flush()
	return segs, nil
}

// closing returns the index of the "}}" ending a placeholder whose
// expression starts at from, or -1.
func closing(s string, from int) int {
	depth := 0
	for k := from; k < len(s); k++ {
		switch c := s[k]; c {
		case '"', '\'', '`':
			k = stringEnd(s, k)
			if k < 0 {
				return -1
			}
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
			} else if k+1 < len(s) && s[k+1] == '}' {
				return k
			}
		}
	}
	return -1
}

// stringEnd returns the index of the quote closing the string literal that
// starts at s[start], or -1. Backquoted strings have no escapes.
func stringEnd(s string, start int) int {
	q := s[start]
	for k := start + 1; k < len(s); k++ {
		switch s[k] {
		case '\\':
			if q != '`' {
				k++
			}
		case q:
			return k
		}
	}
	return -1
}

// single reports whether segs are exactly one placeholder, possibly
// surrounded by whitespace, and returns its expression.
func single(segs []segment) (string, bool) {
	src, n := "", 0
	for _, sg := range segs {
		if sg.isExpr {
			src = sg.expr
			n++
		} else if strings.TrimSpace(sg.text) != "" {
			return "", false
		}
	}
	return src, n == 1
}

package outbound

import (
	"net/url"
	"reflect"
	"testing"
)

func TestJoinPath(t *testing.T) {
	t.Parallel()
	base, err := ParseBaseURL("https://api.example.com/v2")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"/contacts":          "https://api.example.com/v2/contacts",
		"/contacts/c_1?x=1":  "https://api.example.com/v2/contacts/c_1?x=1",
		"/":                  "https://api.example.com/v2/",
		"/a/./b/../c":        "https://api.example.com/v2/a/c",
		"/../v2/contacts":    "https://api.example.com/v2/contacts",
		"/hooks/":            "https://api.example.com/v2/hooks/",
		"/a%20b":             "https://api.example.com/v2/a%20b",
		"/../v3/contacts":    "",
		"/..":                "",
		"/%2e%2e/admin":      "",
		"/a/%2E%2E/%2e%2e/x": "",
		"/a/%2e%2e/b":        "",
		"/a/.%2e/b":          "",
		"/a/%2e/b":           "",
		"/a%2e/b":            "https://api.example.com/v2/a./b",
		"///evil.example/x":  "",
		"/a%2fb":             "",
		"/a%5c..%5cb":        "",
		"/\\\\evil.example":  "",
		"/..;/admin":         "",
		"/..%3b/admin":       "",
		"/%2e%2e;/admin":     "",
		"/a/.;x/b":           "",
		"/%252e%252e/admin":  "",
		"/a;v=1/b":           "https://api.example.com/v2/a;v=1/b",
	} {
		u, err := JoinPath(base, p)
		switch {
		case want == "" && err == nil:
			t.Errorf("%q joined to %s, want it refused", p, u)
		case want != "" && err != nil:
			t.Errorf("%q: %v", p, err)
		case want != "" && u.String() != want:
			t.Errorf("%q joined to %s, want %s", p, u, want)
		}
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	parse := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"https://API.example.com/v2", "https://api.example.com:443/x", true},
		{"http://api.example.com", "http://api.example.com:80/", true},
		{"https://api.example.com", "http://api.example.com", false},
		{"https://api.example.com", "https://api.example.com:8443", false},
		{"https://api.example.com", "https://evil.api.example.com", false},
		{"https://user@api.example.com", "https://api.example.com", false},
	} {
		if got := SameOrigin(parse(c.a), parse(c.b)); got != c.same {
			t.Errorf("SameOrigin(%s, %s) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		contentType, body string
		want              any
	}{
		{"application/json", `{"a":1}`, map[string]any{"a": 1.0}},
		{"application/problem+json; charset=utf-8", `{"a":1}`, map[string]any{"a": 1.0}},
		{"text/plain", `[1]`, []any{1.0}},
		{"text/plain", `hello`, "hello"},
		{"application/json", `{broken`, "{broken"},
		{"application/json", `"text"`, "text"},
		{"text/plain", `"quoted"`, `"quoted"`},
		{"", ``, nil},
	} {
		got := DecodeBody(c.contentType, []byte(c.body))
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("DecodeBody(%q, %q) = %#v, want %#v", c.contentType, c.body, got, c.want)
		}
	}
}

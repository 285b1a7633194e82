package outbound

import "testing"

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

package outbound

import (
	"cmp"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// ParseBaseURL reads the root URL of an API (a connector's baseUrl, an
// account's domain): an absolute http(s) URL without query, fragment or
// user information.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		strings.ContainsAny(raw, " \t\n") {
		return nil, fmt.Errorf("%q is not an absolute http or https URL without query, fragment or user", raw)
	}
	return u, nil
}

// JoinPath joins p (which starts with "/", and may carry a query) to
// base. The result must keep base's scheme, host and port and stay at or
// below its path: "..", encoded slashes or dots that would climb out are
// refused.
func JoinPath(base *url.URL, p string) (*url.URL, error) {
	ref, err := url.Parse(p)
	if err != nil {
		return nil, fmt.Errorf("url path %q: %w", p, err)
	}
	// "///x" has no host, but a server or a redirect may read one in it.
	if ref.Scheme != "" || ref.Host != "" || ref.User != nil || strings.HasPrefix(p, "//") {
		return nil, fmt.Errorf("url path %q names a host", p)
	}
	decoded := ref.Path
	escaped := strings.ToLower(ref.EscapedPath())
	for _, bad := range []string{"%2f", "%5c", "%252e", "%252f", "%255c"} {
		if strings.Contains(escaped, bad) {
			return nil, fmt.Errorf("url path %q holds an encoded slash or dot", p)
		}
	}
	if strings.Contains(decoded, "\\") {
		return nil, fmt.Errorf("url path %q holds a backslash", p)
	}
	for _, seg := range strings.Split(ref.EscapedPath(), "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return nil, fmt.Errorf("url path %q: %w", p, err)
		}
		name, _, params := strings.Cut(dec, ";")
		if name != "." && name != ".." {
			continue
		}
		// Some servers read "..;x" as ".." (path parameters), and some
		// decode "%2e%2e" after the path was checked.
		if params {
			return nil, fmt.Errorf("url path %q holds a dot segment with parameters", p)
		}
		if strings.Contains(seg, "%") {
			return nil, fmt.Errorf("url path %q holds an encoded dot segment", p)
		}
	}
	basePath := strings.TrimSuffix(base.Path, "/")
	joined := path.Clean(basePath + "/" + strings.TrimPrefix(decoded, "/"))
	if strings.HasSuffix(decoded, "/") && joined != "/" {
		joined += "/"
	}
	if joined != basePath && !strings.HasPrefix(joined, basePath+"/") {
		return nil, fmt.Errorf("url path %q leaves the base path %q", p, cmp.Or(basePath, "/"))
	}
	u := &url.URL{Scheme: base.Scheme, Host: base.Host, Path: joined, RawQuery: ref.RawQuery}
	return u, nil
}

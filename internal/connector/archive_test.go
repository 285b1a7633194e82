package connector_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/connector"
)

const exampleDir = "../../examples/connectors/acme-crm"

// entry is one file of a test archive.
type entry struct {
	name   string
	data   []byte
	mode   fs.FileMode // 0 means a regular file
	store  bool        // no compression
	header func(*zip.FileHeader)
}

const minimalManifest = `{
  "name": "tiny",
  "version": "0.1.0",
  "label": "Tiny",
  "description": "A tiny connector.",
  "components": [
    {"name": "Ping", "kind": "action", "description": "Pings.", "http": {"method": "GET", "url": "https://tiny.example/ping"}}
  ]
}`

// minimalYAML is minimalManifest in YAML.
const minimalYAML = `name: tiny
version: 0.1.0
label: Tiny
description: A tiny connector.
components:
  - name: Ping
    kind: action
    description: Pings.
    http: {method: GET, url: "https://tiny.example/ping"}
`

func valid() []entry {
	return []entry{
		{name: "connector.json", data: []byte(minimalManifest)},
		{name: "CHANGELOG.md", data: []byte("# 0.1.0\n- First.\n")},
	}
}

func build(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.store {
			h.Method = zip.Store
		}
		h.SetMode(0o644)
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		if e.header != nil {
			e.header(h)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func asError(t *testing.T, err error) *connector.Error {
	t.Helper()
	var e *connector.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *connector.Error", err, err)
	}
	return e
}

// lowEntropy is n bytes that compress about 40 times: zeros with a random
// byte every 64.
func lowEntropy(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i += 64 {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestReadArchiveRefusesHostileArchives(t *testing.T) {
	t.Parallel()
	many := valid()
	for i := range connector.MaxEntries {
		many = append(many, entry{name: "f/" + itoa(i)})
	}
	var big []entry
	big = append(big, valid()...)
	for i := range 12 {
		big = append(big, entry{name: "blob" + itoa(i), data: lowEntropy(1 << 20)})
	}
	tests := []struct {
		name    string
		entries []entry
		raw     []byte
		kind    string
		path    string // a problem must have this path
		message string // ... and a message containing this
	}{
		{name: "not a zip", raw: []byte("hello"), kind: "archive", message: "not a zip"},
		{name: "zip slip", entries: append(valid(), entry{name: "../x", data: []byte("x")}), kind: "archive", path: "../x", message: ".."},
		{name: "nested zip slip", entries: append(valid(), entry{name: "scripts/../../x", data: []byte("x")}), kind: "archive", path: "scripts/../../x", message: ".."},
		{name: "absolute", entries: append(valid(), entry{name: "/etc/x", data: []byte("x")}), kind: "archive", path: "/etc/x", message: "absolute"},
		{name: "backslash", entries: append(valid(), entry{name: `..\x`, data: []byte("x")}), kind: "archive", path: `..\x`, message: "backslash"},
		{name: "drive letter", entries: append(valid(), entry{name: "C:/x", data: []byte("x")}), kind: "archive", path: "C:/x", message: "drive"},
		{name: "unclean", entries: append(valid(), entry{name: "a/./b", data: []byte("x")}), kind: "archive", path: "a/./b", message: "clean"},
		{name: "symlink", entries: append(valid(), entry{name: "link", data: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}), kind: "archive", path: "link", message: "links"},
		{name: "device", entries: append(valid(), entry{name: "dev", mode: fs.ModeDevice | 0o644}), kind: "archive", path: "dev", message: "regular"},
		{name: "duplicate", entries: append(valid(), entry{name: "CHANGELOG.md", data: []byte("again")}), kind: "archive", path: "CHANGELOG.md", message: "more than once"},
		{name: "names differing in case", entries: append(valid(), entry{name: "changelog.md", data: []byte("again")}), kind: "archive", path: "changelog.md", message: "only in case"},
		{name: "bomb", entries: append(valid(), entry{name: "zeros", data: make([]byte, 20<<20)}), kind: "archive", path: "zeros", message: "times its compressed size"},
		{name: "small ratio bomb", entries: append(valid(), entry{name: "zeros", data: make([]byte, 1<<20)}), kind: "archive", path: "zeros", message: "times its compressed size"},
		{name: "lying header", entries: append(valid(), entry{name: "zeros", data: make([]byte, 1<<20), header: func(h *zip.FileHeader) {
			h.UncompressedSize64 = 10
		}}), kind: "archive", path: "zeros"},
		{name: "too large unpacked", entries: big, kind: "archive", message: "more than 10485760 bytes"},
		{name: "too many entries", entries: many, kind: "archive", message: "entries"},
		{name: "no manifest", entries: valid()[1:], kind: "archive", path: "connector.json", message: "no connector.json, connector.yaml or connector.yml"},
		{name: "JSON and YAML manifests", entries: append(valid(), entry{name: "connector.yaml", data: []byte(minimalYAML)}),
			kind: "archive", path: "connector.yaml", message: "also holds connector.json; a package has exactly one manifest"},
		{name: "two YAML manifests", entries: append(valid()[1:], entry{name: "connector.yaml", data: []byte(minimalYAML)}, entry{name: "connector.yml", data: []byte(minimalYAML)}),
			kind: "archive", path: "connector.yml", message: "also holds connector.yaml"},
		{name: "manifest not YAML", entries: []entry{{name: "connector.yml", data: []byte("name: [")}, valid()[1]}, kind: "manifest", path: "", message: "connector.yml is not valid YAML"},
		{name: "YAML manifest not valid", entries: []entry{{name: "connector.yaml", data: []byte(strings.Replace(minimalYAML, "method: GET", "method: FETCH", 1))}, valid()[1]},
			kind: "manifest", path: "/components/0/http/method"},
		{name: "no changelog", entries: valid()[:1], kind: "archive", path: "CHANGELOG.md", message: "no CHANGELOG.md"},
		{name: "manifest in a folder", entries: []entry{{name: "x/connector.json", data: []byte(minimalManifest)}, valid()[1]}, kind: "archive", path: "connector.json"},
		{name: "manifest not JSON", entries: []entry{{name: "connector.json", data: []byte("{")}, valid()[1]}, kind: "manifest", path: "", message: "not valid JSON"},
		{name: "missing script", entries: []entry{{name: "connector.json", data: []byte(strings.Replace(minimalManifest,
			`"http": {"method": "GET", "url": "https://tiny.example/ping"}`, `"script": "ping.js"`, 1))}, valid()[1]},
			kind: "manifest", path: "/components/0/script", message: "not in the archive"},
		{name: "script does not compile", entries: []entry{{name: "connector.json", data: []byte(strings.Replace(minimalManifest,
			`"http": {"method": "GET", "url": "https://tiny.example/ping"}`, `"script": "ping.js"`, 1))}, valid()[1],
			{name: "ping.js", data: []byte("return {;")}},
			kind: "manifest", path: "/components/0/script", message: "does not compile"},
		{name: "missing icon", entries: []entry{{name: "connector.json", data: []byte(strings.Replace(minimalManifest,
			`"label": "Tiny",`, `"label": "Tiny", "icon": "icon.png",`, 1))}, valid()[1]},
			kind: "manifest", path: "/icon", message: "not in the archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := tt.raw
			if data == nil {
				data = build(t, tt.entries)
			}
			pkg, err := connector.ReadArchive(data)
			if err == nil {
				t.Fatalf("accepted: %+v", pkg.Manifest)
			}
			e := asError(t, err)
			if e.Kind() != tt.kind {
				t.Fatalf("kind %q, want %q: %v", e.Kind(), tt.kind, e)
			}
			want := 400
			if tt.kind == "manifest" {
				want = 422
			}
			if e.Status() != want {
				t.Errorf("status %d, want %d", e.Status(), want)
			}
			for _, p := range e.Problems {
				if (tt.path == "" || p.Path == tt.path) && strings.Contains(p.Message, tt.message) {
					return
				}
			}
			t.Fatalf("no problem at %q containing %q in %v", tt.path, tt.message, e.Problems)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestReadArchiveAcceptsDirectoriesAndReportsFiles(t *testing.T) {
	t.Parallel()
	entries := append(valid(), entry{name: "scripts/", mode: fs.ModeDir | 0o755}, entry{name: "scripts/a.js", data: []byte("return 1")})
	data := build(t, entries)
	pkg, err := connector.ReadArchive(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pkg.Files["scripts/a.js"]; !ok || len(pkg.Files) != 3 {
		t.Fatalf("files %v", keys(pkg.Files))
	}
	if pkg.Changelog != "# 0.1.0\n- First.\n" || len(pkg.Digest) != 64 {
		t.Fatalf("changelog %q digest %q", pkg.Changelog, pkg.Digest)
	}
}

// TestReadArchiveReadsEachManifestName: a package's manifest may be JSON
// or YAML; whichever it is, the package says which, and holds its JSON
// with the keys in the order written.
func TestReadArchiveReadsEachManifestName(t *testing.T) {
	t.Parallel()
	want, err := connector.ParseManifest([]byte(minimalManifest))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(minimalManifest)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, data, json string
	}{
		{name: "connector.json", data: minimalManifest, json: minimalManifest},
		{name: "connector.yaml", data: minimalYAML, json: compact.String()},
		{name: "connector.yml", data: minimalYAML, json: compact.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pkg, err := connector.ReadArchive(build(t, []entry{{name: tt.name, data: []byte(tt.data)}, valid()[1]}))
			if err != nil {
				t.Fatal(err)
			}
			if pkg.ManifestName != tt.name || string(pkg.Files[tt.name]) != tt.data {
				t.Errorf("manifest %q, files %v", pkg.ManifestName, keys(pkg.Files))
			}
			if string(pkg.ManifestJSON) != tt.json {
				t.Errorf("manifest JSON\n%s\nwant\n%s", pkg.ManifestJSON, tt.json)
			}
			if !reflect.DeepEqual(pkg.Manifest, *want) {
				t.Errorf("manifest %+v, want %+v", pkg.Manifest, *want)
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPackExample(t *testing.T) {
	t.Parallel()
	data, err := connector.Pack(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := connector.Pack(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Fatal("packing twice gave different archives")
	}
	pkg, err := connector.ReadArchive(data)
	if err != nil {
		t.Fatal(err)
	}
	m := pkg.Manifest
	if m.Name != "acme-crm" || m.Version != "1.2.0" || m.Auth == nil || m.Auth.Type != "token" {
		t.Fatalf("manifest %+v", m)
	}
	kinds := map[string]string{}
	for _, c := range m.Components {
		switch {
		case c.HTTP != nil && c.HTTP.Pagination != nil:
			kinds[c.Name] = "paginated"
		case c.HTTP != nil:
			kinds[c.Name] = "http"
		case c.Polling != nil:
			kinds[c.Name] = "polling"
		case c.Subscription != nil:
			kinds[c.Name] = "subscription"
		case c.Script != "":
			kinds[c.Name] = "script"
		}
	}
	want := map[string]string{"CreateContact": "http", "ListContacts": "paginated", "NewContact": "polling",
		"ContactUpdated": "subscription", "ScoreContact": "script"}
	for n, k := range want {
		if kinds[n] != k {
			t.Errorf("component %s is %q, want %q", n, kinds[n], k)
		}
	}
	for _, f := range []string{"connector.json", "CHANGELOG.md", "icon.svg", "scripts/score.js"} {
		if _, ok := pkg.Files[f]; !ok {
			t.Errorf("%s is not in the package", f)
		}
	}
	if got := m.Components[0].Type(m.Name); got != "acme-crm.CreateContact" {
		t.Errorf("type %q", got)
	}
}

// TestPackYAML: a directory whose manifest is connector.yaml packs into
// the same connector as the example, and one with two manifests does not
// pack.
func TestPackYAML(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(exampleDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "connector.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "connector.yaml"), []byte(acmeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := connector.Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := connector.ReadArchive(data)
	if err != nil {
		t.Fatal(err)
	}
	example, err := connector.Pack(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := connector.ReadArchive(example)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.ManifestName != "connector.yaml" || pkg.Files["connector.json"] != nil || len(pkg.Files) != len(want.Files) {
		t.Fatalf("manifest %q, files %v", pkg.ManifestName, keys(pkg.Files))
	}
	sameManifest(t, &pkg.Manifest, &want.Manifest)
	got, err := connector.ParseManifest(pkg.ManifestJSON)
	if err != nil {
		t.Fatalf("the manifest's JSON: %v", err)
	}
	sameManifest(t, got, &want.Manifest)

	if err := os.WriteFile(filepath.Join(dir, "connector.json"), []byte(minimalManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = connector.Pack(dir)
	if e := asError(t, err); e.Kind() != "archive" || len(e.Problems) != 1 || e.Problems[0].Path != "connector.yaml" {
		t.Fatalf("two manifests: %v", e)
	}
}

func TestPackRefusesLinksAndBadPackages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("connector.json", minimalManifest)
	write("CHANGELOG.md", "# 0.1.0\n")
	write(".git/config", "hidden")
	data, err := connector.Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := connector.ReadArchive(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Files) != 2 {
		t.Fatalf("hidden files packed: %v", keys(pkg.Files))
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, err := connector.Pack(dir); err == nil || !strings.Contains(err.Error(), "regular") {
		t.Fatalf("packed a link: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	write("connector.json", `{"name": "core"}`)
	_, err = connector.Pack(dir)
	if e := asError(t, err); e.Kind() != "manifest" {
		t.Fatalf("kind %q", e.Kind())
	}
}

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConnectorPackAndPublish(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "acme.zip")
	var stdout, stderr bytes.Buffer
	if err := connectorCmd(context.Background(), []string{"pack", "../../examples/connectors/acme-crm", "-o", out}, &stdout, &stderr); err != nil {
		t.Fatalf("pack: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "acme-crm 1.2.0") {
		t.Fatalf("pack said %q", stdout.String())
	}
	zipped, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path != "/api/v1/connectors" || r.Method != http.MethodPost:
			http.NotFound(w, r)
		case r.Header.Get("Authorization") != "Bearer good":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"title":"Unauthorized","status":401,"detail":"the token is not valid","errors":[{"field":"/x","message":"why"}]}`)
		case r.Header.Get("Content-Type") != "application/zip" || !bytes.Equal(body, zipped):
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"name":"acme-crm","version":"1.2.0"}`)
		}
	}))
	defer srv.Close()

	stdout.Reset()
	if err := connectorCmd(context.Background(), []string{"publish", out, "--url", srv.URL + "/", "--token", "good"}, &stdout, &stderr); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if !strings.Contains(stdout.String(), `"version":"1.2.0"`) {
		t.Fatalf("publish said %q", stdout.String())
	}
	err = connectorCmd(context.Background(), []string{"publish", "--url", srv.URL, "--token", "bad", out}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "the token is not valid") {
		t.Fatalf("publish with a bad token: %v", err)
	}
	if !strings.Contains(stderr.String(), "/x: why") {
		t.Fatalf("problems not printed: %q", stderr.String())
	}
}

func TestConnectorPackReportsProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "connector.json"), []byte(`{"name":"core","version":"1","label":"x","description":"x","components":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "CHANGELOG.md"), []byte("# 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := connectorCmd(context.Background(), []string{"pack", dir, "-o", filepath.Join(dir, "x.zip")}, &stdout, &stderr)
	if err == nil {
		t.Fatal("packed an invalid connector")
	}
	for _, want := range []string{"/name:", "/version:", "/components:"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("no %q in\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.zip")); err == nil {
		t.Error("an archive was written")
	}
}

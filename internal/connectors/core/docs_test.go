package core_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
)

var update = flag.Bool("update", false, "rewrite docs/components.md")

const docsPath = "../../../docs/components.md"

// TestComponentDocs keeps docs/components.md generated from the specs; run
// `go test ./internal/connectors/core -update` after changing a spec.
func TestComponentDocs(t *testing.T) {
	t.Parallel()
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{})
	got := component.Markdown("Built-in components",
		"The `core` connector ships with Plugboard. A property value may hold placeholders such as "+
			"`{{ $.hook.body.email }}` (see [expressions](expressions.md)); a component's `retry` "+
			"(`maxAttempts`, `initialInterval`, `maxInterval`) sets how a failing step is retried. "+
			"This page is generated from the component specs.", reg.Specs())
	if *update {
		if err := os.WriteFile(docsPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/components.md is stale: run go test ./internal/connectors/core -update")
	}
}

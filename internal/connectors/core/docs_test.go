package core_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/flow"
)

var update = flag.Bool("update", false, "rewrite docs/components.md")

const docsPath = "../../../docs/components.md"

// specsOnly stands for the account service where only specs are read, so
// that core.ServerActivity is registered.
type specsOnly struct{ core.Accounts }

// TestComponentDocs keeps docs/components.md generated from the specs; run
// `go test ./internal/connectors/core -update` after changing a spec.
func TestComponentDocs(t *testing.T) {
	t.Parallel()
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{Accounts: specsOnly{}})
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

// TestExampleFlows checks that every component's example flow compiles
// and uses the component.
func TestExampleFlows(t *testing.T) {
	t.Parallel()
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{Accounts: specsOnly{}})
	for _, spec := range reg.Specs() {
		if spec.ExampleFlow == nil {
			t.Errorf("%s has no example flow", spec.Type)
			continue
		}
		raw, err := json.Marshal(spec.ExampleFlow)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := flow.Parse(raw)
		if err != nil {
			t.Errorf("%s: example flow: %v", spec.Type, err)
			continue
		}
		if _, err := flow.Compile(doc, reg); err != nil {
			t.Errorf("%s: example flow: %v", spec.Type, err)
		}
		uses := false
		for _, c := range doc.Components {
			uses = uses || c.Type == spec.Type
		}
		if !uses {
			t.Errorf("%s: the example flow does not use it", spec.Type)
		}
	}
}

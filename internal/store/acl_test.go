package store_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

func TestACLRules(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testACLRules(t, storetest.Open(t, backend))
		})
	}
}

func testACLRules(t *testing.T, s *store.Store) {
	ctx := t.Context()
	def := store.ACLRule{Role: store.RoleUser, Resource: "*", Action: "*"}
	alpha := store.ACLRule{Role: store.RoleUser, Resource: "alpha", Action: "use"}
	beta := store.ACLRule{Role: store.RoleUser, Resource: "beta", Action: "use"}
	ada := store.ACLRule{UserID: "ada", Resource: "beta", Action: "*"}
	check := func(want ...store.ACLRule) {
		t.Helper()
		got, err := s.ACLRules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = []store.ACLRule{}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("rules = %v, want %v", got, want)
		}
	}

	check(def) // the migration seeds the default rule

	if err := s.ReplaceACLRules(ctx, []store.ACLRule{ada, alpha}); err != nil {
		t.Fatal(err)
	}
	check(ada, alpha)
	// A duplicate rolls the whole replacement back.
	if err := s.ReplaceACLRules(ctx, []store.ACLRule{def, def}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replacing with a duplicate: %v, want ErrConflict", err)
	}
	check(ada, alpha)

	// Adding skips resources some rule names already (beta: ada's rule).
	got, err := s.AddACLRulesForNewResources(ctx, []store.ACLRule{alpha, beta, def})
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.ACLRule{ada, alpha, def}; !slices.Equal(got, want) {
		t.Fatalf("after adding: %v, want %v", got, want)
	}
	check(ada, alpha, def)

	if err := s.ReplaceACLRules(ctx, nil); err != nil {
		t.Fatal(err)
	}
	check()

	// Concurrent adds of the same rule add it once.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.AddACLRulesForNewResources(ctx, []store.ACLRule{beta}); err != nil && !errors.Is(err, store.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	check(beta)
}

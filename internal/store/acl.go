package store

import (
	"context"
	"fmt"
)

// ACLRule is one access rule: a role or a user (exactly one of the two is
// set), a resource (a connector name or "*") and an action ("use" or "*").
// The acl package gives rules their meaning.
type ACLRule struct {
	Role     string `json:"role,omitempty"`
	UserID   string `json:"userId,omitempty"`
	Resource string `json:"resource"`
	Action   string `json:"action"`
}

// ACLRules lists the access rules in the order they were written.
func (s *Store) ACLRules(ctx context.Context) ([]ACLRule, error) {
	return aclRules(ctx, s.backend.reader())
}

func aclRules(ctx context.Context, q querier) ([]ACLRule, error) {
	out, err := collect(ctx, q, "listing access rules", func(r row) (ACLRule, error) {
		var a ACLRule
		return a, r.Scan(&a.Role, &a.UserID, &a.Resource, &a.Action)
	}, `SELECT role, user_id, resource, action FROM acl_rules ORDER BY position`)
	if out == nil && err == nil {
		out = []ACLRule{}
	}
	return out, err
}

// lockACL serializes writers of the rules on PostgreSQL (SQLite has a
// single writer anyway), so that a replace and an add never interleave.
func (tx *Tx) lockACL(ctx context.Context) error {
	if tx.store.name != BackendPostgres {
		return nil
	}
	if _, err := tx.q.exec(ctx, `LOCK TABLE acl_rules IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("locking access rules: %w", err)
	}
	return nil
}

// ReplaceACLRules replaces every access rule with rules, atomically. A
// duplicate rule is ErrConflict.
func (s *Store) ReplaceACLRules(ctx context.Context, rules []ACLRule) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.lockACL(ctx); err != nil {
			return err
		}
		if _, err := tx.q.exec(ctx, `DELETE FROM acl_rules`); err != nil {
			return fmt.Errorf("replacing access rules: %w", err)
		}
		return tx.insertACLRules(ctx, 1, rules)
	})
}

// AddACLRulesForNewResources appends, in one transaction, each of rules
// whose resource no existing rule names, and returns the resulting rules.
func (s *Store) AddACLRulesForNewResources(ctx context.Context, rules []ACLRule) ([]ACLRule, error) {
	var out []ACLRule
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.lockACL(ctx); err != nil {
			return err
		}
		existing, err := aclRules(ctx, tx.q)
		if err != nil {
			return err
		}
		named := make(map[string]bool, len(existing))
		for _, r := range existing {
			named[r.Resource] = true
		}
		var add []ACLRule
		for _, r := range rules {
			if !named[r.Resource] {
				named[r.Resource] = true
				add = append(add, r)
			}
		}
		var last int64
		if err := tx.q.queryRow(ctx, `SELECT COALESCE(MAX(position), 0) FROM acl_rules`).Scan(&last); err != nil {
			return fmt.Errorf("adding access rules: %w", err)
		}
		if err := tx.insertACLRules(ctx, last+1, add); err != nil {
			return err
		}
		out = append(existing, add...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (tx *Tx) insertACLRules(ctx context.Context, first int64, rules []ACLRule) error {
	for i, r := range rules {
		_, err := tx.q.exec(ctx,
			`INSERT INTO acl_rules (position, role, user_id, resource, action) VALUES ($1, $2, $3, $4, $5)`,
			first+int64(i), r.Role, r.UserID, r.Resource, r.Action)
		if err != nil {
			if tx.store.backend.isUniqueViolation(err) {
				return fmt.Errorf("storing access rule %d: %w", i, ErrConflict)
			}
			return fmt.Errorf("storing access rule %d: %w", i, err)
		}
	}
	return nil
}

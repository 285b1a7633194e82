package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/plugboard/plugboard/internal/acl"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// aclRulesBody is the body of the rules endpoints.
type aclRulesBody struct {
	Rules []acl.Rule `json:"rules"`
}

func (s *Server) listACLRules(w http.ResponseWriter, r *http.Request, _ principal) error {
	rules, err := s.store.ACLRules(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, aclRulesBody{Rules: rules})
}

// replaceACLRules replaces every rule at once; an invalid rule changes
// nothing.
func (s *Server) replaceACLRules(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req aclRulesBody
	if err := s.decode(r, &req); err != nil {
		return err
	}
	if req.Rules == nil {
		return problem(http.StatusUnprocessableEntity, "rules is required (an empty list revokes every connector from users)")
	}
	if err := acl.Validate(req.Rules); err != nil {
		return ruleProblem(err)
	}
	for i, rule := range req.Rules {
		if rule.UserID == "" {
			continue
		}
		if _, err := s.store.User(r.Context(), rule.UserID); errors.Is(err, store.ErrNotFound) {
			return ruleProblem(&acl.RuleError{Index: i, Field: "userId", Message: "no user has this id"})
		} else if err != nil {
			return err
		}
	}
	if err := s.store.ReplaceACLRules(r.Context(), req.Rules); err != nil {
		return err
	}
	s.aclRules.Set(req.Rules)
	return writeJSON(w, http.StatusOK, req)
}

// grantInstalledConnectors adds a rule letting users use each installed
// connector that no rule names yet.
func (s *Server) grantInstalledConnectors(w http.ResponseWriter, r *http.Request, _ principal) error {
	names, err := s.installed.InstalledConnectors(r.Context())
	if err != nil {
		return fmt.Errorf("listing installed connectors: %w", err)
	}
	var add []acl.Rule
	for _, n := range names {
		if !acl.Exempt(n) {
			add = append(add, acl.Rule{Role: store.RoleUser, Resource: n, Action: acl.ActionUse})
		}
	}
	rules, err := s.store.AddACLRulesForNewResources(r.Context(), add)
	if err != nil {
		return err
	}
	s.aclRules.Set(rules)
	return writeJSON(w, http.StatusOK, aclRulesBody{Rules: rules})
}

func ruleProblem(err error) error {
	var re *acl.RuleError
	if !errors.As(err, &re) {
		return err
	}
	p := problem(http.StatusUnprocessableEntity, "%s", re.Error())
	p.Errors = []flow.Problem{{Field: fmt.Sprintf("rules[%d].%s", re.Index, re.Field), Message: re.Message}}
	return p
}

// usableSpecs lists the specs of the components whose connector p may use.
func (s *Server) usableSpecs(ctx context.Context, p principal) ([]component.Spec, error) {
	rules, err := s.aclRules.Rules(ctx)
	if err != nil {
		return nil, err
	}
	sub := acl.Subject{UserID: p.UserID, Role: p.Role}
	return slices.DeleteFunc(s.cfg.Registry.Specs(), func(sp component.Spec) bool {
		return !acl.Allowed(rules, sub, acl.ConnectorOf(sp.Type))
	}), nil
}

// checkFlowACL refuses, with a 403, a flow that uses a connector its owner
// may not use. The owner's rights count, not the caller's: the flow runs
// as its owner, even when an admin saves or starts it.
func (s *Server) checkFlowACL(ctx context.Context, p principal, ownerID string, doc *flow.Document) error {
	sub := acl.Subject{UserID: p.UserID, Role: p.Role}
	if ownerID != p.UserID {
		u, err := s.store.User(ctx, ownerID)
		if err != nil {
			return fmt.Errorf("loading the flow's owner: %w", err)
		}
		sub = acl.Subject{UserID: u.ID, Role: u.Role}
	}
	rules, err := s.aclRules.Rules(ctx)
	if err != nil {
		return err
	}
	types := make(map[string]string, len(doc.Components))
	for id, c := range doc.Components {
		types[id] = c.Type
	}
	denied := acl.Denied(rules, sub, types)
	if len(denied) == 0 {
		return nil
	}
	connectors := slices.Sorted(maps.Keys(denied))
	prob := problem(http.StatusForbidden, "the flow's owner may not use connector %s", strings.Join(connectors, ", "))
	for _, c := range connectors {
		for _, id := range denied[c] {
			prob.Errors = append(prob.Errors, flow.Problem{Component: id, Field: "type",
				Message: fmt.Sprintf("connector %s is not granted to the flow's owner", c)})
		}
	}
	return prob
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// RecentLogWindow is how many of a flow's newest invocation logs
// LastOutputs searches. Logs have no index on the component, so the window
// is what bounds the search, whatever the flow's history.
const RecentLogWindow = 1000

// lastOutputTries is how many of a component's newest successful logs
// LastOutputs reads before giving up on finding a whole output.
const lastOutputTries = 3

// TruncatedSuffix ends an input or output the engine cut to its size cap
// (engine's capped). JSON text never ends with ')', so a whole output
// cannot be mistaken for a cut one.
const TruncatedSuffix = "…(truncated)"

// LastOutputs returns, for each of componentIDs that ran successfully
// among the flow's RecentLogWindow newest invocation logs, the output of
// its latest such run. A trigger's accepted event counts as a success. An
// output cut by the log size cap is no example of the real output: the
// run before is taken instead, up to lastOutputTries runs per component.
// Components without such an output are absent from the map.
func (s *Store) LastOutputs(ctx context.Context, flowID string, componentIDs []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if len(componentIDs) == 0 {
		return out, nil
	}
	wanted := make(map[string]bool, len(componentIDs))
	for _, id := range componentIDs {
		wanted[id] = true
	}
	// First the candidates, newest first: ids and components only, so
	// that the window's inputs and outputs are not read. The statement is
	// the same whatever the components asked for, and so is cached once.
	rs, err := s.backend.reader().query(ctx,
		`SELECT id, component_id FROM (
		     SELECT id, component_id, status FROM invocation_logs
		      WHERE flow_id = $1 ORDER BY id DESC LIMIT $2) recent
		  WHERE status = $3 OR status = $4
		  ORDER BY id DESC`, flowID, RecentLogWindow, StatusSuccess, StatusAccepted)
	if err != nil {
		return nil, fmt.Errorf("finding the last outputs of flow %s: %w", flowID, err)
	}
	candidates := map[string][]string{}
	for rs.Next() {
		var id, comp string
		if err := rs.Scan(&id, &comp); err != nil {
			rs.Close()
			return nil, fmt.Errorf("finding the last outputs of flow %s: %w", flowID, err)
		}
		if wanted[comp] && len(candidates[comp]) < lastOutputTries {
			candidates[comp] = append(candidates[comp], id)
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("finding the last outputs of flow %s: %w", flowID, err)
	}
	// Then the outputs, one by primary key, until a whole one turns up.
	for comp, ids := range candidates {
		for _, id := range ids {
			o, err := s.logOutput(ctx, flowID, id)
			if err != nil {
				return nil, err
			}
			if o == "" || strings.HasSuffix(o, TruncatedSuffix) || !json.Valid([]byte(o)) {
				continue
			}
			out[comp] = json.RawMessage(o)
			break
		}
	}
	return out, nil
}

// logOutput reads the output of one invocation log; "" if it has none or
// is gone (retention may delete it in between).
func (s *Store) logOutput(ctx context.Context, flowID, id string) (string, error) {
	rs, err := s.backend.reader().query(ctx,
		`SELECT COALESCE(output, '') FROM invocation_logs WHERE flow_id = $1 AND id = $2`, flowID, id)
	if err != nil {
		return "", fmt.Errorf("reading the output of log %s of flow %s: %w", id, flowID, err)
	}
	defer rs.Close()
	var o string
	if rs.Next() {
		if err := rs.Scan(&o); err != nil {
			return "", fmt.Errorf("reading the output of log %s of flow %s: %w", id, flowID, err)
		}
	}
	if err := rs.Err(); err != nil {
		return "", fmt.Errorf("reading the output of log %s of flow %s: %w", id, flowID, err)
	}
	return o, nil
}

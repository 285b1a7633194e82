package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Invocation statuses.
const (
	StatusSuccess  = "success"
	StatusRetrying = "retrying"
	StatusFailed   = "failed"
	StatusAccepted = "accepted"
)

// InvocationLog records one run of one component on one message. Its ID,
// once stored, is "<correlation id>/<ID as given>".
type InvocationLog struct {
	ID            string `json:"id"`
	FlowID        string `json:"flowId"`
	ComponentID   string `json:"componentId"`
	CorrelationID string `json:"correlationId"`
	MessageID     string `json:"messageId"`
	Attempt       int    `json:"attempt"`
	Status        string `json:"status"`
	DurationUS    int64  `json:"durationUs"`
	Input         string `json:"input,omitempty"`
	Output        string `json:"output,omitempty"`
	Error         string `json:"error,omitempty"`
	CreatedAt     int64  `json:"-"`
}

// logCols are the columns InsertLogs writes.
const logCols = `INSERT INTO invocation_logs (id, flow_id, component_id, message_id, attempt, status, duration_us, input, output, error)`

const logColCount = 10

// InsertLogs writes invocation logs inside tx (in a group commit, together
// with the other submissions' logs when the group is flushed).
func (tx *Tx) InsertLogs(ctx context.Context, logs []InvocationLog) error {
	if len(logs) == 0 {
		return nil
	}
	args := make([]any, 0, len(logs)*logColCount)
	for i := range logs {
		l := &logs[i]
		args = append(args, l.CorrelationID+"/"+l.ID, l.FlowID, l.ComponentID, l.MessageID,
			l.Attempt, l.Status, l.DurationUS, l.Input, l.Output, l.Error)
	}
	if tx.deferred {
		tx.logArgs = append(tx.logArgs, args...)
		return nil
	}
	if err := bulkInsert(ctx, tx.q, tx.positional(), logCols, logColCount, args); err != nil {
		return fmt.Errorf("writing invocation logs: %w", err)
	}
	return nil
}

// LogFilter narrows FlowLogs.
type LogFilter struct {
	FlowID        string
	CorrelationID string
	After         string
	Limit         int
}

// FlowLogs lists a flow's invocation logs, run by run, in time order.
func (s *Store) FlowLogs(ctx context.Context, f LogFilter) ([]InvocationLog, error) {
	// A run's logs are the key range of its correlation id prefix ('/' is
	// followed by '0' in byte order); all runs are everything above "".
	lo, hi := "", "\U0010FFFF"
	if f.CorrelationID != "" {
		lo, hi = f.CorrelationID+"/", f.CorrelationID+"0"
	}
	rs, err := s.backend.reader().query(ctx,
		`SELECT id, flow_id, component_id, message_id, attempt, status, duration_us,
		        COALESCE(input, ''), COALESCE(output, ''), COALESCE(error, '')
		   FROM invocation_logs
		  WHERE flow_id = $1 AND id > $2 AND id < $3
		  ORDER BY id LIMIT $4`, f.FlowID, max(f.After, lo), hi, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("listing logs of flow %s: %w", f.FlowID, err)
	}
	defer rs.Close()
	var out []InvocationLog
	for rs.Next() {
		var l InvocationLog
		if err := rs.Scan(&l.ID, &l.FlowID, &l.ComponentID, &l.MessageID, &l.Attempt,
			&l.Status, &l.DurationUS, &l.Input, &l.Output, &l.Error); err != nil {
			return nil, fmt.Errorf("listing logs of flow %s: %w", f.FlowID, err)
		}
		corr, entry, _ := strings.Cut(l.ID, "/")
		l.CorrelationID = corr
		if u, err := uuid.Parse(entry); err == nil && u.Version() == 7 {
			sec, nsec := u.Time().UnixTime()
			l.CreatedAt = sec*1000 + nsec/1e6
		}
		out = append(out, l)
	}
	return out, rs.Err()
}

// DeleteLogsBefore removes invocation logs older than cutoff, flow by flow
// (a deleted flow's logs go with it). Log ids are UUIDv7, whose text sorts
// by creation time, so the primary key (flow_id, id) serves.
func (s *Store) DeleteLogsBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	ms := uint64(cutoff.UnixMilli())
	bound := fmt.Sprintf("%08x-%04x-0000-0000-000000000000", ms>>16, ms&0xffff)
	var total int64
	after := ""
	for {
		rs, err := s.backend.reader().query(ctx, `SELECT id FROM flows WHERE id > $1 ORDER BY id LIMIT 500`, after)
		if err != nil {
			return total, fmt.Errorf("deleting old logs: %w", err)
		}
		var ids []string
		for rs.Next() {
			var id string
			if err := rs.Scan(&id); err != nil {
				rs.Close()
				return total, fmt.Errorf("deleting old logs: %w", err)
			}
			ids = append(ids, id)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return total, fmt.Errorf("deleting old logs: %w", err)
		}
		for _, id := range ids {
			n, err := s.backend.writer().exec(ctx, `DELETE FROM invocation_logs WHERE flow_id = $1 AND id < $2`, id, bound)
			if err != nil {
				return total, fmt.Errorf("deleting old logs of flow %s: %w", id, err)
			}
			total += n
		}
		if len(ids) < 500 {
			return total, nil
		}
		after = ids[len(ids)-1]
	}
}

package account

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/plugboard/plugboard/internal/store"
)

// Audit writer limits.
const (
	// auditBatch entries written at once wake the writer before its
	// interval ends.
	auditBatch = 256
	// maxAuditPending entries at most wait while the database refuses
	// them; beyond, the oldest are dropped (and the loss logged).
	maxAuditPending = 64 << 10
	// maxAuditText bounds the path and the error text of an entry.
	maxAuditText = 1024
)

// auditWriter buffers the uses of accounts and writes them in batches:
// every flush interval, or at once when a batch is full.
type auditWriter struct {
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex
	pending []store.AccountAudit
	// kick wakes the writer when a batch is full.
	kick chan struct{}
	// writing is held while a batch is written, so that a flush returns
	// only once everything added before it is in the database.
	writing sync.Mutex
}

func newAuditWriter(st *store.Store, log *slog.Logger) *auditWriter {
	return &auditWriter{st: st, log: log, kick: make(chan struct{}, 1)}
}

// record adds one use of a to the audit log.
func (s *Service) record(ctx context.Context, a *store.Account, who, source string, t target, start time.Time, status int, err error) {
	e := store.AccountAudit{
		ID: newID(), AccountID: a.ID, UserID: who, Source: source,
		At:     s.cfg.Now().UnixMilli(),
		Method: t.method, Host: t.host, Path: clip(t.path),
		Status: status, DurationMS: time.Since(start).Milliseconds(),
	}
	if err != nil {
		e.Error = clip(err.Error())
	}
	s.audit.add(e)
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelInfo
	}
	if s.log.Enabled(ctx, level) {
		attrs := []slog.Attr{slog.String("account", a.ID), slog.String("user", who), slog.String("source", source),
			slog.String("method", t.method), slog.String("host", t.host), slog.String("path", e.Path),
			slog.Int("status", status), slog.Int64("durationMs", e.DurationMS)}
		if err != nil {
			attrs = append(attrs, slog.String("error", e.Error))
		}
		s.log.LogAttrs(ctx, level, "account used", attrs...)
	}
}

// clip bounds s to maxAuditText bytes of valid UTF-8.
func clip(s string) string {
	if len(s) <= maxAuditText {
		return s
	}
	return strings.ToValidUTF8(s[:maxAuditText], "") + "…"
}

func (w *auditWriter) add(e store.AccountAudit) {
	w.mu.Lock()
	w.pending = append(w.pending, e)
	full := len(w.pending) >= auditBatch
	w.mu.Unlock()
	if full {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// run writes the buffered entries every interval, or sooner when a
// batch is full, until ctx ends; then it writes what is left.
func (w *auditWriter) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			w.flushLogged(fctx)
			cancel()
			return
		case <-tick.C:
		case <-w.kick:
		}
		w.flushLogged(ctx)
	}
}

func (w *auditWriter) flushLogged(ctx context.Context) {
	if err := w.flush(ctx); err != nil {
		w.log.LogAttrs(ctx, slog.LevelWarn, "writing account audit", slog.String("error", err.Error()))
	}
}

// flush writes every entry added so far. Entries the database refuses
// are kept for the next flush.
func (w *auditWriter) flush(ctx context.Context) error {
	w.writing.Lock()
	defer w.writing.Unlock()
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := w.st.InsertAccountAudit(ctx, batch)
	if err == nil {
		return nil
	}
	w.mu.Lock()
	w.pending = append(batch, w.pending...)
	if over := len(w.pending) - maxAuditPending; over > 0 {
		w.pending = w.pending[over:]
		w.log.LogAttrs(ctx, slog.LevelError, "dropping account audit entries", slog.Int("count", over))
	}
	w.mu.Unlock()
	return err
}

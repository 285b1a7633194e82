package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

// BenchmarkAcceptWrite measures what accepting one webhook writes: a stage
// check, two invocation logs and one job, group-committed with concurrent
// submissions.
func BenchmarkAcceptWrite(b *testing.B) {
	for _, backend := range storetest.Backends() {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, backend)
			u := &store.User{ID: "u", Email: "b@example.com", Role: store.RoleUser}
			if err := s.CreateUser(ctx, u); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateFlow(ctx, &store.Flow{ID: "f", OwnerID: "u", Name: "f", Stage: store.StageRunning, Document: []byte(`{}`)}); err != nil {
				b.Fatal(err)
			}
			payload := `{"body":{"user":{"email":"ada@example.com"}},"headers":{"Content-Type":"application/json","User-Agent":"bench"},"method":"POST","query":{}}`
			args := []byte(`{"input":` + payload + `,"scope":{"hook":` + payload + `}}` + strings.Repeat(" ", 0))
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					err := s.Submit(ctx, func(tx *store.Tx) error {
						if _, _, err := tx.FlowStage(ctx, "f"); err != nil {
							return err
						}
						id := uuid.Must(uuid.NewV7()).String()
						if err := tx.InsertLogs(ctx, []store.InvocationLog{
							{ID: id + "a", FlowID: "f", ComponentID: "hook", CorrelationID: id, MessageID: id, Status: "accepted", Output: payload},
							{ID: id + "b", FlowID: "f", ComponentID: "map", CorrelationID: id, MessageID: id, Status: "success", Input: payload, Output: `{"email":"ada@example.com"}`},
						}); err != nil {
							return err
						}
						return tx.EnqueueJobs(ctx, []store.NewJob{{ID: id, MaxAttempts: 10, Args: args}})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

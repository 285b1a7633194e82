package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// docComponent is what the store reads of a component in a flow document:
// its type, and the event an app event trigger takes.
type docComponent struct {
	Type       string `json:"type"`
	Properties struct {
		Event any `json:"event"`
	} `json:"properties"`
}

// indexFlow makes every index of flow f match its document, inside the
// transaction that saves it: the component types, app event triggers,
// schedules, polling triggers and subscription triggers.
func (tx *Tx) indexFlow(ctx context.Context, f *Flow) error {
	var d struct {
		Components map[string]docComponent `json:"components"`
	}
	if err := json.Unmarshal(f.Document, &d); err != nil {
		return fmt.Errorf("reading the components of flow %s: %w", f.ID, err)
	}
	if err := tx.putComponents(ctx, f, d.Components); err != nil {
		return err
	}
	if err := tx.putAppEventTriggers(ctx, f, d.Components); err != nil {
		return err
	}
	if err := tx.putSchedules(ctx, f, d.Components); err != nil {
		return err
	}
	if err := tx.putPolls(ctx, f); err != nil {
		return err
	}
	return tx.putSubscriptions(ctx, f)
}

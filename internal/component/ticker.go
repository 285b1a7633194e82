package component

import "time"

// Ticker is a trigger that fires on a schedule. The engine keeps each
// instance's next run in the database and fires every run once across all
// nodes.
type Ticker interface {
	Trigger
	// Next returns the first run strictly after after, from the instance's
	// properties; prev is the run just fired (zero if none), which lets a
	// clock that repeats an hour fire a time of day once.
	Next(props map[string]any, after, prev time.Time) (time.Time, error)
	// CatchUp reports whether runs missed while no node was up are all
	// fired (true) or folded into one (false).
	CatchUp(props map[string]any) bool
}

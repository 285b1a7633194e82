package component

import "time"

// Deferred is an action whose message waits before the action runs. The
// engine asks Delay as it routes a message to the component and enqueues
// the step as a job due that much later, so that no worker is held while
// it waits; when the job comes due, Invoke runs as usual.
type Deferred interface {
	Action
	// Delay returns how long the message waits, from the instance's
	// properties resolved against the message's scope.
	Delay(props map[string]any, now time.Time) (time.Duration, error)
}

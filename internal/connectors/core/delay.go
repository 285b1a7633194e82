package core

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/plugboard/plugboard/internal/component"
)

// MaxDelay is the longest a message may wait in a core.Delay.
const MaxDelay = 30 * 24 * time.Hour

// Delay holds a message for a while, then sends it on unchanged. The
// engine keeps the waiting message as a job due later: no worker waits.
type Delay struct{}

var _ component.Deferred = Delay{}

// Spec describes the component.
func (Delay) Spec() component.Spec {
	return component.Spec{
		Type: "core.Delay",
		Kind: component.KindAction,
		ExampleFlow: exampleFlow("Remind a day later",
			map[string]any{
				"hook":   node(WebhookType, nil),
				"wait":   node("core.Delay", map[string]any{"duration": "1d"}),
				"remind": post("https://api.example.com/reminders", map[string]any{"email": "{{ $.hook.body.email }}"}),
			},
			link("hook", "wait"), link("wait", "remind")),
		Description: "Holds the message it receives for a duration, or until a time, then sends it on unchanged. " +
			"The message waits as a durable job (no worker is held; it survives restarts). At most 30 days.",
		Properties: []component.Property{
			{Name: "duration", Type: component.TypeString, Example: "15m",
				Description: "How long to wait: a number with a unit, such as 90s, 15m, 1h30m or 2d (days)."},
			{Name: "until", Type: component.TypeString, Example: "{{ $.hook.body.remindAt }}",
				Description: "When to send the message on, as an RFC 3339 time such as 2026-12-01T09:00:00Z. A time past sends it on at once. Set this or duration."},
		},
		InPorts:      []string{component.PortIn},
		OutPorts:     []string{component.PortOut},
		OutputSample: map[string]any{"email": "ada@example.com"},
		IO:           true,
	}
}

// Delay computes the wait from the resolved properties.
func (Delay) Delay(props map[string]any, now time.Time) (time.Duration, error) {
	dur, hasDur := props["duration"]
	until, hasUntil := props["until"]
	hasDur = hasDur && dur != nil && dur != ""
	hasUntil = hasUntil && until != nil && until != ""
	switch {
	case hasDur == hasUntil:
		return 0, fmt.Errorf("core.Delay needs exactly one of duration and until")
	case hasDur:
		s, ok := dur.(string)
		if !ok {
			return 0, fmt.Errorf("core.Delay: duration must be text such as 15m, got %s", describe(dur))
		}
		d, err := ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("core.Delay: duration: %w", err)
		}
		if d > MaxDelay {
			return 0, fmt.Errorf("core.Delay: duration %s is longer than %s", s, "30 days")
		}
		return d, nil
	default:
		s, ok := until.(string)
		if !ok {
			return 0, fmt.Errorf("core.Delay: until must be an RFC 3339 time, got %s", describe(until))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("core.Delay: until %q is not an RFC 3339 time such as 2026-12-01T09:00:00Z", s)
		}
		d := max(t.Sub(now), 0)
		if d > MaxDelay {
			return 0, fmt.Errorf("core.Delay: until %s is more than 30 days away", s)
		}
		return d, nil
	}
}

// Invoke sends the message on once it has waited. Properties that cannot
// give a wait fail the step for good.
func (d Delay) Invoke(_ context.Context, inv component.Invocation) ([]component.Emit, error) {
	if _, err := d.Delay(inv.Properties, time.Now()); err != nil {
		return nil, component.Permanent(err)
	}
	return []component.Emit{{Port: component.PortOut, Value: inv.Input}}, nil
}

// ParseDuration reads a Go duration (90s, 1h30m) that may also count whole
// days (2d, 1d12h). Negative durations, and any over 100 years, are
// refused. Every duration property of the core components reads with it.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration such as 90s, 15m, 1h30m or 2d", s)
	var days time.Duration
	rest := s
	if head, tail, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(head)
		if err != nil || n < 0 || n > maxDurationDays || strconv.Itoa(n) != head {
			return 0, bad
		}
		days, rest = time.Duration(n)*24*time.Hour, tail
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, bad
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if d > maxDurationDays*24*time.Hour-days {
		return 0, fmt.Errorf("%q is longer than %d days", s, maxDurationDays)
	}
	return days + d, nil
}

// maxDurationDays bounds ParseDuration, far from time.Duration's limit.
const maxDurationDays = 36500

var _ component.Validator = Delay{}

// Validate checks constant durations and times as the flow is saved.
func (Delay) Validate(props map[string]any) (string, error) {
	if s, ok := props["duration"].(string); ok && s != "" {
		d, err := ParseDuration(s)
		if err != nil {
			return "duration", err
		}
		if d > MaxDelay {
			return "duration", fmt.Errorf("%s is longer than 30 days", s)
		}
	}
	if s, ok := props["until"].(string); ok && s != "" {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return "until", fmt.Errorf("%q is not an RFC 3339 time such as 2026-12-01T09:00:00Z", s)
		}
	}
	return "", nil
}

package core

import (
	"fmt"
	"time"

	cron "github.com/netresearch/go-cron"

	"github.com/plugboard/plugboard/internal/component"
)

// ScheduleType is the type name of the schedule trigger.
const ScheduleType = "core.Schedule"

// MinInterval is the shortest interval of a core.Schedule.
const MinInterval = time.Second

// Schedule starts the flow on a cron schedule in a time zone, or every
// interval. The engine fires each run once across all nodes.
type Schedule struct{}

var _ component.Ticker = Schedule{}

// cronParser reads five-field expressions as crontab does: when both the
// day of month and the day of week are restricted, either one matching is
// enough ("0 0 15 * FRI" is the 15th and every Friday).
var cronParser = cron.MustNewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor | cron.DowOrDom)

// Spec describes the component.
func (Schedule) Spec() component.Spec {
	return component.Spec{
		Type: ScheduleType,
		Kind: component.KindTrigger,
		ExampleFlow: exampleFlow("Morning report",
			map[string]any{
				"tick":   node(ScheduleType, map[string]any{"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"}),
				"report": post("https://api.example.com/reports", map[string]any{"day": "{{ $.tick.scheduledAt }}"}),
			},
			link("tick", "report")),
		Description: "Starts the flow on a schedule: a cron expression in a time zone, or a fixed interval. Each run fires once " +
			"across all nodes and survives restarts. Runs missed while no node was up fire once, as one run, unless catchUp is set. " +
			"On a daylight-saving change, a time of day the clock skips runs just after the gap, and a time the clock shows twice runs once.",
		Properties: []component.Property{
			{Name: "cron", Type: component.TypeString, Example: "0 9 * * MON-FRI",
				Description: "Five-field cron expression (minute hour day-of-month month day-of-week), read as crontab reads it, or @hourly, @daily, @weekly, @monthly, @yearly. Set this or interval."},
			{Name: "interval", Type: component.TypeString, Example: "15m",
				Description: "Fire every interval, such as 30s, 15m or 1d (at least 1s). Set this or cron."},
			{Name: "timezone", Type: component.TypeString, Default: "UTC", Example: "Europe/Berlin",
				Description: "IANA time zone the cron expression is read in."},
			{Name: "catchUp", Type: component.TypeBoolean, Default: false,
				Description: "After downtime, fire every missed run (at most 1,000) instead of one run for all of them."},
		},
		OutPorts: []string{component.PortOut},
		OutputSample: map[string]any{
			"scheduledAt": "2026-11-23T09:00:00.000Z", "firedAt": "2026-11-23T09:00:00.012Z", "skipped": 0,
		},
	}
}

// Next returns the run after after.
func (Schedule) Next(props map[string]any, after, prev time.Time) (time.Time, error) {
	expr, _ := props["cron"].(string)
	every, _ := props["interval"].(string)
	switch {
	case (expr == "") == (every == ""):
		return time.Time{}, fmt.Errorf("core.Schedule needs exactly one of cron and interval")
	case every != "":
		d, err := ParseDuration(every)
		if err != nil {
			return time.Time{}, fmt.Errorf("core.Schedule: interval: %w", err)
		}
		if d < MinInterval {
			return time.Time{}, fmt.Errorf("core.Schedule: interval %s is shorter than 1s", every)
		}
		if prev.IsZero() {
			return after.Add(d), nil
		}
		// Keep the cadence of the last run: the next one after after.
		next := prev.Add(d)
		if !next.After(after) {
			next = next.Add(after.Sub(next).Truncate(d) + d)
		}
		return next, nil
	}
	tz, _ := props["timezone"].(string)
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return time.Time{}, fmt.Errorf("core.Schedule: unknown time zone %q", tz)
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return time.Time{}, fmt.Errorf("core.Schedule: cron %q: %w", expr, err)
	}
	next := sched.Next(after.In(loc))
	// When the clock goes back, a time of day comes twice: run it once.
	if !prev.IsZero() && !next.IsZero() && sameWallClock(next, prev.In(loc)) {
		next = sched.Next(next)
	}
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("core.Schedule: cron %q never fires", expr)
	}
	return next, nil
}

func sameWallClock(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second()
}

// CatchUp reports the catchUp property.
func (Schedule) CatchUp(props map[string]any) bool {
	c, _ := props["catchUp"].(bool)
	return c
}

var _ component.Validator = Schedule{}

// Validate checks the schedule as the flow is saved.
func (Schedule) Validate(props map[string]any) (string, error) {
	expr, _ := props["cron"].(string)
	every, _ := props["interval"].(string)
	if (expr == "") == (every == "") {
		return "cron", fmt.Errorf("set exactly one of cron and interval")
	}
	if every != "" {
		d, err := ParseDuration(every)
		if err != nil {
			return "interval", err
		}
		if d < MinInterval {
			return "interval", fmt.Errorf("%s is shorter than 1s", every)
		}
		return "", nil
	}
	if tz, _ := props["timezone"].(string); tz != "" {
		if _, err := time.LoadLocation(tz); err != nil {
			return "timezone", fmt.Errorf("unknown time zone %q", tz)
		}
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return "cron", fmt.Errorf("%q: %v", expr, err)
	}
	if sched.Next(time.Now()).IsZero() {
		return "cron", fmt.Errorf("%q never fires", expr)
	}
	return "", nil
}

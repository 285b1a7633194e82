package core_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connectors/core"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"2d", 48 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"0s", 0, true},
		{"-5m", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"+1d", 0, false},
		{"99999999d", 0, false},
		{"36500d2562047h", 0, false}, // would overflow
		{"36500d", 36500 * 24 * time.Hour, true},
		{"soon", 0, false},
		{"10", 0, false},
	} {
		got, err := core.ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %s, %v", tt.in, got, err)
		}
	}
}

func TestDelayProperties(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		props map[string]any
		want  time.Duration
		err   string
	}{
		{map[string]any{"duration": "15m"}, 15 * time.Minute, ""},
		{map[string]any{"until": "2026-11-23T13:00:00Z"}, time.Hour, ""},
		{map[string]any{"until": "2026-11-23T13:00:00+02:00"}, 0, ""}, // 11:00 UTC: past, so now
		{map[string]any{"duration": "31d"}, 0, "longer than 30 days"},
		{map[string]any{"until": "2027-11-23T13:00:00Z"}, 0, "more than 30 days away"},
		{map[string]any{"until": "tomorrow"}, 0, "not an RFC 3339 time"},
		{map[string]any{"duration": 5.0}, 0, "must be text"},
		{map[string]any{}, 0, "exactly one of duration and until"},
		{map[string]any{"duration": "1m", "until": "2026-11-23T13:00:00Z"}, 0, "exactly one"},
	} {
		got, err := core.Delay{}.Delay(tt.props, now)
		if tt.err == "" && (err != nil || got != tt.want) || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Delay(%v) = %s, %v", tt.props, got, err)
		}
	}
}

type replyRecorder struct {
	status  int
	headers map[string]string
	body    string
}

func (r *replyRecorder) Reply(_ context.Context, _ string, status int, headers map[string]string, body []byte) error {
	r.status, r.headers, r.body = status, headers, string(body)
	return nil
}

func TestResponse(t *testing.T) {
	t.Parallel()
	rec := &replyRecorder{}
	reg := component.NewRegistry()
	core.Register(reg, core.Deps{Replies: rec})
	c, _ := reg.Lookup("core.Response")
	resp := c.(component.Action)
	for _, tt := range []struct {
		props       map[string]any
		status      int
		contentType string
		body        string
		err         string
	}{
		{map[string]any{"status": 200, "body": map[string]any{"ok": true}}, 200, "application/json", `{"ok":true}`, ""},
		{map[string]any{"status": 404.0, "body": "gone", "headers": map[string]any{"x-a": "1"}}, 404, "text/plain; charset=utf-8", "gone", ""},
		{map[string]any{"body": "<p/>", "headers": map[string]any{"content-type": "text/html"}}, 200, "text/html", "<p/>", ""},
		{map[string]any{"status": 99.0}, 0, "", "", "status must be a whole number"},
		{map[string]any{"status": 200.5}, 0, "", "", "status must be a whole number"},
		{map[string]any{"headers": map[string]any{"x-a": 1.0}}, 0, "", "", "header X-A must be text"},
	} {
		*rec = replyRecorder{}
		_, err := resp.Invoke(t.Context(), component.Invocation{ComponentID: "resp", CorrelationID: "c1", Properties: tt.props})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !component.IsPermanent(err) {
				t.Errorf("Invoke(%v): %v", tt.props, err)
			}
			continue
		}
		if err != nil || rec.status != tt.status || rec.headers["Content-Type"] != tt.contentType || rec.body != tt.body {
			t.Errorf("Invoke(%v) replied %+v, %v", tt.props, rec, err)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	s := core.Schedule{}
	for _, tt := range []struct {
		name        string
		props       map[string]any
		after, prev time.Time
		want        time.Time
	}{
		{"9:00 in New York, across the fall-back change", map[string]any{"cron": "0 9 * * *", "timezone": "America/New_York"},
			time.Date(2026, 10, 31, 9, 0, 0, 0, ny), time.Date(2026, 10, 31, 9, 0, 0, 0, ny),
			time.Date(2026, 11, 1, 14, 0, 0, 0, time.UTC)},
		{"9:00 in New York, across the spring-forward change", map[string]any{"cron": "0 9 * * *", "timezone": "America/New_York"},
			time.Date(2026, 3, 7, 9, 0, 0, 0, ny), time.Date(2026, 3, 7, 9, 0, 0, 0, ny),
			time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC)},
		{"2:30 in Berlin does not exist on the spring-forward day: runs just after the gap", map[string]any{"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
			time.Date(2026, 3, 28, 2, 30, 0, 0, berlin), time.Date(2026, 3, 28, 2, 30, 0, 0, berlin),
			time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)},
		{"1:30 comes twice on the fall-back day in New York: runs once", map[string]any{"cron": "30 1 * * *", "timezone": "America/New_York"},
			time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC),
			time.Date(2026, 11, 2, 6, 30, 0, 0, time.UTC)},
		{"every 15 minutes runs through the repeated hour", map[string]any{"cron": "*/15 * * * *", "timezone": "America/New_York"},
			time.Date(2026, 11, 1, 5, 45, 0, 0, time.UTC), time.Date(2026, 11, 1, 5, 45, 0, 0, time.UTC),
			time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)},
		{"UTC by default", map[string]any{"cron": "@daily"},
			time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), time.Time{}, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{"an interval keeps its cadence", map[string]any{"interval": "10s"},
			time.Date(2026, 11, 23, 12, 0, 35, 0, time.UTC), time.Date(2026, 11, 23, 12, 0, 10, 0, time.UTC),
			time.Date(2026, 11, 23, 12, 0, 40, 0, time.UTC)},
		{"a first interval counts from now", map[string]any{"interval": "1d"},
			time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), time.Time{}, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)},
	} {
		got, err := s.Next(tt.props, tt.after, tt.prev)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%s: Next = %s, %v; want %s", tt.name, got.UTC(), err, tt.want.UTC())
		}
	}
	for _, props := range []map[string]any{{"interval": "500ms"}, {"cron": "* *"}, {"cron": "0 9 * * *", "timezone": "Nowhere/Else"}, {}} {
		if _, err := s.Next(props, time.Now(), time.Time{}); err == nil {
			t.Errorf("Next(%v) accepted", props)
		}
		if prop, err := s.Validate(props); err == nil || prop == "" {
			t.Errorf("Validate(%v) = %q, %v", props, prop, err)
		}
	}
}

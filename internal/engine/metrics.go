package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugboard/plugboard/internal/store"
)

type metrics struct {
	accepted    prometheus.Counter
	steps       *prometheus.CounterVec
	retries     prometheus.Counter
	deadLetters prometheus.Counter
	stepSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, s *store.Store) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plugboard_trigger_events_accepted_total", Help: "Trigger events accepted and stored.",
		}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugboard_steps_total", Help: "Component invocations by outcome (success, retrying, failed).",
		}, []string{"status"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plugboard_step_retries_total", Help: "Failed attempts that will be retried.",
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plugboard_dead_letters_total", Help: "Messages moved to the unprocessed store.",
		}),
		stepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "plugboard_step_duration_seconds", Help: "Duration of step jobs.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.accepted, m.steps, m.retries, m.deadLetters, m.stepSeconds, jobsCollector{s}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering engine metrics: %w", err)
		}
	}
	return m, nil
}

// jobsCollector reports queued jobs by state and the unprocessed count at
// scrape time.
type jobsCollector struct{ s *store.Store }

var (
	jobsDesc        = prometheus.NewDesc("plugboard_jobs", "Step jobs in the queue by state.", []string{"state"}, nil)
	unprocessedDesc = prometheus.NewDesc("plugboard_unprocessed_messages", "Messages in the unprocessed store.", nil, nil)
)

func (jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- unprocessedDesc
}

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := c.s.JobCounts(ctx); err == nil {
		for _, st := range []string{store.JobAvailable, store.JobRunning} {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[st]), st)
		}
	}
	if n, err := c.s.CountUnprocessed(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(unprocessedDesc, prometheus.GaugeValue, float64(n))
	}
}

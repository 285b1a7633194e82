// Package engine runs flows: it accepts trigger events, turns every step
// into a durable job, retries failing steps with backoff and moves messages
// whose last attempt failed to the unprocessed store.
package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// Errors the API maps to status codes.
var (
	ErrFlowNotRunning = errors.New("flow is not running")
	ErrNotTrigger     = errors.New("component is not a trigger of this flow")
	// ErrComponentMissing wraps why a trigger cannot take a request: its
	// type is not installed (its connector was removed), maybe for now.
	ErrComponentMissing = errors.New("the component cannot take requests now")
)

// DefaultWorkers is how many steps run at once on a node unless
// Config.Workers says otherwise.
const DefaultWorkers = 256

// Config configures an Engine.
type Config struct {
	Store    *store.Store
	Registry *component.Registry
	Logger   *slog.Logger
	Metrics  prometheus.Registerer
	// NodeID names this node in the job queue; a restarted node requeues
	// the steps it was running when it died. Default: host name.
	NodeID string
	// Workers is how many steps run at once on this node (default 256).
	// A step holds its slot while it waits for its result to commit, so
	// the default is well above what the CPUs could run at once: with
	// fewer, new steps miss an idle worker, wait in the table and cost a
	// claim.
	Workers int
	// FetchPollInterval is how often idle workers look for new jobs
	// (default 50ms; on PostgreSQL new jobs are also announced at once).
	FetchPollInterval time.Duration
	// SchedulePoll is how often a node looks for due core.Schedule runs,
	// component.Poller polls and component.Subscriber subscriptions to
	// make or remove (default 250ms).
	SchedulePoll time.Duration
	// JobTimeout bounds one step (default 2m).
	JobTimeout time.Duration
	// RescueAfter is when another node takes over a step whose node died
	// (default JobTimeout + 1m).
	RescueAfter time.Duration
	// LogRetention is how long invocation logs are kept (default 7 days).
	LogRetention time.Duration
	// MaxLogBytes caps the input and output kept in each invocation log
	// (default 16 KiB).
	MaxLogBytes int
	// PublicURL is the base of inbound URLs (https://hooks.example.com),
	// given to providers by subscription triggers.
	PublicURL string
	// Events, when set, records COMPONENT_ERROR and MESSAGE_UNPROCESSED in
	// the transactions that record failed steps.
	Events Emitter
}

func (c *Config) validate() error {
	if c.Store == nil || c.Registry == nil {
		return errors.New("engine: Store and Registry are required")
	}
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.NodeID == "" {
		h, _ := os.Hostname()
		c.NodeID = cmp.Or(h, "node")
	}
	c.Workers = cmp.Or(c.Workers, DefaultWorkers)
	c.FetchPollInterval = cmp.Or(c.FetchPollInterval, 50*time.Millisecond)
	c.SchedulePoll = cmp.Or(c.SchedulePoll, 250*time.Millisecond)
	c.JobTimeout = cmp.Or(c.JobTimeout, 2*time.Minute)
	c.RescueAfter = cmp.Or(c.RescueAfter, c.JobTimeout+time.Minute)
	if c.RescueAfter <= c.JobTimeout {
		return fmt.Errorf("engine: RescueAfter (%s) must be longer than JobTimeout (%s)", c.RescueAfter, c.JobTimeout)
	}
	c.MaxLogBytes = cmp.Or(c.MaxLogBytes, 16<<10)
	c.LogRetention = cmp.Or(c.LogRetention, 7*24*time.Hour)
	return nil
}

// Engine runs flows.
type Engine struct {
	cfg     Config
	store   *store.Store
	reg     *component.Registry
	log     *slog.Logger
	q       *queue
	flows   flowCache
	metrics *metrics
	// kinds runs jobs that are not steps; filled before Start.
	kinds map[string]*Kind

	stopSchedules context.CancelFunc
	schedulesDone chan struct{}
	pollsDone     chan struct{}
	subsDone      chan struct{}
}

// New prepares an engine. Start requeues the steps an earlier run of this
// node left unfinished and begins working.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, store: cfg.Store, reg: cfg.Registry, log: cfg.Logger}
	e.flows = flowCache{store: cfg.Store, reg: cfg.Registry, m: map[string]*cachedFlow{}}
	m, err := newMetrics(cfg.Metrics, cfg.Store)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	e.q = newQueue(e)
	return e, nil
}

// Start begins working jobs.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.q.start(ctx); err != nil {
		return fmt.Errorf("starting job queue: %w", err)
	}
	if e.cfg.PublicURL != "" {
		// Subscriptions made while the server had another public URL are
		// made again at this one.
		if err := e.store.RecheckMovedSubscriptions(ctx, e.cfg.PublicURL+"/hooks/"); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopSchedules, e.schedulesDone, e.pollsDone, e.subsDone = cancel, make(chan struct{}), make(chan struct{}), make(chan struct{})
	go e.schedules(sctx, e.schedulesDone)
	go e.polls(sctx, e.pollsDone)
	go e.subscriptions(sctx, e.subsDone)
	return nil
}

// Stop stops fetching jobs and waits for running steps to finish (or ctx
// to end, at which point unfinished steps are left to be requeued).
func (e *Engine) Stop(ctx context.Context) error {
	if e.stopSchedules != nil {
		e.stopSchedules()
		<-e.schedulesDone
		<-e.pollsDone
		<-e.subsDone
	}
	if err := e.q.stop(ctx); err != nil {
		return fmt.Errorf("stopping job queue: %w", err)
	}
	return nil
}

// Compile validates a flow document against the registered components.
func (e *Engine) Compile(doc *flow.Document) (*flow.Compiled, error) {
	return flow.Compile(doc, e.reg)
}

// flowCache keeps compiled flows, checking the stored version on each use
// so that an update on any node takes effect at once.
type flowCache struct {
	store *store.Store
	reg   *component.Registry
	mu    sync.RWMutex
	m     map[string]*cachedFlow
}

type cachedFlow struct {
	head     store.FlowHead
	compiled *flow.Compiled
	checked  time.Time
	// gen is the registry generation it was compiled against: a connector
	// installed, updated or removed since means compiling it again.
	gen uint64
}

// recentCheck is how long a step trusts a cached flow before checking its
// version again; an update reaches running steps within this time.
const recentCheck = 250 * time.Millisecond

// recent returns the compiled flow, checking the stored version at most
// every recentCheck.
func (c *flowCache) recent(ctx context.Context, id string) (*cachedFlow, error) {
	if cf := c.cached(id); cf != nil && time.Since(cf.checked) < recentCheck {
		return cf, nil
	}
	return c.get(ctx, id)
}

// cached returns the compiled flow last loaded, or nil; the caller checks
// its version where it matters.
func (c *flowCache) cached(id string) *cachedFlow {
	c.mu.RLock()
	cf := c.m[id]
	c.mu.RUnlock()
	if cf != nil && cf.gen != c.reg.Generation() {
		return nil
	}
	return cf
}

// forget drops a deleted flow.
func (c *flowCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

func (c *flowCache) get(ctx context.Context, id string) (*cachedFlow, error) {
	head, err := c.store.FlowHead(ctx, id)
	if err != nil {
		c.forget(id)
		return nil, err
	}
	c.mu.RLock()
	cf := c.m[id]
	c.mu.RUnlock()
	gen := c.reg.Generation()
	if cf != nil && cf.head.Version == head.Version && cf.gen == gen {
		cf = &cachedFlow{head: head, compiled: cf.compiled, checked: time.Now(), gen: gen}
		c.mu.Lock()
		c.m[id] = cf
		c.mu.Unlock()
		return cf, nil
	}
	f, err := c.store.Flow(ctx, id)
	if err != nil {
		return nil, err
	}
	doc, err := flow.Parse(f.Document)
	if err != nil {
		return nil, fmt.Errorf("parsing stored flow %s: %w", id, err)
	}
	compiled, err := flow.CompileStored(doc, c.reg)
	if err != nil {
		return nil, fmt.Errorf("compiling stored flow %s: %w", id, err)
	}
	cf = &cachedFlow{head: store.FlowHead{OwnerID: f.OwnerID, Stage: f.Stage, Version: f.Version}, compiled: compiled, checked: time.Now(), gen: gen}
	c.mu.Lock()
	c.m[id] = cf
	c.mu.Unlock()
	return cf, nil
}

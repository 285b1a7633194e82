package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/api"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/connector"
	"github.com/plugboard/plugboard/internal/connectors/core"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/outbound"
	"github.com/plugboard/plugboard/internal/script"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/syswebhook"
	"github.com/plugboard/plugboard/internal/vault"
)

// settings are read from flags, then PLUGBOARD_* variables, then defaults.
type settings struct {
	addr, dataDir, databaseURL, publicURL string
	allowPrivate                          bool
	adminEmail, adminPassword             string
	workers                               int
	nodeID, logLevel                      string
	jobTimeout, rescueAfter, shutdownWait time.Duration
	// auditRetention and requestRetention are how long account uses and
	// finished wait=false requests are kept.
	auditRetention, requestRetention time.Duration
	logRetention                     time.Duration
	// pollInterval, when set, replaces every connector polling trigger's
	// interval: for load runs and tests, which cannot wait minutes.
	pollInterval time.Duration
	// secretKey is the vault key from PLUGBOARD_SECRET_KEY; nil uses the
	// key file in the data directory. oldSecretKeys, from
	// PLUGBOARD_OLD_SECRET_KEYS, still open values sealed before a key
	// rotation. They have no flags, so that they never show in a process
	// list.
	secretKey     []byte
	oldSecretKeys [][]byte
	// returnOrigins, from PLUGBOARD_OAUTH_RETURN_ORIGINS, are the origins
	// besides the public URL's that an OAuth2 connection may send the
	// browser back to.
	returnOrigins []string
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func parseSettings(args []string) (*settings, error) {
	s := &settings{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&s.addr, "addr", env("PLUGBOARD_ADDR", "127.0.0.1:8080"), "listen address (PLUGBOARD_ADDR)")
	s.storeFlags(fs)
	fs.StringVar(&s.publicURL, "public-url", env("PLUGBOARD_PUBLIC_URL", ""), "base URL of webhook URLs; default http://<addr> (PLUGBOARD_PUBLIC_URL)")
	allow := fs.String("allow-private-networks", env("PLUGBOARD_ALLOW_PRIVATE_NETWORKS", "false"), "let outbound calls reach loopback and private addresses (PLUGBOARD_ALLOW_PRIVATE_NETWORKS)")
	fs.IntVar(&s.workers, "workers", 0, "steps run at once on this node; default 256 (PLUGBOARD_WORKERS)")
	fs.StringVar(&s.nodeID, "node-id", env("PLUGBOARD_NODE_ID", ""), "unique name of this node; default the host name and a hash of the data directory (PLUGBOARD_NODE_ID)")
	fs.StringVar(&s.logLevel, "log-level", env("PLUGBOARD_LOG_LEVEL", "info"), "debug, info, warn or error (PLUGBOARD_LOG_LEVEL)")
	jobTimeout := fs.String("job-timeout", env("PLUGBOARD_JOB_TIMEOUT", "2m"), "longest a step may run (PLUGBOARD_JOB_TIMEOUT)")
	rescue := fs.String("rescue-after", env("PLUGBOARD_RESCUE_AFTER", ""), "when another node retries a step whose node died; default job timeout + 1m (PLUGBOARD_RESCUE_AFTER)")
	retention := fs.String("log-retention", env("PLUGBOARD_LOG_RETENTION", "168h"), "how long invocation logs are kept (PLUGBOARD_LOG_RETENTION)")
	pollEvery := fs.String("poll-interval", env("PLUGBOARD_POLL_INTERVAL", ""), "replaces every connector polling trigger's interval, for load runs and tests; empty keeps each trigger's own (PLUGBOARD_POLL_INTERVAL)")
	auditKeep := fs.String("audit-retention", env("PLUGBOARD_AUDIT_RETENTION", "2160h"), "how long the uses of accounts are kept (PLUGBOARD_AUDIT_RETENTION)")
	requestKeep := fs.String("request-retention", env("PLUGBOARD_REQUEST_RETENTION", "168h"), "how long finished wait=false account requests are kept (PLUGBOARD_REQUEST_RETENTION)")
	shutdown := fs.String("shutdown-timeout", env("PLUGBOARD_SHUTDOWN_TIMEOUT", "30s"), "how long a stop waits for running steps (PLUGBOARD_SHUTDOWN_TIMEOUT)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if s.allowPrivate, err = strconv.ParseBool(*allow); err != nil {
		return nil, fmt.Errorf("PLUGBOARD_ALLOW_PRIVATE_NETWORKS must be true or false, not %q", *allow)
	}
	if s.workers == 0 {
		if v := env("PLUGBOARD_WORKERS", ""); v != "" {
			if s.workers, err = strconv.Atoi(v); err != nil || s.workers < 1 {
				return nil, fmt.Errorf("PLUGBOARD_WORKERS must be a positive number, not %q", v)
			}
		}
	}
	for _, d := range []struct {
		name string
		v    string
		dst  *time.Duration
	}{{"job timeout", *jobTimeout, &s.jobTimeout}, {"rescue-after", *rescue, &s.rescueAfter}, {"shutdown timeout", *shutdown, &s.shutdownWait}, {"log retention", *retention, &s.logRetention}, {"poll interval", *pollEvery, &s.pollInterval},
		{"audit retention", *auditKeep, &s.auditRetention}, {"request retention", *requestKeep, &s.requestRetention}} {
		if d.v == "" {
			continue
		}
		if *d.dst, err = time.ParseDuration(d.v); err != nil || *d.dst <= 0 {
			return nil, fmt.Errorf("%s must be a positive duration such as 30s, not %q", d.name, d.v)
		}
	}
	if s.publicURL == "" {
		s.publicURL = "http://" + s.addr
	}
	s.publicURL = strings.TrimRight(s.publicURL, "/")
	if s.nodeID == "" {
		s.nodeID = defaultNodeID(s.dataDir)
	}
	if err := s.readSecretKeys(); err != nil {
		return nil, err
	}
	for o := range strings.SplitSeq(os.Getenv("PLUGBOARD_OAUTH_RETURN_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			s.returnOrigins = append(s.returnOrigins, o)
		}
	}
	s.adminEmail = os.Getenv("PLUGBOARD_ADMIN_EMAIL")
	s.adminPassword = os.Getenv("PLUGBOARD_ADMIN_PASSWORD")
	return s, nil
}

// storeFlags defines the flags that say where the database and the key
// file are; serve and vault read them alike.
func (s *settings) storeFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.dataDir, "data-dir", env("PLUGBOARD_DATA_DIR", "./data"), "data directory (PLUGBOARD_DATA_DIR)")
	fs.StringVar(&s.databaseURL, "database-url", env("PLUGBOARD_DATABASE_URL", ""), "postgres:// URL; empty uses SQLite in the data directory (PLUGBOARD_DATABASE_URL)")
}

// readSecretKeys reads the vault keys from the environment. Its errors
// never repeat a key.
func (s *settings) readSecretKeys() error {
	var err error
	if v, ok := os.LookupEnv(vault.EnvKey); ok {
		if s.secretKey, err = vault.ParseKey(v); err != nil {
			return fmt.Errorf("%s %w", vault.EnvKey, err)
		}
	}
	if s.oldSecretKeys, err = vault.ParseKeys(os.Getenv(vault.EnvOldKeys)); err != nil {
		return fmt.Errorf("%s: %w", vault.EnvOldKeys, err)
	}
	return nil
}

// defaultNodeID names this node after its host and data directory, so that
// two processes on one host (with their own data directories) differ and a
// restarted process finds the steps it was running.
func defaultNodeID(dataDir string) string {
	host, _ := os.Hostname()
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return fmt.Sprintf("%s-%x", cmp.Or(host, "node"), sum[:4])
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level must be debug, info, warn or error, not %q", level)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func serve(ctx context.Context, args []string) error {
	started := time.Now()
	cfg, err := parseSettings(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(cfg.logLevel)
	if err != nil {
		return err
	}
	// The heap stays small (tens of MB) while the engine allocates fast;
	// collecting less often buys throughput. GOGC, when set, decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := store.Open(ctx, store.Config{DatabaseURL: cfg.databaseURL, DataDir: cfg.dataDir})
	if err != nil {
		return err
	}
	defer st.Close()
	// The key must open the database's secrets before anything reads one.
	vlt, err := vault.Load(ctx, vault.Config{Key: cfg.secretKey, OldKeys: cfg.oldSecretKeys, DataDir: cfg.dataDir, Store: st, Logger: log})
	if err != nil {
		return err
	}
	if err := bootstrapAdmin(ctx, st, cfg, log); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(st.Collectors()...)
	components := component.NewRegistry()
	replies := engine.NewReplies(st)
	// Every worker may call the same host at once: keep a connection for
	// each, rather than dialing anew whenever more than a few ran.
	client := outbound.NewClient(outbound.Options{
		AllowPrivate: cfg.allowPrivate, MaxIdleConnsPerHost: cmp.Or(cfg.workers, engine.DefaultWorkers),
	})
	// One JavaScript sandbox for core.Code and connectors' scripts.
	sandbox := script.New(script.Limits{})
	sysHooks, err := syswebhook.New(syswebhook.Config{
		Store: st, Vault: vlt, HTTP: outbound.NewClient(outbound.Options{AllowPrivate: cfg.allowPrivate}), Logger: log,
	})
	if err != nil {
		return err
	}
	// Secrets stored in clear by a version before the vault.
	sealed, err := sysHooks.SealStoredSecrets(ctx)
	if err != nil {
		return err
	}
	if sealed > 0 {
		log.LogAttrs(ctx, slog.LevelInfo, "sealed system webhook secrets stored in clear", slog.Int("count", sealed))
	}
	runtime := &connector.Runtime{HTTP: client, PollInterval: cfg.pollInterval, Sandbox: sandbox}
	installer := &connector.Installer{Store: st, Registry: components, Log: log, Runtime: runtime}
	accounts, err := account.New(account.Config{
		Store: st, Vault: vlt, HTTP: client, Logger: log,
		ConnectorAuth: installer.AccountAuth, PublicURL: cfg.publicURL, Events: sysHooks,
		ReturnOrigins: cfg.returnOrigins,
		// A wait=false request and a core.ServerActivity step run as jobs,
		// which the engine cuts off after the job timeout: no request may
		// ask for longer.
		MaxTimeout: cfg.jobTimeout, DefaultTimeout: min(30*time.Second, cfg.jobTimeout),
		AuditRetention: cfg.auditRetention, RequestRetention: cfg.requestRetention,
	})
	if err != nil {
		return err
	}
	runtime.Accounts = accounts
	core.Register(components, core.Deps{
		HTTP: client, Replies: replies, Sandbox: sandbox, Accounts: connector.StepAccounts(accounts),
	})
	if err := installer.Sync(ctx); err != nil {
		// The server still serves; the connector's flows fail until fixed.
		log.LogAttrs(ctx, slog.LevelError, "loading installed connectors", slog.String("error", err.Error()))
	}
	go installer.Run(ctx, 5*time.Second)
	eng, err := engine.New(ctx, engine.Config{
		Store: st, Registry: components, Logger: log, Metrics: reg,
		NodeID: cfg.nodeID, Workers: cfg.workers, JobTimeout: cfg.jobTimeout, RescueAfter: cfg.rescueAfter, LogRetention: cfg.logRetention,
		Events: sysHooks, PublicURL: cfg.publicURL,
	})
	if err != nil {
		return err
	}
	sysHooks.Register(eng)
	accounts.Register(eng)
	accounts.Start(ctx)
	srv, err := api.New(api.Config{
		Store: st, Engine: eng, Registry: components, Logger: log, Metrics: reg, Gatherer: reg, PublicURL: cfg.publicURL,
		Replies: replies, SystemWebhooks: sysHooks, Connectors: installer, Accounts: accounts,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	if err := eng.Start(ctx); err != nil {
		_ = httpSrv.Close()
		return err
	}
	srv.SetReady(true)
	log.LogAttrs(ctx, slog.LevelInfo, "plugboard started",
		slog.String("version", version), slog.String("addr", ln.Addr().String()), slog.String("backend", st.Backend()),
		slog.Duration("startup", time.Since(started)))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	}
	// Graceful stop: refuse new requests, let running steps finish (or be
	// requeued when the wait runs out), then close the database.
	log.LogAttrs(context.Background(), slog.LevelInfo, "stopping")
	srv.SetReady(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownWait)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		log.LogAttrs(shutdownCtx, slog.LevelWarn, "HTTP shutdown", slog.String("error", err.Error()))
	}
	if err := eng.Stop(shutdownCtx); err != nil {
		log.LogAttrs(shutdownCtx, slog.LevelWarn, "engine shutdown", slog.String("error", err.Error()))
	}
	// The last uses' audit entries.
	if err := accounts.Close(shutdownCtx); err != nil {
		log.LogAttrs(shutdownCtx, slog.LevelWarn, "writing the account audit log", slog.String("error", err.Error()))
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "stopped")
	return nil
}

// bootstrapAdmin creates the first admin from the environment if no user
// has that email yet.
func bootstrapAdmin(ctx context.Context, st *store.Store, cfg *settings, log *slog.Logger) error {
	if cfg.adminEmail == "" {
		return nil
	}
	if _, err := st.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(cfg.adminEmail))); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if cfg.adminPassword == "" {
		return errors.New("PLUGBOARD_ADMIN_PASSWORD is required with PLUGBOARD_ADMIN_EMAIL")
	}
	u, err := api.CreateUser(ctx, st, cfg.adminEmail, cfg.adminPassword, store.RoleAdmin, false)
	if err != nil {
		return fmt.Errorf("creating the first admin: %w", err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "created the first admin", slog.String("email", u.Email))
	return nil
}

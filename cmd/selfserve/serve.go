package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"selfserve/config"
	"selfserve/internal/admin"
	"selfserve/internal/agentserver"
	"selfserve/internal/console"
	"selfserve/internal/enrich"
	"selfserve/internal/notify"
	"selfserve/internal/ops"
	"selfserve/internal/service"
	"selfserve/internal/store"
	"selfserve/worker"
)

// The service roles:
//
//	selfserve worker     [--sync-concurrency N] [--notify-concurrency N] [--ops-addr ADDR] [--redis-down-limit D]
//	selfserve scheduler  [--ops-addr ADDR] [--redis-down-limit D]
//	selfserve serve      [--sync-concurrency N] [--notify-concurrency N] [--redis-down-limit D]
//
// worker processes the queues, scheduler enqueues the periodic work (any
// number of replicas: each occurrence is enqueued once), serve runs both and
// the ops endpoints on the admin address. All stop gracefully on SIGINT or
// SIGTERM: the scheduler stops firing, tasks in flight get the shutdown
// timeout to finish and the others go back to their queues (a sync keeps
// its run, and resumes from its last saved page when retried).

// role is what a service process runs.
type role string

// The service roles.
const (
	// roleServe runs every role in one process: the worker, the scheduler,
	// the admin API with the ops endpoints, and the public listener.
	roleServe role = "serve"
	// roleWorker processes the queues.
	roleWorker role = "worker"
	// roleScheduler enqueues the periodic work.
	roleScheduler role = "scheduler"
)

// runsWorker reports whether r processes the queues.
func (r role) runsWorker() bool { return r == roleServe || r == roleWorker }

// runsScheduler reports whether r enqueues the periodic work.
func (r role) runsScheduler() bool { return r == roleServe || r == roleScheduler }

// allInOne reports whether r runs every role in one process: it serves the
// admin API and the public listener, and may use the embedded Redis (which
// no other process can reach).
func (r role) allInOne() bool { return r == roleServe }

// redisDownFlag adds --redis-down-limit: how long Redis may stay unreachable
// before the process exits non-zero, for its orchestrator to restart it.
func redisDownFlag(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("redis-down-limit", 30*time.Second, "exit non-zero when Redis has been unreachable this long")
}

func runServe(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "serve", "[--sync-concurrency N] [--notify-concurrency N] [--redis-down-limit DURATION]")
	syncN := fs.Int("sync-concurrency", 2, "syncs and customer imports run at once")
	notifyN := fs.Int("notify-concurrency", 10, "notices, scans and schedule ticks handled at once")
	redisDown := redisDownFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	return c.runRoles(ctx, roleOptions{role: roleServe, opsAddr: "admin", syncN: *syncN, notifyN: *notifyN, redisDownLimit: *redisDown})
}

func runWorker(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "worker", "[--sync-concurrency N] [--notify-concurrency N] [--ops-addr ADDR] [--redis-down-limit DURATION]")
	syncN := fs.Int("sync-concurrency", 2, "syncs and customer imports run at once")
	notifyN := fs.Int("notify-concurrency", 10, "notices, scans and schedule ticks handled at once")
	opsAddr := fs.String("ops-addr", "", "serve /healthz, /readyz and /metrics on this `host:port` (default: none)")
	redisDown := redisDownFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	return c.runRoles(ctx, roleOptions{role: roleWorker, opsAddr: *opsAddr, syncN: *syncN, notifyN: *notifyN, redisDownLimit: *redisDown})
}

func runScheduler(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "scheduler", "[--ops-addr ADDR] [--redis-down-limit DURATION]")
	opsAddr := fs.String("ops-addr", "", "serve /healthz, /readyz and /metrics on this `host:port` (default: none)")
	redisDown := redisDownFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	return c.runRoles(ctx, roleOptions{role: roleScheduler, opsAddr: *opsAddr, redisDownLimit: *redisDown})
}

type roleOptions struct {
	role role
	// opsAddr is where the ops endpoints listen: "admin" for the
	// configured admin address, "" for nowhere.
	opsAddr        string
	syncN, notifyN int
	// redisDownLimit is how long Redis may stay unreachable before the
	// process gives up.
	redisDownLimit time.Duration
}

// runRoles runs the roles until ctx is cancelled or one of them fails: the
// asynq worker and scheduler, the Redis watch, the admin API (or the ops
// endpoints) and the public listener run under one errgroup, so the first
// failure stops the others and is returned (the process exits non-zero with
// the cause, for an orchestrator to restart it). On ctx's end they all shut
// down gracefully and runRoles returns nil.
func (c *cli) runRoles(ctx context.Context, o roleOptions) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	log := c.log().With("role", string(o.role))
	st, err := c.store(ctx)
	if err != nil {
		return err
	}
	rd, err := worker.OpenRedis(cfg.RedisURL.Reveal())
	if err != nil {
		return err
	}
	defer rd.Close()
	if rd.Embedded() && !o.role.allInOne() {
		return fmt.Errorf("%w: SELFSERVE_REDIS_URL=embedded is an in-process Redis that no other process can reach: run `selfserve serve` (every role in one process) or set SELFSERVE_REDIS_URL=redis://…", errUsage)
	}
	if err := rd.Ping(ctx); err != nil {
		return err
	}
	log.Info("starting", "config", cfg, "embedded_redis", rd.Embedded())

	// A part that cannot start ends those already running.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &process{c: c, o: o, cfg: cfg, st: st, rd: rd, reg: prometheus.NewRegistry(), log: log}
	p.g, p.ctx = errgroup.WithContext(ctx)
	defer p.close()
	if err := p.start(ctx); err != nil {
		cancel()
		return errors.Join(err, p.g.Wait())
	}
	return p.g.Wait()
}

// process is a service process's parts, running under one errgroup: the
// first to fail ends ctx for the others.
type process struct {
	c       *cli
	o       roleOptions
	cfg     *config.Config
	st      *store.Store
	rd      *worker.Redis
	reg     *prometheus.Registry
	log     *slog.Logger
	g       *errgroup.Group
	ctx     context.Context
	closers []func() // run in reverse order once every part has stopped
}

// part runs run under the errgroup until p.ctx ends. A part that returns
// before then, even without error, fails the process.
func (p *process) part(name string, run func(ctx context.Context) error) {
	p.g.Go(func() error {
		err := run(p.ctx)
		if err == nil && p.ctx.Err() == nil {
			err = errors.New("stopped unexpectedly")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// until is a part that waits for ctx's end, then runs stop.
func until(stop func()) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		stop()
		return nil
	}
}

func (p *process) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// start starts the role's parts.
func (p *process) start(ctx context.Context) error {
	cfg, st, rd, log := p.cfg, p.st, p.rd, p.log
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := worker.NewMetrics(p.reg)
	p.part("redis", func(ctx context.Context) error { return watchRedis(ctx, rd, p.o.redisDownLimit, log) })

	var enqueuer *worker.Client
	var scan func(context.Context) (any, error)
	var agents *agentserver.Service
	if p.o.role.runsWorker() {
		n, err := p.c.workerNode(ctx, cfg, rd.Opt, log, metrics, time.Now)
		if err != nil {
			return err
		}
		p.closers = append(p.closers, n.close)
		enqueuer, agents = n.client, n.agents
		scan = func(ctx context.Context) (any, error) { return n.scanner.Scan(ctx) }
		w := worker.NewWorker(worker.ServerOptions{Redis: rd.Opt, SyncConcurrency: p.o.syncN, NotifyConcurrency: p.o.notifyN, Logger: log,
			ErrorHandler: &worker.NoticeFinaliser{Store: st, Logger: log}})
		if err := w.Start(n.mux); err != nil {
			return err
		}
		p.part("worker", until(func() {
			log.Info("stopping the worker: tasks in flight finish or go back to their queues")
			w.Shutdown()
		}))
	}
	if p.o.role.runsScheduler() {
		ptm, err := worker.NewScheduler(worker.SchedulerOptions{Redis: rd.Opt, Logger: log},
			&worker.Schedules{Store: st, CustomerImports: true, Logger: log})
		if err != nil {
			return err
		}
		if err := ptm.Start(); err != nil {
			return fmt.Errorf("start the scheduler: %w", err)
		}
		p.part("scheduler", until(func() {
			log.Info("stopping the scheduler")
			ptm.Shutdown()
		}))
	}

	// The HTTP parts: the ops endpoints alone on o.opsAddr (worker,
	// scheduler), or the admin API with the ops endpoints on the admin
	// address and the public listener (serve).
	addr := p.o.opsAddr
	if addr == "admin" {
		addr = cfg.AdminAddr
	}
	if addr == "" {
		log.Info("running; stop with Ctrl-C or SIGTERM")
		return nil
	}
	if insp, err := worker.RegisterQueueMetrics(p.reg, rd.Opt); err == nil {
		p.closers = append(p.closers, func() { insp.Close() })
	}
	var mon asynq.RedisConnOpt
	if p.o.role.allInOne() {
		mon = rd.Opt
	}
	h := ops.New(ops.Options{Store: st, Schema: st, Redis: rd, Gatherer: p.reg, RedisConnOpt: mon, OpsToken: cfg.OpsToken.Reveal(), Scan: scan, Logger: log})
	p.closers = append(p.closers, func() { h.Close() })
	if !p.o.role.allInOne() {
		p.part("ops endpoints", func(ctx context.Context) error { return serveHTTP(ctx, addr, h, log) })
		return nil
	}
	api, err := p.c.adminAPI(cfg, st, enqueuer, agents, h, log)
	if err != nil {
		return err
	}
	svc, closeSvc, err := p.c.publicService(cfg, st, rd, enqueuer, agents, log, "")
	if err != nil {
		return err
	}
	p.closers = append(p.closers, closeSvc)
	if svc != nil {
		ln, err := listenPublic(cfg)
		if err != nil {
			return err
		}
		p.part("public listener", func(ctx context.Context) error {
			return servePublic(ctx, ln, publicHandler(svc.Handler(), agents), log)
		})
	}
	p.part("admin API", func(ctx context.Context) error { return serveHTTP(ctx, addr, api, log) })
	return nil
}

// watchRedis pings Redis until ctx ends. It returns an error once Redis has
// been unreachable for limit: the worker and the scheduler would otherwise
// retry forever while the process looks alive.
func watchRedis(ctx context.Context, rd *worker.Redis, limit time.Duration, log *slog.Logger) error {
	every := min(max(limit/5, 10*time.Millisecond), 5*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var downSince time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		err := rd.Ping(pctx)
		cancel()
		switch {
		case err == nil:
			if !downSince.IsZero() {
				log.Info("redis reachable again", "after", time.Since(downSince).Round(time.Millisecond))
			}
			downSince = time.Time{}
		case ctx.Err() != nil:
			return nil
		case downSince.IsZero():
			downSince = time.Now()
			log.Warn("redis unreachable", "err", err)
		case time.Since(downSince) >= limit:
			return fmt.Errorf("unreachable for %s: %w", time.Since(downSince).Round(time.Second), err)
		}
	}
}

// runScan runs the expiry scan in this process against the configured
// database and Redis, which the workers send from: for ops, after Redis lost
// its queues, instead of waiting for the hourly scan.
func runScan(ctx context.Context, c *cli, args []string) error {
	fs := flags(c, "scan", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	rd, err := worker.OpenRedis(cfg.RedisURL.Reveal())
	if err != nil {
		return err
	}
	defer rd.Close()
	if rd.Embedded() {
		return fmt.Errorf("%w: SELFSERVE_REDIS_URL=embedded is private to each process, so no worker would send what this scan queues: set SELFSERVE_REDIS_URL to the workers' Redis, or ask the running server (POST /v1/ops/scan with the ops token)", errUsage)
	}
	if err := rd.Ping(ctx); err != nil {
		return err
	}
	n, err := c.workerNode(ctx, cfg, rd.Opt, c.log(), worker.NewMetrics(nil), time.Now)
	if err != nil {
		return err
	}
	defer n.close()
	res, err := n.scanner.Scan(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "expiry scan at %s: %d candidates, %d notices due, %d ledger rows created, %d left pending queued again (%d dispatch tasks)\n",
		res.At.UTC().Format(time.RFC3339), res.Candidates, res.Due, res.Created, res.Requeued, res.Tasks)
	return nil
}

// adminAPI is the admin HTTP API with the ops endpoints mounted beside it:
// /healthz and /readyz open, /metrics, /monitoring/ and POST /v1/ops/scan
// behind the ops token.
func (c *cli) adminAPI(cfg *config.Config, st *store.Store, enqueuer *worker.Client, agents *agentserver.Service, h *ops.Handler, log *slog.Logger) (http.Handler, error) {
	box, err := c.secrets()
	if err != nil {
		return nil, err
	}
	mounts := []admin.Mount{
		{Pattern: "GET /healthz", Handler: h.Health()},
		{Pattern: "GET /readyz", Handler: h.Ready()},
		{Pattern: "GET /metrics", Handler: h.RequireToken(h.Metrics())},
	}
	if scan := h.ScanNow(); scan != nil {
		mounts = append(mounts, admin.Mount{Pattern: ops.ScanPath, Handler: h.RequireToken(scan)})
	}
	var enq service.Enqueuer // a nil *worker.Client must stay a nil interface
	if enqueuer != nil {
		enq = enqueuer
	}
	// The console runs the same operations as the API, with the same
	// dependencies.
	svc := &service.Service{Store: st, Enqueuer: enq, Logger: log, Registry: c.registry(), Secrets: box,
		FileImportDir: cfg.FileImportDir, AllowedPSAHosts: cfg.AllowedPSAHosts, Agents: agents, PublicURL: cfg.PublicURL}
	con, err := console.New(console.Options{Service: svc, Secrets: box,
		SecureCookies: strings.HasPrefix(cfg.APIURL, "https://"), MonitoringPath: ops.MonitoringPath, OpsTenant: cfg.OpsTenant, Logger: log})
	if err != nil {
		return nil, err
	}
	if mon := h.Monitoring(); mon != nil {
		// The ops token opens it, and so does the console session of a
		// super login of the operator's tenant (cfg.OpsTenant).
		mounts = append(mounts, admin.Mount{Pattern: ops.MonitoringPath + "/", Handler: con.Monitoring(mon, h.RequireToken(mon))})
	}
	for _, p := range con.Patterns() {
		mounts = append(mounts, admin.Mount{Pattern: p, Handler: con})
	}
	return admin.New(admin.Options{Store: st, Registry: c.registry(), Secrets: box, Enqueuer: enq,
		Logger: log, OpsToken: cfg.OpsToken.Reveal(), Mounts: mounts, FileImportDir: cfg.FileImportDir, AllowedPSAHosts: cfg.AllowedPSAHosts,
		Agents: agents, PublicURL: cfg.PublicURL})
}

// serveHTTP serves h on addr until ctx is cancelled, then shuts down
// gracefully.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := admin.NewServer(addr, h)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	log.Info("running; stop with Ctrl-C or SIGTERM", "listen", ln.Addr().String())
	return admin.Serve(ctx, srv, ln)
}

// node is the worker role's parts.
type node struct {
	mux     *asynq.ServeMux
	client  *worker.Client
	scanner *worker.Scanner
	agents  *agentserver.Service
	close   func()
}

// workerNode wires the handlers: the importer, the PSA enricher, the
// notice channels the configuration names, the scanner and the sender.
func (c *cli) workerNode(ctx context.Context, cfg *config.Config, opt asynq.RedisConnOpt, log *slog.Logger, metrics *worker.Metrics, now func() time.Time) (*node, error) {
	im, err := c.importer(ctx)
	if err != nil {
		return nil, err
	}
	box, err := c.secrets()
	if err != nil {
		return nil, err
	}
	senders, closeChannels, err := noticeChannels(cfg)
	if err != nil {
		return nil, err
	}
	channels := []store.Channel{} // not nil: no configured channel, no rows
	for ch := range senders {
		channels = append(channels, ch)
	}
	sort.Slice(channels, func(i, j int) bool { return channels[i] < channels[j] })
	if len(channels) == 0 {
		log.Warn("no notice channel is configured (smtp.host, sms.account_sid or outbox): notices are planned but not written nor sent")
	}
	client := worker.NewClient(opt, now, log)
	agents := agentService(im, client, log) // runs of agent connections become agent jobs
	scanner := &worker.Scanner{Store: im.Store, Enqueue: client, Channels: channels, Now: now, Logger: log, Metrics: metrics}
	links, err := linkSigner(cfg)
	if err != nil {
		closeChannels()
		return nil, err
	}
	sender := &worker.Sender{Store: im.Store, Channels: senders, PublicURL: cfg.PublicURL, Links: links, Now: now, Logger: log, Metrics: metrics}
	mux := worker.NewServeMux(worker.Deps{
		Store: im.Store, Importer: im, Client: client, Scanner: scanner, Sender: sender, Channels: channels, Now: now,
		Customers: &worker.PSAImporter{Enricher: &enrich.Enricher{Store: im.Store, Registry: im.Registry, Secrets: box, Logger: log}},
		Logger:    log, Metrics: metrics,
	})
	return &node{mux: mux, client: client, scanner: scanner, agents: agents, close: func() {
		client.Close()
		closeChannels()
	}}, nil
}

// noticeChannels builds the configured channels: the outbox for both when
// one is set, else SMTP and SMS as configured.
func noticeChannels(cfg *config.Config) (map[store.Channel]notify.Sender, func(), error) {
	out := map[store.Channel]notify.Sender{}
	if cfg.OutboxDir != "" {
		out[store.ChannelEmail] = &notify.Outbox{Dir: cfg.OutboxDir, Channel: string(store.ChannelEmail)}
		out[store.ChannelSMS] = &notify.Outbox{Dir: cfg.OutboxDir, Channel: string(store.ChannelSMS)}
		return out, func() {}, nil
	}
	closeAll := func() {}
	if cfg.SMTP.Enabled() {
		email, err := notify.NewEmail(notify.EmailConfig{Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, TLS: cfg.SMTP.TLS,
			Username: cfg.SMTP.Username, Password: cfg.SMTP.Password, From: cfg.SMTP.From})
		if err != nil {
			return nil, nil, err
		}
		out[store.ChannelEmail] = email
		closeAll = func() { email.Close() }
	}
	if cfg.SMS.Enabled() {
		sms, err := notify.NewSMS(notify.SMSConfig{BaseURL: cfg.SMS.BaseURL, AccountSID: cfg.SMS.AccountSID, AuthToken: cfg.SMS.AuthToken, From: cfg.SMS.From})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		out[store.ChannelSMS] = sms
	}
	return out, closeAll, nil
}

// demoSender runs the worker in this process on the embedded Redis for the
// demo: the expiry scan and the senders, writing to the outbox.
type demoSender struct {
	c      *cli
	rd     *worker.Redis
	n      *node
	w      *worker.Worker
	offset atomic.Int64 // the demo clock's lead over the wall clock
}

// startDemoSender starts the demo's in-process worker.
func (c *cli) startDemoSender(ctx context.Context) (*demoSender, error) {
	rd, err := worker.OpenRedis("embedded")
	if err != nil {
		return nil, err
	}
	d := &demoSender{c: c, rd: rd}
	now := func() time.Time { return time.Now().Add(time.Duration(d.offset.Load())) }
	if d.n, err = c.workerNode(ctx, c.cfg, rd.Opt, c.log(), worker.NewMetrics(nil), now); err != nil {
		rd.Close()
		return nil, err
	}
	d.w = worker.NewWorker(worker.ServerOptions{Redis: rd.Opt, NotifyConcurrency: 4, SyncConcurrency: 1, Logger: c.log(), PollInterval: 50 * time.Millisecond,
		ErrorHandler: &worker.NoticeFinaliser{Store: c.st, Logger: c.log()}})
	if err := d.w.Start(d.n.mux); err != nil {
		d.n.close()
		rd.Close()
		return nil, err
	}
	return d, nil
}

func (d *demoSender) close() {
	d.w.Shutdown()
	d.n.close()
	d.rd.Close()
}

// send plays today's send hour of each customer (now, if it has passed):
// at each of those instants, in order, it runs the expiry scan and waits
// for the senders, then prints what went to the outbox.
func (d *demoSender) send(ctx context.Context) error {
	c := d.c
	tenants, err := c.st.Tenants(ctx)
	if err != nil {
		return err
	}
	started := time.Now().UTC().Truncate(time.Microsecond)
	real := time.Now()
	var instants []time.Time
	for _, t := range tenants {
		customers, err := c.st.Customers(ctx, t.ID)
		if err != nil {
			return err
		}
		for _, cu := range customers {
			instants = append(instants, laterOfNowAndSendHour(real, t, cu))
		}
	}
	sort.Slice(instants, func(i, j int) bool { return instants[i].Before(instants[j]) })
	defer d.offset.Store(0)
	var last time.Time
	for _, at := range instants {
		if at.Sub(last) < time.Minute {
			continue
		}
		last = at
		d.offset.Store(int64(time.Until(at)))
		if _, err := d.n.scanner.Scan(ctx); err != nil {
			return err
		}
		if err := d.wait(ctx, tenants); err != nil {
			return err
		}
	}
	var sent []string
	for _, t := range tenants {
		users, err := c.st.EndUsers(ctx, t.ID, store.EndUserFilter{})
		if err != nil {
			return err
		}
		for _, u := range users {
			ns, err := c.st.NoticesOfEndUser(ctx, t.ID, u.ID, 20)
			if err != nil {
				return err
			}
			for _, n := range ns {
				if n.UpdatedAt.Before(started) {
					continue
				}
				line := fmt.Sprintf("  %-16s %-10s %-5s %-7s", n.Kind, u.Username, n.Channel, n.Status)
				if n.Status == store.NoticeSent {
					line += fmt.Sprintf(" notice-%d-%s.txt", n.ID, n.Channel)
				} else if n.Error != "" {
					line += " " + n.Error
				}
				sent = append(sent, line)
			}
		}
	}
	if len(sent) == 0 {
		fmt.Fprintf(c.stdout, "\noutbox %s: nothing new to send (every notice due today is already in the ledger)\n", c.cfg.OutboxDir)
		return nil
	}
	sort.Strings(sent)
	fmt.Fprintf(c.stdout, "\nsent to the outbox %s (the demo plays 09:00 today in each customer's time zone):\n", c.cfg.OutboxDir)
	for _, l := range sent {
		fmt.Fprintln(c.stdout, l)
	}
	return nil
}

// wait waits until no notice of the tenants is pending or sending.
func (d *demoSender) wait(ctx context.Context, tenants []store.Tenant) error {
	deadline := time.Now().Add(time.Minute)
	for {
		open := 0
		for _, t := range tenants {
			counts, err := d.c.st.NoticeCounts(ctx, t.ID)
			if err != nil {
				return err
			}
			open += counts[store.NoticePending] + counts[store.NoticeSending]
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: %d notices still unsent after a minute", open)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"selfserve/config"
	"selfserve/connectors"
	"selfserve/connectors/shipped"
	"selfserve/internal/agentserver"
	"selfserve/internal/importer"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
	"selfserve/worker"
)

// cli is what commands share: the configuration and what is opened from it,
// each opened on first use and closed at exit.
type cli struct {
	configPath string
	stdout     io.Writer
	stderr     io.Writer

	cfg    *config.Config
	st     *store.Store
	logger *slog.Logger
	reg    connectors.Registry
	// sleep waits out a throttle of an inline run; nil waits on a timer
	// (tests record the waits instead).
	sleep func(ctx context.Context, d time.Duration) error
}

// registry returns the process's one connector registry.
func (c *cli) registry() connectors.Registry {
	if len(c.reg.Kinds()) == 0 {
		c.reg = shipped.Registry()
	}
	return c.reg
}

// inline returns ctx for a run in this process: APIs that throttle the run
// are waited out, up to throttle_wait_max in all, and each wait is shown
// ("IT Glue asked us to slow down: waiting 60 s, page 2 of contacts of
// Harbor Freight Ltd"). The worker needs none of this: it reschedules a
// throttled task.
func (c *cli) inline(ctx context.Context) (context.Context, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	return connectors.WithThrottleWaiter(ctx, &connectors.ThrottleBudget{
		Max:    cfg.ThrottleWaitMax,
		Sleep:  c.sleep,
		Report: func(ctx context.Context, t connectors.Throttle) { fmt.Fprintln(c.stdout, t.Describe(ctx)) },
	}), nil
}

func (c *cli) config() (*config.Config, error) {
	if c.cfg != nil {
		return c.cfg, nil
	}
	cfg, err := config.Load(c.configPath, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	c.cfg = cfg
	// Every stored connection opened from here on is held to the PSA host
	// allow-list, as API and apply writes are.
	c.reg = c.registry().WithAllowedHosts(cfg.AllowedPSAHosts)
	return cfg, nil
}

func (c *cli) log() *slog.Logger {
	if c.logger == nil {
		cfg, err := c.config()
		if err != nil {
			return slog.New(slog.NewTextHandler(c.stderr, nil))
		}
		c.logger = cfg.NewLogger(c.stderr)
	}
	return c.logger
}

// store opens and migrates the configured database.
func (c *cli) store(ctx context.Context) (*store.Store, error) {
	if c.st != nil {
		return c.st, nil
	}
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL.Reveal())
	if err != nil {
		return nil, err
	}
	if _, err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	c.st = st
	return st, nil
}

// secrets returns the box sealing connection secrets, or nil when no key is
// configured (commands that meet a secret then say what to set).
func (c *cli) secrets() (*secretbox.Box, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	if !cfg.EncryptionKey.IsSet() {
		return nil, nil
	}
	key, err := cfg.EncryptionKey.Bytes()
	if err != nil {
		return nil, err
	}
	return secretbox.New(key)
}

func (c *cli) importer(ctx context.Context) (*importer.Importer, error) {
	st, err := c.store(ctx)
	if err != nil {
		return nil, err
	}
	box, err := c.secrets()
	if err != nil {
		return nil, err
	}
	return &importer.Importer{Store: st, Registry: c.registry(), Secrets: box, Logger: c.log(), MaxRemovalShare: c.cfg.MaxRemovalShare}, nil
}

// agentService is the server's side of the on-premises agents over im: it
// hands agent connections' runs to their agents (im.Remote), serves
// /agent/v1 on the public listener and writes back through agents. A
// lockout a pushed page shows is queued on lockouts (nil: left to the
// next expiry scan).
func agentService(im *importer.Importer, lockouts *worker.Client, log *slog.Logger) *agentserver.Service {
	svc := &agentserver.Service{Store: im.Store, Importer: im, Logger: log}
	if lockouts != nil {
		svc.OnLockouts = func(ctx context.Context, tenantID int64, ls []store.Lockout) {
			for _, l := range ls {
				if err := lockouts.EnqueueLockout(context.WithoutCancel(ctx), tenantID, l.EndUserID, l.At); err != nil {
					log.Warn("could not queue a lockout notice; the next expiry scan sends it", "end_user_id", l.EndUserID, "err", err)
				}
			}
		}
	}
	im.Remote = svc
	return svc
}

func (c *cli) close() {
	if c.st != nil {
		c.st.Close()
	}
}

// tenantByFlag resolves --tenant: the named tenant, or the only one.
func (c *cli) tenants(ctx context.Context, name string) ([]store.Tenant, error) {
	st, err := c.store(ctx)
	if err != nil {
		return nil, err
	}
	if name != "" {
		t, err := st.TenantByName(ctx, name)
		if err != nil {
			return nil, err
		}
		return []store.Tenant{t}, nil
	}
	return st.Tenants(ctx)
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"selfserve/config"
	"selfserve/internal/admin"
	"selfserve/internal/admin/link"
	"selfserve/internal/agentserver"
	"selfserve/internal/connection"
	"selfserve/internal/selfserve"
	"selfserve/internal/store"
	"selfserve/worker"
)

// The public listener (SELFSERVE_PUBLIC_ADDR): the end users' self-serve
// API and pages, and nothing else.

// linkSigner returns the signer of the welcome links, or nil without an
// encryption key.
func linkSigner(cfg *config.Config) (*link.Signer, error) {
	if !cfg.EncryptionKey.IsSet() {
		return nil, nil
	}
	key, err := cfg.EncryptionKey.Bytes()
	if err != nil {
		return nil, err
	}
	return link.NewSigner(key)
}

// publicService builds the self-serve service. demoOutbox, when set,
// records write-backs the demo cannot make. It returns nil (and says why
// in the log) when there is no encryption key, which the codes' hashes and
// the welcome links need.
func (c *cli) publicService(cfg *config.Config, st *store.Store, rd *worker.Redis, notices selfserve.NoticeQueue, agents *agentserver.Service, log *slog.Logger, demoOutbox string) (*selfserve.Service, func(), error) {
	if !cfg.EncryptionKey.IsSet() {
		log.Warn("the public self-serve listener is off: it needs an encryption key (SELFSERVE_ENCRYPTION_KEY)")
		return nil, func() {}, nil
	}
	key, err := cfg.EncryptionKey.Bytes()
	if err != nil {
		return nil, nil, err
	}
	links, err := linkSigner(cfg)
	if err != nil {
		return nil, nil, err
	}
	box, err := c.secrets()
	if err != nil {
		return nil, nil, err
	}
	proxies, err := config.ParsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, nil, err
	}
	channels, closeChannels, err := noticeChannels(cfg)
	if err != nil {
		return nil, nil, err
	}
	dirs := &selfserve.ConnectionWriters{Opener: connection.Opener{Registry: c.registry(), Box: box}, Agents: agents, Logger: log}
	svc, err := selfserve.New(selfserve.Options{
		Store: st, Redis: rd.Client(), EncryptionKey: key, Links: links, Directories: dirs, Channels: channels,
		Notices: notices, DemoOutbox: demoOutbox, TrustedProxies: proxies, PublicURL: cfg.PublicURL, Logger: log,
	})
	if err != nil {
		closeChannels()
		return nil, nil, err
	}
	return svc, func() {
		svc.Close()
		dirs.Close()
		closeChannels()
	}, nil
}

// listenPublic opens the public listener.
func listenPublic(cfg *config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.PublicAddr)
	if err != nil {
		return nil, fmt.Errorf("public listener: listen on %s: %w", cfg.PublicAddr, err)
	}
	return ln, nil
}

// publicHandler is what the public listener serves: the agents' endpoints
// under /agent/ (when agents is set) and the self-serve API and pages.
func publicHandler(selfServe http.Handler, agents *agentserver.Service) http.Handler {
	if agents == nil {
		return selfServe
	}
	mux := http.NewServeMux()
	mux.Handle("/agent/", agents.Handler())
	mux.Handle("/", selfServe)
	return mux
}

// servePublic serves the self-serve handler on ln until ctx ends.
func servePublic(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := admin.NewServer(ln.Addr().String(), h)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	log.Info("public self-serve listener running", "listen", ln.Addr().String())
	return admin.Serve(ctx, srv, ln)
}

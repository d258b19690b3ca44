package worker

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Redis is the broker: a connection option for asynq and, for "embedded",
// the in-process Redis it points at.
type Redis struct {
	// Opt connects asynq clients, servers, schedulers and inspectors.
	Opt      asynq.RedisConnOpt
	embedded *miniredis.Miniredis
	ping     redis.UniversalClient
}

// OpenRedis reads a broker URL: redis://[user:pass@]host:port/db,
// rediss://… (TLS), redis-socket://…, redis-sentinel://…, or "embedded" for
// an in-process Redis (miniredis) on a free loopback port, which lives as
// long as this process and only serves it: for the demo and `selfserve
// serve` on one machine, not for separate workers.
func OpenRedis(url string) (*Redis, error) {
	if url == "" || url == "embedded" {
		m, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("start the embedded Redis: %w", err)
		}
		opt := asynq.RedisClientOpt{Addr: m.Addr()}
		return &Redis{Opt: opt, embedded: m, ping: opt.MakeRedisClient().(redis.UniversalClient)}, nil
	}
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL itself may hold a password
		}
		return nil, fmt.Errorf("redis URL: %w (want redis://host:6379/0, rediss://… or embedded)", err)
	}
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("redis URL: unsupported connection type %T", opt)
	}
	return &Redis{Opt: opt, ping: c}, nil
}

// Embedded reports whether this is the in-process Redis.
func (r *Redis) Embedded() bool { return r.embedded != nil }

// Ping checks that Redis answers (readiness).
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.ping.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Close closes the ping connection and stops the embedded Redis. Close the
// servers and clients using it first.
func (r *Redis) Close() error {
	err := r.ping.Close()
	if r.embedded != nil {
		r.embedded.Close()
	}
	return err
}

// Client returns a Redis client of the broker, for other uses than queues
// (the self-serve rate limits); it is closed with r.
func (r *Redis) Client() redis.UniversalClient { return r.ping }

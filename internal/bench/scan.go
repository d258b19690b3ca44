package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"selfserve/internal/population"
	"selfserve/worker"
)

// ScanAt is the instant the scan scenario scans at: 12:00 UTC, past the
// 09:00 send hour in London, Kolkata, Sydney and UTC, not yet in New York.
var ScanAt = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// Scan measures the hourly expiry scan over n end users in n/100 customers
// (10,000 at full size) of which about 3% are due a notice: the scan
// selects the candidates, plans each one in its customer's time zone with
// the domain rules, writes the ledger rows (email and SMS) and queues them
// in Redis. The baseline is the bare SQL query that selects the users whose
// password expires within the reminder window, read into memory. The
// issue's target: within 3 × the bare query.
func Scan() Scenario {
	return Scenario{
		Name:     "scan",
		Baseline: "bare SQL query selecting the users due, read into memory",
		Ours:     "expiry scan: query, plan, ledger rows, enqueue to Redis",
		Size:     1_000_000, Quick: 20_000, Unit: "users", Target: 3, Growth: true,
		Needs:   []string{"postgres", "redis"},
		Measure: measureScan,
	}
}

// ScanPopulation is the scan scenario's population: n end users in n/100
// customers (at most 10,000; a hundred per tenant) of five time zones, about
// one in seven unserved, passwords expiring over 250 days from the day
// before ScanAt, so about 3% are due a notice at ScanAt (30,168 of
// 1,000,000 with cmd/bench's default seed).
func ScanPopulation(n int, seed uint64) population.Spec {
	return population.Spec{Users: n, Customers: min(10_000, max(n/100, 1)), Seed: seed, At: ScanAt, FirstExpiryDay: -1, ExpiryDays: 250, Mixed: true}
}

func measureScan(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
	st, cleanup, err := FreshStore(ctx, env)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	if err := ScanPopulation(size, env.Seed).Load(ctx, st); err != nil {
		return 0, err
	}
	// Both sides start from the same warm cache: the bare query once.
	if _, err := population.CountDue(ctx, st, ScanAt); err != nil {
		return 0, err
	}
	if side == SideBaseline {
		start := time.Now()
		n, err := population.CountDue(ctx, st, ScanAt)
		elapsed := time.Since(start)
		if err == nil && n == 0 {
			err = errors.New("the bare query selected no user: the generated population has none due")
		}
		return elapsed, err
	}
	rd, release, err := benchRedis(ctx, env)
	if err != nil {
		return 0, err
	}
	defer release()
	client := worker.NewClient(rd, nil, nil)
	defer client.Close()
	scanner := &worker.Scanner{Store: st, Enqueue: client, Now: func() time.Time { return ScanAt }}
	start := time.Now()
	res, err := scanner.Scan(ctx)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if res.Due == 0 || res.Created != 2*res.Due || res.Tasks == 0 {
		return 0, fmt.Errorf("scan planned %d due notices, created %d ledger rows (want 2 per notice) and queued %d tasks", res.Due, res.Created, res.Tasks)
	}
	return elapsed, nil
}

// benchRedisDB is the DB of the Redis server that scenarios use (Env).
const benchRedisDB = 14

// testLockKey is the key the worker tests set (SETNX) in a Redis DB they
// use (worker/harness_test.go): a scenario takes it too, so neither flushes
// the other's tasks.
const testLockKey = "selfserve:worker-test-lock"

// benchRedis takes DB 14 of env's Redis server for this process: it waits
// (up to two minutes) while a worker test holds the DB, then empties it.
// release empties it again, which also lets the tests have it back.
func benchRedis(ctx context.Context, env *Env) (asynq.RedisClientOpt, func(), error) {
	parsed, err := asynq.ParseRedisURI(env.RedisURL)
	if err != nil {
		// The URL may hold a password: name the setting, not its value.
		return asynq.RedisClientOpt{}, nil, errors.New("TEST_REDIS_URL is not a Redis URL (want redis://host:6379/14)")
	}
	opt, ok := parsed.(asynq.RedisClientOpt)
	if !ok {
		return asynq.RedisClientOpt{}, nil, fmt.Errorf("TEST_REDIS_URL: want a single Redis server (redis://host:6379/14), not %T", parsed)
	}
	opt.DB = benchRedisDB
	c := redis.NewClient(&redis.Options{Addr: opt.Addr, Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok, err := c.SetNX(ctx, testLockKey, "bench", 30*time.Minute).Result()
		if err != nil {
			c.Close()
			return opt, nil, fmt.Errorf("redis %s DB %d: %w", opt.Addr, opt.DB, err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			c.Close()
			return opt, nil, fmt.Errorf("redis %s DB %d is held by a worker test (key %s) for over two minutes: run the benchmark when it is done", opt.Addr, opt.DB, testLockKey)
		}
		select {
		case <-ctx.Done():
			c.Close()
			return opt, nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	// Empty the DB and keep holding it, in one step.
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.FlushDB(ctx)
		p.Set(ctx, testLockKey, "bench", 30*time.Minute)
		return nil
	}); err != nil {
		c.Del(context.WithoutCancel(ctx), testLockKey)
		c.Close()
		return opt, nil, fmt.Errorf("redis %s DB %d: flush: %w", opt.Addr, opt.DB, err)
	}
	release := func() {
		c.FlushDB(context.WithoutCancel(ctx))
		c.Close()
	}
	return opt, release, nil
}

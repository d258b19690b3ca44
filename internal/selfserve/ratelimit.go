package selfserve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limits are the rate limits of challenges, counted in Redis so that they
// hold across every process serving the public listener.
type Limits struct {
	// PerLogin challenges per login (whether it exists or not) per
	// LoginWindow; default 5 per hour.
	PerLogin    int
	LoginWindow time.Duration
	// PerIP challenges per client address per IPWindow; default 30 per 10
	// minutes.
	PerIP    int
	IPWindow time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.PerLogin <= 0 {
		l.PerLogin = 5
	}
	if l.LoginWindow <= 0 {
		l.LoginWindow = time.Hour
	}
	if l.PerIP <= 0 {
		l.PerIP = 30
	}
	if l.IPWindow <= 0 {
		l.IPWindow = 10 * time.Minute
	}
	return l
}

// limiter counts events in fixed windows: the first event of a window sets
// its expiry.
type limiter struct {
	rd redis.UniversalClient
}

// countScript increments the counter and returns it with the window's
// remaining milliseconds.
var countScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`)

// allow counts one event under key and reports whether it is within limit,
// and if not, when the window ends.
func (l limiter) allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	res, err := countScript.Run(ctx, l.rd, []string{key}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("rate limit: unexpected reply %v", res)
	}
	if int(res[0]) > limit {
		return false, time.Duration(res[1]) * time.Millisecond, nil
	}
	return true, 0, nil
}

// limitKey names a counter without putting the login or address itself in
// Redis.
func limitKey(kind string, tenantID int64, value string) string {
	h := sha256.Sum256([]byte(value))
	return fmt.Sprintf("selfserve:rl:%s:%d:%s", kind, tenantID, hex.EncodeToString(h[:12]))
}

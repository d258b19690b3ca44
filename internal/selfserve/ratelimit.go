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

// countScript counts one event under each key in turn (the first event of
// a window sets its expiry) and stops at the first key over its limit,
// returning its index (1-based; 0: all within) and the window's remaining
// milliseconds. ARGV holds limit and window (ms) per key.
var countScript = redis.NewScript(`
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i])
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, window) end
  if n > limit then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then redis.call('PEXPIRE', key, window); ttl = window end
    return {i, ttl}
  end
end
return {0, 0}`)

// limit is one counter: its key, how many events a window allows, and the
// window.
type limit struct {
	key    string
	max    int
	window time.Duration
}

// allow counts one event against each limit, in one round trip, and
// reports whether all are within, and if not, when the exceeded window
// ends. Limits after an exceeded one are not counted.
func (l limiter) allow(ctx context.Context, limits []limit) (bool, time.Duration, error) {
	keys := make([]string, len(limits))
	args := make([]any, 0, 2*len(limits))
	for i, x := range limits {
		keys[i] = x.key
		args = append(args, x.max, x.window.Milliseconds())
	}
	res, err := countScript.Run(ctx, l.rd, keys, args...).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("rate limit: unexpected reply %v", res)
	}
	if res[0] != 0 {
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

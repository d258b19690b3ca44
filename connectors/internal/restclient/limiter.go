package restclient

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiters holds one limiter per connection for the life of the process, so
// that every source opened on the same connection (a customer import and a
// contact enrichment running side by side, one task after another) shares
// the vendor's budget instead of each spending it in full.
var limiters = struct {
	sync.Mutex
	byKey map[string]*rate.Limiter
}{byKey: map[string]*rate.Limiter{}}

// ConnectionKey is the limiter key of a connector kind's connection id
// ("itglue/42"), or "" (a limiter of its own) when the id is empty.
func ConnectionKey(kind, id string) string {
	if id == "" {
		return ""
	}
	return kind + "/" + id
}

// SharedLimiter returns the limiter of the connection key (for example
// "itglue/42") pacing requests evenly at perWindow requests per window. The
// burst is one: requests are spread over the window instead of spent at its
// start, so a window sees at most one request above its share. A later call for
// the same key with another rate updates the shared limiter. An empty key
// returns a limiter of its own.
func SharedLimiter(key string, perWindow int, window time.Duration) *rate.Limiter {
	limit := rate.Inf
	if perWindow > 0 && window > 0 {
		limit = rate.Every(window / time.Duration(perWindow))
	}
	if key == "" {
		return rate.NewLimiter(limit, 1)
	}
	limiters.Lock()
	defer limiters.Unlock()
	lim, ok := limiters.byKey[key]
	if !ok {
		lim = rate.NewLimiter(limit, 1)
		limiters.byKey[key] = lim
		return lim
	}
	if lim.Limit() != limit {
		lim.SetLimit(limit)
	}
	return lim
}

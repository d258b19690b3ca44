package connectors

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiters holds one rate limiter per connection, so that every source
// opened on the same connection (a customer import and a contact enrichment
// running side by side, one task after another) shares the vendor's budget
// instead of each spending it in full. A Registry carries one set for the
// life of the process; connections are told apart by their id, which is
// unique across tenants (names are unique per tenant only).
type Limiters struct {
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
}

// NewLimiters returns an empty set.
func NewLimiters() *Limiters {
	return &Limiters{byKey: map[string]*rate.Limiter{}}
}

// For returns the limiter of the connection of kind with id, pacing requests
// evenly at perWindow requests per window (perWindow ≤ 0: no pacing). The
// burst is one: requests are spread over the window instead of spent at its
// start. A later call for the same connection with another rate updates the
// shared limiter. An empty id, or a nil set, returns a limiter of its own.
func (l *Limiters) For(kind Kind, id string, perWindow int, window time.Duration) *rate.Limiter {
	limit := rate.Inf
	if perWindow > 0 && window > 0 {
		limit = rate.Every(window / time.Duration(perWindow))
	}
	if l == nil || id == "" {
		return rate.NewLimiter(limit, 1)
	}
	key := string(kind) + "/" + id
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.byKey[key]
	if !ok {
		lim = rate.NewLimiter(limit, 1)
		l.byKey[key] = lim
		return lim
	}
	if lim.Limit() != limit {
		lim.SetLimit(limit)
	}
	return lim
}

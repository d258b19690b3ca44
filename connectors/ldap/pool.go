package ldap

import (
	"context"
	"errors"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

// The write-back's bound connections are kept for the next operation: a
// storm of unlocks would otherwise dial, handshake TLS and bind once per
// end user, where a plain ldapmodify keeps one connection.
//
// The pool holds at most maxConns connections (in use and idle), so a storm
// never opens more than that to the DC; an operation beyond waits for one
// to come back (or for its context). A connection idle longer than
// idleTimeout is closed (DCs close idle LDAP connections after 15 minutes
// by default, MaxConnIdleTime, and a quiet server should not hold any); one
// idle longer than probeAfter is probed (a RootDSE read) before it is used.
// A connection that failed at the transport level (closed by the DC, timed
// out, cut by a cancelled context) is dropped, never put back; an operation
// that found its reused connection dead before it wrote anything runs once
// more on a fresh one.

// Limits of the write-back pool.
const (
	poolMaxConns    = 8
	poolIdleTimeout = time.Minute
	poolProbeAfter  = 10 * time.Second
)

// connPool keeps bound connections of one source. It is safe for
// concurrent use.
type connPool struct {
	dial        func(context.Context) (*conn, error)
	idleTimeout time.Duration
	probeAfter  time.Duration
	now         func() time.Time
	// slots holds one token per connection in use or being dialled; an
	// idle one holds none, and an operation dials only when none is idle,
	// so those in use and those idle stay within the bound together.
	slots chan struct{}

	mu     sync.Mutex
	idle   []idleConn // most recently used last
	reaper *time.Timer
	closed bool
}

// idleConn is a connection waiting in the pool since a time.
type idleConn struct {
	c     *conn
	since time.Time
}

func newConnPool(dial func(context.Context) (*conn, error), maxConns int) *connPool {
	return &connPool{dial: dial, idleTimeout: poolIdleTimeout, probeAfter: poolProbeAfter, now: time.Now,
		slots: make(chan struct{}, maxConns)}
}

// get returns a bound connection: an idle one (probed when it has been idle
// long) or a new one. reused tells which. The caller gives it back with put.
// A closed pool still dials (an operation that took the source before it
// was closed ends normally); put closes such connections.
func (p *connPool) get(ctx context.Context) (c *conn, reused bool, err error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	for {
		ic, ok := p.takeIdle()
		if !ok {
			break
		}
		if ic.c.IsClosing() || (p.now().Sub(ic.since) > p.probeAfter && !p.alive(ctx, ic.c)) {
			ic.c.Close()
			continue
		}
		return ic.c, true, nil
	}
	c, err = p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, false, err
	}
	return c, false, nil
}

// takeIdle takes the most recently used idle connection, if any.
func (p *connPool) takeIdle() (idleConn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return idleConn{}, false
	}
	ic := p.idle[len(p.idle)-1]
	p.idle[len(p.idle)-1] = idleConn{}
	p.idle = p.idle[:len(p.idle)-1]
	return ic, true
}

// alive probes a connection with a read of the RootDSE.
func (p *connPool) alive(ctx context.Context, c *conn) bool {
	stop := context.AfterFunc(ctx, func() { _ = c.Conn.Close() })
	_, err := searchOne(ctx, c, "", goldap.ScopeBaseObject, "(objectClass=*)", []string{"1.1"})
	return stop() && err == nil && !c.IsClosing()
}

// put gives c back: kept for the next operation when healthy, else closed.
func (p *connPool) put(c *conn, healthy bool) {
	defer func() { <-p.slots }()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !healthy || p.closed || c.IsClosing() {
		c.Close()
		return
	}
	p.idle = append(p.idle, idleConn{c: c, since: p.now()})
	if p.reaper == nil {
		p.reaper = time.AfterFunc(p.idleTimeout, p.reap)
	}
}

// reap closes the connections idle longer than the idle timeout, and comes
// back while any remain.
func (p *connPool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaper = nil
	if p.closed {
		return
	}
	cutoff := p.now().Add(-p.idleTimeout)
	kept := p.idle[:0]
	for _, ic := range p.idle {
		if ic.since.After(cutoff) {
			kept = append(kept, ic)
		} else {
			ic.c.Close()
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	if len(p.idle) > 0 {
		// the oldest left is the first: come back when it turns stale
		p.reaper = time.AfterFunc(p.idle[0].since.Sub(cutoff), p.reap)
	}
}

// idleCount is how many connections wait in the pool.
func (p *connPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// close closes the idle connections; those in use are closed when they
// come back.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaper = nil
	}
	for _, ic := range p.idle {
		ic.c.Close()
	}
	p.idle = nil
}

// brokenBy reports whether err means the connection can no longer be
// trusted (lost, timed out, answered out of protocol): the directory's
// own refusals (no such account, no right, a password policy) leave it
// usable.
func brokenBy(err error) bool {
	return err != nil && (errors.Is(err, connectors.ErrUnavailable) || errors.Is(err, connectors.ErrBadResponse) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

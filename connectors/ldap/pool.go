package ldap

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

// The write-back's bound connections are kept for the next operation: a
// storm of unlocks would otherwise dial, handshake TLS and bind once per
// end user, where a plain ldapmodify keeps one connection.
//
// Operations share connections. LDAP carries many requests on one
// connection at once, each answered under its own message ID, so one
// connection carries up to perConn operations together, and another is
// dialled only when every open one is full, up to maxConns; an operation
// beyond those waits for room (or for its context). A DC spends less on
// one busy connection than on several: a Samba DC measured about a third
// less CPU per unlock (BENCHMARKS.md, unlock-storm). Sharing changes what
// ends an operation: its context abandons the search in flight, or stops
// waiting for a write's answer, and leaves the connection to the others.
//
// A connection no operation uses is idle: one idle longer than idleTimeout
// is closed (DCs close idle LDAP connections after 15 minutes by default,
// MaxConnIdleTime, and a quiet server should not hold any); one idle longer
// than probeAfter is probed (a RootDSE read) before it is used again. A
// connection that failed at the transport level (closed by the DC, a
// request unanswered within the timeout, an answer out of protocol) is
// closed at once, which fails the other operations on it too; an operation
// that found its reused connection dead before it wrote anything runs once
// more on another.

// Limits of the write-back pool.
const (
	poolMaxConns    = 4
	poolPerConn     = 8
	poolIdleTimeout = time.Minute
	poolProbeAfter  = 10 * time.Second
)

// connPool keeps bound connections of one source. It is safe for
// concurrent use.
type connPool struct {
	dial        func(context.Context) (*conn, error)
	maxConns    int
	perConn     int
	idleTimeout time.Duration
	probeAfter  time.Duration
	now         func() time.Time

	mu      sync.Mutex
	conns   []*pooledConn // open ones, oldest first
	dialing *pendingDial  // the dial in progress, if any
	// changed is closed, and replaced, when an operation gives its
	// connection back: those waiting for room look again.
	changed chan struct{}
	reaper  *time.Timer
	closed  bool
}

// pooledConn is a connection of the pool with the operations using it.
type pooledConn struct {
	c     *conn
	users int       // operations using it now
	since time.Time // when the last operation gave it back
	// private is a connection dialled by a closed pool: used by one
	// operation, then closed.
	private bool
}

// pendingDial is a dial in progress: the operations waiting for room wait
// for it, and share its failure.
type pendingDial struct {
	done chan struct{}
	err  error
}

func newConnPool(dial func(context.Context) (*conn, error), maxConns, perConn int) *connPool {
	return &connPool{dial: dial, maxConns: maxConns, perConn: perConn, idleTimeout: poolIdleTimeout, probeAfter: poolProbeAfter,
		now: time.Now, changed: make(chan struct{})}
}

// get returns a bound connection for one operation: an open one with room
// (probed when it has been idle long) or a new one. reused tells which.
// The caller gives it back with put. A closed pool still dials (an
// operation that took the source before it was closed ends normally), a
// connection of the operation's own that put closes.
func (p *connPool) get(ctx context.Context) (pc *pooledConn, reused bool, err error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c, err := p.dial(ctx)
			if err != nil {
				return nil, false, err
			}
			return &pooledConn{c: c, users: 1, private: true}, false, nil
		}
		if pc := p.roomy(); pc != nil {
			probe := pc.users == 0 && p.now().Sub(pc.since) > p.probeAfter
			pc.users++
			p.mu.Unlock()
			if probe && !p.alive(ctx, pc.c) {
				p.put(pc, false)
				if err := ctx.Err(); err != nil {
					return nil, false, err
				}
				continue
			}
			return pc, true, nil
		}
		if d := p.dialing; d != nil {
			p.mu.Unlock()
			select {
			case <-d.done:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			if d.err != nil && !errors.Is(d.err, context.Canceled) && !errors.Is(d.err, context.DeadlineExceeded) {
				return nil, false, d.err // the DC cannot be reached: no point in trying again at once
			}
			continue
		}
		if len(p.conns) >= p.maxConns {
			changed := p.changed
			p.mu.Unlock()
			select {
			case <-changed:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			continue
		}
		return p.dialShared(ctx)
	}
}

// dialShared dials a connection for the pool, for the calling operation
// and those that come while it dials. Called with p.mu held; returns
// without it.
func (p *connPool) dialShared(ctx context.Context) (*pooledConn, bool, error) {
	d := &pendingDial{done: make(chan struct{})}
	p.dialing = d
	p.mu.Unlock()
	c, err := p.dial(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dialing, d.err = nil, err
	close(d.done)
	if err != nil {
		return nil, false, err
	}
	pc := &pooledConn{c: c, users: 1, private: p.closed}
	if !pc.private {
		p.conns = append(p.conns, pc)
	}
	return pc, false, nil
}

// roomy returns the oldest open connection with room for one more
// operation, if any, dropping those found closed. Called with p.mu held.
func (p *connPool) roomy() *pooledConn {
	for i := 0; i < len(p.conns); i++ {
		pc := p.conns[i]
		if pc.c.IsClosing() {
			if pc.users == 0 {
				p.conns = slices.Delete(p.conns, i, i+1)
				i--
			}
			continue
		}
		if pc.users < p.perConn {
			return pc
		}
	}
	return nil
}

// alive probes a connection with a read of the RootDSE.
func (p *connPool) alive(ctx context.Context, c *conn) bool {
	_, err := searchOne(ctx, c, "", goldap.ScopeBaseObject, "(objectClass=*)", []string{"1.1"})
	return err == nil && !c.IsClosing()
}

// put gives back an operation's connection: kept for the next ones while
// healthy, else closed (and taken out of the pool).
func (p *connPool) put(pc *pooledConn, healthy bool) {
	p.mu.Lock()
	pc.users--
	pc.since = p.now()
	drop := !healthy || pc.c.IsClosing() || ((pc.private || p.closed) && pc.users == 0)
	if drop {
		p.conns = slices.DeleteFunc(p.conns, func(o *pooledConn) bool { return o == pc })
	} else if pc.users == 0 && p.reaper == nil {
		p.reaper = time.AfterFunc(p.idleTimeout, p.reap)
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if drop {
		pc.c.Close() // outside the lock: a TLS close may wait on the network
	}
}

// reap closes the connections idle longer than the idle timeout, and comes
// back while idle ones remain.
func (p *connPool) reap() {
	p.mu.Lock()
	p.reaper = nil
	if p.closed {
		p.mu.Unlock()
		return
	}
	cutoff := p.now().Add(-p.idleTimeout)
	var stale []*pooledConn
	var next time.Time // when the oldest idle connection left turns stale
	p.conns = slices.DeleteFunc(p.conns, func(pc *pooledConn) bool {
		switch {
		case pc.users > 0:
			return false
		case !pc.since.After(cutoff):
			stale = append(stale, pc)
			return true
		case next.IsZero() || pc.since.Before(next):
			next = pc.since
		}
		return false
	})
	if !next.IsZero() {
		p.reaper = time.AfterFunc(next.Sub(cutoff), p.reap)
	}
	p.mu.Unlock()
	closeAll(stale)
}

// counts tells how many connections are open and how many of them are
// idle.
func (p *connPool) counts() (open, idle int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		if pc.users == 0 {
			idle++
		}
	}
	return len(p.conns), idle
}

// close closes the idle connections; those in use are closed when their
// last operation gives them back.
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaper = nil
	}
	var idle []*pooledConn
	p.conns = slices.DeleteFunc(p.conns, func(pc *pooledConn) bool {
		if pc.users == 0 {
			idle = append(idle, pc)
			return true
		}
		return false
	})
	p.mu.Unlock()
	closeAll(idle)
}

func closeAll(pcs []*pooledConn) {
	for _, pc := range pcs {
		pc.c.Close()
	}
}

// brokenBy reports whether err means the connection can no longer be
// trusted (lost, a request unanswered in time, an answer out of protocol).
// The directory's own refusals (no such account, no right, a password
// policy) leave it usable, and so does an operation's own context ending:
// the connection carries other operations' requests.
func brokenBy(err error) bool {
	return errors.Is(err, connectors.ErrUnavailable) || errors.Is(err, connectors.ErrBadResponse)
}

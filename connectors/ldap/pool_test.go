package ldap

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"selfserve/connectors"
)

// countDials makes the source's pool count the connections it dials.
func countDials(src *source) *atomic.Int64 {
	var n atomic.Int64
	dial := src.pool.dial
	src.pool.dial = func(ctx context.Context) (*conn, error) {
		n.Add(1)
		return dial(ctx)
	}
	return &n
}

// TestWriteBackPoolReusesConnections: a storm of write-backs shares a few
// bound connections, never more than the pool's bound at once, and leaves
// them idle for the next operation.
func TestWriteBackPoolReusesConnections(t *testing.T) {
	f, w := writeBackFixture(t)
	src := f.writer(t, w.ou, f.BindUPN, f.BindPass, &bytes.Buffer{})
	dials := countDials(src)
	acct := connectors.Account{ExternalID: w.guid["wb-deleg"]}
	ctx := context.Background()

	const ops = 5 * poolMaxConns
	var wg sync.WaitGroup
	errs := make(chan error, ops)
	for range ops {
		wg.Go(func() { errs <- src.Unlock(ctx, acct) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Unlock: %v", err)
		}
	}
	if n := dials.Load(); n < 1 || n > poolMaxConns {
		t.Fatalf("%d operations dialled %d connections, want 1..%d", ops, n, poolMaxConns)
	}
	if idle := src.pool.idleCount(); idle != int(dials.Load()) {
		t.Fatalf("%d connections idle after the storm, want all %d", idle, dials.Load())
	}
	if len(src.pool.slots) != 0 {
		t.Fatalf("%d connections still counted in use", len(src.pool.slots))
	}

	// one after the other: a single connection serves them all
	before := dials.Load()
	for range 5 {
		if _, err := src.Policy(ctx, acct); err != nil {
			t.Fatalf("Policy: %v", err)
		}
	}
	if dials.Load() != before {
		t.Fatalf("sequential operations dialled %d more connections", dials.Load()-before)
	}
}

// TestWriteBackPoolDropsBrokenConnections: a connection the DC closed
// while idle is dropped and the operation runs on a new one; one idle long
// is probed and kept when it answers.
func TestWriteBackPoolDropsBrokenConnections(t *testing.T) {
	f, w := writeBackFixture(t)
	src := f.writer(t, w.ou, f.BindUPN, f.BindPass, &bytes.Buffer{})
	dials := countDials(src)
	acct := connectors.Account{ExternalID: w.guid["wb-deleg"]}
	ctx := context.Background()
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock: %v", err)
	}

	// the idle connection is cut under the pool
	ic, ok := src.pool.takeIdle()
	if !ok {
		t.Fatal("no idle connection after an operation")
	}
	_ = ic.c.Conn.Close()
	src.pool.mu.Lock()
	src.pool.idle = append(src.pool.idle, ic)
	src.pool.mu.Unlock()
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock after the connection was cut: %v", err)
	}
	if dials.Load() != 2 {
		t.Fatalf("%d dials, want a second one replacing the cut connection", dials.Load())
	}
	if src.pool.idleCount() != 1 {
		t.Fatalf("%d idle connections, want the new one alone", src.pool.idleCount())
	}

	// idle longer than probeAfter: probed, answers, kept
	src.pool.now = func() time.Time { return time.Now().Add(2 * poolProbeAfter) }
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock on a probed connection: %v", err)
	}
	if dials.Load() != 2 {
		t.Fatalf("a healthy probed connection was replaced (%d dials)", dials.Load())
	}

	// a cancelled operation does not put its connection back
	src.pool.now = time.Now
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := src.Unlock(cancelled, acct); err == nil {
		t.Fatal("Unlock with a cancelled context succeeded")
	}
	for _, ic := range src.pool.idle {
		if ic.c.IsClosing() {
			t.Fatal("a closed connection is idle in the pool")
		}
	}
}

// TestWriteBackPoolClosesIdleConnections: idle connections are closed
// after the idle timeout, and all of them when the source is closed; a
// closed source still serves an operation, on a connection of its own.
func TestWriteBackPoolClosesIdleConnections(t *testing.T) {
	f, w := writeBackFixture(t)
	src := f.writer(t, w.ou, f.BindUPN, f.BindPass, &bytes.Buffer{})
	acct := connectors.Account{ExternalID: w.guid["wb-deleg"]}
	ctx := context.Background()
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	idle := func() *conn {
		src.pool.mu.Lock()
		defer src.pool.mu.Unlock()
		if len(src.pool.idle) != 1 {
			t.Fatalf("%d idle connections, want 1", len(src.pool.idle))
		}
		return src.pool.idle[0].c
	}

	// the reaper's next pass, just before and just after the idle timeout
	first := idle()
	src.pool.now = func() time.Time { return time.Now().Add(poolIdleTimeout / 2) }
	src.pool.reap()
	if idle() != first || first.IsClosing() {
		t.Fatal("a connection idle less than the idle timeout was closed")
	}
	src.pool.now = func() time.Time { return time.Now().Add(2 * poolIdleTimeout) }
	src.pool.reap()
	if src.pool.idleCount() != 0 || !first.IsClosing() {
		t.Fatal("a connection idle longer than the idle timeout was kept open")
	}
	src.pool.now = time.Now

	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	second := idle()
	src.Close()
	if src.pool.idleCount() != 0 || !second.IsClosing() {
		t.Fatal("Close left an idle connection open")
	}
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock after Close: %v", err)
	}
	if src.pool.idleCount() != 0 {
		t.Fatal("a closed source kept a connection")
	}
}

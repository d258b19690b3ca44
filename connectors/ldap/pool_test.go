package ldap

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

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

// unlockAll runs n unlocks of acct at once and fails the test on any error.
func unlockAll(t *testing.T, src *source, acct connectors.Account, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- src.Unlock(context.Background(), acct) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Unlock: %v", err)
		}
	}
}

// TestWriteBackPoolSharesConnections: operations at once share one bound
// connection up to its share, a storm never opens more than the pool's
// bound, and the connections stay open for the next operations.
func TestWriteBackPoolSharesConnections(t *testing.T) {
	f, w := writeBackFixture(t)
	src := f.writer(t, w.ou, f.BindUPN, f.BindPass, &bytes.Buffer{})
	dials := countDials(src)
	acct := connectors.Account{ExternalID: w.guid["wb-deleg"]}

	unlockAll(t, src, acct, poolPerConn)
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d operations at once dialled %d connections, want them to share 1", poolPerConn, n)
	}

	unlockAll(t, src, acct, 3*poolMaxConns*poolPerConn)
	if n := dials.Load(); n > poolMaxConns {
		t.Fatalf("a storm dialled %d connections, more than the bound %d", n, poolMaxConns)
	}
	if open, idle := src.pool.counts(); open != int(dials.Load()) || idle != open {
		t.Fatalf("%d connections open, %d idle after the storm, want all %d open and idle", open, idle, dials.Load())
	}

	// one after the other: no new connection
	before := dials.Load()
	for range 5 {
		if _, err := src.Policy(context.Background(), acct); err != nil {
			t.Fatalf("Policy: %v", err)
		}
	}
	if dials.Load() != before {
		t.Fatalf("sequential operations dialled %d more connections", dials.Load()-before)
	}
}

// TestWriteBackPoolDropsBrokenConnections: a connection the DC closed
// while idle is dropped and the operation runs on a new one; one idle long
// is probed and kept when it answers; an operation whose context ends
// leaves the connection to the others.
func TestWriteBackPoolDropsBrokenConnections(t *testing.T) {
	f, w := writeBackFixture(t)
	src := f.writer(t, w.ou, f.BindUPN, f.BindPass, &bytes.Buffer{})
	dials := countDials(src)
	acct := connectors.Account{ExternalID: w.guid["wb-deleg"]}
	ctx := context.Background()
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	only := func() *conn {
		t.Helper()
		src.pool.mu.Lock()
		defer src.pool.mu.Unlock()
		if len(src.pool.conns) != 1 {
			t.Fatalf("%d connections open, want 1", len(src.pool.conns))
		}
		return src.pool.conns[0].c
	}

	// the idle connection is cut under the pool
	_ = only().Conn.Close()
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock after the connection was cut: %v", err)
	}
	if dials.Load() != 2 {
		t.Fatalf("%d dials, want a second one replacing the cut connection", dials.Load())
	}
	second := only()

	// idle longer than probeAfter: probed, answers, kept
	src.pool.now = func() time.Time { return time.Now().Add(2 * poolProbeAfter) }
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock on a probed connection: %v", err)
	}
	src.pool.now = time.Now
	if dials.Load() != 2 || only() != second {
		t.Fatalf("a healthy probed connection was replaced (%d dials)", dials.Load())
	}

	// a cancelled operation fails and leaves the connection open
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := src.Unlock(cancelled, acct); !errors.Is(err, context.Canceled) {
		t.Fatalf("Unlock with a cancelled context: %v, want context.Canceled", err)
	}
	if c := only(); c != second || c.IsClosing() {
		t.Fatal("a cancelled operation closed or replaced the shared connection")
	}
	if err := src.Unlock(ctx, acct); err != nil || dials.Load() != 2 {
		t.Fatalf("Unlock after a cancelled one: %v (%d dials, want 2)", err, dials.Load())
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
		t.Helper()
		src.pool.mu.Lock()
		defer src.pool.mu.Unlock()
		if len(src.pool.conns) != 1 || src.pool.conns[0].users != 0 {
			t.Fatalf("%d connections open, want 1 idle", len(src.pool.conns))
		}
		return src.pool.conns[0].c
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
	if open, _ := src.pool.counts(); open != 0 || !first.IsClosing() {
		t.Fatal("a connection idle longer than the idle timeout was kept open")
	}
	src.pool.now = time.Now

	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	second := idle()
	src.Close()
	if open, _ := src.pool.counts(); open != 0 || !second.IsClosing() {
		t.Fatal("Close left an idle connection open")
	}
	if err := src.Unlock(ctx, acct); err != nil {
		t.Fatalf("Unlock after Close: %v", err)
	}
	if open, _ := src.pool.counts(); open != 0 {
		t.Fatal("a closed source kept a connection")
	}
}

// pipeDialer dials connections over in-memory pipes (nothing answers on
// them), for the pool's own rules. Each dial waits for release when it is
// set, and fails with fail when that is set.
type pipeDialer struct {
	dials   atomic.Int64
	release chan struct{}
	fail    error
}

func (d *pipeDialer) dial(ctx context.Context) (*conn, error) {
	d.dials.Add(1)
	if d.release != nil {
		select {
		case <-d.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if d.fail != nil {
		return nil, d.fail
	}
	client, server := net.Pipe()
	lc := goldap.NewConn(client, false)
	lc.Start()
	go func() { // the other end reads and drops, so a Close is not held up
		buf := make([]byte, 512)
		for {
			if _, err := server.Read(buf); err != nil {
				return
			}
		}
	}()
	return &conn{Conn: lc, timeout: time.Second, stop: func() bool { return true }}, nil
}

// TestPoolBoundsAndWaits: the pool fills each connection to its share
// before dialling another, stops at its bound, and an operation beyond it
// waits for room or for its context.
func TestPoolBoundsAndWaits(t *testing.T) {
	d := &pipeDialer{}
	p := newConnPool(d.dial, 2, 3)
	defer p.close()
	ctx := context.Background()
	var held []*pooledConn
	for i := range 6 {
		pc, _, err := p.get(ctx)
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		held = append(held, pc)
		if want := int64(i/3 + 1); d.dials.Load() != want {
			t.Fatalf("after %d operations %d dials, want %d", i+1, d.dials.Load(), want)
		}
	}
	if held[0] != held[2] || held[3] != held[5] || held[0] == held[3] {
		t.Fatal("operations were not packed three to a connection")
	}

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := p.get(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get beyond the bound: %v, want it to wait until its context ends", err)
	}

	got := make(chan *pooledConn)
	go func() {
		pc, _, err := p.get(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- pc
	}()
	p.put(held[4], true)
	if pc := <-got; pc != held[3] {
		t.Fatal("the waiting operation did not get the connection given back")
	}
	if d.dials.Load() != 2 {
		t.Fatalf("%d dials, want no more than the bound 2", d.dials.Load())
	}

	// a broken connection is closed and leaves room for a new one
	p.put(held[0], false)
	if !held[0].c.IsClosing() {
		t.Fatal("a broken connection was not closed")
	}
	if open, _ := p.counts(); open != 1 {
		t.Fatalf("%d connections open after one broke, want 1", open)
	}
}

// TestPoolSharesAFailedDial: operations that arrive while a connection is
// being dialled wait for it rather than dial their own, and all get its
// failure.
func TestPoolSharesAFailedDial(t *testing.T) {
	refused := errors.New("the DC refused the connection")
	d := &pipeDialer{release: make(chan struct{}), fail: refused}
	p := newConnPool(d.dial, 4, 8)
	defer p.close()
	errs := make(chan error, 5)
	var arrived sync.WaitGroup
	for range 5 {
		arrived.Add(1)
		go func() {
			arrived.Done()
			_, _, err := p.get(context.Background())
			errs <- err
		}()
	}
	arrived.Wait()
	time.Sleep(20 * time.Millisecond) // they reach the pool: one dials, the others wait for it
	close(d.release)
	for range 5 {
		if err := <-errs; !errors.Is(err, refused) {
			t.Fatalf("get: %v, want the dial's failure", err)
		}
	}
	if n := d.dials.Load(); n != 1 {
		t.Fatalf("%d dials for operations that arrived together, want 1", n)
	}
}

package importer_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/file"
	"selfserve/internal/importer"
	"selfserve/internal/store"
)

// unresumable is the file connector as a source that cannot resume a
// listing, as Active Directory (LDAP paging cookies die with their
// connection): its pages carry no resume position and it ignores the one it
// is given.
type unresumable struct {
	Path     string `json:"path"`
	PageSize int    `json:"page_size"`
}

func (c *unresumable) Open(env connectors.Env) (connectors.Source, error) {
	src, err := (&file.Config{Path: c.Path, PageSize: c.PageSize}).Open(env)
	if err != nil {
		return nil, err
	}
	return unresumableSource{src.(connectors.UserSource)}, nil
}

type unresumableSource struct{ connectors.UserSource }

func (s unresumableSource) Users(ctx context.Context, _ string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		for p, err := range s.UserSource.Users(ctx, "") {
			p.Resume = ""
			if !yield(p, err) {
				return
			}
		}
	}
}

// TestRestartedListingCountsEachUserOnce: a run of a source that cannot
// resume, interrupted and resumed, reads the source again from the start;
// its counts are of one listing (the bug: an AD run of 10,009 users
// reported 13,009 processed).
func TestRestartedListingCountsEachUserOnce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 2)
		b.im.Registry = connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindFile: func() connectors.Config { return new(unresumable) }})
		var rows []string
		for i := range 7 {
			rows = append(rows, row(fmt.Sprintf("user%02d", i), ""))
		}
		rows[5] = "user05,Bad,Row,not-an-email,,maybe,false,,\n" // one invalid record, counted once too
		b.write(t, rows...)
		ctx, cancel := context.WithCancel(context.Background())
		res, err := b.im.Sync(ctx, importer.Request{TenantID: b.tenant.ID, ConnectionID: b.conn.ID, KeepRunOnCancel: true,
			OnProgress: func(r store.SyncRun) {
				if r.Pages == 2 {
					cancel()
				}
			}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v", err)
		}
		if res.Run.Processed != 4 || res.Run.Created != 4 {
			t.Fatalf("interrupted run: %+v", res.Run)
		}
		res, err = b.sync(t, importer.Request{RunID: res.Run.ID})
		must(t, err)
		r := res.Run
		if r.Status != store.RunSucceeded || r.Processed != 7 || r.Pages != 4 || r.Invalid != 1 || len(r.Problems()) != 1 {
			t.Fatalf("resumed run: %d processed over %d pages, %d invalid, problems %v (%s); want 7 over 4, 1 invalid", r.Processed, r.Pages, r.Invalid, r.Problems(), r.Status)
		}
		if r.Created+r.Updated+r.Unchanged != 6 || r.Created != 6 {
			t.Fatalf("resumed run: created %d, updated %d, unchanged %d; want the 6 valid users created, each counted once", r.Created, r.Updated, r.Unchanged)
		}
	})
}

// TestKilledRunIsTakenOver: a run whose process stopped (its heartbeat
// with it) refuses the next sync while its heartbeat is recent, naming its
// start, progress and last heartbeat; once the heartbeat is
// store.HeartbeatTimeout old, the next sync takes it over and resumes it
// from its saved position: each user once, the same final counts.
func TestKilledRunIsTakenOver(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 2)
		var rows []string
		for i := range 9 {
			rows = append(rows, row(fmt.Sprintf("user%02d", i), ""))
		}
		b.write(t, rows...)
		clock := time.Now()
		b.st.SetClock(func() time.Time { return clock })

		// The "killed" process: its context ends mid-run without it
		// finishing the run (KeepRunOnCancel leaves the run running, as a
		// SIGKILL would; the lease is released, so take it again by hand
		// to stand for a process that died holding it).
		ctx, cancel := context.WithCancel(context.Background())
		res, err := b.im.Sync(ctx, importer.Request{TenantID: b.tenant.ID, ConnectionID: b.conn.ID, Full: true, KeepRunOnCancel: true, Trigger: "cli",
			OnProgress: func(r store.SyncRun) {
				if r.Pages == 2 {
					cancel()
				}
			}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v", err)
		}
		killed, err := b.st.StartRun(context.Background(), b.tenant.ID, res.Run.ID)
		must(t, err)

		clock = clock.Add(10 * time.Second)
		_, err = b.sync(t, importer.Request{Full: true, Trigger: "cli"})
		var active *store.ActiveRunError
		if !errors.As(err, &active) || active.Run.ID != killed.ID {
			t.Fatalf("sync while the run's heartbeat is recent: %v, want it refused", err)
		}
		for _, want := range []string{"running since", "2 pages, 4 processed", "last heartbeat 10s ago"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not say %q", err, want)
			}
		}

		clock = clock.Add(store.HeartbeatTimeout)
		var tookOver *store.SyncRun
		res, err = b.sync(t, importer.Request{Full: true, Trigger: "cli", OnTakeOver: func(r store.SyncRun) { tookOver = &r }})
		must(t, err)
		if tookOver == nil || tookOver.ID != killed.ID || tookOver.Pages != 2 {
			t.Fatalf("the sync did not say it took over run %d: %+v", killed.ID, tookOver)
		}
		if r := res.Run; r.ID != killed.ID || r.Status != store.RunSucceeded || r.Processed != 9 || r.Created != 9 || r.Pages != 5 {
			t.Fatalf("taken-over run: %+v; want run %d resumed to 9 users over 5 pages", r, killed.ID)
		}
		if n := present(b.users(t)); n != 9 {
			t.Fatalf("%d end users, want 9", n)
		}
		// The killed process, had it survived, can no longer write.
		if err := b.st.BeatRun(context.Background(), &killed); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("old holder's heartbeat: %v", err)
		}
	})
}

// TestTakenOverRunStopsItsOldHolder: a process whose run was taken over
// (its heartbeat stalled past the timeout) stops at its next heartbeat or
// page, without writing.
func TestTakenOverRunStopsItsOldHolder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setup(t, open, 2)
		var rows []string
		for i := range 9 {
			rows = append(rows, row(fmt.Sprintf("user%02d", i), ""))
		}
		b.write(t, rows...)
		b.im.HeartbeatEvery = 10 * time.Millisecond
		var clock atomicTime
		clock.set(time.Now())
		b.st.SetClock(clock.get)
		res, err := b.sync(t, importer.Request{Full: true, OnProgress: func(r store.SyncRun) {
			if r.Pages != 2 {
				return
			}
			// Another process takes the run over.
			clock.set(clock.get().Add(store.HeartbeatTimeout + time.Second))
			if _, err := b.st.StartRun(context.Background(), r.TenantID, r.ID); err != nil {
				t.Errorf("take over: %v", err)
			}
		}})
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("old holder: %v, want ErrLeaseLost", err)
		}
		got, err := b.st.Run(context.Background(), b.tenant.ID, res.Run.ID)
		must(t, err)
		if got.Status != store.RunRunning || got.Pages != 2 {
			t.Fatalf("run after its old holder stopped: %+v, want running at page 2 (the new holder's)", got)
		}
	})
}

// atomicTime is a clock tests move while a sync reads it.
type atomicTime struct{ ns atomic.Int64 }

func (c *atomicTime) get() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *atomicTime) set(t time.Time) { c.ns.Store(t.UnixNano()) }

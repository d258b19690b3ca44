package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/connectors"
	"selfserve/internal/importer"
	"selfserve/internal/planner"
	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
	"selfserve/worker"
)

// previewZones are the customers' zones of the generated populations: DST
// in both hemispheres, Lord Howe's 30-minute shift, UTC+14 and a half-hour
// offset without DST. "" inherits the tenant's zone.
var previewZones = []string{"America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Kiritimati", "Asia/Kolkata", "UTC", ""}

// previewDays are local days the populations' expiries and instants gather
// around: the DST changes of New York, London and Lord Howe in 2026.
var previewDays = []time.Time{
	time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC),   // New York springs forward at 02:00
	time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),  // New York falls back at 02:00
	time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC),  // London springs forward at 01:00
	time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), // London falls back at 02:00
	time.Date(2026, 4, 5, 0, 0, 0, 0, time.UTC),   // Lord Howe falls back half an hour at 02:00
	time.Date(2026, 10, 4, 0, 0, 0, 0, time.UTC),  // Lord Howe springs forward half an hour at 02:00
}

// noticeKey is a notice on one channel, as the ledger keys it.
type noticeKey struct {
	EndUserID int64
	Kind      rules.NoticeKind
	Occasion  string
	Channel   store.Channel
}

func (k noticeKey) String() string {
	return fmt.Sprintf("%d %s %s %s", k.EndUserID, k.Kind, k.Occasion, k.Channel)
}

// previewPopulation is a generated population and the instants to check.
type previewPopulation struct {
	tenants  []store.Tenant
	instants []time.Time
}

// TestPreviewIsWhatTheScanQueues is the property that preview and scan are
// one path: over generated populations (tenants of every subscription with
// the override on and off, send hours on and around DST changes, customers
// in zones from UTC-5 to UTC+14, end users of every source with the switch
// off, no email, no mobile, disabled, removed, never expiring, locked out,
// and passwords expiring around local midnight), at instants around the
// send hours, local midnights and lockout lookbacks, what the preview says
// at T is exactly what the expiry scan queues at T, and both are what
// rules.ScanPlan gives over every end user (the candidate query drops
// nobody it should keep). On SQLite and PostgreSQL, several seeds.
func TestPreviewIsWhatTheScanQueues(t *testing.T) {
	requireServices(t)
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			opt := testRedis(t)
			client := worker.NewClient(opt, nil, nil)
			defer client.Close()
			insp := asynq.NewInspector(opt)
			defer insp.Close()
			// One store: each seed's population joins the earlier ones'.
			st := b.Open(t)
			var tenants []store.Tenant
			kinds := map[rules.NoticeKind]int{}
			for _, seed := range []uint64{1, 2, 20261205} {
				pop := generatePreviewPopulation(t, st, seed)
				tenants = append(tenants, pop.tenants...)
				for _, at := range pop.instants {
					clearLedgerAndQueues(t, st, insp)
					want := everyUserPlan(t, st, tenants, at)
					preview := previewAt(t, st, tenants, at)
					scanner := &worker.Scanner{Store: st, Enqueue: client, Now: func() time.Time { return at }}
					if _, err := scanner.Scan(context.Background()); err != nil {
						t.Fatalf("seed %d, scan at %s: %v", seed, at.Format(time.RFC3339), err)
					}
					queued := queuedNotices(t, st, insp)
					where := fmt.Sprintf("seed %d at %s", seed, at.Format(time.RFC3339))
					compareNotices(t, where+": preview vs every end user's ScanPlan", preview, want)
					compareNotices(t, where+": scan queued vs preview", queued, preview)
					for k := range queued {
						kinds[k.Kind]++
					}
				}
			}
			for _, k := range []rules.NoticeKind{rules.KindExpiryReminder, rules.KindExpiryDay, rules.KindLockout} {
				if kinds[k] == 0 {
					t.Errorf("no %s notice was ever due: the populations prove little (%v)", k, kinds)
				}
			}
		})
	}
}

// generatePreviewPopulation stores a population drawn from seed and returns
// its tenants and the instants to check.
func generatePreviewPopulation(t *testing.T, st *store.Store, seed uint64) previewPopulation {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 0x5e1f5e))
	var pop previewPopulation
	days := []time.Time{previewDays[r.IntN(len(previewDays))], previewDays[r.IntN(len(previewDays))]}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	var lockouts []time.Time
	type local struct {
		loc  *time.Location
		hour int // the tenant's send hour
	}
	var locals []local
	for ti := range 4 {
		sub := rules.Subscriptions()[r.IntN(len(rules.Subscriptions()))]
		override := r.IntN(4) > 0
		if ti < 2 { // at least two served tenants
			sub, override = rules.SelfServeSubscriptions()[ti%len(rules.SelfServeSubscriptions())], true
		}
		hour := []int{0, 1, 2, 9, 23}[r.IntN(5)]
		tz := pick(previewZones[:len(previewZones)-1])
		tn, _, err := st.UpsertTenant(ctx, store.Tenant{Name: fmt.Sprintf("tenant-%d-%d", seed, ti), Subscription: sub, SelfServe: override,
			TimeZone: tz, SendHour: hour, ReminderDays: []int{1, 3, 10}[r.IntN(3)]})
		must(t, err)
		pop.tenants = append(pop.tenants, tn)
		for ci := range 3 {
			zone := pick(previewZones)
			cu, _, err := st.UpsertCustomer(ctx, store.Customer{TenantID: tn.ID, Name: fmt.Sprintf("Customer %d", ci), TimeZone: zone})
			must(t, err)
			loc := cu.Location(tn)
			locals = append(locals, local{loc, hour})
			for _, src := range rules.Sources() {
				co, _, err := st.UpsertConnection(ctx, store.Connection{TenantID: tn.ID, CustomerID: &cu.ID, Name: fmt.Sprintf("c%d-%s", ci, src),
					Kind: connectors.KindFile, Settings: []byte(`{"path":"unused.csv"}`), EnableSelfServe: true, ScheduleSeconds: 10800}, false)
				must(t, err)
				var all, kept []store.UserRecord
				var switchedOff []string
				for ui := range 6 {
					id := fmt.Sprintf("t%dc%d%s%d", ti, ci, src, ui)
					u := store.UserRecord{User: connectors.User{ExternalID: id, Username: id, DisplayName: "User " + id,
						Email: id + "@customer.example", Mobile: fmt.Sprintf("+4477009%05d", r.IntN(100000)), Enabled: true}}
					day := days[r.IntN(len(days))].AddDate(0, 0, r.IntN(16)-3)
					midnight := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
					offsets := []time.Duration{0, -time.Second, time.Second, -time.Minute, time.Minute, -time.Hour, time.Hour,
						time.Duration(r.Int64N(int64(24 * time.Hour)))}
					u.PasswordExpiresAt = midnight.Add(offsets[r.IntN(len(offsets))]).Truncate(time.Second)
					u.PasswordLastSet = u.PasswordExpiresAt.Add(-90 * 24 * time.Hour)
					excluded := true
					switch r.IntN(12) {
					case 0:
						u.Email = ""
					case 1:
						u.Mobile = ""
					case 2:
						u.Enabled = false
					case 3:
						u.PasswordNeverExpires = true
					case 4:
						switchedOff = append(switchedOff, id)
					default:
						excluded = false
					}
					all = append(all, u)
					if r.IntN(15) > 0 {
						kept = append(kept, u)
					} else {
						excluded = true
					}
					if r.IntN(4) == 0 {
						u.LockedOut = true
						u.LockedOutAt = days[r.IntN(len(days))].Add(time.Duration(r.Int64N(int64(72*time.Hour))) - 24*time.Hour).Truncate(time.Second)
						all[len(all)-1] = u
						if !excluded {
							kept[len(kept)-1] = u
							if sub.AllowsSelfServe() && override && src.IsDirectory() {
								lockouts = append(lockouts, u.LockedOutAt) // a lockout the scan notifies
							}
						}
					}
				}
				target := store.PageTarget{TenantID: tn.ID, CustomerID: cu.ID, ConnectionID: co.ID, Source: src, EnableSelfServe: true}
				_, err = importer.ApplyPage(ctx, st, target, all, nil)
				must(t, err)
				_, err = st.RemoveUnseen(ctx, tn.ID, co.ID, -1)
				must(t, err)
				_, err = importer.ApplyPage(ctx, st, target, kept, nil)
				must(t, err)
				if len(switchedOff) > 0 {
					us, err := st.EndUsers(ctx, tn.ID, store.EndUserFilter{ConnectionID: co.ID, IncludeRemoved: true})
					must(t, err)
					var ids []int64
					for _, u := range us {
						if slices.Contains(switchedOff, u.ExternalID) {
							ids = append(ids, u.ID)
						}
					}
					_, err = st.SetSelfServe(ctx, tn.ID, ids, false)
					must(t, err)
				}
			}
		}
	}
	// The instants: some of the send hours (one second either side, and half
	// an hour later) and local midnights of the days around the focus days
	// in the customers' zones, and the last instant a served lockout is notified
	// and the one after.
	var candidates []time.Time
	for _, d := range days {
		for k := -1; k <= 1; k++ {
			day := d.AddDate(0, 0, k)
			l := locals[r.IntN(len(locals))]
			send := time.Date(day.Year(), day.Month(), day.Day(), l.hour, 0, 0, 0, l.loc)
			midnight := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, l.loc)
			candidates = append(candidates, send, send.Add(-time.Second), send.Add(time.Second), send.Add(30*time.Minute),
				midnight, midnight.Add(-time.Second))
		}
	}
	r.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	pop.instants = candidates[:8]
	if len(lockouts) == 0 {
		t.Fatalf("seed %d: no served end user is locked out", seed)
	}
	for range 2 {
		l := lockouts[r.IntN(len(lockouts))]
		pop.instants = append(pop.instants, l.Add(rules.LockoutLookback), l.Add(rules.LockoutLookback+time.Second))
	}
	return pop
}

// clearLedgerAndQueues empties the ledger and the notice queues, so that a
// scan's rows and tasks are its own.
func clearLedgerAndQueues(t *testing.T, st *store.Store, insp *asynq.Inspector) {
	t.Helper()
	if _, err := st.DB().ExecContext(context.Background(), `DELETE FROM notices`); err != nil {
		t.Fatal(err)
	}
	for _, q := range noticeQueues(t, insp) {
		if _, err := insp.DeleteAllPendingTasks(q); err != nil {
			t.Fatalf("clear queue %s: %v", q, err)
		}
	}
}

// noticeQueues lists the notice queues that exist (a queue exists once a
// task was queued to it).
func noticeQueues(t *testing.T, insp *asynq.Inspector) []string {
	t.Helper()
	queues, err := insp.Queues()
	must(t, err)
	return slices.DeleteFunc(queues, func(q string) bool { return q != worker.QueueCritical && q != worker.QueueNotify })
}

// everyUserPlan applies rules.ScanPlan to every end user of the tenants,
// removed ones included, on the default channels: the rules alone, without
// the candidate query.
func everyUserPlan(t *testing.T, st *store.Store, tenants []store.Tenant, at time.Time) map[noticeKey]bool {
	t.Helper()
	ctx := context.Background()
	out := map[noticeKey]bool{}
	for _, tn := range tenants {
		customers, err := st.Customers(ctx, tn.ID)
		must(t, err)
		for _, c := range customers {
			us, err := st.EndUsers(ctx, tn.ID, store.EndUserFilter{CustomerID: c.ID, IncludeRemoved: true})
			must(t, err)
			for _, u := range us {
				for _, n := range rules.ScanPlan(tn.Rules(), c.Location(tn), u.Rules(), at) {
					for _, ch := range planner.DefaultChannels() {
						out[noticeKey{u.ID, n.Kind, n.Occasion, ch}] = true
					}
				}
			}
		}
	}
	return out
}

// previewAt is what the preview shows at the instant, tenant by tenant as
// the API and the CLI ask for it.
func previewAt(t *testing.T, st *store.Store, tenants []store.Tenant, at time.Time) map[noticeKey]bool {
	t.Helper()
	out := map[noticeKey]bool{}
	p := planner.Planner{Store: st}
	for _, tn := range tenants {
		due, err := p.Preview(context.Background(), planner.Scope{TenantID: tn.ID}, at)
		must(t, err)
		for _, d := range due {
			for _, ch := range d.Channels {
				out[noticeKey{d.EndUserID, d.Kind, d.Occasion, ch}] = true
			}
		}
	}
	return out
}

// queuedNotices reads the dispatch tasks the scan queued and the ledger rows
// they name.
func queuedNotices(t *testing.T, st *store.Store, insp *asynq.Inspector) map[noticeKey]bool {
	t.Helper()
	var keys []store.NoticeKey
	for _, q := range noticeQueues(t, insp) {
		tasks, err := insp.ListPendingTasks(q, asynq.PageSize(10000))
		must(t, err)
		for _, task := range tasks {
			if task.Type != worker.TypeDispatch {
				t.Fatalf("queue %s holds a %s task", q, task.Type)
			}
			var p worker.DispatchPayload
			must(t, json.Unmarshal(task.Payload, &p))
			for _, ref := range p.Notices {
				keys = append(keys, store.NoticeKey{TenantID: ref.TenantID, ID: ref.ID})
			}
		}
	}
	out := map[noticeKey]bool{}
	if len(keys) == 0 {
		return out
	}
	rows, err := st.Notices(context.Background(), keys)
	must(t, err)
	if len(rows) != len(keys) {
		t.Fatalf("the scan queued %d notices, the ledger holds %d of them", len(keys), len(rows))
	}
	for _, n := range rows {
		k := noticeKey{n.EndUserID, n.Kind, n.Occasion, n.Channel}
		if out[k] {
			t.Fatalf("notice %s queued twice", k)
		}
		out[k] = true
	}
	return out
}

// compareNotices fails the test with the differences between got and want.
func compareNotices(t *testing.T, what string, got, want map[noticeKey]bool) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	var extra, missing []string
	for k := range got {
		if !want[k] {
			extra = append(extra, k.String())
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k.String())
		}
	}
	slices.Sort(extra)
	slices.Sort(missing)
	t.Fatalf("%s: %d extra [%s], %d missing [%s]", what, len(extra), strings.Join(extra, "; "), len(missing), strings.Join(missing, "; "))
}

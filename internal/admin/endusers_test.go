package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// TestOverride: with the tenant override OFF every switch change is 409
// "locked by the tenant override" and listings show the switch locked; ON
// allows them again.
func TestOverride(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		super, engineer := b.a.tokens[store.RoleSuper], b.a.tokens[store.RoleEngineer]
		alice := b.a.users[0]
		list := fmt.Sprintf("/v1/customers/%d/end-users", b.a.customer.ID)
		switchPath := fmt.Sprintf("/v1/end-users/%d/self-serve", alice.ID)

		if r := b.do("PATCH", "/v1/tenant", engineer, map[string]any{"self_serve": false}); r.status != http.StatusForbidden {
			t.Fatalf("engineer turning the override off: %d", r.status)
		}
		if r := b.do("PATCH", "/v1/tenant", super, map[string]any{"self_serve": false}); r.status != http.StatusOK || r.body["switches_locked"] != true {
			t.Fatalf("override off: %d %s", r.status, r.raw)
		}
		before := b.snapshot(b.a)
		for _, c := range []call{
			{"PUT", switchPath, map[string]any{"enabled": true}, ""},
			{"POST", "/v1/end-users/self-serve", map[string]any{"ids": []int64{alice.ID}, "enabled": true}, ""},
		} {
			r := b.do(c.method, c.path, engineer, c.body)
			_, code := r.errField()
			if r.status != http.StatusConflict || code != "locked_by_override" || !strings.Contains(r.errMessage(), "locked by the tenant override") {
				t.Errorf("%s %s with override off: %d %s", c.method, c.path, r.status, r.raw)
			}
		}
		if after := b.snapshot(b.a); after != before {
			t.Errorf("refused switch changes changed something")
		}
		r := b.do("GET", list, engineer, nil)
		rows := r.body["end_users"].([]any)
		for _, row := range rows {
			m := row.(map[string]any)
			if m["switch_locked"] != true || m["active"] != false || m["inactive_reason"] != string(rules.ReasonTenantOverride) {
				t.Errorf("row with override off: %v", m)
			}
		}
		// ON: allowed again, not locked, alice (complete) becomes active.
		if r := b.do("PATCH", "/v1/tenant", b.a.tokens[store.RolePrimary], map[string]any{"self_serve": true}); r.status != http.StatusOK {
			t.Fatalf("override on: %d", r.status)
		}
		r = b.do("PUT", switchPath, engineer, map[string]any{"enabled": true})
		if r.status != http.StatusOK || r.body["self_serve"] != true || r.body["switch_locked"] != false || r.body["active"] != true {
			t.Fatalf("switch on with override on: %d %s", r.status, r.raw)
		}
		if !b.endUser(b.a, alice.ID).SelfServe {
			t.Error("switch not stored")
		}
		// A subscription without self-serve refuses the switch.
		tn := b.a.tenant
		tn.Subscription = rules.SubscriptionNone
		must(t, b.st.UpdateTenant(context.Background(), tn))
		r = b.do("PUT", switchPath, engineer, map[string]any{"enabled": false})
		if _, code := r.errField(); r.status != http.StatusConflict || code != "not_in_subscription" {
			t.Errorf("switch on subscription none: %d %s", r.status, r.raw)
		}
	})
}

// TestBulkAllOrNothing: one bad id changes nothing and is named; a good
// list changes every user and audits each change once.
func TestBulkAllOrNothing(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		tok := b.a.tokens[store.RoleHelpdesk]
		ids := []int64{b.a.users[0].ID, b.a.users[1].ID}
		otherTenants := b.b.users[0].ID
		before := b.snapshot(b.a)
		for _, bad := range []int64{otherTenants, 987654} {
			r := b.do("POST", "/v1/end-users/self-serve", tok, map[string]any{"ids": append(append([]int64{}, ids...), bad), "enabled": true})
			field, code := r.errField()
			items, _ := r.body["error"].(map[string]any)["items"].([]any)
			if r.status != http.StatusNotFound || field != "ids" || code != "not_found" || len(items) != 1 ||
				items[0].(map[string]any)["id"] != float64(bad) || !strings.Contains(r.errMessage(), fmt.Sprint(bad)) {
				t.Errorf("bulk with bad id %d: %d %s", bad, r.status, r.raw)
			}
		}
		r := b.do("POST", "/v1/end-users/self-serve", tok, map[string]any{"ids": []int64{ids[0], ids[0], -3}, "enabled": true})
		if field, _ := r.errField(); r.status != http.StatusBadRequest || field != "ids" || len(r.body["error"].(map[string]any)["items"].([]any)) != 2 {
			t.Errorf("duplicate and negative ids: %d %s", r.status, r.raw)
		}
		if after := b.snapshot(b.a); after != before {
			t.Fatal("a refused bulk request changed something")
		}
		r = b.do("POST", "/v1/end-users/self-serve", tok, map[string]any{"ids": ids, "enabled": true})
		if r.status != http.StatusOK || len(r.body["changed"].([]any)) != 2 {
			t.Fatalf("bulk: %d %s", r.status, r.raw)
		}
		r = b.do("POST", "/v1/end-users/self-serve", tok, map[string]any{"ids": ids, "enabled": true})
		if r.status != http.StatusOK || len(r.body["changed"].([]any)) != 0 || len(r.body["unchanged"].([]any)) != 2 {
			t.Fatalf("bulk again: %d %s", r.status, r.raw)
		}
		for _, id := range ids {
			if !b.endUser(b.a, id).SelfServe {
				t.Errorf("end user %d not switched on", id)
			}
			es, err := b.st.AuditLog(context.Background(), b.a.tenant.ID, store.AuditFilter{Action: "end_user.self_serve_changed", ObjectID: fmt.Sprint(id)})
			must(t, err)
			if len(es) != 1 || es[0].Before != `{"self_serve":false}` || es[0].After != `{"self_serve":true}` || es[0].Actor != "login:helpdesk@acme.example" || es[0].LoginID == nil {
				t.Errorf("audit of end user %d: %+v", id, es)
			}
		}
	})
}

// TestAuditOncePerChange: each change is audited exactly once with who,
// what, before and after; a request that changes nothing audits nothing.
func TestAuditOncePerChange(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		tok := b.a.tokens[store.RoleManager]
		bob := b.a.users[1]
		path := fmt.Sprintf("/v1/end-users/%d", bob.ID)
		for range 2 {
			r := b.do("PATCH", path, tok, map[string]any{"mobile": "07400 123 002"})
			if r.status != http.StatusOK || r.body["mobile"] != "+447400123002" || r.body["mobile_source"] != "manual" || r.body["status"] != "registration_complete" {
				t.Fatalf("edit mobile: %d %s", r.status, r.raw)
			}
		}
		es, err := b.st.AuditLog(context.Background(), b.a.tenant.ID, store.AuditFilter{Action: "end_user.contact_updated"})
		must(t, err)
		if len(es) != 1 {
			t.Fatalf("contact edit audited %d times, want 1", len(es))
		}
		e := es[0]
		if e.ObjectType != "end_user" || e.ObjectID != fmt.Sprint(bob.ID) || !strings.Contains(e.Before, `"mobile":""`) ||
			!strings.Contains(e.After, `"mobile":"+447400123002"`) || !strings.Contains(e.After, `"mobile_source":"manual"`) || e.At.IsZero() {
			t.Errorf("audit entry %+v", e)
		}
		// Tenant settings: once per real change.
		super := b.a.tokens[store.RoleSuper]
		b.do("PATCH", "/v1/tenant", super, map[string]any{"reminder_days": 7})
		b.do("PATCH", "/v1/tenant", super, map[string]any{"reminder_days": 7})
		if n := b.auditCount(b.a, "tenant.updated"); n != 1 {
			t.Errorf("tenant.updated audited %d times", n)
		}
		// The audit endpoint filters.
		r := b.do("GET", "/v1/audit?action=tenant.updated&object_type=tenant", tok, nil)
		entries := r.body["entries"].([]any)
		if r.status != http.StatusOK || len(entries) != 1 {
			t.Fatalf("audit listing: %d %s", r.status, r.raw)
		}
		ent := entries[0].(map[string]any)
		if ent["before"].(map[string]any)["reminder_days"] != float64(10) || ent["after"].(map[string]any)["reminder_days"] != float64(7) || ent["actor"] != "login:super@acme.example" {
			t.Errorf("audit entry %v", ent)
		}
		// Tenant B sees none of it.
		if r := b.do("GET", "/v1/audit", b.b.tokens[store.RoleSuper], nil); len(r.body["entries"].([]any)) != 0 {
			t.Errorf("tenant B sees tenant A's audit: %s", r.raw)
		}
	})
}

// TestEndUserListing: filters and keyset paging, rows from package report.
func TestEndUserListing(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	tok := b.a.tokens[store.RoleEngineer]
	base := fmt.Sprintf("/v1/customers/%d/end-users", b.a.customer.ID)
	count := func(q string) int {
		r := b.do("GET", base+q, tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, r.status, r.raw)
		}
		return len(r.body["end_users"].([]any))
	}
	for q, want := range map[string]int{
		"": 3, "?status=registration_complete": 1, "?status=incomplete": 2, "?locked=true": 1, "?locked=false": 2,
		"?source=local": 3, "?source=ad": 0, "?active=false": 3, "?active=true": 0,
	} {
		if got := count(q); got != want {
			t.Errorf("%s: %d rows, want %d", q, got, want)
		}
	}
	// Paging by one.
	var seen []float64
	after := ""
	for range 5 {
		r := b.do("GET", base+"?limit=1"+after, tok, nil)
		for _, row := range r.body["end_users"].([]any) {
			seen = append(seen, row.(map[string]any)["id"].(float64))
		}
		next, ok := r.body["next_after"].(float64)
		if !ok {
			break
		}
		after = fmt.Sprintf("&after=%d", int64(next))
	}
	if len(seen) != 3 || seen[0] >= seen[1] || seen[1] >= seen[2] {
		t.Errorf("paged ids %v", seen)
	}
	r := b.do("GET", base+"?limit=1", tok, nil)
	row := r.body["end_users"].([]any)[0].(map[string]any)
	for _, k := range []string{"status", "status_label", "active", "switch_locked", "email_source", "mobile_source", "customer", "connection"} {
		if _, ok := row[k]; !ok {
			t.Errorf("row lacks %s: %v", k, row)
		}
	}
}

// TestSelfServeApp: first access makes the status "Accessed Self-Serve"
// (audited once).
func TestSelfServeApp(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		alice := b.a.users[0]
		b.switchOn(b.a, alice.ID)
		path := fmt.Sprintf("/v1/app/end-users/%d/first-access", alice.ID)
		for range 2 {
			r := b.do("POST", path, b.a.app, map[string]any{"at": "2026-11-20T10:00:00Z"})
			if r.status != http.StatusOK || r.body["status"] != "accessed_self_serve" || r.body["status_label"] != "Accessed Self-Serve" {
				t.Fatalf("first access: %d %s", r.status, r.raw)
			}
		}
		if n := b.auditCount(b.a, "end_user.first_access"); n != 1 {
			t.Errorf("first access audited %d times", n)
		}
		if r := b.do("POST", path, b.a.app, map[string]any{"at": "2999-01-01T00:00:00Z"}); r.status != http.StatusBadRequest {
			t.Errorf("first access in the future: %d", r.status)
		}

	})
}

// TestSyncAndImport: a sync creates a queued run, enqueues it and returns
// its id; another while it is active is 409; a queue failure marks the run
// failed. A PSA connection imports customers.
func TestSyncAndImport(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		tok := b.a.tokens[store.RoleHelpdesk]
		path := fmt.Sprintf("/v1/connections/%d/sync", b.a.conn.ID)
		r := b.do("POST", path, tok, map[string]any{"mode": "full"})
		if r.status != http.StatusAccepted || r.body["status"] != "queued" || r.body["mode"] != "full" {
			t.Fatalf("sync: %d %s", r.status, r.raw)
		}
		runID := int64(r.body["id"].(float64))
		if len(b.queue.syncs) != 1 || b.queue.syncs[0].ID != runID {
			t.Fatalf("enqueued %+v", b.queue.syncs)
		}
		r = b.do("POST", path, tok, nil)
		if _, code := r.errField(); r.status != http.StatusConflict || code != "run_active" {
			t.Errorf("second sync: %d %s", r.status, r.raw)
		}
		r = b.do("GET", fmt.Sprintf("/v1/runs/%d", runID), tok, nil)
		if r.status != http.StatusOK || r.body["finished"] != false || r.body["expected"] != float64(3) {
			t.Errorf("run status: %d %s", r.status, r.raw)
		}
		b.finishActiveRuns(b.a)
		b.queue.fail = errors.New("redis: connection refused")
		r = b.do("POST", path, tok, nil)
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("sync with the queue down: %d %s", r.status, r.raw)
		}
		if _, err := b.st.ActiveRun(context.Background(), b.a.tenant.ID, b.a.conn.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a run that could not be queued is still active: %v", err)
		}
		b.queue.fail = nil
		// PSA: customer import; a directory connection is refused.
		r = b.do("POST", "/v1/customers/import", tok, map[string]any{"connection_id": b.a.psa.ID})
		if r.status != http.StatusAccepted || len(b.queue.imports) != 1 {
			t.Errorf("customer import: %d %s", r.status, r.raw)
		}
		if r := b.do("POST", "/v1/customers/import", tok, map[string]any{"connection_id": b.a.conn.ID}); r.status != http.StatusConflict {
			t.Errorf("customer import from a directory connection: %d", r.status)
		}
		if r := b.do("POST", fmt.Sprintf("/v1/connections/%d/sync", b.a.psa.ID), tok, nil); r.status != http.StatusConflict {
			t.Errorf("sync of a PSA connection: %d", r.status)
		}
		// Welcome email.
		bob := b.a.users[1]
		b.switchOn(b.a, bob.ID)
		if r := b.do("POST", fmt.Sprintf("/v1/end-users/%d/welcome", bob.ID), tok, nil); r.status != http.StatusAccepted || len(b.queue.welcomes) != 1 {
			t.Errorf("welcome: %d %s", r.status, r.raw)
		}
		carol := b.a.users[2]
		if r := b.do("POST", fmt.Sprintf("/v1/end-users/%d/welcome", carol.ID), tok, nil); r.status != http.StatusConflict {
			t.Errorf("welcome without email: %d", r.status)
		}
	})
}

// TestConnections: secrets are write-only and sealed; settings are checked
// by the connector's Config; the test endpoint reports the connector's
// precise message.
func TestConnections(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	tok := b.a.tokens[store.RolePrimary]
	r := b.do("POST", "/v1/connections", tok, map[string]any{"name": "acme-itglue-2", "kind": "itglue",
		"settings": map[string]any{"base_url": b.itglue.URL}, "secrets": map[string]any{"api_key": "wrong-key-123"}})
	if r.status != http.StatusCreated || r.body["has_secrets"] != true || strings.Contains(string(r.raw), "wrong-key-123") {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id := int64(r.body["id"].(float64))
	conn, err := b.st.Connection(context.Background(), b.a.tenant.ID, id)
	must(t, err)
	if strings.Contains(string(conn.SealedSecrets), "wrong-key-123") {
		t.Error("secrets stored in clear")
	}
	for _, path := range []string{fmt.Sprintf("/v1/connections/%d", id), "/v1/connections", "/v1/audit"} {
		if r := b.do("GET", path, tok, nil); strings.Contains(string(r.raw), "wrong-key-123") {
			t.Errorf("%s shows the secret", path)
		}
	}
	r = b.do("POST", fmt.Sprintf("/v1/connections/%d/test", id), tok, nil)
	if r.status != http.StatusOK || r.body["ok"] != false || r.body["category"] != "unauthorized" || strings.Contains(string(r.raw), "wrong-key-123") {
		t.Errorf("test with a wrong key: %d %s", r.status, r.raw)
	}
	r = b.do("PATCH", fmt.Sprintf("/v1/connections/%d", id), tok, map[string]any{"secrets": map[string]any{"api_key": "ITG.fake-key"}})
	if r.status != http.StatusOK {
		t.Fatalf("patch secrets: %d %s", r.status, r.raw)
	}
	if r := b.do("POST", fmt.Sprintf("/v1/connections/%d/test", id), tok, nil); r.body["ok"] != true {
		t.Errorf("test with the right key: %s", r.raw)
	}
	if n := b.auditCount(b.a, "connection.updated"); n != 1 {
		t.Errorf("connection.updated audited %d times", n)
	}
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "x1", "kind": "itglue", "settings": map[string]any{"regio": "us"}}, "settings.regio"},
		{map[string]any{"name": "x2", "kind": "itglue", "settings": map[string]any{"page_size": "ten"}}, "settings.page_size"},
		{map[string]any{"name": "x3", "kind": "itglue", "secrets": map[string]any{"api_kee": "s3cret-value"}}, "secrets.api_kee"},
		{map[string]any{"name": "x4", "kind": "itglue", "settings": []int{1}}, "settings"},
		{map[string]any{"name": "x5", "kind": "ldap"}, "kind"},
		{map[string]any{"name": "x6", "kind": "file", "settings": map[string]any{"path": "a.csv"}}, "customer_id"},
		{map[string]any{"name": "x7", "kind": "itglue", "customer_id": b.a.customer.ID}, "customer_id"},
		{map[string]any{"name": "x8", "kind": "itglue", "schedule_seconds": 5}, "schedule_seconds"},
		{map[string]any{"name": "acme-local", "kind": "itglue"}, ""},
	} {
		r := b.do("POST", "/v1/connections", tok, c.body)
		field, _ := r.errField()
		if r.status < 400 || r.status >= 500 || field != c.field || strings.Contains(string(r.raw), "s3cret-value") {
			t.Errorf("create %v: %d %s, want 4xx naming %q", c.body, r.status, r.raw, c.field)
		}
	}
}

// TestPreviewAndLedger: the preview plans without sending; the ledger lists
// the end user's notices.
func TestPreviewAndLedger(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	tok := b.a.tokens[store.RoleHelpdesk]
	alice := b.a.users[0]
	b.do("PUT", fmt.Sprintf("/v1/end-users/%d/self-serve", alice.ID), tok, map[string]any{"enabled": true})
	r := b.do("GET", fmt.Sprintf("/v1/notices/preview?at=2026-12-01T09:30:00Z&customer_id=%d", b.a.customer.ID), tok, nil)
	if r.status != http.StatusOK {
		t.Fatalf("preview: %d %s", r.status, r.raw)
	}
	if r := b.do("GET", "/v1/notices/preview?at=yesterday", tok, nil); r.status != http.StatusBadRequest {
		t.Errorf("preview at=yesterday: %d", r.status)
	}
	r = b.do("GET", fmt.Sprintf("/v1/end-users/%d/notices", alice.ID), tok, nil)
	if r.status != http.StatusOK || r.body["notices"] == nil {
		t.Errorf("ledger: %d %s", r.status, r.raw)
	}
}

// TestSyncResumesARunWhoseProcessStopped: while the connection's run is
// held by a live process, a sync is 409 naming its start, progress and last
// heartbeat; once its heartbeat is store.HeartbeatTimeout old (a killed
// worker, a task lost with Redis's data), a sync queues that run again, to
// be resumed, instead of refusing.
func TestSyncResumesARunWhoseProcessStopped(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		tok := b.a.tokens[store.RoleHelpdesk]
		path := fmt.Sprintf("/v1/connections/%d/sync", b.a.conn.ID)
		clock := time.Now()
		b.st.SetClock(func() time.Time { return clock })
		defer b.st.SetClock(time.Now)
		run, err := b.st.CreateRun(ctx, b.a.tenant.ID, b.a.conn.ID, store.ModeFull, "api", store.RunRunning, false, time.Hour)
		must(t, err)
		run.Pages, run.Processed = 4, 80
		must(t, b.st.SaveRunProgress(ctx, &run))

		clock = clock.Add(5 * time.Second)
		r := b.do("POST", path, tok, map[string]any{"mode": "full"})
		if _, code := r.errField(); r.status != http.StatusConflict || code != "run_active" ||
			!strings.Contains(string(r.raw), "4 pages, 80 processed; last heartbeat 5s ago") {
			t.Fatalf("sync while the run is alive: %d %s", r.status, r.raw)
		}

		clock = clock.Add(store.HeartbeatTimeout)
		r = b.do("POST", path, tok, map[string]any{"mode": "full"})
		if r.status != http.StatusAccepted || r.body["id"] != float64(run.ID) || r.body["processed"] != float64(80) {
			t.Fatalf("sync after the run's process stopped: %d %s, want run %d again", r.status, r.raw, run.ID)
		}
		if n := len(b.queue.syncs); n == 0 || b.queue.syncs[n-1].ID != run.ID {
			t.Fatalf("run %d not queued again: %+v", run.ID, b.queue.syncs)
		}
	})
}

package admin

import (
	"context"
	"fmt"
	"net/http"
	"selfserve/internal/importer"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// addEndUser imports one more end user of f's customer from rec, with its
// switch set to on.
func (b *bundle) addEndUser(f tenantFixture, rec connectors.User, on bool) store.EndUser {
	b.t.Helper()
	ctx := context.Background()
	run, err := b.st.CreateRun(ctx, f.tenant.ID, f.conn.ID, store.ModeIncremental, "test", store.RunRunning, false, 0)
	must(b.t, err)
	_, err = importer.ApplyPage(ctx, b.st, store.PageTarget{TenantID: f.tenant.ID, CustomerID: f.customer.ID, ConnectionID: f.conn.ID, RunID: run.ID,
		Source: rules.SourceLocal, EnableSelfServe: on}, []store.UserRecord{{User: rec}}, nil)
	must(b.t, err)
	run.Status = store.RunSucceeded
	must(b.t, b.st.FinishRun(ctx, &run))
	us, err := b.st.EndUsers(ctx, f.tenant.ID, store.EndUserFilter{CustomerID: f.customer.ID})
	must(b.t, err)
	for _, u := range us {
		if u.ExternalID == rec.ExternalID {
			if u.SelfServe != on {
				_, err := b.st.SetSelfServe(ctx, f.tenant.ID, []int64{u.ID}, on)
				must(b.t, err)
				u.SelfServe = on
			}
			return u
		}
	}
	b.t.Fatalf("end user %s not imported", rec.ExternalID)
	return store.EndUser{}
}

// setOverride sets the tenant's self-serve override.
func (b *bundle) setOverride(f tenantFixture, on bool) {
	b.t.Helper()
	tn, err := b.st.Tenant(context.Background(), f.tenant.ID)
	must(b.t, err)
	tn.SelfServe = on
	_, _, err = b.st.UpsertTenant(context.Background(), tn)
	must(b.t, err)
}

func complete(id string) connectors.User {
	return connectors.User{ExternalID: id, Username: id, Email: id + "@contoso.example", Mobile: "+447400123999", Enabled: true}
}

// TestFirstAccessRefusedForInactiveEndUsers: an end user who cannot use
// self-serve cannot have accessed it: 409 with the reason, nothing stored.
func TestFirstAccessRefusedForInactiveEndUsers(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	active := b.addEndUser(b.a, complete("dave"), true)
	disabled := complete("erin")
	disabled.Enabled = false
	noMobile := complete("fred")
	noMobile.Mobile = ""
	noEmail := complete("gina")
	noEmail.Email = ""
	cases := []struct {
		name string
		user store.EndUser
		want rules.Reason
	}{
		{"switch off", b.addEndUser(b.a, complete("ivan"), false), rules.ReasonSwitchOff},
		{"disabled", b.addEndUser(b.a, disabled, true), rules.ReasonDisabled},
		{"no mobile", b.addEndUser(b.a, noMobile, true), rules.ReasonMissingMobile},
		{"no email", b.addEndUser(b.a, noEmail, true), rules.ReasonMissingEmail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := b.do("POST", fmt.Sprintf("/v1/app/end-users/%d/first-access", c.user.ID), b.a.app, nil)
			if _, code := r.errField(); r.status != http.StatusConflict || code != "inactive" || !strings.Contains(r.errMessage(), string(c.want)) {
				t.Errorf("%d %s, want 409 inactive saying %q", r.status, r.raw, c.want)
			}
			if u := b.endUser(b.a, c.user.ID); u.FirstAccessAt != nil {
				t.Errorf("first access stored: %v", u.FirstAccessAt)
			}
		})
	}
	// The tenant override off makes everyone inactive.
	b.setOverride(b.a, false)
	r := b.do("POST", fmt.Sprintf("/v1/app/end-users/%d/first-access", active.ID), b.a.app, nil)
	if _, code := r.errField(); r.status != http.StatusConflict || code != "inactive" || !strings.Contains(r.errMessage(), string(rules.ReasonTenantOverride)) {
		t.Errorf("override off: %d %s", r.status, r.raw)
	}
	b.setOverride(b.a, true)
	if r := b.do("POST", fmt.Sprintf("/v1/app/end-users/%d/first-access", active.ID), b.a.app, nil); r.status != http.StatusOK {
		t.Errorf("active end user: %d %s", r.status, r.raw)
	}
	if n := b.auditCount(b.a, "end_user.first_access"); n != 1 {
		t.Errorf("%d first accesses audited, want 1", n)
	}
}

// TestWelcomeRefusedWhenItWouldNotBeSent: one rule, a 409 with the reason
// whenever the welcome email will not go out, and nothing queued or
// audited; a repeat says when the last one was asked for or went.
func TestWelcomeRefusedWhenItWouldNotBeSent(t *testing.T) {
	t.Parallel()
	b := sqliteOnly(t)
	ctx := context.Background()
	noMobile := complete("dave")
	noMobile.Mobile = ""
	dave := b.addEndUser(b.a, noMobile, true) // the welcome is how a mobile gets confirmed
	off := b.addEndUser(b.a, complete("erin"), false)
	disabled := complete("fred")
	disabled.Enabled = false
	fred := b.addEndUser(b.a, disabled, true)
	gina := b.addEndUser(b.a, complete("gina"), true)
	hank := b.addEndUser(b.a, complete("hank"), true)
	tok := b.a.tokens[store.RoleHelpdesk]
	welcome := func(id int64) response {
		t.Helper()
		return b.do("POST", fmt.Sprintf("/v1/end-users/%d/welcome", id), tok, nil)
	}
	refused := func(what string, r response, code, says string) {
		t.Helper()
		if _, got := r.errField(); r.status != http.StatusConflict || got != code || !strings.Contains(r.errMessage(), says) {
			t.Errorf("%s: %d %s, want 409 %s saying %q", what, r.status, r.raw, code, says)
		}
	}

	refused("switch off", welcome(off.ID), "switch_off", string(rules.ReasonSwitchOff))
	refused("disabled", welcome(fred.ID), "disabled", string(rules.ReasonDisabled))
	b.setOverride(b.a, false)
	refused("override off", welcome(dave.ID), "self_serve_off", string(rules.ReasonTenantOverride))
	b.setOverride(b.a, true)
	if n := len(b.queue.welcomes) + b.auditCount(b.a, "end_user.welcome_requested"); n != 0 {
		t.Fatalf("refused welcomes queued or audited: %d", n)
	}

	if r := welcome(dave.ID); r.status != http.StatusAccepted {
		t.Fatalf("welcome without a mobile: %d %s", r.status, r.raw)
	}
	// A double click within the minute: the queue already has it.
	refused("repeat within the minute", welcome(dave.ID), "welcome_queued", "this minute")
	if n := b.auditCount(b.a, "end_user.welcome_requested"); n != 1 || len(b.queue.welcomes) != 1 {
		t.Errorf("after a repeat: %d audited, %d queued; want 1, 1", n, len(b.queue.welcomes))
	}

	// A welcome on its way (its ledger row written, not sent yet).
	_, err := b.st.CreateNotices(ctx, []store.NewNotice{{TenantID: b.a.tenant.ID, EndUserID: gina.ID, Kind: rules.KindWelcome, Occasion: "2026-11-20T10:00:00Z", Channel: store.ChannelEmail}})
	must(t, err)
	refused("while one is on its way", welcome(gina.ID), "welcome_queued", "is on its way")

	// One went five minutes ago: within the cool-down, the answer says when.
	sent := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Second)
	must(t, b.st.MarkWelcomeSent(ctx, b.a.tenant.ID, hank.ID, sent))
	refused("within the cool-down", welcome(hank.ID), "welcome_recent", sent.Format(time.RFC3339))
	// Past the cool-down another may go.
	must(t, b.st.MarkWelcomeSent(ctx, b.a.tenant.ID, hank.ID, time.Now().Add(-rules.WelcomeCooldown-time.Minute)))
	if r := welcome(hank.ID); r.status != http.StatusAccepted {
		t.Errorf("after the cool-down: %d %s", r.status, r.raw)
	}
}

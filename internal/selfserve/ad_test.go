package selfserve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/ldap"
	"selfserve/internal/addc"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// The write-back to Active Directory, end to end, against the project's
// Samba AD DC (scripts/ad-dc.sh; $AD_DIR and $AD_BIND_IP pick the
// instance, by default its own): the seeded users are imported through the
// sync engine, then reset and unlocked through the public API, and checked
// by binding as them. Skipped without root, Samba (failed instead with
// CI=true), or with -short.

// seededUsers: users 1..30 of OU=Staff (22 and 23 are locked out by the
// seed, by wrong binds against a PSO with a lockout threshold).
const seededUsers = 30

// samba brings the DC up and seeded (stopping it at the end if this test
// started it) and returns its description.
func samba(t *testing.T) addc.Info {
	t.Helper()
	return addc.ForTest(t, addc.Options{Dir: filepath.Join(os.TempDir(), "selfserve-ad-selfserve"), BindIP: "127.0.0.6", Users: seededUsers})
}

// adHarness imports the seeded users into a harness's store through an ad
// connection and serves them with the real directory writers.
func adHarness(t *testing.T, info addc.Info) *harness {
	t.Helper()
	ctx := context.Background()
	settings, _ := json.Marshal(map[string]any{"url": info.LDAPSURL, "base_dn": "OU=Staff," + info.BaseDN, "ca_file": info.CACert})
	secrets, _ := json.Marshal(map[string]string{"bind_dn": info.BindDN, "bind_password": info.BindPass})
	d := newDirectoryTenant(t, connectors.KindAD, func() connectors.Config { return new(ldap.Config) },
		store.Customer{Name: "Corp", TimeZone: "UTC", DefaultRegion: "US"}, "corp-ad", settings, secrets)
	st, tn := d.st, d.tenant
	res := d.importAll(t)
	if res.Run.Created < seededUsers {
		t.Fatalf("imported %d users, want %d: %+v", res.Run.Created, seededUsers, res.Run)
	}
	// The seed's mobiles (+1 555 …) are fictional and not stored: the end
	// users of the test get real-looking ones, as a technician would type.
	for i, name := range []string{"user00022", "user00030"} {
		us, err := st.FindEndUsersByLogin(ctx, tn.ID, name, 2)
		must(t, err)
		if len(us) != 1 {
			t.Fatalf("%d end users named %s", len(us), name)
		}
		mobile := fmt.Sprintf("+4474001233%02d", i)
		_, _, err = st.SetContact(ctx, tn.ID, us[0].ID, nil, &mobile, rules.ProvenanceManual)
		must(t, err)
	}
	return d.serve(t, "203.0.113.9")
}

// TestADResetAndUnlock: a reset through the API lets the end user bind
// with the new password and not the old one; a password the domain's
// policy refuses is 422 and the old one still works; a locked account is
// unlocked and binds again.
func TestADResetAndUnlock(t *testing.T) {
	t.Parallel()
	info := samba(t)
	h := adHarness(t, info)
	upn := func(i int) string { return fmt.Sprintf("user%05d@%s", i, strings.ToLower(info.Realm)) }
	binds := func(user, password string) bool {
		ok, err := info.Binds(user, password)
		must(t, err)
		return ok
	}

	// Reset user00030.
	must(t, info.SetPassword(upn(30), info.UserPass))
	grant, _ := h.grant(upn(30), "reset")
	if p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": "Abc1!"}); p.status != 422 || p.errCode() != "password_policy" {
		t.Errorf("short password: %d %s", p.status, p.raw)
	}
	if !binds(upn(30), info.UserPass) {
		t.Fatal("the old password no longer binds after a refused reset")
	}
	const newPassword = "Quartz-Meadow-7713!"
	if p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": newPassword}); p.status != 200 {
		t.Fatalf("reset: %d %s", p.status, p.raw)
	}
	if !binds(upn(30), newPassword) {
		t.Error("the new password does not bind")
	}
	if binds(upn(30), info.UserPass) {
		t.Error("the old password still binds")
	}

	// Unlock user00022, locked by the seed.
	if binds(upn(22), info.UserPass) {
		t.Fatal("user00022 is not locked out")
	}
	ug, _ := h.grant(upn(22), "unlock")
	if p := h.post(nil, api("/unlock"), map[string]any{"grant": ug}); p.status != 200 {
		t.Fatalf("unlock: %d %s", p.status, p.raw)
	}
	if !binds(upn(22), info.UserPass) {
		t.Error("user00022 does not bind after the unlock")
	}
	jobs, err := h.st.PasswordJobs(context.Background(), h.tenant.ID, endUserID(t, h, "user00022"), 0)
	must(t, err)
	if len(jobs) != 1 || jobs[0].State != store.JobDone || jobs[0].Target != store.TargetAD {
		t.Errorf("unlock job: %+v", jobs)
	}
}

func endUserID(t *testing.T, h *harness, username string) int64 {
	t.Helper()
	us, err := h.st.FindEndUsersByLogin(context.Background(), h.tenant.ID, username, 2)
	must(t, err)
	if len(us) != 1 {
		t.Fatalf("%d end users named %s", len(us), username)
	}
	return us[0].ID
}

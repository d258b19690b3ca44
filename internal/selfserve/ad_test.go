package selfserve_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"golang.org/x/text/encoding/unicode"

	"selfserve/connectors"
	"selfserve/connectors/ldap"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// The write-back to Active Directory, end to end, against the project's
// Samba AD DC (scripts/ad-dc.sh; $AD_DIR and $AD_BIND_IP pick the
// instance, by default its own): the seeded users are imported through the
// sync engine, then reset and unlocked through the public API, and checked
// by binding as them. Skipped without root, Samba, or with -short.

// adInfo is $AD_DIR/ad-dc.json.
type adInfo struct {
	LDAPSURL string `json:"AD_LDAPS_URL"`
	BaseDN   string `json:"AD_BASE_DN"`
	BindDN   string `json:"AD_BIND_DN"`
	BindPass string `json:"AD_BIND_PASS"`
	CACert   string `json:"AD_CA_CERT"`
	Realm    string `json:"AD_REALM"`
	UserPass string `json:"AD_USER_PASS"`
}

// seededUsers: users 1..30 of OU=Staff (22 and 23 are locked out by the
// seed, by wrong binds against a PSO with a lockout threshold).
const seededUsers = 30

func dcEnv() []string {
	dir := os.Getenv("AD_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "selfserve-ad-selfserve")
	}
	ip := os.Getenv("AD_BIND_IP")
	if ip == "" {
		ip = "127.0.0.6"
	}
	return append(os.Environ(), "AD_DIR="+dir, "AD_BIND_IP="+ip)
}

// samba brings the DC up and seeded (stopping it at the end if this test
// started it) and returns its description.
func samba(t *testing.T) adInfo {
	t.Helper()
	if testing.Short() {
		t.Skip("AD test: -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("the Samba AD DC fixture needs root")
	}
	if _, err := exec.LookPath("samba"); err != nil {
		t.Skip("samba is not installed")
	}
	script, err := filepath.Abs("../../scripts/ad-dc.sh")
	must(t, err)
	env := dcEnv()
	sh := func(args ...string) ([]byte, error) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	if _, err := sh("status"); err != nil {
		if out, err := sh("up"); err != nil {
			t.Fatalf("ad-dc.sh up: %v\n%s", err, out)
		}
		t.Cleanup(func() { sh("stop") })
	}
	if out, err := sh("seed", strconv.Itoa(seededUsers)); err != nil {
		t.Fatalf("ad-dc.sh seed: %v\n%s", err, out)
	}
	var dir string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "AD_DIR="); ok {
			dir = v
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "ad-dc.json"))
	must(t, err)
	var info adInfo
	must(t, json.Unmarshal(b, &info))
	return info
}

// resetAsAdmin sets upn's password as the domain's administrator (the
// tests' starting point: an earlier run may have changed it).
func (info adInfo) resetAsAdmin(t *testing.T, upn, password string) {
	t.Helper()
	c := info.dial(t)
	defer c.Close()
	must(t, c.Bind(info.BindDN, info.BindPass))
	res, err := c.Search(goldap.NewSearchRequest(info.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 1, 0, false,
		"(userPrincipalName="+goldap.EscapeFilter(upn)+")", []string{"1.1"}, nil))
	must(t, err)
	if len(res.Entries) != 1 {
		t.Fatalf("%d entries for %s", len(res.Entries), upn)
	}
	utf16 := unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM).NewEncoder()
	quoted, err := utf16.String(`"` + password + `"`)
	must(t, err)
	req := goldap.NewModifyRequest(res.Entries[0].DN, nil)
	req.Replace("unicodePwd", []string{quoted})
	must(t, c.Modify(req))
}

func (info adInfo) dial(t *testing.T) *goldap.Conn {
	t.Helper()
	pem, err := os.ReadFile(info.CACert)
	must(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := goldap.DialURL(info.LDAPSURL, goldap.DialWithTLSConfig(&tls.Config{RootCAs: pool}))
	must(t, err)
	return c
}

// bind reports whether upn binds with password over LDAPS.
func (info adInfo) bind(t *testing.T, upn, password string) bool {
	t.Helper()
	c := info.dial(t)
	defer c.Close()
	return c.Bind(upn, password) == nil
}

func lower(s string) string { return strings.ToLower(s) }

// adHarness imports the seeded users into a harness's store through an ad
// connection and serves them with the real directory writers.
func adHarness(t *testing.T, info adInfo) *harness {
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
	upn := func(i int) string { return fmt.Sprintf("user%05d@%s", i, lower(info.Realm)) }

	// Reset user00030.
	info.resetAsAdmin(t, upn(30), info.UserPass)
	grant, _ := h.grant(upn(30), "reset")
	if p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": "Abc1!"}); p.status != 422 || p.errCode() != "password_policy" {
		t.Errorf("short password: %d %s", p.status, p.raw)
	}
	if !info.bind(t, upn(30), info.UserPass) {
		t.Fatal("the old password no longer binds after a refused reset")
	}
	const newPassword = "Quartz-Meadow-7713!"
	if p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": newPassword}); p.status != 200 {
		t.Fatalf("reset: %d %s", p.status, p.raw)
	}
	if !info.bind(t, upn(30), newPassword) {
		t.Error("the new password does not bind")
	}
	if info.bind(t, upn(30), info.UserPass) {
		t.Error("the old password still binds")
	}

	// Unlock user00022, locked by the seed.
	if info.bind(t, upn(22), info.UserPass) {
		t.Fatal("user00022 is not locked out")
	}
	ug, _ := h.grant(upn(22), "unlock")
	if p := h.post(nil, api("/unlock"), map[string]any{"grant": ug}); p.status != 200 {
		t.Fatalf("unlock: %d %s", p.status, p.raw)
	}
	if !info.bind(t, upn(22), info.UserPass) {
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

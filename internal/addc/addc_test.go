package addc_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/internal/addc"
)

// TestDC: Start from a package directory finds the script, brings the DC
// up and seeded, and what it returns reaches it: the seeded users bind
// with their password and not with another, the locked-out one does not,
// and the administrator changes entries.
func TestDC(t *testing.T) {
	info := addc.ForTest(t, addc.Options{Dir: filepath.Join(os.TempDir(), "selfserve-ad-addc"), BindIP: "127.0.0.8", Users: 30})
	if info.LDAPSURL == "" || info.BaseDN == "" || info.BindDN == "" || info.UserPass == "" || info.CACert == "" {
		t.Fatalf("incomplete info: %+v", info)
	}
	upn := func(i int) string { return fmt.Sprintf("user%05d@%s", i, strings.ToLower(info.Realm)) }
	binds := func(user, password string) bool {
		t.Helper()
		ok, err := info.Binds(user, password)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if err := info.SetPassword(upn(30), info.UserPass); err != nil {
		t.Fatal(err)
	}
	if !binds(upn(30), info.UserPass) {
		t.Error("user00030 does not bind with the seeded password")
	}
	if binds(upn(30), "not-"+info.UserPass) {
		t.Error("user00030 binds with a wrong password")
	}
	if binds(upn(22), info.UserPass) {
		t.Error("user00022, locked out by the seed, binds")
	}
	if err := info.ModifyUser(upn(30), func(r *goldap.ModifyRequest) { r.Replace("title", []string{"addc test"}) }); err != nil {
		t.Error(err)
	}
	if err := info.ModifyUser("nobody@"+strings.ToLower(info.Realm), func(*goldap.ModifyRequest) {}); err == nil {
		t.Error("modifying a user that does not exist: no error")
	}
}

// TestSkip: an unavailable DC skips a test, and fails it under CI=true.
func TestSkip(t *testing.T) {
	if os.Getenv("ADDC_SKIP_CHILD") == "1" {
		addc.Skip(t, fmt.Errorf("%w: test", addc.ErrUnavailable))
		return
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkip$", "-test.v")
		cmd.Env = append(os.Environ(), "ADDC_SKIP_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		skipped := strings.Contains(string(out), "--- SKIP: TestSkip")
		if ci == "true" && (err == nil || skipped) {
			t.Errorf("CI=true: skipped %t, error %v; want a failure:\n%s", skipped, err, out)
		}
		if ci == "" && (err != nil || !skipped) {
			t.Errorf("skipped %t, error %v; want a skip:\n%s", skipped, err, out)
		}
	}
}

package ldap

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
	"selfserve/connectors/connectortest"
	"selfserve/internal/redact"
)

// TestSeededCategories lists the seeded OU (several pages) and checks every
// seeded category and the identity mapping.
func TestSeededCategories(t *testing.T) {
	f := dc(t)
	src := f.userSource(t, Config{MobileAttributes: []string{"mobile", "telephoneNumber"}})
	users, invalid, pages, cursor, err := collect(t, src.Users(context.Background(), ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(invalid) != 0 {
		t.Errorf("invalid records: %+v", invalid)
	}
	if len(users) != seedUsers || pages < 3 {
		t.Fatalf("got %d users in %d pages, want %d in at least 3", len(users), pages, seedUsers)
	}
	if cursor == "" {
		t.Error("no page carried a cursor")
	}
	verdicts := f.dcVerdicts(t, f.UsersDN)
	// The seeder sets pwdLastSet relative to the time it created the users
	// (the fixture's database outlives runs): reconstruct that time from a
	// normal user, whose password was set (i % 31) days before it.
	var seeded time.Time
	for _, v := range verdicts {
		var i int
		if _, err := fmt.Sscanf(v.sam, "user%d", &i); err == nil && strings.HasSuffix(v.description, "=normal") {
			seeded = fileTime(v.pwdLastSet).Add(time.Duration(i%31) * 24 * time.Hour)
			break
		}
	}
	if seeded.IsZero() {
		t.Fatal("no normal seeded user")
	}
	now := time.Now()
	days := func(d time.Time) float64 { return d.Sub(seeded).Hours() / 24 }
	seen := map[string]int{}
	ids := map[string]bool{}
	for _, u := range users {
		v, ok := verdicts[u.ExternalID]
		if !ok {
			t.Fatalf("%s: external id %s is not an objectGUID the DC knows", u.Ref, u.ExternalID)
		}
		if ids[u.ExternalID] {
			t.Errorf("%s listed twice", u.Ref)
		}
		ids[u.ExternalID] = true
		if u.Ref != v.dn || u.Username != v.sam {
			t.Errorf("%s: ref %q, username %q; the DC says %q, %q", u.ExternalID, u.Ref, u.Username, v.dn, v.sam)
		}
		if u.ImmutableID != base64.StdEncoding.EncodeToString(v.guid) {
			t.Errorf("%s: immutable id %q is not base64(objectGUID)", u.Ref, u.ImmutableID)
		}
		if u.UPN != v.sam+"@"+f.realm || u.Email != u.UPN || u.FirstName == "" || u.LastName == "" || u.DisplayName != u.FirstName+" "+u.LastName {
			t.Errorf("%s: names or mail not mapped: %+v", u.Ref, u)
		}
		if u.Mobile != v.mobile || !strings.HasPrefix(u.Mobile, "+1 555 ") {
			t.Errorf("%s: mobile %q, want %q", u.Ref, u.Mobile, v.mobile)
		}
		if want := fileTime(v.pwdLastSet); !u.PasswordLastSet.Equal(want) {
			t.Errorf("%s: password last set %s, want %s", u.Ref, u.PasswordLastSet, want)
		}
		cat := strings.TrimPrefix(v.description, "ad-dc.sh category=")
		seen[cat]++
		check := func(ok bool, what string) {
			t.Helper()
			if !ok {
				t.Errorf("%s (%s): %s: %+v", u.Ref, cat, what, u)
			}
		}
		check(u.Enabled == (cat != "disabled"), "enabled")
		check(u.LockedOut == (cat == "locked"), "locked out")
		check(u.LockedOut == !u.LockedOutAt.IsZero(), "lockout time")
		check(u.MustChangePassword == (cat == "must-change"), "must change")
		check(u.PasswordNeverExpires == (cat == "never-expires"), "never expires")
		switch cat {
		case "never-expires", "must-change":
			check(u.PasswordExpiresAt.IsZero(), "no expiry date")
		case "expiring-soon":
			check(days(u.PasswordExpiresAt) > 0 && days(u.PasswordExpiresAt) < 10, "expires 1..9 days after seeding")
		case "expired":
			check(days(u.PasswordExpiresAt) < -17, "expired 18 days before seeding")
		case "pso-short":
			check(days(u.PasswordExpiresAt) > 3.9 && days(u.PasswordExpiresAt) < 4.1, "expires 4 days after seeding (PSO max age 5 days)")
		case "locked":
			check(u.LockedOutAt.Before(now) && now.Sub(u.LockedOutAt) < 30*24*time.Hour, "locked out recently")
			fallthrough
		default:
			check(days(u.PasswordExpiresAt) > 11 && days(u.PasswordExpiresAt) < 43, "expires 12..42 days after seeding")
		}
	}
	for _, cat := range []string{"never-expires", "disabled", "expiring-soon", "expired", "locked", "must-change", "pso-short", "normal"} {
		if seen[cat] == 0 {
			t.Errorf("no user of category %s", cat)
		}
	}

	// the canonical GUID string is the one the DC itself understands
	c, err := f.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, u := range users[:5] {
		res, err := c.Search(goldap.NewSearchRequest("<GUID="+u.ExternalID+">", goldap.ScopeBaseObject, goldap.NeverDerefAliases,
			0, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
		if err != nil || len(res.Entries) != 1 || res.Entries[0].DN != u.Ref {
			t.Errorf("<GUID=%s> does not name %s: %v", u.ExternalID, u.Ref, err)
		}
	}
}

// TestMobileFallback reads telephoneNumber when mobile is empty.
func TestMobileFallback(t *testing.T) {
	f := dc(t)
	src := f.userSource(t, Config{MobileAttributes: []string{"facsimileTelephoneNumber", "telephoneNumber", "mobile"}})
	users, _, _, _, err := collect(t, src.Users(context.Background(), ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if !strings.HasPrefix(u.Mobile, "+1 666 ") {
			t.Fatalf("%s: mobile %q, want the telephoneNumber", u.Ref, u.Mobile)
		}
	}
}

// TestExpiryAndLockoutEqualTheDC compares, for every user of the domain, the
// computed expiry and lockout with the DC's constructed attributes: as the
// administrator (computed from stored attributes, PSOs of every kind) and
// as a low-privileged account that cannot read PSOs (the DC is asked).
func TestExpiryAndLockoutEqualTheDC(t *testing.T) {
	f := dc(t)
	for _, tc := range []struct {
		name           string
		bindDN         string
		wantAskedTheDC bool
	}{
		{"administrator", f.BindUPN, false},
		{"reader without access to PSOs", f.readerUPN, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			cfg := f.config(Config{BaseDN: f.BaseDN, PageSize: 200, BindDN: redact.Secret(tc.bindDN)})
			if tc.bindDN == f.readerUPN {
				cfg.BindPassword = redact.Secret(f.UserPass)
			}
			src, err := cfg.Open(connectors.Env{ID: "test", Logger: slogTo(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			users, invalid, _, _, err := collect(t, src.(*source).Users(context.Background(), ""))
			if err != nil {
				t.Fatal(err)
			}
			if len(invalid) != 0 {
				t.Errorf("invalid: %+v", invalid)
			}
			verdicts := f.dcVerdicts(t, f.BaseDN)
			if len(users) != len(verdicts) {
				t.Errorf("listed %d users, the DC has %d", len(users), len(verdicts))
			}
			for _, u := range users {
				v, ok := verdicts[u.ExternalID]
				if !ok {
					t.Errorf("%s: unknown to the DC", u.Ref)
					continue
				}
				var want connectors.User
				setPasswordState(&want, v.expiry, v.uacComputed&ufLockout != 0, v.lockoutTime)
				if u.PasswordNeverExpires != want.PasswordNeverExpires || !u.PasswordExpiresAt.Equal(want.PasswordExpiresAt) ||
					u.LockedOut != want.LockedOut || !u.LockedOutAt.Equal(want.LockedOutAt) {
					t.Errorf("%s: got never=%t expires=%s locked=%t at %s; the DC says expiry FILETIME %d (never=%t %s), computed UAC %#x",
						u.Ref, u.PasswordNeverExpires, u.PasswordExpiresAt, u.LockedOut, u.LockedOutAt,
						v.expiry, want.PasswordNeverExpires, want.PasswordExpiresAt, v.uacComputed)
				}
			}
			asked := strings.Contains(logs.String(), "cannot read the password policies")
			if asked != tc.wantAskedTheDC {
				t.Errorf("asked the DC for every user: %t, want %t; log:\n%s", asked, tc.wantAskedTheDC, logs.String())
			}
		})
	}
}

// TestPSOCases pins what the DC decides for each PSO shape the test
// created, so that the equality above covers them all.
func TestPSOCases(t *testing.T) {
	f := dc(t)
	verdicts := f.dcVerdicts(t, f.psoOU)
	bySam := map[string]dcVerdict{}
	for _, v := range verdicts {
		bySam[v.sam] = v
	}
	src := f.userSource(t, Config{BaseDN: f.psoOU})
	users, _, _, _, err := collect(t, src.Users(context.Background(), ""))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]connectors.User{}
	for _, u := range users {
		got[u.Username] = u
	}
	for name, wantDays := range map[string]int64{
		"p-direct": 11, "p-nested": 17, "p-dist": 42, "p-primary": 29, "p-plain": 42, "p-dlocal": 37, "p-forever": 31,
	} {
		v := bySam[f.sam(name)]
		if age := (v.expiry - v.pwdLastSet) / day; age != wantDays {
			t.Errorf("%s: the DC says a max age of %d days, the test expects %d", name, age, wantDays)
		}
		u := got[f.sam(name)]
		if want := fileTime(v.expiry); !u.PasswordExpiresAt.Equal(want) {
			t.Errorf("%s: expires %s, the DC says %s", name, u.PasswordExpiresAt, want)
		}
	}
	if tie := bySam[f.sam("p-tie")]; (tie.expiry-tie.pwdLastSet)/day != 19 && (tie.expiry-tie.pwdLastSet)/day != 23 {
		t.Errorf("p-tie: the DC applies neither tie PSO")
	}
	forever := got[f.sam("p-forever")]
	v := bySam[f.sam("p-forever")]
	if v.lockoutTime == 0 {
		t.Fatalf("p-forever was not locked out by failed binds")
	}
	if forever.LockedOut != (v.uacComputed&ufLockout != 0) {
		t.Errorf("p-forever: locked %t, the DC says computed UAC %#x", forever.LockedOut, v.uacComputed)
	}
	t.Logf("lockout duration 0x8000000000000000: the DC says locked=%t (asked of the DC, not computed)", v.uacComputed&ufLockout != 0)
}

// TestConformance runs the connector conformance suite on the seeded OU.
func TestConformance(t *testing.T) {
	f := dc(t)
	connectortest.RunUserSource(t, connectortest.UserSourceCase{
		Open:      func(t *testing.T) connectors.UserSource { return f.userSource(t, Config{}) },
		WantUsers: seedUsers,
		MinPages:  3,
	})
}

func usernames(f *fixture, users []connectors.User) []string {
	var out []string
	for _, u := range users {
		out = append(out, strings.TrimPrefix(u.Username, f.sam("")))
	}
	sort.Strings(out)
	return out
}

// TestScope covers OU scope, several bases, nested group scope, exclusions
// and a group DN full of filter metacharacters.
func TestScope(t *testing.T) {
	f := dc(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"OU", Config{BaseDN: f.scopeOU}, "s1 s2 s3 s4 s5"},
		{"two bases", Config{BaseDN: f.subOU, BaseDNs: []string{f.incOU}}, "inc-a inc-b inc-c inc-d s5"},
		{"excluded OU", Config{BaseDN: f.scopeOU, ExcludeOUs: []string{strings.ToLower(f.subOU)}}, "s1 s2 s3 s4"},
		{"nested group", Config{BaseDN: f.BaseDN, GroupDNs: []string{f.dn["S-outer"]}}, "s1 s2 s3"},
		{"two groups", Config{BaseDN: f.BaseDN, GroupDNs: []string{f.dn["S-inner"], f.dn[`odd*(grp)\x`]}}, "s2 s3 s4"},
		{"excluded group", Config{BaseDN: f.scopeOU, GroupDNs: []string{f.dn["S-outer"]}, ExcludeGroups: []string{f.dn["S-excl"]}}, "s1 s2"},
		{"excluded filter", Config{BaseDN: f.scopeOU, ExcludeFilter: "(title=exclude-me)"}, "s2 s3 s4 s5"},
		{"metacharacters", Config{BaseDN: f.BaseDN, GroupDNs: []string{f.dn[`odd*(grp)\x`]}}, "s4"},
		{"metacharacters excluded", Config{BaseDN: f.scopeOU, ExcludeGroups: []string{f.dn[`odd*(grp)\x`]}}, "s1 s2 s3 s5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := f.userSource(t, tc.cfg)
			users, invalid, _, _, err := collect(t, src.Users(context.Background(), ""))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(usernames(f, users), " "); got != tc.want || len(invalid) != 0 {
				t.Errorf("got %q (invalid %v), want %q", got, invalid, tc.want)
			}
		})
	}
}

// TestIncremental changes three users (a new mobile, a lockout through real
// failed binds, a password reset) and expects exactly those three.
func TestIncremental(t *testing.T) {
	f := dc(t)
	src := f.userSource(t, Config{BaseDN: f.incOU})
	before, _, _, cursor, err := collect(t, src.Users(context.Background(), ""))
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 4 || cursor == "" {
		t.Fatalf("full listing: %d users, cursor %q", len(before), cursor)
	}
	// nothing changed yet
	none, _, _, cursor0, err := collect(t, src.Changes(context.Background(), cursor))
	if err != nil {
		t.Fatal(err)
	}
	if len(none) != 0 || cursor0 == "" {
		t.Fatalf("changes with nothing changed: %d users, cursor %q", len(none), cursor0)
	}

	c, err := f.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := modify(c, f.dn["inc-a"], "replace", "mobile", "+44 7700 900123"); err != nil {
		t.Fatal(err)
	}
	if err := f.lockOut("inc-b", 3); err != nil {
		t.Fatal(err)
	}
	if err := modify(c, f.dn["inc-c"], "replace", "unicodePwd", encodePassword("N3w-Passw0rd!"+f.tag)); err != nil {
		t.Fatal(err)
	}

	changed, invalid, _, cursor2, err := collect(t, src.Changes(context.Background(), cursor))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(usernames(f, changed), " "); got != "inc-a inc-b inc-c" || len(invalid) != 0 {
		t.Fatalf("changes: %q (invalid %v), want \"inc-a inc-b inc-c\"", got, invalid)
	}
	if cursor2 == "" || cursor2 == cursor {
		t.Errorf("the last page carries cursor %q (before: %q)", cursor2, cursor)
	}
	old := map[string]connectors.User{}
	for _, u := range before {
		old[u.ExternalID] = u
	}
	for _, u := range changed {
		switch strings.TrimPrefix(u.Username, f.sam("")) {
		case "inc-a":
			if u.Mobile != "+44 7700 900123" {
				t.Errorf("inc-a: mobile %q", u.Mobile)
			}
		case "inc-b":
			if !u.LockedOut || u.LockedOutAt.IsZero() {
				t.Errorf("inc-b is not locked out: %+v", u)
			}
		case "inc-c":
			if !u.PasswordLastSet.After(old[u.ExternalID].PasswordLastSet) || !u.PasswordExpiresAt.After(old[u.ExternalID].PasswordExpiresAt) {
				t.Errorf("inc-c: password last set %s, expires %s; before %s, %s", u.PasswordLastSet, u.PasswordExpiresAt,
					old[u.ExternalID].PasswordLastSet, old[u.ExternalID].PasswordExpiresAt)
			}
		}
	}
	// and from the new cursor, nothing
	again, _, _, _, err := collect(t, src.Changes(context.Background(), cursor2))
	if err != nil || len(again) != 0 {
		t.Errorf("changes since the new cursor: %d users, %v", len(again), err)
	}
}

// TestResyncRequired: a cursor from another DC, another invocation, the
// future, another scope, a changed policy group, or garbage asks for a full
// run.
func TestResyncRequired(t *testing.T) {
	f := dc(t)
	src := f.userSource(t, Config{BaseDN: f.incOU})
	_, _, _, raw, err := collect(t, src.Users(context.Background(), ""))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := decodeCursor(raw)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(*cursor)) string {
		c := cur
		fn(&c)
		return mustJSON(t, c)
	}
	cases := map[string]string{
		"other invocationId": edit(func(c *cursor) { c.InvocationID = "00000000-0000-0000-0000-000000000001" }),
		"other DC":           edit(func(c *cursor) { c.DC = "dc2." + f.realm }),
		"USN ahead of DC":    edit(func(c *cursor) { c.USN += 1_000_000 }),
		"malformed":          `{"usn":`,
		"empty":              "",
		"no DC":              `{"usn":5,"invocation_id":"x"}`,
	}
	for name, cursor := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, _, _, err := collect(t, src.Changes(context.Background(), cursor))
			if !errors.Is(err, connectors.ErrResyncRequired) {
				t.Fatalf("got %v, want ErrResyncRequired", err)
			}
		})
	}
	t.Run("other scope", func(t *testing.T) {
		other := f.userSource(t, Config{BaseDN: f.incOU, ExcludeFilter: "(title=x)"})
		_, _, _, _, err := collect(t, other.Changes(context.Background(), raw))
		if !errors.Is(err, connectors.ErrResyncRequired) {
			t.Fatalf("got %v, want ErrResyncRequired", err)
		}
	})
	t.Run("PSO group membership changed", func(t *testing.T) {
		c, err := f.admin()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := modify(c, f.dn["G-inner"], "add", "member", f.dn["inc-d"]); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := modify(c, f.dn["G-inner"], "delete", "member", f.dn["inc-d"]); err != nil {
				t.Error(err)
			}
		}()
		_, _, _, _, err = collect(t, src.Changes(context.Background(), raw))
		if !errors.Is(err, connectors.ErrResyncRequired) {
			t.Fatalf("got %v, want ErrResyncRequired", err)
		}
	})
}

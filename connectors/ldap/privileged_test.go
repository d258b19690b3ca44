package ldap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
	"selfserve/internal/importer"
	"selfserve/internal/redact"
	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// privFixture is the objects a test creates under OU=priv-<prefix>: users
// pd (a direct member of Domain Admins), pn (a member of P-inner, nested in
// P-outer, nested in Domain Admins), pa (adminCount=1, in no protected
// group), po (ordinary), pc (a member of P-custom, a group the connection
// lists in privileged_groups); every name starts with the prefix.
type privFixture struct {
	ou           string
	domainAdmins string
	prefix       string
}

// dn returns the DN of the object named (without the prefix).
func (p privFixture) dn(f *fixture, name string) string { return f.dn[p.prefix+name] }

func (f *fixture) setupPrivileged(t *testing.T, prefix string) privFixture {
	t.Helper()
	c, err := f.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := privFixture{ou: "OU=priv-" + prefix + "," + f.root, domainAdmins: "CN=Domain Admins,CN=Users," + f.BaseDN, prefix: prefix}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(addEntry(c, p.ou, map[string][]string{"objectClass": {"organizationalUnit"}}))
	for _, name := range []string{"pd", "pn", "pa", "po", "pc"} {
		must(f.addUser(c, prefix+name, p.ou))
	}
	for _, name := range []string{"P-outer", "P-inner", "P-custom"} {
		name = prefix + name
		dn := "CN=" + name + "-" + f.tag + "," + p.ou
		f.dn[name] = dn
		must(addEntry(c, dn, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {f.sam(name)}, "groupType": {groupGlobalSecurity}}))
	}
	for _, m := range [][2]string{{"P-outer", "P-inner"}, {"P-inner", "pn"}, {"P-custom", "pc"}} {
		must(modify(c, p.dn(f, m[0]), "add", "member", p.dn(f, m[1])))
	}
	must(modify(c, p.domainAdmins, "add", "member", p.dn(f, "pd"), p.dn(f, "P-outer")))
	t.Cleanup(func() {
		c, err := f.admin()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		for _, m := range []string{"pd", "P-outer"} {
			_ = modify(c, p.domainAdmins, "delete", "member", p.dn(f, m))
		}
	})
	must(modify(c, p.dn(f, "pa"), "replace", "adminCount", "1"))
	return p
}

// privilegeOf lists the users of a listing as name (without the prefix) ->
// reason ("" for not privileged).
func privilegeOf(t *testing.T, f *fixture, p privFixture, users []connectors.User) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, u := range users {
		name := strings.TrimPrefix(u.Username, f.sam(p.prefix))
		if u.Privileged != (u.PrivilegedReason != "") {
			t.Errorf("%s: privileged %t with reason %q", name, u.Privileged, u.PrivilegedReason)
		}
		if u.PrivilegeUnknown {
			t.Errorf("%s: could not be classified: %s", name, u.PrivilegedReason)
		}
		out[name] = u.PrivilegedReason
	}
	return out
}

func checkPrivileges(t *testing.T, what string, got map[string]string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s: %s not listed", what, name)
		} else if !strings.Contains(g, w) || (w == "") != (g == "") {
			t.Errorf("%s: %s privileged because %q, want %q", what, name, g, w)
		}
	}
}

// TestPrivileged: on the DC, a direct member of Domain Admins, a member
// through two levels of nested groups, an adminCount=1 user in no protected
// group and an ordinary user are classified by a full listing; an
// incremental run sees an adminCount change on the user itself, and asks for
// a full run when a protected group's membership changed (a user added to
// a nested group, a user removed from Domain Admins), which classifies them
// afresh.
func TestPrivileged(t *testing.T) {
	f := dc(t)
	p := f.setupPrivileged(t, "a")
	ctx := context.Background()
	src := f.userSource(t, Config{BaseDN: p.ou, PrivilegedGroups: []string{p.dn(f, "P-custom")}})
	users, invalid, _, cursor, err := collect(t, src.Users(ctx, ""))
	if err != nil || len(invalid) != 0 {
		t.Fatalf("full listing: %v, invalid %v", err, invalid)
	}
	nested := "member of Domain Admins through the nested group aP-inner-" + f.tag
	checkPrivileges(t, "full", privilegeOf(t, f, p, users), map[string]string{
		"pd": "member of Domain Admins", "pn": nested, "pa": "adminCount=1", "po": "",
		"pc": "member of aP-custom-" + f.tag,
	})
	if got := privilegeOf(t, f, p, users)["pd"]; got != "member of Domain Admins" {
		t.Errorf("pd: %q, want exactly \"member of Domain Admins\"", got)
	}

	// Nothing changed: nothing listed.
	none, _, _, cursor2, err := collect(t, src.Changes(ctx, cursor))
	if err != nil || len(none) != 0 {
		t.Fatalf("changes with nothing changed: %d users, %v", len(none), err)
	}

	c, err := f.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// adminCount on the user itself: the incremental run sees it.
	if err := modify(c, p.dn(f, "po"), "replace", "adminCount", "1"); err != nil {
		t.Fatal(err)
	}
	changed, _, _, cursor3, err := collect(t, src.Changes(ctx, cursor2))
	if err != nil {
		t.Fatalf("changes after adminCount: %v", err)
	}
	checkPrivileges(t, "incremental", privilegeOf(t, f, p, changed), map[string]string{"po": "adminCount=1"})
	if len(changed) != 1 {
		t.Errorf("incremental after adminCount: %d users, want po only", len(changed))
	}
	if err := modify(c, p.dn(f, "po"), "delete", "adminCount"); err != nil {
		t.Fatal(err)
	}
	_, _, _, cursor4, err := collect(t, src.Changes(ctx, cursor3))
	if err != nil {
		t.Fatal(err)
	}

	// A user added to a nested group, another removed from Domain Admins:
	// neither user object changes, so the incremental cursor must give way
	// to a full run.
	if err := modify(c, p.dn(f, "P-inner"), "add", "member", p.dn(f, "po")); err != nil {
		t.Fatal(err)
	}
	if err := modify(c, p.domainAdmins, "delete", "member", p.dn(f, "pd")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := collect(t, src.Changes(ctx, cursor4)); !errors.Is(err, connectors.ErrResyncRequired) {
		t.Fatalf("changes after protected group membership changed: %v, want ErrResyncRequired", err)
	}
	users, _, _, _, err = collect(t, src.Users(ctx, ""))
	if err != nil {
		t.Fatal(err)
	}
	checkPrivileges(t, "full after the change", privilegeOf(t, f, p, users), map[string]string{
		"pd": "", "pn": nested, "pa": "adminCount=1", "po": nested,
	})
}

// TestPrivilegedGroupsSetting: a privileged_groups entry that is not a DN
// fails validation; one naming no object, or an object that is not a
// group, fails the connection test (and the listing) saying so.
func TestPrivilegedGroupsSetting(t *testing.T) {
	if _, err := (&Config{URL: "ldaps://dc.example", BaseDN: "DC=example", BindDN: "x", BindPassword: "y",
		PrivilegedGroups: []string{"Domain Admins"}}).Open(connectors.Env{ID: "t"}); !errors.Is(err, connectors.ErrInvalidConfig) || !strings.Contains(err.Error(), "privileged_groups") {
		t.Errorf("a name instead of a DN: %v", err)
	}
	f := dc(t)
	for _, tc := range []struct {
		name, dn string
		kind     error
		want     string
	}{
		{"no such object", "CN=NoSuchGroup," + f.BaseDN, connectors.ErrNotFound, "does not exist"},
		{"a user", f.dn["inc-a"], connectors.ErrInvalidConfig, "is not a group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := f.userSource(t, Config{BaseDN: f.incOU, PrivilegedGroups: []string{tc.dn}})
			err := src.Ping(context.Background())
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), "privileged_groups") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ping: %v, want %v saying %q", err, tc.kind, tc.want)
			}
			if _, _, _, _, err := collect(t, src.Users(context.Background(), "")); !errors.Is(err, tc.kind) {
				t.Errorf("listing: %v", err)
			}
		})
	}
}

// TestPrivilegedUnreadable: a bind account denied reading the members of
// the Builtin Administrators group (an ACE added with samba-tool, removed
// afterwards) cannot classify users: those not found privileged otherwise
// are reported privileged with PrivilegeUnknown and the reason.
func TestPrivilegedUnreadable(t *testing.T) {
	f := dc(t)
	p := f.setupPrivileged(t, "b")
	administrators := "CN=Administrators,CN=Builtin," + f.BaseDN
	c, err := f.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Keep the DACL to restore it (the fixture's database outlives runs).
	sdFlags := goldap.NewControlString("1.2.840.113556.1.4.801", true, "\x30\x03\x02\x01\x04") // DACL only
	res, err := c.Search(goldap.NewSearchRequest(administrators, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"nTSecurityDescriptor"}, []goldap.Control{sdFlags}))
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].GetRawAttributeValue("nTSecurityDescriptor")) == 0 {
		t.Fatalf("reading the DACL of %s: %v", administrators, err)
	}
	original := res.Entries[0].GetRawAttributeValue("nTSecurityDescriptor")
	t.Cleanup(func() {
		c, err := f.admin()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		req := goldap.NewModifyRequest(administrators, []goldap.Control{sdFlags})
		req.Replace("nTSecurityDescriptor", []string{string(original)})
		if err := c.Modify(req); err != nil {
			t.Errorf("restoring the DACL of %s: %v", administrators, err)
		}
	})
	sid, err := sidOf(c, f.dn["reader"])
	if err != nil {
		t.Fatal(err)
	}
	// deny the reader Read Property on member (bf9679c0-…)
	cmd := exec.Command("samba-tool", "dsacl", "set", "-s", f.Dir+"/etc/smb.conf", "-H", f.Dir+"/private/sam.ldb", "--objectdn="+administrators,
		"--sddl=(OD;;RP;bf9679c0-0de6-11d0-a285-00aa003049e2;;"+sid+")")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("samba-tool dsacl set: %v\n%s", err, out)
	}

	src := f.userSource(t, Config{BaseDN: p.ou, BindDN: redact.Secret(f.readerUPN), BindPassword: redact.Secret(f.UserPass)})
	users, _, _, _, err := collect(t, src.Users(context.Background(), ""))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]connectors.User{}
	for _, u := range users {
		got[strings.TrimPrefix(u.Username, f.sam(p.prefix))] = u
	}
	if po := got["po"]; !po.Privileged || !po.PrivilegeUnknown || !strings.Contains(po.PrivilegedReason, "cannot read the members of the Builtin Administrators") {
		t.Errorf("po, not classifiable: %+v", po)
	}
	if pd := got["pd"]; !pd.Privileged || pd.PrivilegeUnknown {
		t.Errorf("pd, a member of Domain Admins (readable): %+v", pd)
	}
	if pa := got["pa"]; !pa.Privileged || pa.PrivilegeUnknown {
		t.Errorf("pa, adminCount=1: %+v", pa)
	}
}

// sidOf returns the objectSid of dn in its string form.
func sidOf(c *goldap.Conn, dn string) (string, error) {
	res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return "", fmt.Errorf("objectSid of %s: %v", dn, err)
	}
	b := res.Entries[0].GetRawAttributeValue("objectSid")
	if len(b) < 8 || len(b) != 8+4*int(b[1]) {
		return "", fmt.Errorf("%s: malformed objectSid", dn)
	}
	auth := uint64(0)
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	s := fmt.Sprintf("S-%d-%d", b[0], auth)
	for i := 0; i < int(b[1]); i++ {
		s += fmt.Sprintf("-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return s, nil
}

// fixedConfig opens an already opened source (the sync engine's registry
// entry for the test's connection).
type fixedConfig struct{ src connectors.Source }

func (c *fixedConfig) Open(connectors.Env) (connectors.Source, error) { return c.src, nil }

// TestPrivilegedSync runs the sync engine on the DC into a store: a full
// sync flags the direct, nested and adminCount users (one audit entry each);
// after a user is added to a nested group and another leaves Domain Admins,
// the next (incremental) sync falls back to a full listing and flags both
// changes, with their audit entries.
func TestPrivilegedSync(t *testing.T) {
	f := dc(t)
	p := f.setupPrivileged(t, "c")
	ctx := context.Background()
	st := storetest.OpenMigrated(t, "sqlite:"+filepath.Join(t.TempDir(), "test.db"))
	tn, _, err := st.UpsertTenant(ctx, store.Tenant{Name: "acme", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	if err != nil {
		t.Fatal(err)
	}
	cu, _, err := st.UpsertCustomer(ctx, store.Customer{TenantID: tn.ID, Name: "Contoso", DefaultRegion: "US"})
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := st.UpsertConnection(ctx, store.Connection{TenantID: tn.ID, CustomerID: &cu.ID, Name: "contoso-ad", Kind: connectors.KindAD,
		Settings: []byte(`{}`), EnableSelfServe: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	src := f.userSource(t, Config{BaseDN: p.ou})
	im := &importer.Importer{Store: st, Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindAD: func() connectors.Config { return &fixedConfig{src} },
	})}
	sync := func() store.SyncRun {
		t.Helper()
		res, err := im.Sync(ctx, importer.Request{TenantID: tn.ID, ConnectionID: conn.ID, Trigger: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return res.Run
	}
	flags := func() map[string]bool {
		t.Helper()
		us, err := st.EndUsers(ctx, tn.ID, store.EndUserFilter{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, u := range us {
			out[strings.TrimPrefix(u.Username, f.sam(p.prefix))] = u.Privileged
		}
		return out
	}
	audits := func() int {
		t.Helper()
		es, err := st.AuditLog(ctx, tn.ID, store.AuditFilter{Action: "end_user.privileged"})
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	sync()
	if got, want := flags(), map[string]bool{"pd": true, "pn": true, "pa": true, "po": false, "pc": false}; !maps.Equal(got, want) {
		t.Fatalf("after the full sync: %v, want %v", got, want)
	}
	if n := audits(); n != 3 {
		t.Errorf("%d audit entries after the full sync, want 3", n)
	}
	if run := sync(); run.Mode != store.ModeIncremental {
		t.Errorf("nothing changed: a %s run", run.Mode)
	}

	c, err := f.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := modify(c, p.dn(f, "P-inner"), "add", "member", p.dn(f, "po")); err != nil {
		t.Fatal(err)
	}
	if err := modify(c, p.domainAdmins, "delete", "member", p.dn(f, "pd")); err != nil {
		t.Fatal(err)
	}
	if run := sync(); run.Mode != store.ModeFull {
		t.Errorf("after a protected group changed: a %s run, want the incremental cursor to give way to a full one", run.Mode)
	}
	if got, want := flags(), map[string]bool{"pd": false, "pn": true, "pa": true, "po": true, "pc": false}; !maps.Equal(got, want) {
		t.Fatalf("after the membership changes: %v, want %v", got, want)
	}
	if n := audits(); n != 5 {
		t.Errorf("%d audit entries, want 5", n)
	}
}

package ldap

// The tests of this package run against a REAL Samba AD domain controller,
// brought up by scripts/ad-dc.sh (the project's fixture, through
// internal/addc): `up`, then `seed 250`. The DC's state lives in $AD_DIR
// (default $TMPDIR/selfserve-ad-dc), it listens on $AD_BIND_IP (default
// 127.0.0.3), and is shared by runs; a DC this test started is stopped at
// the end (`ad-dc.sh stop` keeps the database, so the next run starts in
// about a second), one that was already running is left running.
//
// On top of the seeded users, setupObjects creates what the tests change or
// need in odd shapes (nested and distribution groups, PSOs of every kind, a
// group named with filter metacharacters, a low-privileged reader) under
// OU=gotest-<tag>, and removes it all at the end.
//
// The tests skip, saying why, when not run as root, when Samba is not
// installed (fail instead with CI=true), or with -short.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
	"selfserve/internal/addc"
	"selfserve/internal/redact"
)

// seedUsers is the size of the seeded directory: with page_size 100 the
// seeded OU takes three pages.
const seedUsers = 250

// fixture is the running DC plus the objects this test run created.
type fixture struct {
	*addc.DC
	tag       string
	root      string // OU=gotest-<tag>,<base>
	incOU     string
	psoOU     string
	scopeOU   string
	subOU     string
	dn        map[string]string // short name -> DN of created objects
	psos      []string          // DNs of created PSOs
	readerUPN string
	realm     string
}

var (
	fxOnce    sync.Once
	fx        *fixture
	fxUnavail error
	fxErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fx != nil {
		if err := fx.teardown(); err != nil {
			fmt.Fprintln(os.Stderr, "ad fixture teardown:", err)
		}
	}
	os.Exit(code)
}

// dc returns the running fixture, starting it on first use, or skips.
func dc(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("AD tests need a Samba AD DC: skipped with -short")
	}
	fxOnce.Do(func() { fx, fxUnavail, fxErr = startFixture() })
	addc.Skip(t, fxUnavail)
	if fxErr != nil {
		t.Fatalf("AD fixture: %v", fxErr)
	}
	return fx
}

// startFixture starts the DC (its own, on 127.0.0.3, unless $AD_DIR and
// $AD_BIND_IP say otherwise: not the script's default 127.0.0.1 of a
// hand-run DC) and creates the test objects; it returns why the DC cannot
// run here, if it cannot.
func startFixture() (f *fixture, unavailable, err error) {
	if err := addc.Available(); err != nil {
		return nil, err, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	o := addc.Options{Dir: filepath.Join(os.TempDir(), "selfserve-ad-dc"), BindIP: "127.0.0.3", Users: seedUsers}.FromEnv()
	d, err := addc.Start(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	f = &fixture{DC: d, realm: strings.ToLower(d.Realm)}
	if err := f.setupObjects(); err != nil {
		return f, nil, fmt.Errorf("creating test objects: %w", err)
	}
	return f, nil, nil
}

func (f *fixture) teardown() error {
	var errs []error
	if f.root != "" {
		if c, err := f.admin(); err == nil {
			errs = append(errs, f.removeObjects(c, f.root, f.psos))
			c.Close()
		} else {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, f.Close())...)
}

// admin opens an LDAPS connection bound as the domain administrator.
func (f *fixture) admin() (*goldap.Conn, error) {
	return f.bindAs(f.BindUPN, f.BindPass)
}

func (f *fixture) bindAs(user, pass string) (*goldap.Conn, error) {
	cfg := f.config(Config{BindDN: redact.Secret(user), BindPassword: redact.Secret(pass)})
	src, err := cfg.Open(connectors.Env{ID: "fixture"})
	if err != nil {
		return nil, err
	}
	c, err := src.(*source).dial(context.Background())
	if err != nil {
		return nil, err
	}
	return c.Conn, nil
}

// host is the DC's address (on its certificate).
func (f *fixture) host() string {
	u, err := url.Parse(f.LDAPSURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// config returns a Config for the fixture over LDAPS with its CA, bound as
// the administrator, with page size 100; over sets more fields.
func (f *fixture) config(over Config) Config {
	c := over
	if c.URL == "" {
		c.URL = f.LDAPSURL
	}
	if c.CAFile == "" && (strings.HasPrefix(c.URL, "ldaps") || c.StartTLS) {
		c.CAFile = f.CACert
	}
	if c.BaseDN == "" && len(c.BaseDNs) == 0 {
		c.BaseDN = f.UsersDN
	}
	if c.PageSize == 0 {
		c.PageSize = 100
	}
	if c.BindDN == "" {
		c.BindDN = redact.Secret(f.BindUPN)
	}
	if c.BindPassword == "" {
		c.BindPassword = redact.Secret(f.BindPass)
	}
	return c
}

// open opens a source for the fixture, logging to the test's output.
func (f *fixture) open(t *testing.T, over Config) connectors.Source {
	t.Helper()
	cfg := f.config(over)
	src, err := cfg.Open(connectors.Env{ID: "test", Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return src
}

// userSource opens a source as a DeltaSource.
func (f *fixture) userSource(t *testing.T, over Config) *source {
	t.Helper()
	return f.open(t, over).(*source)
}

// ---- test objects -------------------------------------------------------

const (
	groupGlobalSecurity      = "-2147483646"
	groupDomainLocalSecurity = "-2147483644"
	groupGlobalDistribution  = "2"
	day                      = int64(864000000000)
)

// setupObjects creates the test OU tree, users, groups and PSOs.
func (f *fixture) setupObjects() error {
	c, err := f.admin()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := f.removeStale(c); err != nil {
		return err
	}
	f.tag = strconv.FormatInt(time.Now().UnixNano()%0xfffff, 36)
	f.root = "OU=gotest-" + f.tag + "," + f.BaseDN
	f.incOU = "OU=inc," + f.root
	f.psoOU = "OU=pso," + f.root
	f.scopeOU = "OU=scope," + f.root
	f.subOU = "OU=sub," + f.scopeOU
	f.dn = map[string]string{}
	f.readerUPN = f.sam("reader") + "@" + f.realm
	for _, ou := range []string{f.root, f.incOU, f.psoOU, f.scopeOU, f.subOU} {
		if err := addEntry(c, ou, map[string][]string{"objectClass": {"organizationalUnit"}}); err != nil {
			return err
		}
	}
	users := []struct{ name, ou string }{
		{"inc-a", f.incOU}, {"inc-b", f.incOU}, {"inc-c", f.incOU}, {"inc-d", f.incOU},
		{"p-direct", f.psoOU}, {"p-nested", f.psoOU}, {"p-dist", f.psoOU}, {"p-tie", f.psoOU},
		{"p-primary", f.psoOU}, {"p-forever", f.psoOU}, {"p-dlocal", f.psoOU}, {"p-plain", f.psoOU},
		{"s1", f.scopeOU}, {"s2", f.scopeOU}, {"s3", f.scopeOU}, {"s4", f.scopeOU}, {"s5", f.subOU},
		{"reader", f.root},
	}
	for _, u := range users {
		if err := f.addUser(c, u.name, u.ou); err != nil {
			return err
		}
	}
	if err := modify(c, f.dn["s1"], "replace", "title", "exclude-me"); err != nil {
		return err
	}
	groups := []struct{ name, ou, kind string }{
		{"G-direct", f.psoOU, groupGlobalSecurity}, {"G-inner", f.psoOU, groupGlobalSecurity},
		{"G-outer", f.psoOU, groupGlobalSecurity}, {"G-dist", f.psoOU, groupGlobalDistribution},
		{"G-tieA", f.psoOU, groupGlobalSecurity}, {"G-tieB", f.psoOU, groupGlobalSecurity},
		{"G-primary", f.psoOU, groupGlobalSecurity}, {"G-forever", f.psoOU, groupGlobalSecurity},
		{"G-dlocal", f.psoOU, groupDomainLocalSecurity},
		{"S-outer", f.scopeOU, groupGlobalSecurity}, {"S-inner", f.scopeOU, groupGlobalSecurity},
		{"S-excl", f.scopeOU, groupGlobalSecurity}, {`odd*(grp)\x`, f.scopeOU, groupGlobalSecurity},
	}
	for _, g := range groups {
		cn := g.name + "-" + f.tag
		dn := "CN=" + escapeDNValue(cn) + "," + g.ou
		f.dn[g.name] = dn
		if err := addEntry(c, dn, map[string][]string{
			"objectClass": {"group"}, "sAMAccountName": {f.sam(strings.NewReplacer("*", "", "(", "", ")", "", `\`, "").Replace(g.name))}, "groupType": {g.kind},
		}); err != nil {
			return err
		}
	}
	members := [][2]string{
		{"G-direct", "p-direct"}, {"G-inner", "p-nested"}, {"G-outer", "G-inner"}, {"G-dist", "p-dist"},
		{"G-outer", "G-dist"}, {"G-tieA", "p-tie"}, {"G-tieB", "p-tie"}, {"G-primary", "p-primary"},
		{"G-forever", "p-forever"}, {"G-dlocal", "p-dlocal"},
		{"S-outer", "s1"}, {"S-outer", "S-inner"}, {"S-inner", "s2"}, {"S-inner", "s3"}, {"S-excl", "s3"},
		{`odd*(grp)\x`, "s4"},
	}
	for _, m := range members {
		if err := modify(c, f.dn[m[0]], "add", "member", f.dn[m[1]]); err != nil {
			return err
		}
	}
	lockGroup := "CN=LockoutPolicyUsers,OU=Groups," + f.BaseDN
	if err := modify(c, lockGroup, "add", "member", f.dn["inc-b"]); err != nil {
		return err
	}
	// p-primary's primary group becomes G-primary
	rid, err := ridOf(c, f.dn["G-primary"])
	if err != nil {
		return err
	}
	if err := modify(c, f.dn["p-primary"], "replace", "primaryGroupID", strconv.FormatUint(uint64(rid), 10)); err != nil {
		return err
	}
	psos := []struct {
		name        string
		precedence  int
		maxAgeDays  int64
		lockout     int64 // msDS-LockoutDuration
		threshold   int
		appliesTo   string
		description string
	}{
		{"direct", 50, 11, -30 * 60 * 1e7, 0, "p-direct", "direct user application beats the group's better precedence"},
		{"grp", 5, 13, -30 * 60 * 1e7, 0, "G-direct", ""},
		{"nested", 40, 17, -30 * 60 * 1e7, 0, "G-outer", "through G-inner; not through the distribution group G-dist"},
		{"tieA", 60, 19, -30 * 60 * 1e7, 0, "G-tieA", "same precedence as tieB: smallest objectGUID wins"},
		{"tieB", 60, 23, -30 * 60 * 1e7, 0, "G-tieB", ""},
		{"primary", 70, 29, -30 * 60 * 1e7, 0, "G-primary", "through the primary group"},
		{"forever", 3, 31, math.MinInt64, 2, "G-forever", "lockout duration 0x8000000000000000"},
		{"dlocal", 80, 37, -30 * 60 * 1e7, 0, "G-dlocal", "domain-local security group"},
	}
	psc := "CN=Password Settings Container,CN=System," + f.BaseDN
	for _, p := range psos {
		dn := "CN=gotest-" + f.tag + "-" + p.name + "," + psc
		if err := addEntry(c, dn, map[string][]string{
			"objectClass":                              {"msDS-PasswordSettings"},
			"msDS-PasswordSettingsPrecedence":          {strconv.Itoa(p.precedence)},
			"msDS-PasswordReversibleEncryptionEnabled": {"FALSE"},
			"msDS-PasswordHistoryLength":               {"0"},
			"msDS-PasswordComplexityEnabled":           {"FALSE"},
			"msDS-MinimumPasswordLength":               {"1"},
			"msDS-MinimumPasswordAge":                  {"0"},
			"msDS-MaximumPasswordAge":                  {strconv.FormatInt(-p.maxAgeDays*day, 10)},
			"msDS-LockoutThreshold":                    {strconv.Itoa(p.threshold)},
			"msDS-LockoutObservationWindow":            {strconv.FormatInt(-30*60*1e7, 10)},
			"msDS-LockoutDuration":                     {strconv.FormatInt(p.lockout, 10)},
			"msDS-PSOAppliesTo":                        {f.dn[p.appliesTo]},
		}); err != nil {
			return err
		}
		f.psos = append(f.psos, dn)
	}
	// lock p-forever out with real failed binds (threshold 2)
	return f.lockOut("p-forever", 2)
}

// sam is the sAMAccountName of a test object (at most 20 characters).
func (f *fixture) sam(name string) string {
	s := "gt" + f.tag + "-" + name
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

func (f *fixture) addUser(c *goldap.Conn, name, ou string) error {
	dn := "CN=" + f.sam(name) + "," + ou
	f.dn[name] = dn
	return addEntry(c, dn, map[string][]string{
		"objectClass":        {"user"},
		"sAMAccountName":     {f.sam(name)},
		"userPrincipalName":  {f.sam(name) + "@" + f.realm},
		"givenName":          {"Test"},
		"sn":                 {name},
		"displayName":        {"Test " + name},
		"mail":               {f.sam(name) + "@" + f.realm},
		"mobile":             {"+1 555 0100"},
		"unicodePwd":         {encodePassword(f.UserPass)},
		"userAccountControl": {"512"},
	})
}

// lockOut makes n failed binds as the named test user.
func (f *fixture) lockOut(name string, n int) error {
	for i := 0; i < n; i++ {
		c, err := f.bindAs(f.sam(name)+"@"+f.realm, "wrong-password")
		if err == nil {
			c.Close()
			return fmt.Errorf("bind as %s with a wrong password succeeded", name)
		}
		if !errors.Is(err, connectors.ErrUnauthorized) {
			return err
		}
	}
	return nil
}

// removeStale deletes what crashed earlier runs left behind.
func (f *fixture) removeStale(c *goldap.Conn) error {
	res, err := c.Search(goldap.NewSearchRequest(f.BaseDN, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=organizationalUnit)(ou=gotest-*))", []string{"1.1"}, nil))
	if err != nil {
		return err
	}
	psc := "CN=Password Settings Container,CN=System," + f.BaseDN
	psos, err := c.Search(goldap.NewSearchRequest(psc, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		"(cn=gotest-*)", []string{"1.1"}, nil))
	if err != nil {
		return err
	}
	var psoDNs []string
	for _, e := range psos.Entries {
		psoDNs = append(psoDNs, e.DN)
	}
	errs := []error{f.removeObjects(c, "", psoDNs)}
	for _, e := range res.Entries {
		errs = append(errs, f.removeObjects(c, e.DN, nil))
	}
	return errors.Join(errs...)
}

func (f *fixture) removeObjects(c *goldap.Conn, ou string, psos []string) error {
	var errs []error
	for _, p := range psos {
		if err := c.Del(goldap.NewDelRequest(p, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			errs = append(errs, err)
		}
	}
	if ou != "" {
		// users first: a group still someone's primary group cannot go
		res, err := c.Search(goldap.NewSearchRequest(ou, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
			"(&(objectClass=user)(!(primaryGroupID=513)))", []string{"1.1"}, nil))
		if err == nil {
			for _, e := range res.Entries {
				errs = append(errs, c.Del(goldap.NewDelRequest(e.DN, nil)))
			}
		} else if !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			errs = append(errs, err)
		}
		err = c.Del(goldap.NewDelRequest(ou, []goldap.Control{goldap.NewControlSubtreeDelete()}))
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			errs = append(errs, fmt.Errorf("delete %s: %w", ou, err))
		}
	}
	return errors.Join(errs...)
}

func addEntry(c *goldap.Conn, dn string, attrs map[string][]string) error {
	req := goldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := c.Add(req); err != nil {
		return fmt.Errorf("add %s: %w", dn, err)
	}
	return nil
}

func modify(c *goldap.Conn, dn, op, attr string, values ...string) error {
	req := goldap.NewModifyRequest(dn, nil)
	switch op {
	case "add":
		req.Add(attr, values)
	case "delete":
		req.Delete(attr, values)
	default:
		req.Replace(attr, values)
	}
	if err := c.Modify(req); err != nil {
		return fmt.Errorf("modify %s %s %s: %w", op, attr, dn, err)
	}
	return nil
}

func ridOf(c *goldap.Conn, dn string) (uint32, error) {
	res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil {
		return 0, err
	}
	sid := res.Entries[0].GetRawAttributeValue("objectSid")
	if len(sid) < 12 {
		return 0, fmt.Errorf("%s has no objectSid", dn)
	}
	return binary.LittleEndian.Uint32(sid[len(sid)-4:]), nil
}

// escapeDNValue escapes an attribute value for a DN string (RFC 4514).
func escapeDNValue(v string) string {
	var b strings.Builder
	for i, r := range v {
		switch {
		case strings.ContainsRune(`,+"\<>;=`, r), r == '#' && i == 0, r == ' ' && (i == 0 || i == len(v)-1):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// collect runs a listing to the end.
func collect(t *testing.T, pages func(func(connectors.UserPage, error) bool)) (users []connectors.User, invalid []connectors.InvalidRecord, npages int, cursor string, err error) {
	t.Helper()
	for page, perr := range pages {
		if perr != nil {
			return users, invalid, npages, cursor, perr
		}
		npages++
		users = append(users, page.Users...)
		invalid = append(invalid, page.Invalid...)
		if page.Cursor != "" {
			cursor = page.Cursor
		}
	}
	return users, invalid, npages, cursor, nil
}

// dcState is the DC's own verdict on one user, read with the constructed
// attributes in a separate search.
type dcVerdict struct {
	dn          string
	expiry      int64
	uacComputed int64
	pwdLastSet  int64
	lockoutTime int64
	description string
	sam         string
	mobile      string
	phone       string
	guid        []byte
}

// dcVerdicts reads the DC's computed expiry and lockout of every user under
// base, keyed by our ExternalID form.
func (f *fixture) dcVerdicts(t *testing.T, base string) map[string]dcVerdict {
	t.Helper()
	c, err := f.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.SearchWithPaging(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(&(objectCategory=person)(objectClass=user))",
		[]string{"objectGUID", "msDS-UserPasswordExpiryTimeComputed", "msDS-User-Account-Control-Computed", "pwdLastSet",
			"lockoutTime", "description", "sAMAccountName", "mobile", "telephoneNumber"}, nil), 500)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dcVerdict{}
	for _, e := range res.Entries {
		num := func(a string) int64 {
			n, err := strconv.ParseInt(e.GetAttributeValue(a), 10, 64)
			if err != nil && e.GetAttributeValue(a) != "" {
				t.Fatalf("%s: %s=%q", e.DN, a, e.GetAttributeValue(a))
			}
			return n
		}
		v := dcVerdict{
			dn: e.DN, expiry: num("msDS-UserPasswordExpiryTimeComputed"), uacComputed: num("msDS-User-Account-Control-Computed"),
			pwdLastSet: num("pwdLastSet"), lockoutTime: num("lockoutTime"), description: e.GetAttributeValue("description"),
			sam: e.GetAttributeValue("sAMAccountName"), mobile: e.GetAttributeValue("mobile"), phone: e.GetAttributeValue("telephoneNumber"),
			guid: e.GetRawAttributeValue("objectGUID"),
		}
		if e.GetAttributeValue("msDS-UserPasswordExpiryTimeComputed") == "" {
			t.Fatalf("the DC returned no msDS-UserPasswordExpiryTimeComputed for %s", e.DN)
		}
		out[guidString(v.guid)] = v
	}
	return out
}

// slogTo returns a logger writing text to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

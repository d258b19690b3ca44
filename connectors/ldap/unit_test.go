package ldap

// Tests of the pure parts (configuration, filter, mapping, the DC's expiry
// and lockout rules): no directory needed.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := (&Config{}).Open(connectors.Env{ID: "c1"})
	if !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	for _, w := range []string{"url is required", "base_dn is required", "bind_dn is required", "bind_password is required"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	noPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(noPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := func() Config {
		return Config{URL: "ldaps://dc1.corp.example.com", BaseDN: "OU=Staff,DC=corp,DC=example,DC=com",
			BindDN: "svc@corp.example.com", BindPassword: "hunter2-secret"}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"plain LDAP", func(c *Config) { c.URL = "ldap://dc1" }, "allow_insecure"},
		{"StartTLS on LDAPS", func(c *Config) { c.StartTLS = true }, "start_tls applies to ldap://"},
		{"scheme", func(c *Config) { c.URL = "https://dc1" }, "scheme must be ldaps or ldap"},
		{"port", func(c *Config) { c.URL = "ldaps://dc1:99999" }, "not a TCP port"},
		{"bad base DN", func(c *Config) { c.BaseDN = "not a dn" }, "not a valid DN"},
		{"overlapping bases", func(c *Config) { c.BaseDNs = []string{"ou=x,OU=Staff,DC=corp,DC=example,DC=com"} }, "overlap"},
		{"bad group DN", func(c *Config) { c.GroupDNs = []string{"oops"} }, "group_dns"},
		{"bad exclude filter", func(c *Config) { c.ExcludeFilter = "title=x" }, "exclude_filter"},
		{"unbalanced exclude filter", func(c *Config) { c.ExcludeFilter = "(title=x" }, "exclude_filter"},
		{"page size", func(c *Config) { c.PageSize = -1 }, "page_size"},
		{"timeout", func(c *Config) { c.Timeout = Duration(-time.Second) }, "timeout"},
		{"missing CA file", func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "cannot be read"},
		{"CA file without PEM", func(c *Config) { c.CAFile = noPEM }, "no PEM certificate"},
		{"mobile attribute", func(c *Config) { c.MobileAttributes = []string{"mobile)(x=*"} }, "not an attribute name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.edit(&cfg)
			_, err := cfg.Open(connectors.Env{ID: "c1"})
			if !errors.Is(err, connectors.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2-secret") || strings.Contains(err.Error(), "svc@corp") {
				t.Errorf("error reveals a secret: %v", err)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		cfg := valid()
		src, err := cfg.Open(connectors.Env{ID: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		s := src.(*source).cfg
		if s.addr != "dc1.corp.example.com:636" || s.pageSize != 500 || s.timeout != 30*time.Second ||
			strings.Join(s.mobile, ",") != "mobile" || s.transport != transportLDAPS || s.roots != nil {
			t.Errorf("defaults not applied: %+v", s)
		}
		cfg.URL, cfg.StartTLS = "ldap://dc1.corp.example.com", true
		src, err = cfg.Open(connectors.Env{ID: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if s := src.(*source).cfg; s.addr != "dc1.corp.example.com:389" || s.transport != transportStartTLS {
			t.Errorf("StartTLS settings: %+v", s)
		}
	})
	t.Run("secrets do not print", func(t *testing.T) {
		cfg := valid()
		for _, out := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), mustJSON(t, cfg)} {
			if strings.Contains(out, "hunter2-secret") || strings.Contains(out, "svc@corp") {
				t.Errorf("a secret is printed: %s", out)
			}
		}
	})
}

func TestRegistryDecode(t *testing.T) {
	reg := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindAD: func() connectors.Config { return new(Config) }})
	settings := `{"url":"ldaps://dc1:636","base_dn":"DC=corp,DC=test","timeout":"45s","page_size":200,
		"mobile_attributes":["mobile","telephoneNumber"],"group_dns":["CN=G,DC=corp,DC=test"]}`
	cfg, err := reg.Decode(connectors.KindAD, json.RawMessage(settings), json.RawMessage(`{"bind_dn":"svc@corp.test","bind_password":"pw"}`))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.(*Config)
	if time.Duration(c.Timeout) != 45*time.Second || c.PageSize != 200 || c.BindPassword.Reveal() != "pw" || len(c.GroupDNs) != 1 {
		t.Errorf("decoded %+v", c)
	}
	if _, err := reg.Decode(connectors.KindAD, json.RawMessage(`{"timeout":10}`), nil); err != nil {
		t.Errorf("timeout in seconds: %v", err)
	}
	if _, err := reg.Decode(connectors.KindAD, json.RawMessage(`{"timeout":"ten"}`), nil); err == nil {
		t.Error("a malformed timeout was accepted")
	}
	if _, err := reg.Decode(connectors.KindAD, json.RawMessage(`{"bind_pasword":"x"}`), nil); err == nil {
		t.Error("an unknown key was accepted")
	}
}

func TestFilterEscapesValues(t *testing.T) {
	cfg := Config{URL: "ldaps://dc1", BaseDN: "DC=corp,DC=test", BindDN: "a", BindPassword: "b",
		GroupDNs:      []string{`CN=odd*(grp)\\x,DC=corp,DC=test`},
		ExcludeGroups: []string{`CN=a)(objectClass=*,DC=corp,DC=test`},
		ExcludeFilter: "(title=Contractor)"}
	src, err := cfg.Open(connectors.Env{ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*source)
	got := s.filter(&cursor{USN: 41}, "")
	want := `(&(uSNChanged>=42)(objectCategory=person)(objectClass=user)(!(title=Contractor))` +
		`(|(memberOf:1.2.840.113556.1.4.1941:=CN=odd\2a\28grp\29\5c\5cx,DC=corp,DC=test))` +
		`(!(memberOf:1.2.840.113556.1.4.1941:=CN=a\29\28objectClass=\2a,DC=corp,DC=test)))`
	if got != want {
		t.Errorf("filter\n got %s\nwant %s", got, want)
	}
	if _, err := goldap.CompileFilter(got); err != nil {
		t.Errorf("the filter does not compile: %v", err)
	}
}

func TestGUIDAndFileTime(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString("P9IhbkA/6UuDS6RDec9jJA==")
	if got := guidString(raw); got != "6e21d23f-3f40-4be9-834b-a44379cf6324" {
		t.Errorf("guidString = %s", got)
	}
	if got := escapeBytes([]byte{0x00, 0x2a, 0xff}); got != `\00\2a\ff` {
		t.Errorf("escapeBytes = %s", got)
	}
	if got := fileTime(116444736000000000); !got.Equal(time.Unix(0, 0)) || got.Location() != time.UTC {
		t.Errorf("the Unix epoch as FILETIME gives %s", got)
	}
	if got := fileTime(134403510483907488); got.Format(time.RFC3339Nano) != "2026-11-28T14:50:48.3907488Z" {
		t.Errorf("fileTime = %s", got.Format(time.RFC3339Nano))
	}
	for _, v := range []int64{0, -1, neverFT} {
		if !fileTime(v).IsZero() {
			t.Errorf("fileTime(%d) is not zero", v)
		}
	}
	if toFileTime(fileTime(134403510483907488)) != 134403510483907488 {
		t.Error("FILETIME round trip")
	}
}

// toFileTime converts a time to a FILETIME.
func toFileTime(t time.Time) int64 {
	return (t.Unix()+fileTimeEpoch)*1e7 + int64(t.Nanosecond())/100
}

func entry(dn string, attrs map[string][]string) *goldap.Entry {
	return goldap.NewEntry(dn, attrs)
}

var goodGUID = string([]byte{0x3f, 0xd2, 0x21, 0x6e, 0x40, 0x3f, 0xe9, 0x4b, 0x83, 0x4b, 0xa4, 0x43, 0x79, 0xcf, 0x63, 0x24})

func TestParseUserBadInput(t *testing.T) {
	base := func() map[string][]string {
		return map[string][]string{"objectGUID": {goodGUID}, "sAMAccountName": {"jdoe"}, "pwdLastSet": {"134403510483907488"},
			"userAccountControl": {"512"}}
	}
	guid := guidString([]byte(goodGUID))
	for _, tc := range []struct {
		name string
		edit func(map[string][]string)
		want string
		// key is the external id the invalid record carries: a full sync
		// counts the entry as seen when it is known.
		key string
	}{
		{"no objectGUID", func(m map[string][]string) { delete(m, "objectGUID") }, "no objectGUID", ""},
		{"short objectGUID", func(m map[string][]string) { m["objectGUID"] = []string{"short"} }, "not 16", ""},
		{"non-UTF-8", func(m map[string][]string) { m["mail"] = []string{"j\xffdoe@example.com"} }, "not valid UTF-8", guid},
		{"oversized", func(m map[string][]string) { m["displayName"] = []string{strings.Repeat("x", 4097)} }, "more than 4096", guid},
		{"malformed pwdLastSet", func(m map[string][]string) { m["pwdLastSet"] = []string{"yesterday"} }, "pwdLastSet", guid},
		{"malformed lockoutTime", func(m map[string][]string) { m["lockoutTime"] = []string{"1e9"} }, "lockoutTime", guid},
		{"malformed userAccountControl", func(m map[string][]string) { m["userAccountControl"] = []string{"0x200"} }, "userAccountControl", guid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			e := entry("CN=jdoe,DC=corp,DC=test", m)
			_, reason := parseUser(e, []string{"mobile"})
			if !strings.Contains(reason, tc.want) {
				t.Fatalf("reason %q, want it to mention %q", reason, tc.want)
			}
			if key := entryGUID(e); key != tc.key {
				t.Fatalf("key of the invalid entry %q, want %q", key, tc.key)
			}
		})
	}
	t.Run("good entry, mobile fallback, no mail", func(t *testing.T) {
		m := base()
		m["telephoneNumber"] = []string{" +1 555 0100 "}
		m["mobile"] = []string{""}
		u, reason := parseUser(entry("CN=jdoe,DC=corp,DC=test", m), []string{"mobile", "telephoneNumber"})
		if reason != "" || u.mobile != "+1 555 0100" || u.sam != "jdoe" || u.mail != "" || u.uac != 512 {
			t.Fatalf("%q %+v", reason, u)
		}
	})
}

// The DC's rules, case by case (MS-ADTS; Samba's operational.c).
func TestExpiryTime(t *testing.T) {
	const set = int64(134400000000000000)
	for _, tc := range []struct {
		name       string
		uac        uint32
		pwdLastSet int64
		maxAge     int64
		want       int64
	}{
		{"normal", 0x200, set, -42 * day, set + 42*day},
		{"never expires", 0x10200, set, -42 * day, neverFT},
		{"smartcard", 0x40200, set, -42 * day, neverFT},
		{"workstation trust", 0x1000, set, -42 * day, neverFT},
		{"must change", 0x200, 0, -42 * day, 0},
		{"must change but never expires", 0x10200, 0, -42 * day, neverFT},
		{"negative pwdLastSet", 0x200, -1, -42 * day, neverFT},
		{"max age never", 0x200, set, math.MinInt64, neverFT},
		{"max age zero", 0x200, set, 0, neverFT},
		{"max age one day", 0x200, set, -day, neverFT},
		{"max age a day and a tick", 0x200, set, -day - 1, set + day + 1},
		{"overflow", 0x200, math.MaxInt64 - 1, -2 * day, neverFT},
	} {
		if got := expiryTime(tc.uac, tc.pwdLastSet, tc.maxAge); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestLockedOut(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ft := toFileTime(now)
	for _, tc := range []struct {
		name         string
		uac          uint32
		lockoutTime  int64
		duration     int64
		locked, sure bool
	}{
		{"never locked", 0x200, 0, -30 * 60 * 1e7, false, true},
		{"locked a minute ago, 30 min", 0x200, ft - 60*1e7, -30 * 60 * 1e7, true, true},
		{"locked an hour ago, 30 min", 0x200, ft - 3600*1e7, -30 * 60 * 1e7, false, true},
		{"ends exactly now", 0x200, ft - 30*60*1e7, -30 * 60 * 1e7, true, true},
		{"until an admin unlocks", 0x200, ft - 1e12, 0, true, true},
		{"trust account", 0x1000, ft, 0, false, true},
		{"forever as 0x8000000000000000", 0x200, ft, math.MinInt64, false, false},
	} {
		locked, sure := lockedOut(tc.uac, tc.lockoutTime, tc.duration, now)
		if locked != tc.locked || sure != tc.sure {
			t.Errorf("%s: got locked=%t sure=%t, want %t %t", tc.name, locked, sure, tc.locked, tc.sure)
		}
	}
}

// TestPSOResolution builds a small group graph: direct application beats a
// better group PSO, nesting counts only through security groups, the
// primary group counts, ties go to the smallest objectGUID bytes.
func TestPSOResolution(t *testing.T) {
	domainSID := []byte{1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0}
	sid := func(rid byte) []byte {
		s := append([]byte{}, domainSID...)
		s[1] = 5
		return append(s, rid, 0, 0, 0)
	}
	g := func(dn string, gt uint32, rid byte, memberOf ...string) *group {
		return &group{dn: dn, groupType: gt, sid: sid(rid), memberOf: memberOf}
	}
	const sec, dist, builtin = 0x80000002, 0x2, 0x80000005
	groups := map[string]*group{}
	for _, x := range []*group{
		g("cn=outer", sec, 10), g("cn=inner", sec, 11, "cn=outer"), g("cn=dist", dist, 12, "cn=outer"),
		g("cn=under-dist", sec, 13, "cn=dist"), g("cn=prim", sec, 14), g("cn=tie1", sec, 15), g("cn=tie2", sec, 16),
		g("cn=builtin", builtin, 17),
	} {
		groups[x.dn] = x
	}
	for _, x := range groups {
		for _, p := range x.memberOf {
			groups[p].children = append(groups[p].children, x)
		}
	}
	psoOuter := &pso{dn: "outer", precedence: 10, guid: []byte{5}, targets: []string{"cn=outer"}}
	psoDirect := &pso{dn: "direct", precedence: 99, guid: []byte{5}, targets: []string{"cn=alice"}}
	psoPrim := &pso{dn: "prim", precedence: 20, guid: []byte{5}, targets: []string{"cn=prim"}}
	psoTieA := &pso{dn: "tieA", precedence: 30, guid: []byte{0x02, 0x00}, targets: []string{"cn=tie1"}}
	psoTieB := &pso{dn: "tieB", precedence: 30, guid: []byte{0x01, 0xff}, targets: []string{"cn=tie2"}}
	psoBuiltin := &pso{dn: "builtin", precedence: 1, guid: []byte{5}, targets: []string{"cn=builtin"}}
	pol := &policy{psoSupported: true, psos: []*pso{psoOuter, psoDirect, psoPrim, psoTieA, psoTieB, psoBuiltin},
		direct: map[string]*pso{}, viaGroup: map[string]*pso{}, viaPrimary: map[uint32]*pso{}}
	resolvePSOs(pol, groups, domainSID, map[string]*group{})

	user := func(dn string, primary uint32, memberOf ...string) rawUser {
		return rawUser{dn: dn, uac: 0x200, primaryGroupID: primary, memberOf: memberOf, rid: 1000, hasRID: true}
	}
	for _, tc := range []struct {
		name string
		u    rawUser
		want *pso
	}{
		{"direct beats a better group PSO", user("CN=Alice", 513, "CN=Outer"), psoDirect},
		{"nested security group", user("cn=bob", 513, "cn=inner"), psoOuter},
		{"through a distribution group: no", user("cn=carol", 513, "cn=under-dist"), nil},
		{"primary group", user("cn=dave", 14), psoPrim},
		{"lowest precedence wins", user("cn=erin", 14, "cn=inner"), psoOuter},
		{"tie: smallest objectGUID bytes", user("cn=frank", 513, "cn=tie1", "cn=tie2"), psoTieB},
		{"builtin groups carry none", user("cn=gina", 513, "cn=builtin"), nil},
		{"not a normal account", rawUser{dn: "cn=bob", uac: 0x1000, memberOf: []string{"cn=inner"}}, nil},
		{"krbtgt", rawUser{dn: "cn=bob", uac: 0x200, rid: 502, hasRID: true, memberOf: []string{"cn=inner"}}, nil},
		{"RODC krbtgt", rawUser{dn: "cn=bob", uac: 0x200, secondaryKrbTgt: true, memberOf: []string{"cn=inner"}}, nil},
	} {
		if got := pol.psoFor(tc.u); got != tc.want {
			name := func(p *pso) string {
				if p == nil {
					return "none"
				}
				return p.dn
			}
			t.Errorf("%s: got %s, want %s", tc.name, name(got), name(tc.want))
		}
	}
	pol.psoSupported = false
	if pol.psoFor(user("cn=alice", 513)) != nil {
		t.Error("PSOs applied below functional level 2008")
	}
}

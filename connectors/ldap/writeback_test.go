package ldap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
	"selfserve/internal/redact"
)

// The write-back tests change passwords and lockouts of users of their own
// (under OU=wb of the run's test OU), never the seeded ones the other tests
// read. The OU carries the delegation a real MSP gives its service account:
// Reset Password and Write lockoutTime on descendant users, to the user
// wb-help, so that the rights check is proved on a delegated account as
// well as on Domain Admins (the administrator) and on an account without
// them (reader).

// wbFixture is OU=wb and its users.
type wbFixture struct {
	ou      string
	helpUPN string
	guid    map[string]string // short name -> objectGUID as ExternalID
}

var (
	wbOnce sync.Once
	wb     *wbFixture
	wbErr  error
)

// Schema GUIDs of the delegation (binary form).
var (
	guidUserClass   = mustGUIDBytes("bf967aba-0de6-11d0-a285-00aa003049e2")
	guidLockoutTime = mustGUIDBytes("28630ebf-41d5-11d1-a9c1-0000f80367c1")
)

func writeBackFixture(t *testing.T) (*fixture, *wbFixture) {
	t.Helper()
	f := dc(t)
	wbOnce.Do(func() { wb, wbErr = f.setupWriteBack() })
	if wbErr != nil {
		t.Fatalf("write-back fixture: %v", wbErr)
	}
	return f, wb
}

func (f *fixture) setupWriteBack() (*wbFixture, error) {
	c, err := f.admin()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	w := &wbFixture{ou: "OU=wb," + f.root, guid: map[string]string{}}
	if err := addEntry(c, w.ou, map[string][]string{"objectClass": {"organizationalUnit"}}); err != nil {
		return nil, err
	}
	if err := f.addUser(c, "wb-help", f.root); err != nil {
		return nil, err
	}
	w.helpUPN = f.sam("wb-help") + "@" + f.realm
	helpSID, err := readRaw(c, f.dn["wb-help"], "objectSid", nil)
	if err != nil {
		return nil, err
	}
	if err := delegate(c, w.ou, helpSID); err != nil {
		return nil, err
	}
	for _, name := range []string{"wb-reset", "wb-reject", "wb-locked", "wb-deleg"} {
		if err := f.addUser(c, name, w.ou); err != nil {
			return nil, err
		}
		guid, err := readRaw(c, f.dn[name], "objectGUID", nil)
		if err != nil {
			return nil, err
		}
		w.guid[name] = guidString(guid)
	}
	// wb-locked: under the seeded lockout PSO (threshold 3), like the seeded
	// "locked" category, locked out by three wrong binds
	if err := modify(c, "CN=LockoutPolicyUsers,OU=Groups,"+f.BaseDN, "add", "member", f.dn["wb-locked"]); err != nil {
		return nil, err
	}
	if err := f.lockOut("wb-locked", 3); err != nil {
		return nil, err
	}
	return w, nil
}

// delegate grants sid Reset Password and Write lockoutTime on the users
// below ou, as the Delegation of Control wizard does: two inheritable
// object ACEs put first in the OU's DACL.
func delegate(c *goldap.Conn, ou string, sid []byte) error {
	sdFlags := []goldap.Control{goldap.NewControlString(oidSDFlags, true, string([]byte{0x30, 0x03, 0x02, 0x01, 0x04}))}
	sd, err := readRaw(c, ou, "nTSecurityDescriptor", sdFlags)
	if err != nil {
		return err
	}
	const containerInherit = 0x02
	aces := objectACE(aceAllowedObject, containerInherit, rightControlAccess, guidResetPassword, guidUserClass, sid)
	aces = append(aces, objectACE(aceAllowedObject, containerInherit, 0x20 /* WP */, guidLockoutTime, guidUserClass, sid)...)
	newSD, err := insertACEs(sd, aces, 2)
	if err != nil {
		return err
	}
	req := goldap.NewModifyRequest(ou, sdFlags)
	req.Replace("nTSecurityDescriptor", []string{string(newSD)})
	return c.Modify(req)
}

// objectACE encodes an object ACE.
func objectACE(kind, flags byte, mask uint32, objectType, inheritedType, sid []byte) []byte {
	body := binary.LittleEndian.AppendUint32(nil, mask)
	var objFlags uint32
	if objectType != nil {
		objFlags |= aceObjectTypePresent
	}
	if inheritedType != nil {
		objFlags |= aceInheritedObjectTypePresent
	}
	body = binary.LittleEndian.AppendUint32(body, objFlags)
	body = append(append(append(body, objectType...), inheritedType...), sid...)
	return append([]byte{kind, flags, byte(4 + len(body)), byte((4 + len(body)) >> 8)}, body...)
}

// insertACEs puts n encoded ACEs first in the DACL of a self-relative
// security descriptor holding only a DACL (as read with SD flags 4).
func insertACEs(sd, aces []byte, n int) ([]byte, error) {
	off := int(binary.LittleEndian.Uint32(sd[16:]))
	if off == 0 || off+8 > len(sd) || off+int(binary.LittleEndian.Uint16(sd[off+2:])) != len(sd) {
		return nil, errors.New("the DACL is not the last part of the security descriptor")
	}
	out := append([]byte{}, sd[:off+8]...)
	binary.LittleEndian.PutUint16(out[off+2:], binary.LittleEndian.Uint16(sd[off+2:])+uint16(len(aces)))
	binary.LittleEndian.PutUint16(out[off+4:], binary.LittleEndian.Uint16(sd[off+4:])+uint16(n))
	out = append(out, aces...)
	return append(out, sd[off+8:]...), nil
}

func readRaw(c *goldap.Conn, dn, attr string, controls []goldap.Control) ([]byte, error) {
	res, err := c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{attr}, controls))
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 || len(res.Entries[0].GetRawAttributeValue(attr)) == 0 {
		return nil, errors.New(dn + " has no readable " + attr)
	}
	return res.Entries[0].GetRawAttributeValue(attr), nil
}

// writer opens a source on OU=wb (or base) bound as user.
func (f *fixture) writer(t *testing.T, base, user, pass string, logs *bytes.Buffer) *source {
	t.Helper()
	cfg := f.config(Config{BaseDN: base, BindDN: redact.Secret(user), BindPassword: redact.Secret(pass)})
	src, err := cfg.Open(connectors.Env{ID: "wb", Logger: slogTo(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src.(*source)
}

// canBind reports whether the test user binds with password.
func (f *fixture) canBind(t *testing.T, name, password string) bool {
	t.Helper()
	c, err := f.bindAs(f.sam(name)+"@"+f.realm, password)
	if err == nil {
		c.Close()
		return true
	}
	if !errors.Is(err, connectors.ErrUnauthorized) {
		t.Fatalf("bind as %s: %v", name, err)
	}
	return false
}

func (f *fixture) uacComputed(t *testing.T, name string) int64 {
	t.Helper()
	c, err := f.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := readRaw(c, f.dn[name], "msDS-User-Account-Control-Computed", nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWriteBackSetPassword(t *testing.T) {
	f, w := writeBackFixture(t)
	var logs bytes.Buffer
	ctx := context.Background()
	acct := connectors.Account{ExternalID: w.guid["wb-reset"], Username: f.sam("wb-reset")}

	ldaps := f.writer(t, w.ou, f.BindUPN, f.BindPass, &logs)
	first := "Tulip-Harbor-93!"
	if err := ldaps.SetPassword(ctx, acct, first); err != nil {
		t.Fatalf("SetPassword over LDAPS: %v", err)
	}
	if !f.canBind(t, "wb-reset", first) {
		t.Fatal("after the reset over LDAPS the new password does not bind")
	}
	if f.canBind(t, "wb-reset", f.UserPass) {
		t.Fatal("after the reset over LDAPS the old password still binds")
	}

	cfg := f.config(Config{URL: f.LDAPURL, StartTLS: true, BaseDN: w.ou})
	src, err := cfg.Open(connectors.Env{ID: "wb-starttls", Logger: slogTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	second := "Ωmega-Lantern-57"
	if err := src.(connectors.PasswordWriter).SetPassword(ctx, acct, second); err != nil {
		t.Fatalf("SetPassword over StartTLS: %v", err)
	}
	if !f.canBind(t, "wb-reset", second) || f.canBind(t, "wb-reset", first) {
		t.Fatal("after the reset over StartTLS the new password must bind and the previous one not")
	}
	for _, pw := range []string{first, second} {
		if strings.Contains(logs.String(), pw) {
			t.Fatalf("the logs contain a password: %s", logs.String())
		}
	}
}

func TestWriteBackRejectedPassword(t *testing.T) {
	f, w := writeBackFixture(t)
	var logs bytes.Buffer
	src := f.writer(t, w.ou, f.BindUPN, f.BindPass, &logs)
	acct := connectors.Account{ExternalID: w.guid["wb-reject"]}
	for _, tc := range []struct{ password, detail string }{
		{"Ab1!x", "too short"},
		{"alllowercaseletters", "complex"},
	} {
		err := src.SetPassword(context.Background(), acct, tc.password)
		var rej *connectors.PasswordRejectedError
		if !errors.As(err, &rej) {
			t.Fatalf("SetPassword(%q) = %v, want a *PasswordRejectedError", tc.password, err)
		}
		if !strings.Contains(rej.Reason, RejectedReason) || !strings.Contains(rej.Reason, tc.detail) || strings.Contains(rej.Reason, tc.password) {
			t.Errorf("reason %q: want %q with the DC's detail (%q) and without the password", rej.Reason, RejectedReason, tc.detail)
		}
	}
	if !f.canBind(t, "wb-reject", f.UserPass) {
		t.Fatal("the old password no longer works after refused resets")
	}
}

func TestWriteBackUnlock(t *testing.T) {
	f, w := writeBackFixture(t)
	const ufLockout = 0x10
	if f.uacComputed(t, "wb-locked")&ufLockout == 0 {
		t.Fatal("wb-locked is not locked out before the test")
	}
	if f.canBind(t, "wb-locked", f.UserPass) {
		t.Fatal("a locked-out user could bind")
	}
	src := f.writer(t, w.ou, f.BindUPN, f.BindPass, &bytes.Buffer{})
	if err := src.Unlock(context.Background(), connectors.Account{ExternalID: w.guid["wb-locked"]}); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if f.uacComputed(t, "wb-locked")&ufLockout != 0 {
		t.Fatal("msDS-User-Account-Control-Computed still has LOCKOUT after Unlock")
	}
	if !f.canBind(t, "wb-locked", f.UserPass) {
		t.Fatal("the unlocked user cannot bind")
	}
}

func TestWriteBackPolicy(t *testing.T) {
	f, w := writeBackFixture(t)
	src := f.writer(t, f.root, f.BindUPN, f.BindPass, &bytes.Buffer{})
	ctx := context.Background()
	directGUID, err := func() (string, error) {
		c, err := f.admin()
		if err != nil {
			return "", err
		}
		defer c.Close()
		g, err := readRaw(c, f.dn["p-direct"], "objectGUID", nil)
		return guidString(g), err
	}()
	if err != nil {
		t.Fatal(err)
	}
	domain := connectors.PasswordPolicy{MinLength: 7, Complexity: true, History: 24}
	for _, tc := range []struct {
		name string
		acct connectors.Account
		want connectors.PasswordPolicy
	}{
		{"domain level", connectors.Account{}, domain},
		{"no PSO: the domain's", connectors.Account{ExternalID: w.guid["wb-reset"]}, domain},
		{"the seeded lockout PSO", connectors.Account{ExternalID: w.guid["wb-locked"]}, domain},
		{"a PSO with other rules", connectors.Account{ExternalID: directGUID}, connectors.PasswordPolicy{MinLength: 1}},
	} {
		got, err := src.Policy(ctx, tc.acct)
		if err != nil || got != tc.want {
			t.Errorf("%s: Policy = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}

	// a bind account that cannot read the user's PSO gets an error, not
	// the domain's rules in its place
	reader := f.writer(t, f.root, f.readerUPN, f.UserPass, &bytes.Buffer{})
	if _, err := reader.Policy(ctx, connectors.Account{ExternalID: directGUID}); !errors.Is(err, connectors.ErrUnauthorized) ||
		!strings.Contains(err.Error(), "Password Settings Container") {
		t.Errorf("Policy as reader = %v, want ErrUnauthorized asking for read access to the PSOs", err)
	}
	if got, err := reader.Policy(ctx, connectors.Account{}); err != nil || got != domain {
		t.Errorf("domain Policy as reader = %+v, %v", got, err)
	}
}

func TestWriteBackRights(t *testing.T) {
	f, w := writeBackFixture(t)
	ctx := context.Background()
	readerPass := f.UserPass
	for _, tc := range []struct {
		name, user, pass string
		ok               bool
	}{
		{"domain administrator", f.BindUPN, f.BindPass, true},
		{"domain administrator by DN", f.BindDN, f.BindPass, true},
		{"domain administrator as DOMAIN\\name", strings.SplitN(f.Realm, ".", 2)[0] + `\Administrator`, f.BindPass, true},
		{"delegated helpdesk account", w.helpUPN, f.UserPass, true},
		{"account without the rights", f.readerUPN, readerPass, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := f.writer(t, w.ou, tc.user, tc.pass, &bytes.Buffer{})
			err := src.CheckWriteAccess(ctx)
			if tc.ok {
				if err != nil {
					t.Fatalf("CheckWriteAccess: %v", err)
				}
				return
			}
			if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "Reset Password") || !strings.Contains(err.Error(), "lockoutTime") {
				t.Fatalf("CheckWriteAccess = %v, want ErrUnauthorized naming the Reset Password right and lockoutTime", err)
			}
		})
	}

	// the delegated account resets and unlocks; the reader cannot
	help := f.writer(t, w.ou, w.helpUPN, f.UserPass, &bytes.Buffer{})
	deleg := connectors.Account{ExternalID: w.guid["wb-deleg"]}
	if err := help.SetPassword(ctx, deleg, "Copper-Kettle-61"); err != nil {
		t.Fatalf("SetPassword as the delegated account: %v", err)
	}
	if err := help.Unlock(ctx, deleg); err != nil {
		t.Fatalf("Unlock as the delegated account: %v", err)
	}
	reader := f.writer(t, w.ou, f.readerUPN, readerPass, &bytes.Buffer{})
	err := reader.SetPassword(ctx, deleg, "Brass-Lantern-62")
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "Reset Password right") {
		t.Fatalf("SetPassword as reader = %v, want ErrUnauthorized naming the Reset Password right", err)
	}
	err = reader.Unlock(ctx, deleg)
	if !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "lockoutTime") {
		t.Fatalf("Unlock as reader = %v, want ErrUnauthorized naming lockoutTime", err)
	}
	if !f.canBind(t, "wb-deleg", "Copper-Kettle-61") {
		t.Fatal("the reader's refused reset changed the password")
	}
}

func TestWriteBackScope(t *testing.T) {
	f, w := writeBackFixture(t)
	// a source scoped to OU=inc cannot touch the users of OU=wb
	src := f.writer(t, f.incOU, f.BindUPN, f.BindPass, &bytes.Buffer{})
	ctx := context.Background()
	for _, id := range []string{w.guid["wb-reset"], "not-a-guid", "*)(objectClass=*", "00000000-0000-0000-0000-000000000000"} {
		acct := connectors.Account{ExternalID: id}
		if err := src.SetPassword(ctx, acct, "Tulip-Harbor-94!"); !errors.Is(err, connectors.ErrNotFound) {
			t.Errorf("SetPassword(%q) = %v, want ErrNotFound", id, err)
		}
		if err := src.Unlock(ctx, acct); !errors.Is(err, connectors.ErrNotFound) {
			t.Errorf("Unlock(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

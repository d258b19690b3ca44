package ldap

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf16"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

func TestWriteBackRefusesPlainLDAP(t *testing.T) {
	cfg := Config{URL: "ldap://127.0.0.1:1", AllowInsecure: true, BaseDN: "DC=x", BindDN: "u@x", BindPassword: "p"}
	src, err := cfg.Open(connectors.Env{ID: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	w := src.(connectors.PasswordWriter)
	acct := connectors.Account{ExternalID: "00299570-246d-11d0-a768-00aa006e0529"}
	for name, err := range map[string]error{
		"SetPassword":      w.SetPassword(context.Background(), acct, "Tulip-Harbor-93"),
		"Unlock":           w.Unlock(context.Background(), acct),
		"CheckWriteAccess": src.(connectors.WriteAccessChecker).CheckWriteAccess(context.Background()),
	} {
		if !errors.Is(err, connectors.ErrInvalidConfig) || !strings.Contains(err.Error(), "encrypted") {
			t.Errorf("%s over plain LDAP = %v, want ErrInvalidConfig asking for encryption", name, err)
		}
	}
	if err := w.SetPassword(context.Background(), acct, "bad\xffutf8"); !errors.As(err, new(*connectors.PasswordRejectedError)) {
		t.Errorf("SetPassword with invalid UTF-8 = %v, want a *PasswordRejectedError", err)
	}
}

func TestParseGUID(t *testing.T) {
	raw := []byte{0x70, 0x95, 0x29, 0x00, 0x6d, 0x24, 0xd0, 0x11, 0xa7, 0x68, 0x00, 0xaa, 0x00, 0x6e, 0x05, 0x29}
	s := guidString(raw)
	if s != "00299570-246d-11d0-a768-00aa006e0529" {
		t.Fatalf("guidString = %s", s)
	}
	back, err := parseGUID(strings.ToUpper(s))
	if err != nil || string(back) != string(raw) {
		t.Fatalf("parseGUID(%s) = %x, %v", s, back, err)
	}
	for _, bad := range []string{"", "00299570246d11d0a76800aa006e0529", "00299570-246d-11d0-a768-00aa006e052g", "*)(objectClass=*)(cn=aaaaaaaaaaaaaaaaa"} {
		if _, err := parseGUID(bad); err == nil {
			t.Errorf("parseGUID(%q) accepted", bad)
		}
	}
}

func TestEncodePassword(t *testing.T) {
	got := encodePassword("Pä$𝄞")
	want := utf16.Encode([]rune(`"Pä$𝄞"`))
	if len(got) != 2*len(want) {
		t.Fatalf("length %d, want %d", len(got), 2*len(want))
	}
	for i, u := range want {
		if binary.LittleEndian.Uint16([]byte(got[2*i:])) != u {
			t.Fatalf("code unit %d differs", i)
		}
	}
}

func TestWriteError(t *testing.T) {
	s := &source{id: "t", cfg: &settings{addr: "dc:636"}}
	samba := goldap.NewError(goldap.LDAPResultConstraintViolation, errors.New(
		"0000052D: Constraint violation - check_password_restrictions: the password is too short. It should be equal or longer than 7 characters!"))
	var rej *connectors.PasswordRejectedError
	if err := s.writeError("resetting", "the Reset Password right", true, samba); !errors.As(err, &rej) ||
		!strings.Contains(rej.Reason, RejectedReason) || !strings.Contains(rej.Reason, "too short") {
		t.Errorf("Samba's refusal = %v", err)
	}
	ad := goldap.NewError(goldap.LDAPResultUnwillingToPerform, errors.New(
		"0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0"))
	if err := s.writeError("resetting", "the Reset Password right", true, ad); !errors.As(err, &rej) || rej.Reason != RejectedReason {
		t.Errorf("AD's refusal = %v, want the plain reason alone", err)
	}
	denied := goldap.NewError(goldap.LDAPResultInsufficientAccessRights, errors.New("00002098: SecErr: DSID-03150F94, problem 4003"))
	if err := s.writeError("unlocking", "write access to lockoutTime", false, denied); !errors.Is(err, connectors.ErrUnauthorized) || !strings.Contains(err.Error(), "write access to lockoutTime") {
		t.Errorf("insufficient rights = %v", err)
	}
	constraint := goldap.NewError(goldap.LDAPResultConstraintViolation, errors.New("something else"))
	if err := s.writeError("unlocking", "write access to lockoutTime", false, constraint); errors.As(err, &rej) {
		t.Errorf("an unlock's constraint violation became a password refusal: %v", err)
	}
	critical := goldap.NewError(goldap.LDAPResultUnavailableCriticalExtension, errors.New("unknown control"))
	if err := s.writeError("resetting", "the Reset Password right", true, critical); !errors.Is(err, connectors.ErrInvalidConfig) || !strings.Contains(err.Error(), "policy-hints") {
		t.Errorf("unsupported control = %v", err)
	}
}

// sdWith builds a self-relative security descriptor holding a DACL of aces.
func sdWith(aces ...[]byte) []byte {
	var body []byte
	for _, a := range aces {
		body = append(body, a...)
	}
	sd := make([]byte, 20, 28+len(body))
	sd[0] = 1
	binary.LittleEndian.PutUint16(sd[2:], 0x8004) // self-relative, DACL present
	binary.LittleEndian.PutUint32(sd[16:], 20)
	acl := []byte{2, 0, 0, 0, byte(len(aces)), 0, 0, 0}
	binary.LittleEndian.PutUint16(acl[2:], uint16(8+len(body)))
	return append(append(sd, acl...), body...)
}

func plainACE(kind, flags byte, mask uint32, sid []byte) []byte {
	body := append(binary.LittleEndian.AppendUint32(nil, mask), sid...)
	return append([]byte{kind, flags, byte(4 + len(body)), 0}, body...)
}

func TestGrantsControlAccess(t *testing.T) {
	me := []byte{1, 2, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0x51, 0x04, 0, 0} // S-1-5-21-1105
	other := []byte{1, 2, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0x52, 0x04, 0, 0}
	token := [][]byte{me, sidEveryone}
	reset, user := guidResetPassword, guidUserClass
	changePwd := mustGUIDBytes("ab721a53-1e2f-11d0-9819-00aa0040529b")
	for _, tc := range []struct {
		name string
		aces [][]byte
		want bool
	}{
		{"no ACE", nil, false},
		{"object ACE for the right", [][]byte{objectACE(aceAllowedObject, 0x10, rightControlAccess, reset, user, me)}, true},
		{"all extended rights", [][]byte{plainACE(aceAllowed, 0, rightControlAccess, me)}, true},
		{"full control", [][]byte{plainACE(aceAllowed, 0, 0xf01ff, me)}, true},
		{"through Everyone", [][]byte{objectACE(aceAllowedObject, 0, rightControlAccess, reset, nil, sidEveryone)}, true},
		{"another right only", [][]byte{objectACE(aceAllowedObject, 0, rightControlAccess, changePwd, nil, me)}, false},
		{"another SID", [][]byte{objectACE(aceAllowedObject, 0, rightControlAccess, reset, nil, other)}, false},
		{"inherit-only", [][]byte{objectACE(aceAllowedObject, aceInheritOnly, rightControlAccess, reset, user, me)}, false},
		{"write property only", [][]byte{plainACE(aceAllowed, 0, 0x20, me)}, false},
		{"deny first", [][]byte{objectACE(aceDeniedObject, 0, rightControlAccess, reset, nil, me), plainACE(aceAllowed, 0, 0xf01ff, me)}, false},
		{"allow before deny", [][]byte{plainACE(aceAllowed, 0, 0xf01ff, me), objectACE(aceDeniedObject, 0, rightControlAccess, reset, nil, me)}, true},
		{"audit ACE skipped", [][]byte{plainACE(0x02, 0, 0xf01ff, me), objectACE(aceAllowedObject, 0, rightControlAccess, reset, nil, me)}, true},
	} {
		aces, ok, err := parseDACL(sdWith(tc.aces...))
		if err != nil || !ok {
			t.Fatalf("%s: parseDACL: %v %v", tc.name, ok, err)
		}
		if got := grantsControlAccess(aces, token, reset); got != tc.want {
			t.Errorf("%s: grantsControlAccess = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseDACLMalformed(t *testing.T) {
	good := sdWith(plainACE(aceAllowed, 0, 0xf01ff, sidEveryone))
	for name, sd := range map[string][]byte{
		"empty":       nil,
		"short":       good[:10],
		"revision":    append([]byte{2}, good[1:]...),
		"cut ACE":     good[:len(good)-3],
		"ACE too big": func() []byte { b := append([]byte{}, good...); b[30] = 200; return b }(),
		"bad SID":     func() []byte { b := append([]byte{}, good...); b[36] = 9; return b }(),
	} {
		if _, _, err := parseDACL(sd); err == nil {
			t.Errorf("%s: parseDACL accepted it", name)
		}
	}
	noDACL := append([]byte{}, good...)
	binary.LittleEndian.PutUint16(noDACL[2:], 0x8000)
	if aces, ok, err := parseDACL(noDACL); err != nil || ok || aces != nil {
		t.Errorf("no DACL: %v %v %v", aces, ok, err)
	}
}

func TestPolicyDetail(t *testing.T) {
	if d := policyDetail("0000052D: Constraint violation - check_password_restrictions: the password does not meet the complexity criteria!"); d != "the password does not meet the complexity criteria!" {
		t.Errorf("policyDetail = %q", d)
	}
	if d := policyDetail("0000052D: SvcErr: DSID-031A12D2, problem 5003"); d != "" {
		t.Errorf("policyDetail of AD's message = %q, want none", d)
	}
}

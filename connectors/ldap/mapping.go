package ldap

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

// userAccountControl bits (MS-ADTS 2.2.16).
const (
	ufAccountDisable          = 0x2
	ufLockout                 = 0x10
	ufInterdomainTrustAccount = 0x800
	ufNormalAccount           = 0x200
	ufWorkstationTrustAccount = 0x1000
	ufServerTrustAccount      = 0x2000
	ufDontExpirePassword      = 0x10000
	ufSmartcardRequired       = 0x40000

	ufTrustAccounts   = ufInterdomainTrustAccount | ufWorkstationTrustAccount | ufServerTrustAccount
	ufNoExpiryAccount = ufSmartcardRequired | ufDontExpirePassword | ufTrustAccounts
)

// neverFT is the FILETIME AD uses for "never" (0x7FFFFFFFFFFFFFFF).
const neverFT = int64(^uint64(0) >> 1)

// ridKrbtgt is the RID of the domain's krbtgt account.
const ridKrbtgt = 502

// rawUser holds the attributes of one user entry, parsed and checked.
type rawUser struct {
	dn      string
	guid    []byte
	sam     string
	upn     string
	given   string
	sn      string
	display string
	mail    string
	mobile  string

	uac             uint32
	pwdLastSet      int64
	lockoutTime     int64
	primaryGroupID  uint32
	adminCount      bool
	rid             uint32
	hasRID          bool
	secondaryKrbTgt bool
	memberOf        []string
	memberOfRanged  bool
	psoApplied      []string

	expiryComputed    int64
	hasExpiryComputed bool
	uacComputed       int64
	hasUACComputed    bool
}

// parseUser reads an entry. A non-empty reason means the entry cannot be
// imported: it becomes an InvalidRecord and the listing goes on.
func parseUser(e *goldap.Entry, mobileAttrs []string) (rawUser, string) {
	u := rawUser{dn: e.DN}
	mobiles := make([]string, len(mobileAttrs))
	for _, a := range e.Attributes {
		name := a.Name
		if i := strings.Index(name, ";range="); i >= 0 {
			// A multi-valued attribute too long for one answer: only
			// memberOf can be, and the DC is then asked for the result.
			if strings.EqualFold(name[:i], attrMemberOf) {
				u.memberOfRanged = true
			}
			continue
		}
		if len(a.ByteValues) == 0 {
			continue
		}
		first := a.ByteValues[0]
		switch {
		case strings.EqualFold(name, attrGUID):
			if len(first) != 16 {
				return u, fmt.Sprintf("objectGUID is %d bytes long, not 16", len(first))
			}
			u.guid = first
			continue
		case strings.EqualFold(name, attrSID):
			if len(first) >= 12 {
				u.rid = binary.LittleEndian.Uint32(first[len(first)-4:])
				u.hasRID = true
			}
			continue
		case strings.EqualFold(name, attrSecondaryKrbTgt):
			u.secondaryKrbTgt = true
			continue
		case strings.EqualFold(name, attrMemberOf):
			u.memberOf = a.Values
			continue
		case strings.EqualFold(name, attrPSOApplied):
			u.psoApplied = a.Values
			continue
		}
		// The rest are text: valid UTF-8, of a sane length.
		if len(first) > maxAttributeValueLen {
			return u, fmt.Sprintf("attribute %s is %d bytes long (more than %d)", name, len(first), maxAttributeValueLen)
		}
		if !utf8.Valid(first) {
			return u, fmt.Sprintf("attribute %s is not valid UTF-8 text", name)
		}
		v := strings.TrimSpace(string(first))
		var err error
		switch {
		case strings.EqualFold(name, attrSAM):
			u.sam = v
		case strings.EqualFold(name, attrUPN):
			u.upn = v
		case strings.EqualFold(name, attrGiven):
			u.given = v
		case strings.EqualFold(name, attrSN):
			u.sn = v
		case strings.EqualFold(name, attrDisplay):
			u.display = v
		case strings.EqualFold(name, attrMail):
			u.mail = v
		case strings.EqualFold(name, attrUAC):
			var n int64
			if n, err = strconv.ParseInt(v, 10, 64); err == nil {
				u.uac = uint32(n)
			}
		case strings.EqualFold(name, attrPwdLastSet):
			u.pwdLastSet, err = parseFileTime(v)
		case strings.EqualFold(name, attrLockoutTime):
			u.lockoutTime, err = parseFileTime(v)
		case strings.EqualFold(name, attrAdminCount):
			u.adminCount = v == "1"
		case strings.EqualFold(name, attrPrimaryGroup):
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 32); err == nil {
				u.primaryGroupID = uint32(n)
			}
		case strings.EqualFold(name, attrExpiryComputed):
			u.expiryComputed, err = strconv.ParseInt(v, 10, 64)
			u.hasExpiryComputed = err == nil
		case strings.EqualFold(name, attrUACComputed):
			u.uacComputed, err = strconv.ParseInt(v, 10, 64)
			u.hasUACComputed = err == nil
		}
		if err != nil {
			return u, fmt.Sprintf("attribute %s has the malformed value %q", name, truncate(v, 40))
		}
		// mobile attributes may coincide with the ones above
		for i, m := range mobileAttrs {
			if strings.EqualFold(name, m) {
				mobiles[i] = v
			}
		}
	}
	if u.guid == nil {
		return u, "the entry has no objectGUID (does the bind account lack read access to it?)"
	}
	for _, m := range mobiles {
		if m != "" {
			u.mobile = m
			break
		}
	}
	return u, ""
}

// parseFileTime parses a FILETIME (100-ns ticks since 1601-01-01 UTC) as AD
// writes it: a decimal integer.
func parseFileTime(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a FILETIME: %w", err)
	}
	return n, nil
}

// fileTimeEpoch is 1601-01-01 in seconds relative to the Unix epoch.
const fileTimeEpoch = 11644473600

// fileTime converts a FILETIME to UTC time; 0, negative and "never" values
// give the zero time.
func fileTime(ft int64) time.Time {
	if ft <= 0 || ft == neverFT {
		return time.Time{}
	}
	return time.Unix(ft/1e7-fileTimeEpoch, (ft%1e7)*100).UTC()
}

// entryGUID returns the external id of an entry that parseUser refused, read
// from its objectGUID alone, or "" when the entry has no well-formed one.
func entryGUID(e *goldap.Entry) string {
	guid := e.GetEqualFoldRawAttributeValue(attrGUID)
	if len(guid) != 16 {
		return ""
	}
	return guidString(guid)
}

// guidString formats a 16-byte GUID in its canonical form. AD stores the
// first three fields little-endian (the Microsoft GUID layout).
func guidString(b []byte) string {
	if len(b) != 16 {
		return hex.EncodeToString(b)
	}
	var out [36]byte
	hex.Encode(out[0:8], []byte{b[3], b[2], b[1], b[0]})
	out[8] = '-'
	hex.Encode(out[9:13], []byte{b[5], b[4]})
	out[13] = '-'
	hex.Encode(out[14:18], []byte{b[7], b[6]})
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// escapeBytes escapes every byte of a binary value for an LDAP filter.
func escapeBytes(b []byte) string {
	var sb strings.Builder
	sb.Grow(3 * len(b))
	for _, c := range b {
		fmt.Fprintf(&sb, "\\%02x", c)
	}
	return sb.String()
}

// baseUser maps the identity and contact attributes.
func baseUser(u rawUser) connectors.User {
	return connectors.User{
		ExternalID:  guidString(u.guid),
		ImmutableID: base64.StdEncoding.EncodeToString(u.guid),
		Username:    u.sam,
		UPN:         u.upn,
		FirstName:   u.given,
		LastName:    u.sn,
		DisplayName: u.display,
		Email:       u.mail,
		Mobile:      u.mobile,
		Enabled:     u.uac&ufAccountDisable == 0,
		Ref:         validRef(u.dn),

		MustChangePassword: u.pwdLastSet == 0,
		PasswordLastSet:    fileTime(u.pwdLastSet),
	}
}

// setPasswordState fills the expiry and lockout fields from the values the
// DC computes (or that we computed as the DC does): expiry is
// msDS-UserPasswordExpiryTimeComputed, locked says whether
// msDS-User-Account-Control-Computed has UF_LOCKOUT.
func setPasswordState(u *connectors.User, expiry int64, locked bool, lockoutTime int64) {
	u.PasswordNeverExpires = expiry == neverFT
	u.PasswordExpiresAt = time.Time{}
	if !u.PasswordNeverExpires {
		u.PasswordExpiresAt = fileTime(expiry)
	}
	u.LockedOut = locked
	u.LockedOutAt = time.Time{}
	if locked {
		u.LockedOutAt = fileTime(lockoutTime)
	}
}

// constructedUser maps an entry read with the DC's constructed attributes.
func constructedUser(u rawUser) (connectors.User, bool, string) {
	if !u.hasExpiryComputed || !u.hasUACComputed {
		return connectors.User{}, false, "the DC did not return msDS-UserPasswordExpiryTimeComputed and msDS-User-Account-Control-Computed (does the bind account lack read access to them?)"
	}
	out := baseUser(u)
	setPasswordState(&out, u.expiryComputed, u.uacComputed&ufLockout != 0, u.lockoutTime)
	return out, false, ""
}

// withPasswordState copies the expiry and lockout state of dc into u.
func withPasswordState(u, dc connectors.User) connectors.User {
	u.PasswordNeverExpires = dc.PasswordNeverExpires
	u.PasswordExpiresAt = dc.PasswordExpiresAt
	u.LockedOut = dc.LockedOut
	u.LockedOutAt = dc.LockedOutAt
	return u
}

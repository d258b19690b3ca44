package ldap

// Self-serve write-back: the source is a connectors.PasswordWriter.
//
// A reset replaces unicodePwd (the password in double quotes, UTF-16LE) in
// one Modify carrying the password-policy-hints control, so that the DC
// applies history and the other policy rules as it does for a change:
// LDAP_SERVER_POLICY_HINTS_OID 1.2.840.113556.1.4.2239 when the DC lists it
// in supportedControl, else the older LDAP_SERVER_POLICY_HINTS_DEPRECATED_OID
// 1.2.840.113556.1.4.2066 (Samba 4.17 lists neither but honours both; it
// does not enforce history on a reset either way). An unlock replaces
// lockoutTime with 0, which also clears badPwdCount. Both refuse a
// connection without TLS (ldaps:// or start_tls), whatever allow_insecure
// says: DCs refuse unicodePwd on a clear connection, and a password must
// not cross the network in clear.
//
// The account is found by its objectGUID (the ExternalID a sync stored),
// within the connection's scope (base DNs, groups, exclusions): a
// connection can reset only the users it imports.
//
// The bind account needs the Reset Password extended right and write access
// to lockoutTime on those users (the delegation LTB and Microsoft document:
// "Reset user passwords and force password change at next logon" plus
// "Write lockoutTime" on the users' OU). CheckWriteAccess tells a technician
// whether it has them, on a sample user of the scope (the first one found
// that is neither the bind account nor an AdminSDHolder-protected
// administrator):
//   - lockoutTime: the DC's own verdict, the constructed attribute
//     allowedAttributesEffective (the attributes the bound account may
//     write on that object);
//   - Reset Password: an extended right, which no constructed attribute
//     reveals, so the user's DACL (nTSecurityDescriptor read with the SD
//     flags control, DACL only, which any reader may read) is evaluated
//     for the bind account's token: its objectSid, the tokenGroups of the
//     RootDSE (its groups, nested and primary included), Everyone and
//     Authenticated Users. A deny ACE before an allow ACE is honoured; a
//     right held only through a privilege (such as SeRestorePrivilege) is
//     not seen, which no delegated service account relies on.
// Asking the DC itself (a reset of a real user, or a deliberately invalid
// one) was rejected: a test must never risk changing someone's password.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

var (
	_ connectors.PasswordWriter     = (*source)(nil)
	_ connectors.WriteAccessChecker = (*source)(nil)
)

// The password-policy-hints controls, newest first.
const (
	oidPolicyHints           = "1.2.840.113556.1.4.2239"
	oidPolicyHintsDeprecated = "1.2.840.113556.1.4.2066"
	// oidSDFlags is LDAP_SERVER_SD_FLAGS_OID: which parts of
	// nTSecurityDescriptor to read.
	oidSDFlags = "1.2.840.113556.1.4.801"
)

// Attributes of the write-back.
const (
	attrUnicodePwd      = "unicodePwd"
	attrResultantPSO    = "msDS-ResultantPSO"
	attrMinPwdLength    = "minPwdLength"
	attrPwdProperties   = "pwdProperties"
	attrPwdHistory      = "pwdHistoryLength"
	attrPSOMinLength    = "msDS-MinimumPasswordLength"
	attrPSOComplexity   = "msDS-PasswordComplexityEnabled"
	attrPSOHistory      = "msDS-PasswordHistoryLength"
	attrAllowedEffectve = "allowedAttributesEffective"
	attrSecurityDesc    = "nTSecurityDescriptor"
	attrTokenGroups     = "tokenGroups"
)

// pwdPropertiesComplex is DOMAIN_PASSWORD_COMPLEX of pwdProperties.
const pwdPropertiesComplex = 1

// RejectedReason is the plain-words reason of a password the DC refused by
// policy (AD's 0000052D, which does not say which rule).
const RejectedReason = "does not meet the domain's password rules: length, complexity or history"

// Policy implements connectors.PasswordWriter: the fine-grained policy
// (msDS-ResultantPSO) of the account when one applies, else the domain's
// (minPwdLength, pwdProperties, pwdHistoryLength). An empty Account asks for
// the domain's. A PSO the bind account cannot read is an error wrapping
// connectors.ErrUnauthorized: the domain's rules may not be the account's.
func (s *source) Policy(ctx context.Context, acct connectors.Account) (connectors.PasswordPolicy, error) {
	var pol connectors.PasswordPolicy
	err := s.withConn(ctx, false, func(c *conn) error {
		if acct.ExternalID != "" {
			user, err := s.findAccount(ctx, c, acct, attrResultantPSO)
			if err != nil {
				return err
			}
			if psoDN := user.GetAttributeValue(attrResultantPSO); psoDN != "" {
				pol, err = s.readPSOPolicy(ctx, c, psoDN)
				return err
			}
		}
		st, err := s.readState(ctx, c)
		if err != nil {
			return err
		}
		dom, err := searchOne(ctx, c, st.defaultNC, goldap.ScopeBaseObject, "(objectClass=*)",
			[]string{attrMinPwdLength, attrPwdProperties, attrPwdHistory})
		if err != nil {
			return s.opError("reading the domain password policy", err)
		}
		minLen, errL := strconv.Atoi(dom.GetAttributeValue(attrMinPwdLength))
		props, errP := strconv.ParseUint(dom.GetAttributeValue(attrPwdProperties), 10, 32)
		hist, errH := strconv.Atoi(dom.GetAttributeValue(attrPwdHistory))
		if errL != nil || errP != nil || errH != nil {
			return fmt.Errorf("%w: cannot read minPwdLength, pwdProperties and pwdHistoryLength of %s: grant the bind account read access to the domain object",
				connectors.ErrUnauthorized, st.defaultNC)
		}
		pol = connectors.PasswordPolicy{MinLength: minLen, Complexity: props&pwdPropertiesComplex != 0, History: hist}
		return nil
	})
	return pol, s.wrap(err)
}

// readPSOPolicy reads the password rules of one PSO.
func (s *source) readPSOPolicy(ctx context.Context, c *conn, dn string) (connectors.PasswordPolicy, error) {
	e, err := searchOne(ctx, c, dn, goldap.ScopeBaseObject, "(objectClass=*)", []string{attrPSOMinLength, attrPSOComplexity, attrPSOHistory})
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return connectors.PasswordPolicy{}, s.opError("reading the fine-grained password policy "+dn, err)
	}
	var minLen, hist int
	var errL, errH error
	if e != nil {
		minLen, errL = strconv.Atoi(e.GetAttributeValue(attrPSOMinLength))
		hist, errH = strconv.Atoi(e.GetAttributeValue(attrPSOHistory))
	}
	complexity := ""
	if e != nil {
		complexity = strings.ToUpper(e.GetAttributeValue(attrPSOComplexity))
	}
	if e == nil || errL != nil || errH != nil || (complexity != "TRUE" && complexity != "FALSE") {
		return connectors.PasswordPolicy{}, fmt.Errorf("%w: the account's fine-grained password policy %s cannot be read: "+
			"delegate \"Read all properties\" on CN=Password Settings Container,CN=System to the bind account", connectors.ErrUnauthorized, dn)
	}
	return connectors.PasswordPolicy{MinLength: minLen, Complexity: complexity == "TRUE", History: hist}, nil
}

// SetPassword implements connectors.PasswordWriter: it resets the account's
// password (unicodePwd Replace with the policy-hints control). A password
// the DC refuses by policy returns a *connectors.PasswordRejectedError.
// The password is never logged nor put in an error.
func (s *source) SetPassword(ctx context.Context, acct connectors.Account, newPassword string) error {
	if newPassword == "" || !utf8.ValidString(newPassword) {
		return &connectors.PasswordRejectedError{Reason: "the password is empty or not valid text"}
	}
	err := s.withConn(ctx, true, func(c *conn) error {
		user, err := s.findAccount(ctx, c, acct, "1.1")
		if err != nil {
			return err
		}
		hints, err := s.policyHintsControl(ctx, c)
		if err != nil {
			return err
		}
		req := goldap.NewModifyRequest(user.DN, []goldap.Control{hints})
		req.Replace(attrUnicodePwd, []string{encodePassword(newPassword)})
		if err := c.modify(ctx, req); err != nil {
			return s.writeError("resetting the password of "+user.DN, "the Reset Password right", true, err)
		}
		s.log.Info("ad password reset", "dn", user.DN)
		return nil
	})
	return s.wrap(err)
}

// Unlock implements connectors.PasswordWriter: it clears the account's
// lockout (lockoutTime = 0).
func (s *source) Unlock(ctx context.Context, acct connectors.Account) error {
	err := s.withConn(ctx, true, func(c *conn) error {
		user, err := s.findAccount(ctx, c, acct, "1.1")
		if err != nil {
			return err
		}
		req := goldap.NewModifyRequest(user.DN, nil)
		req.Replace(attrLockoutTime, []string{"0"})
		if err := c.modify(ctx, req); err != nil {
			return s.writeError("unlocking "+user.DN, "write access to lockoutTime", false, err)
		}
		s.log.Info("ad account unlocked", "dn", user.DN)
		return nil
	})
	return s.wrap(err)
}

// CheckWriteAccess implements connectors.WriteAccessChecker: nil when the
// bind account holds the Reset Password right and may write lockoutTime on
// a sample user of the scope, else an error wrapping
// connectors.ErrUnauthorized that names what is missing.
func (s *source) CheckWriteAccess(ctx context.Context) error {
	err := s.withConn(ctx, true, func(c *conn) error {
		st, err := s.readState(ctx, c)
		if err != nil {
			return err
		}
		self, err := s.bindAccountSID(ctx, c, st)
		if err != nil {
			return err
		}
		root, err := searchOne(ctx, c, "", goldap.ScopeBaseObject, "(objectClass=*)", []string{attrTokenGroups})
		if err != nil {
			return s.opError("reading the bind account's groups (tokenGroups of the RootDSE)", err)
		}
		token := [][]byte{self, sidEveryone, sidAuthenticatedUsers}
		if root != nil {
			token = append(token, root.GetRawAttributeValues(attrTokenGroups)...)
		}

		sample, err := s.sampleUser(ctx, c, self)
		if err != nil {
			return err
		}
		var missing []string
		if !containsFold(sample.GetAttributeValues(attrAllowedEffectve), attrLockoutTime) {
			missing = append(missing, "write access to lockoutTime (unlock)")
		}
		aces, ok, err := parseDACL(sample.GetRawAttributeValue(attrSecurityDesc))
		switch {
		case err != nil || (!ok && len(sample.GetRawAttributeValue(attrSecurityDesc)) == 0):
			missing = append(missing, "the Reset Password right (the user's permissions cannot be read to check it)")
		case ok && !grantsControlAccess(aces, token, guidResetPassword):
			missing = append(missing, "the Reset Password right (password reset)")
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: the bind account lacks %s on %s (a sample user of the scope): "+
				"delegate \"Reset user passwords and force password change at next logon\" and \"Write lockoutTime\" on the users' OU to it",
				connectors.ErrUnauthorized, strings.Join(missing, " and "), sample.DN)
		}
		return nil
	})
	return s.wrap(err)
}

// withConn runs fn on a bound connection of the source's pool (refusing
// a connection without TLS when write is set), shared with other
// operations. The whole operation is bounded by three times the configured
// timeout; ending its context ends the request in flight. A reused
// connection found dead before fn wrote anything is replaced, once.
func (s *source) withConn(ctx context.Context, write bool, fn func(*conn) error) error {
	if write && s.cfg.transport == transportPlain {
		return fmt.Errorf("%w: password write-back needs an encrypted connection: use an ldaps:// url or start_tls "+
			"(allow_insecure permits reading only; DCs refuse passwords on a clear connection)", connectors.ErrInvalidConfig)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*s.cfg.timeout)
	defer cancel()
	for {
		pc, reused, err := s.pool.get(ctx)
		if err != nil {
			return err
		}
		op := pc.c.forOperation()
		err = fn(op)
		broken := op.IsClosing() || brokenBy(err)
		s.pool.put(pc, !broken)
		if broken && reused && !op.wrote && ctx.Err() == nil {
			continue // a connection that died while idle: once more on another
		}
		return err
	}
}

// dialPooled dials a connection for the pool: ctx bounds the dial, not the
// connection's life. Each request on it, a write's included, must be
// answered within the configured timeout.
func (s *source) dialPooled(ctx context.Context) (*conn, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	if !c.stop() {
		c.Close()
		return nil, ctx.Err()
	}
	c.stop = func() bool { return true }
	c.SetTimeout(s.cfg.timeout)
	return c, nil
}

// findAccount finds the account by its objectGUID among the users of the
// connection's scope, reading attrs.
func (s *source) findAccount(ctx context.Context, c *conn, acct connectors.Account, attrs ...string) (*goldap.Entry, error) {
	guid, err := parseGUID(acct.ExternalID)
	if err != nil {
		return nil, fmt.Errorf("%w: the account id %q is not an AD objectGUID", connectors.ErrNotFound, acct.ExternalID)
	}
	filter := s.filter(nil, "(objectGUID="+escapeBytes(guid)+")")
	for _, base := range s.cfg.bases {
		e, err := searchOne(ctx, c, base, goldap.ScopeWholeSubtree, filter, attrs)
		if err != nil {
			return nil, s.opError("finding the account "+acct.ExternalID, err)
		}
		if e != nil {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w: no user with objectGUID %s (%s) in the connection's scope", connectors.ErrNotFound, acct.ExternalID, acct.Username)
}

// policyHintsControl returns the policy-hints control the DC supports; the
// choice is remembered by the source (the DC's controls do not change under
// a connection's feet, and a reset spares one search).
func (s *source) policyHintsControl(ctx context.Context, c *conn) (goldap.Control, error) {
	s.hintsMu.Lock()
	oid := s.hintsOID
	s.hintsMu.Unlock()
	if oid == "" {
		root, err := searchOne(ctx, c, "", goldap.ScopeBaseObject, "(objectClass=*)", []string{"supportedControl"})
		if err != nil {
			return nil, s.opError("reading the DC's supported controls", err)
		}
		oid = oidPolicyHintsDeprecated
		if root != nil && containsFold(root.GetAttributeValues("supportedControl"), oidPolicyHints) {
			oid = oidPolicyHints
		}
		s.hintsMu.Lock()
		s.hintsOID = oid
		s.hintsMu.Unlock()
	}
	// value: BER SEQUENCE { INTEGER 1 } (enforce the policy)
	return goldap.NewControlString(oid, true, string([]byte{0x30, 0x03, 0x02, 0x01, 0x01})), nil
}

// bindAccountSID returns the objectSid of the bind account, found by the
// form of bind_dn: a DN, DOMAIN\name, or a UPN (explicit, else the implicit
// sAMAccountName@dns-domain).
func (s *source) bindAccountSID(ctx context.Context, c *conn, st dcState) ([]byte, error) {
	bind := s.cfg.bindDN.Reveal()
	type lookup struct {
		base   string
		scope  int
		filter string
	}
	var tries []lookup
	switch {
	case strings.Contains(bind, "\\"):
		tries = []lookup{{st.defaultNC, goldap.ScopeWholeSubtree, "(sAMAccountName=" + goldap.EscapeFilter(bind[strings.LastIndexByte(bind, '\\')+1:]) + ")"}}
	case strings.Contains(bind, "@") && !strings.Contains(bind, "="):
		tries = []lookup{
			{st.defaultNC, goldap.ScopeWholeSubtree, "(userPrincipalName=" + goldap.EscapeFilter(bind) + ")"},
			{st.defaultNC, goldap.ScopeWholeSubtree, "(sAMAccountName=" + goldap.EscapeFilter(bind[:strings.LastIndexByte(bind, '@')]) + ")"},
		}
	default:
		tries = []lookup{{bind, goldap.ScopeBaseObject, "(objectClass=*)"}}
	}
	for _, l := range tries {
		e, err := searchOne(ctx, c, l.base, l.scope, l.filter, []string{attrSID})
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return nil, s.opError("finding the bind account", err)
		}
		if e != nil && len(e.GetRawAttributeValue(attrSID)) >= 8 {
			return e.GetRawAttributeValue(attrSID), nil
		}
	}
	return nil, fmt.Errorf("%w: the bind account (bind_dn) cannot be found in %s to check its rights", connectors.ErrNotFound, st.defaultNC)
}

// sampleUser returns the first user of the scope that is neither the bind
// account nor protected by AdminSDHolder (adminCount=1: administrators keep
// their own permissions, without the OU's delegation), with its DACL and
// writable attributes.
func (s *source) sampleUser(ctx context.Context, c *conn, self []byte) (*goldap.Entry, error) {
	filter := s.filter(nil, "(!(objectSid="+escapeBytes(self)+"))(!(adminCount=1))")
	for _, base := range s.cfg.bases {
		req := goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 1, 0, false, filter,
			[]string{attrAllowedEffectve, attrSecurityDesc},
			[]goldap.Control{goldap.NewControlString(oidSDFlags, false, string([]byte{0x30, 0x03, 0x02, 0x01, 0x04}))}) // DACL only
		var found *goldap.Entry
		err := pagedSearch(ctx, c, req, 0, func(e *goldap.Entry) {
			if found == nil {
				found = e
			}
		}, func(bool) error { return nil })
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
			return nil, s.opError("reading a sample user's permissions", err)
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, fmt.Errorf("%w: no user in the connection's scope to check the bind account's rights on", connectors.ErrNotFound)
}

// writeError explains a refused write: a policy refusal of a password
// becomes a *connectors.PasswordRejectedError, missing rights name right.
func (s *source) writeError(what, right string, password bool, err error) error {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return s.opError(what, err)
	}
	msg := ldapMessage(err)
	switch {
	case password && (strings.Contains(msg, "0000052D") || le.ResultCode == goldap.LDAPResultConstraintViolation):
		reason := RejectedReason
		if detail := policyDetail(msg); detail != "" {
			reason += " (the DC says: " + detail + ")"
		}
		return &connectors.PasswordRejectedError{Reason: reason}
	case le.ResultCode == goldap.LDAPResultInsufficientAccessRights:
		return fmt.Errorf("%w: %s: the bind account lacks %s on this user: delegate \"Reset user passwords and force password change at next logon\" and \"Write lockoutTime\" on the users' OU to it (%s)",
			connectors.ErrUnauthorized, what, right, msg)
	case le.ResultCode == goldap.LDAPResultUnavailableCriticalExtension:
		return fmt.Errorf("%w: %s: the DC does not support the password-policy-hints control (%s or %s), so it could not apply the password history; it needs Windows Server 2008 R2 or later (%s)",
			connectors.ErrInvalidConfig, what, oidPolicyHints, oidPolicyHintsDeprecated, msg)
	case strings.Contains(msg, "0000001F") || le.ResultCode == goldap.LDAPResultUnwillingToPerform:
		return fmt.Errorf("%w: %s: the DC refused to perform it (an unencrypted connection, or the DC forbids it): %s", connectors.ErrUnavailable, what, msg)
	}
	return s.opError(what, err)
}

// policyDetail extracts a DC's explanation of a policy refusal, when it
// gives one (Samba: "check_password_restrictions: the password is too
// short. It should be equal or longer than 7 characters!"; AD gives none).
func policyDetail(msg string) string {
	const marker = "check_password_restrictions:"
	i := strings.Index(msg, marker)
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(msg[i+len(marker):])
}

// encodePassword encodes a password for unicodePwd: in double quotes,
// UTF-16LE.
func encodePassword(p string) string {
	u := utf16.Encode([]rune(`"` + p + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		b[2*i], b[2*i+1] = byte(r), byte(r>>8)
	}
	return string(b)
}

// parseGUID is the inverse of guidString: the 16 bytes of objectGUID from
// its canonical text form.
func parseGUID(s string) ([]byte, error) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, errors.New("not a GUID")
	}
	raw, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if err != nil {
		return nil, errors.New("not a GUID")
	}
	// the first three fields are little-endian in the binary form
	return []byte{raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6],
		raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]}, nil
}

func mustGUIDBytes(s string) []byte {
	b, err := parseGUID(s)
	if err != nil {
		panic(err)
	}
	return b
}

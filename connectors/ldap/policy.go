package ldap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

// The password expiry and lockout of a user are computed here exactly as a
// DC computes the constructed attributes msDS-UserPasswordExpiryTimeComputed
// and msDS-User-Account-Control-Computed (MS-ADTS 3.1.1.4.5.17, .36, .38 and
// Samba's source4/dsdb/samdb/ldb_modules/operational.c), from stored
// attributes read once per run:
//
//   - The effective policy of a user is the domain's (maxPwdAge and
//     lockoutDuration on the domain object) unless a password settings
//     object (PSO) applies. PSOs apply only at domain functional level 2008
//     or above, only to normal accounts (UF_NORMAL_ACCOUNT), never to krbtgt
//     accounts.
//   - A PSO in CN=Password Settings Container,CN=System applies directly to
//     the users named in its msDS-PSOAppliesTo; if any does, the best of
//     them wins and groups are not considered. Otherwise a PSO applies
//     through a group it names: a security-enabled, non-builtin group the
//     user belongs to directly, through the primary group, or through a
//     chain of nested groups that are all security-enabled and non-builtin.
//   - The best PSO has the lowest msDS-PasswordSettingsPrecedence; ties go
//     to the smallest objectGUID, compared as bytes (memcmp of the stored
//     value, as Samba's ndr_guid_compare and DRS do).
//   - Expiry: never for DONT_EXPIRE_PASSWORD, SMARTCARD_REQUIRED and trust
//     accounts; 0 when pwdLastSet is 0; never when the effective maximum age
//     is "never" (0x8000000000000000, or not below one day); otherwise
//     pwdLastSet + |max age|.
//   - Lockout: lockoutTime != 0 (not for trust accounts) and either the
//     effective lockoutDuration is >= 0 (locked until an administrator
//     unlocks) or lockoutTime + |lockoutDuration| >= now (in whole seconds).
//
// When the bind account cannot read the PSOs (it sees a group's
// msDS-PSOApplied back-link to a PSO it cannot read), the whole run asks the
// DC for the constructed attributes instead (useConstructed). A user whose
// own back-links disagree with the PSOs read, or whose lockout arithmetic
// would overflow (a "forever" duration of 0x8000000000000000, where DCs
// differ), is asked of the DC individually.

// pso is one fine-grained password policy.
type pso struct {
	dn              string
	guid            []byte // raw objectGUID: ties compare it with memcmp
	precedence      uint32
	maxAge          int64
	lockoutDuration int64
	targets         []string // lower-case DNs from msDS-PSOAppliesTo
}

// better reports whether p wins over q.
func (p *pso) better(q *pso) bool {
	if q == nil {
		return true
	}
	if p.precedence != q.precedence {
		return p.precedence < q.precedence
	}
	return bytes.Compare(p.guid, q.guid) < 0
}

// policy is what decides the expiry and lockout of the users of one run.
type policy struct {
	maxPwdAge       int64
	lockoutDuration int64
	psoSupported    bool
	psos            []*pso
	byDN            map[string]*pso // by lower-case DN
	pscDN           *goldap.DN      // the Password Settings Container
	// direct maps a lower-case user DN to the best PSO naming it.
	direct map[string]*pso
	// viaGroup maps a lower-case account-group DN to the best PSO applying
	// to its members through it.
	viaGroup map[string]*pso
	// viaPrimary maps a primary group RID to the best PSO applying to the
	// users whose primary group it is.
	viaPrimary map[uint32]*pso

	// priv decides which users are privileged.
	priv *privileges

	// useConstructed asks the DC for the constructed attributes of every
	// user, because the PSOs cannot be read (constructedReason says why).
	useConstructed    bool
	constructedReason string

	// fingerprint hashes everything above plus the groups that decide
	// policies and scope; maxGroupUSN is the highest uSNChanged of those
	// groups.
	fingerprint string
	maxGroupUSN int64
}

func (p *policy) hasPSOs() bool { return p.psoSupported && len(p.psos) > 0 }

// group is one group of the domain, as needed to resolve nesting.
type group struct {
	dn        string // lower case
	origDN    string // as the DC wrote it
	groupType uint32
	memberOf  []string // lower case
	sid       []byte
	usn       int64
	children  []*group
}

// Group type bits (MS-ADTS 2.2.12).
const (
	groupTypeBuiltinLocal   = 0x1
	groupTypeSecurityEnable = 0x80000000
)

// account reports whether the group takes part in PSO resolution: security
// enabled and not builtin (Samba's RevMembGetAccountGroups filter).
func (g *group) account() bool {
	return g.groupType&groupTypeSecurityEnable != 0 && g.groupType&groupTypeBuiltinLocal == 0
}

// readPolicy reads the domain policy, the PSOs, the groups of the domain
// and the members of the privileged ones.
func (s *source) readPolicy(ctx context.Context, c *conn, st dcState) (*policy, error) {
	pol := &policy{psoSupported: st.functionality >= 3, byDN: map[string]*pso{},
		direct: map[string]*pso{}, viaGroup: map[string]*pso{}, viaPrimary: map[uint32]*pso{}}

	dom, err := searchOne(ctx, c, st.defaultNC, goldap.ScopeBaseObject, "(objectClass=*)", []string{attrMaxPwdAge, attrLockoutDuration, attrSID})
	if err != nil {
		return nil, s.opError("reading the domain password policy", err)
	}
	if dom == nil {
		return nil, fmt.Errorf("%w: cannot read the domain object %s", connectors.ErrUnauthorized, st.defaultNC)
	}
	var errAge, errDur error
	pol.maxPwdAge, errAge = strconv.ParseInt(dom.GetAttributeValue(attrMaxPwdAge), 10, 64)
	pol.lockoutDuration, errDur = strconv.ParseInt(dom.GetAttributeValue(attrLockoutDuration), 10, 64)
	if errAge != nil || errDur != nil {
		// always set in AD: missing means unreadable
		pol.constructed(fmt.Sprintf("cannot read maxPwdAge and lockoutDuration of %s", st.defaultNC))
	}
	domainSID := dom.GetRawAttributeValue(attrSID)

	psc := "CN=Password Settings Container,CN=System," + st.defaultNC
	if pol.pscDN, err = goldap.ParseDN(psc); err != nil {
		return nil, fmt.Errorf("%w: %q is not a DN", connectors.ErrBadResponse, psc)
	}
	if pol.psoSupported {
		if err := s.readPSOs(ctx, c, psc, pol); err != nil {
			return nil, err
		}
	}

	// The groups: their nesting resolves PSOs, the group scope and the
	// privileged groups (privileged.go), their msDS-PSOApplied back-links
	// reveal PSOs the bind account cannot read.
	groups, err := s.readGroups(ctx, c, st, "(objectClass=group)", pol)
	if err != nil {
		return nil, err
	}
	relevant := map[string]*group{} // groups whose changes make a cursor doubtful
	if !pol.useConstructed {
		resolvePSOs(pol, groups, domainSID, relevant)
	}
	if pol.priv, err = s.readPrivileges(ctx, c, st.defaultNC, groups, domainSID, relevant); err != nil {
		return nil, err
	}
	for _, dn := range append(append([]string{}, s.cfg.groups...), s.cfg.exclGroup...) {
		if dn, err := goldap.ParseDN(dn); err == nil {
			closure(findGroup(groups, dn), func(*group) bool { return true }, relevant)
		}
	}
	pol.fingerprint, pol.maxGroupUSN = fingerprint(pol, relevant)
	return pol, nil
}

// readPSOs reads the PSOs of the Password Settings Container.
func (s *source) readPSOs(ctx context.Context, c *conn, psc string, pol *policy) error {
	req := goldap.NewSearchRequest(psc, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=msDS-PasswordSettings)",
		[]string{attrGUID, attrPSOPrecedence, attrPSOMaxAge, attrPSOLockout, attrPSOAppliesTo}, nil)
	err := pagedSearch(ctx, c, req, s.cfg.pageSize, func(e *goldap.Entry) {
		p := &pso{dn: strings.ToLower(e.DN), guid: e.GetRawAttributeValue(attrGUID)}
		prec, errP := strconv.ParseUint(e.GetAttributeValue(attrPSOPrecedence), 10, 32)
		age, errA := strconv.ParseInt(e.GetAttributeValue(attrPSOMaxAge), 10, 64)
		dur, errD := strconv.ParseInt(e.GetAttributeValue(attrPSOLockout), 10, 64)
		if errP != nil || errA != nil || errD != nil || len(e.GetRawAttributeValue(attrGUID)) != 16 {
			// These attributes are mandatory: missing means unreadable.
			pol.constructed(fmt.Sprintf("cannot read the settings of PSO %s", e.DN))
			return
		}
		p.precedence, p.maxAge, p.lockoutDuration = uint32(prec), age, dur
		for _, a := range e.Attributes {
			if strings.HasPrefix(strings.ToLower(a.Name), strings.ToLower(attrPSOAppliesTo)+";range=") {
				pol.constructed(fmt.Sprintf("PSO %s applies to too many objects to read in one answer", e.DN))
			}
		}
		for _, t := range e.GetAttributeValues(attrPSOAppliesTo) {
			p.targets = append(p.targets, strings.ToLower(t))
		}
		pol.psos = append(pol.psos, p)
		pol.byDN[p.dn] = p
	}, func(bool) error { return nil })
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return nil // no container: no PSOs (a pre-2008 schema)
	}
	if err != nil {
		return s.opError("reading the fine-grained password policies", err)
	}
	return nil
}

// constructed switches the run to the DC's constructed attributes.
func (p *policy) constructed(reason string) {
	if !p.useConstructed {
		p.useConstructed, p.constructedReason = true, reason
	}
}

// linksConsistent cross-checks an object's msDS-PSOApplied back-links with
// the PSOs read: a PSO the bind account cannot see, or whose targets it
// cannot read, would silently give wrong expiry dates.
func (p *policy) linksConsistent(target string, applied []string) bool {
	if len(applied) > 0 && p.pscDN == nil {
		return false
	}
	for _, v := range applied {
		v = strings.ToLower(v)
		dn, err := goldap.ParseDN(v)
		if err != nil || len(dn.RDNs) != len(p.pscDN.RDNs)+1 || !p.pscDN.AncestorOfFold(dn) {
			continue // not directly in the container: never applies
		}
		if q := p.byDN[v]; q == nil || !containsString(q.targets, strings.ToLower(target)) {
			return false
		}
	}
	return true
}

func containsString(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// readGroups reads the groups of the domain matching filter, with their
// nesting, and checks their PSO back-links.
func (s *source) readGroups(ctx context.Context, c *conn, st dcState, filter string, pol *policy) (map[string]*group, error) {
	groups := map[string]*group{}
	req := goldap.NewSearchRequest(st.defaultNC, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		filter, []string{attrGroupType, attrMemberOf, attrSID, attrUSNChanged, attrPSOApplied}, nil)
	err := pagedSearch(ctx, c, req, s.cfg.pageSize, func(e *goldap.Entry) {
		gt, _ := strconv.ParseInt(e.GetAttributeValue(attrGroupType), 10, 64)
		usn, _ := strconv.ParseInt(e.GetAttributeValue(attrUSNChanged), 10, 64)
		g := &group{dn: strings.ToLower(e.DN), origDN: e.DN, groupType: uint32(gt), sid: e.GetRawAttributeValue(attrSID), usn: usn}
		for _, a := range e.Attributes {
			if strings.HasPrefix(strings.ToLower(a.Name), "memberof;range=") {
				pol.constructed(fmt.Sprintf("group %s is nested in more groups than the DC returns in one answer", e.DN))
			}
		}
		for _, m := range e.GetAttributeValues(attrMemberOf) {
			g.memberOf = append(g.memberOf, strings.ToLower(m))
		}
		if !pol.linksConsistent(e.DN, e.GetAttributeValues(attrPSOApplied)) {
			pol.constructed(fmt.Sprintf("group %s has a PSO applied that the bind account cannot read", e.DN))
		}
		groups[g.dn] = g
	}, func(bool) error { return nil })
	if err != nil {
		return nil, s.opError("reading the domain's groups", err)
	}
	for _, g := range groups {
		for _, parent := range g.memberOf {
			if p := groups[parent]; p != nil {
				p.children = append(p.children, g)
			}
		}
	}
	return groups, nil
}

// findGroup looks a configured group DN up.
func findGroup(groups map[string]*group, dn *goldap.DN) *group {
	if g := groups[strings.ToLower(dn.String())]; g != nil {
		return g
	}
	for key, g := range groups {
		if parsed, err := goldap.ParseDN(key); err == nil && parsed.EqualFold(dn) {
			return g
		}
	}
	return nil
}

// closure visits g and the groups nested in it (through groups accepted by
// follow), adding them to seen, and returns them.
func closure(g *group, follow func(*group) bool, seen map[string]*group) []*group {
	if g == nil {
		return nil
	}
	var out []*group
	visited := map[*group]bool{g: true}
	queue := []*group{g}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		out = append(out, cur)
		seen[cur.dn] = cur
		for _, ch := range cur.children {
			if !visited[ch] && follow(ch) {
				visited[ch] = true
				queue = append(queue, ch)
			}
		}
	}
	return out
}

// resolvePSOs fills the direct, viaGroup and viaPrimary maps.
func resolvePSOs(pol *policy, groups map[string]*group, domainSID []byte, relevant map[string]*group) {
	if !pol.psoSupported {
		return
	}
	for _, p := range pol.psos {
		for _, t := range p.targets {
			g := groups[t]
			if g == nil {
				// not a group: a user named directly
				if p.better(pol.direct[t]) {
					pol.direct[t] = p
				}
				continue
			}
			relevant[g.dn] = g
			if !g.account() {
				continue // distribution and builtin groups carry no PSO
			}
			for _, member := range closure(g, (*group).account, relevant) {
				if p.better(pol.viaGroup[member.dn]) {
					pol.viaGroup[member.dn] = p
				}
			}
		}
	}
	for dn, p := range pol.viaGroup {
		g := groups[dn]
		// a SID of the domain: one more sub-authority than the domain's
		// (byte 1 is the sub-authority count)
		if len(domainSID) >= 8 && len(g.sid) == len(domainSID)+4 && g.sid[0] == domainSID[0] &&
			bytes.Equal(g.sid[2:len(domainSID)], domainSID[2:]) {
			rid := binary.LittleEndian.Uint32(g.sid[len(g.sid)-4:])
			pol.viaPrimary[rid] = p
		}
	}
}

// fingerprint hashes the policies and the groups that decide them or the
// scope, and returns the highest uSNChanged of those groups.
func fingerprint(pol *policy, relevant map[string]*group) (string, int64) {
	h := sha256.New()
	fmt.Fprintf(h, "domain %d %d %t %t\n", pol.maxPwdAge, pol.lockoutDuration, pol.psoSupported, pol.useConstructed)
	psos := append([]*pso{}, pol.psos...)
	sort.Slice(psos, func(i, j int) bool { return psos[i].dn < psos[j].dn })
	for _, p := range psos {
		targets := append([]string{}, p.targets...)
		sort.Strings(targets)
		fmt.Fprintf(h, "pso %s %x %d %d %d %q\n", p.dn, p.guid, p.precedence, p.maxAge, p.lockoutDuration, targets)
	}
	var dns []string
	var maxUSN int64
	for dn, g := range relevant {
		dns = append(dns, dn)
		maxUSN = max(maxUSN, g.usn)
	}
	sort.Strings(dns)
	for _, dn := range dns {
		fmt.Fprintf(h, "group %s %d\n", dn, relevant[dn].groupType)
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), maxUSN
}

// pso returns the PSO that applies to u, or nil.
func (p *policy) psoFor(u rawUser) *pso {
	if !p.hasPSOs() || u.uac&ufNormalAccount == 0 || (u.hasRID && u.rid == ridKrbtgt) || u.secondaryKrbTgt {
		return nil
	}
	if best := p.direct[strings.ToLower(u.dn)]; best != nil {
		return best
	}
	var best *pso
	for _, m := range u.memberOf {
		if q := p.viaGroup[strings.ToLower(m)]; q != nil && q.better(best) {
			best = q
		}
	}
	if q := p.viaPrimary[u.primaryGroupID]; q != nil && q.better(best) {
		best = q
	}
	return best
}

// user maps an entry to a User with its computed expiry and lockout. askDC
// is set when the DC must compute them instead.
func (p *policy) user(u rawUser, now time.Time) (out connectors.User, askDC bool, reason string) {
	if p.useConstructed {
		return constructedUser(u)
	}
	maxAge, lockoutDuration := p.maxPwdAge, p.lockoutDuration
	if ps := p.psoFor(u); ps != nil {
		maxAge, lockoutDuration = ps.maxAge, ps.lockoutDuration
	}
	locked, sure := lockedOut(u.uac, u.lockoutTime, lockoutDuration, now)
	out = baseUser(u)
	setPasswordState(&out, expiryTime(u.uac, u.pwdLastSet, maxAge), locked, u.lockoutTime)
	askDC = !sure || (u.memberOfRanged && p.hasPSOs()) || (p.psoSupported && !p.linksConsistent(u.dn, u.psoApplied))
	return out, askDC, ""
}

// expiryTime computes msDS-UserPasswordExpiryTimeComputed from
// userAccountControl, pwdLastSet and the effective maximum password age (a
// negative interval).
func expiryTime(uac uint32, pwdLastSet, maxAge int64) int64 {
	switch {
	case uac&ufNoExpiryAccount != 0:
		return neverFT
	case pwdLastSet == 0:
		return 0
	case pwdLastSet < 0 || pwdLastSet == neverFT:
		return neverFT
	case maxAge >= -864000000000 || maxAge == math.MinInt64:
		// "never", or an age below one day, which AD does not allow
		return neverFT
	}
	exp := uint64(pwdLastSet) - uint64(maxAge) // maxAge < 0: cannot wrap
	if exp >= uint64(neverFT) {
		return neverFT
	}
	return int64(exp)
}

// lockedOut computes the UF_LOCKOUT bit of msDS-User-Account-Control-Computed.
// sure is false when the arithmetic would overflow, where DCs disagree.
func lockedOut(uac uint32, lockoutTime, duration int64, now time.Time) (locked, sure bool) {
	if uac&ufTrustAccounts != 0 || lockoutTime == 0 {
		return false, true
	}
	if duration >= 0 {
		return true, true // until an administrator unlocks it
	}
	if lockoutTime > math.MaxInt64+duration {
		return false, false // lockoutTime - duration overflows
	}
	nowFT := (now.Unix() + fileTimeEpoch) * 1e7 // whole seconds, as the DC
	return lockoutTime-duration >= nowFT, true
}

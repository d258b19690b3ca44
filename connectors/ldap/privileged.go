package ldap

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

// Privileged accounts (connectors.User.Privileged) are found from the group
// graph the run reads anyway, without asking the DC to evaluate group rules
// per user:
//
//   - The protected groups are found by their well-known SIDs, never by
//     name (names are localised): the domain's Domain Admins (RID 512),
//     Schema Admins (518), Enterprise Admins (519), Group Policy Creator
//     Owners (520), Key Admins (526) and Enterprise Key Admins (527), and the
//     builtin Administrators (S-1-5-32-544), Account Operators (548),
//     Server Operators (549), Print Operators (550) and Backup Operators
//     (551); plus the groups the connection lists in privileged_groups.
//   - Their closure (the groups nested in them, at any depth) comes from the
//     memberOf of every group; the member attribute of the groups of the
//     closure (a few, usually small: one search by objectSid, and ranged
//     retrieval for a long one) gives the accounts in them.
//   - A user is privileged when it is a member of a group of the closure
//     (its DN in a member list, or its primaryGroupID the RID of one), or
//     when its adminCount is 1: AD sets it on the members of protected
//     groups and leaves it set after they leave (a past administrator keeps
//     rights granted while it was one, and its ACL stays protected), so
//     such a user stays privileged.
//   - When the bind account cannot see the protected groups or their
//     members (Domain Admins or Administrators missing, or Administrators
//     without a visible member: both always have one), no user can be
//     classified: every user not otherwise found privileged is reported
//     privileged with PrivilegeUnknown, so the import names them and keeps
//     them out of self-serve until it can tell.
//
// Incremental runs: adding a user to a group changes the group's
// uSNChanged, not the user's, so a listing of the users changed since the
// cursor would miss it. The groups of the closure take part in the cursor's
// policy fingerprint and group USN (see cursor.matchesRun): a change of any
// of them (a member added or removed, a group nested or un-nested) makes
// the cursor doubtful, and the engine runs a full listing, which
// re-evaluates every user. Membership of those groups changes rarely; a
// change of a user's adminCount changes the user's uSNChanged and is seen
// by the incremental run itself.

// Well-known relative identifiers of the domain's protected groups.
var protectedDomainRIDs = []uint32{512, 518, 519, 520, 526, 527}

// Well-known RIDs of the protected groups of the Builtin domain
// (S-1-5-32-x).
var protectedBuiltinRIDs = []uint32{544, 548, 549, 550, 551}

// builtinDomainSID is S-1-5-32 in binary form, with its one sub-authority.
var builtinDomainSID = []byte{1, 1, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0}

// The groups that always have a visible member, and the user attribute
// AD sets on the members of protected groups.
const (
	ridDomainAdmins    = 512
	ridAdministrators  = 544
	attrAdminCount     = "adminCount"
	attrMember         = "member"
	maxMemberRangeRuns = 1000 // 1.5 million members: a safety bound
)

// privilegeReason is why members of one group of the closure are
// privileged.
type privilegeReason struct {
	root   string // the protected or configured group, by its name
	nested string // the group nested in it the member is in ("" if root)
}

func (r privilegeReason) String() string {
	if r.nested == "" {
		return "member of " + r.root
	}
	return fmt.Sprintf("member of %s through the nested group %s", r.root, r.nested)
}

// privileges is what decides which users of a run are privileged.
type privileges struct {
	// byMember maps a lower-case member DN to the reason of the first
	// group of the closure that lists it.
	byMember map[string]privilegeReason
	// byPrimary maps a primary group RID to its reason.
	byPrimary map[uint32]privilegeReason
	// unknown, when set, says why users cannot be classified.
	unknown string
}

// sidWithRID returns the SID of domain with one more sub-authority, rid.
func sidWithRID(domain []byte, rid uint32) []byte {
	if len(domain) < 8 {
		return nil
	}
	sid := append([]byte{}, domain...)
	sid[1]++
	return binary.LittleEndian.AppendUint32(sid, rid)
}

// groupName is the group's cn, from its DN as the DC wrote it.
func groupName(g *group) string {
	dn, err := goldap.ParseDN(g.origDN)
	if err != nil || len(dn.RDNs) == 0 || len(dn.RDNs[0].Attributes) == 0 {
		return g.origDN
	}
	return dn.RDNs[0].Attributes[0].Value
}

// readPrivileges finds the protected and configured groups in groups, adds
// their closure to relevant and reads the members of the closure.
func (s *source) readPrivileges(ctx context.Context, c *conn, domainNC string, groups map[string]*group, domainSID []byte, relevant map[string]*group) (*privileges, error) {
	p := &privileges{byMember: map[string]privilegeReason{}, byPrimary: map[uint32]privilegeReason{}}
	bySID := make(map[string]*group, len(groups))
	for _, g := range groups {
		if len(g.sid) > 0 {
			bySID[string(g.sid)] = g
		}
	}
	var roots []*group
	for _, rid := range protectedDomainRIDs {
		g := bySID[string(sidWithRID(domainSID, rid))]
		if g == nil && rid == ridDomainAdmins {
			p.unknown = "the bind account cannot see the domain's Domain Admins group (RID 512)"
		}
		if g != nil {
			roots = append(roots, g)
		}
	}
	for _, rid := range protectedBuiltinRIDs {
		g := bySID[string(sidWithRID(builtinDomainSID, rid))]
		if g == nil && rid == ridAdministrators {
			p.unknown = "the bind account cannot see the Builtin Administrators group (S-1-5-32-544)"
		}
		if g != nil {
			roots = append(roots, g)
		}
	}
	for _, dn := range s.cfg.privGroups {
		parsed, err := goldap.ParseDN(dn)
		if err != nil {
			continue // validated by Open
		}
		g := findGroup(groups, parsed)
		if g == nil {
			return nil, fmt.Errorf("%w: privileged_groups entry %q is not a group the bind account can see on %s", connectors.ErrNotFound, dn, s.cfg.addr)
		}
		roots = append(roots, g)
	}

	reasons := map[*group]privilegeReason{}
	var members []*group // the closure, each group once
	for _, root := range roots {
		for _, g := range closure(root, func(*group) bool { return true }, relevant) {
			if _, seen := reasons[g]; seen {
				continue
			}
			members = append(members, g)
			r := privilegeReason{root: groupName(root)}
			if g != root {
				r.nested = groupName(g)
			}
			reasons[g] = r
			if len(domainSID) >= 8 && len(g.sid) == len(domainSID)+4 && g.sid[0] == domainSID[0] &&
				bytes.Equal(g.sid[2:len(domainSID)], domainSID[2:]) {
				p.byPrimary[binary.LittleEndian.Uint32(g.sid[len(g.sid)-4:])] = r
			}
		}
	}
	lists, err := s.readMemberLists(ctx, c, domainNC, members)
	if err != nil {
		return nil, err
	}
	administrators := sidWithRID(builtinDomainSID, ridAdministrators)
	for i, g := range members {
		dns := lists[i]
		if len(dns) == 0 && bytes.Equal(g.sid, administrators) {
			p.unknown = "the bind account cannot read the members of the Builtin Administrators group (S-1-5-32-544), which always has some"
		}
		for _, m := range dns {
			if _, ok := p.byMember[m]; !ok {
				p.byMember[m] = reasons[g]
			}
		}
	}
	return p, nil
}

// readMemberLists reads the member attribute of groups, as lower-case DNs,
// in one search by objectSid (indexed); a group whose list the DC returns in
// ranges (more than MaxValRange members) is read again on its own.
func (s *source) readMemberLists(ctx context.Context, c *conn, domainNC string, groups []*group) ([][]string, error) {
	out := make([][]string, len(groups))
	if len(groups) == 0 {
		return out, nil
	}
	index := make(map[string]int, len(groups))
	var f strings.Builder
	f.WriteString("(|")
	for i, g := range groups {
		index[g.dn] = i
		f.WriteString("(objectSid=" + escapeBytes(g.sid) + ")")
	}
	f.WriteString(")")
	var ranged []int
	req := goldap.NewSearchRequest(domainNC, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, f.String(), []string{attrMember}, nil)
	err := pagedSearch(ctx, c, req, s.cfg.pageSize, func(e *goldap.Entry) {
		i, ok := index[strings.ToLower(e.DN)]
		if !ok {
			return
		}
		for _, a := range e.Attributes {
			switch name := strings.ToLower(a.Name); {
			case name == attrMember:
				for _, v := range a.Values {
					out[i] = append(out[i], strings.ToLower(v))
				}
			case strings.HasPrefix(name, attrMember+";range="):
				ranged = append(ranged, i)
			}
		}
	}, func(bool) error { return nil })
	if err != nil {
		return nil, s.opError("reading the members of the privileged groups", err)
	}
	for _, i := range ranged {
		if out[i], err = s.readMembers(ctx, c, groups[i].dn); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readMembers reads the member attribute of a group, in ranges when the DC
// returns it in parts (MaxValRange), as lower-case DNs.
func (s *source) readMembers(ctx context.Context, c *conn, dn string) ([]string, error) {
	var out []string
	attr := attrMember
	for range maxMemberRangeRuns {
		e, err := searchOne(ctx, c, dn, goldap.ScopeBaseObject, "(objectClass=*)", []string{attr})
		if err != nil {
			return nil, s.opError("reading the members of "+strconv.Quote(dn), err)
		}
		if e == nil {
			return out, nil
		}
		next := ""
		for _, a := range e.Attributes {
			name := strings.ToLower(a.Name)
			if name != attrMember && !strings.HasPrefix(name, attrMember+";range=") {
				continue
			}
			for _, v := range a.Values {
				out = append(out, strings.ToLower(v))
			}
			// member;range=0-1499: more from 1500; member;range=1500-*: the end
			if rng, ranged := strings.CutPrefix(name, attrMember+";range="); ranged {
				if _, hi, _ := strings.Cut(rng, "-"); hi != "*" {
					end, err := strconv.Atoi(hi)
					if err != nil {
						return nil, fmt.Errorf("%w: %s: member range %q", connectors.ErrBadResponse, dn, a.Name)
					}
					next = fmt.Sprintf("%s;range=%d-*", attrMember, end+1)
				}
			}
		}
		if next == "" {
			return out, nil
		}
		attr = next
	}
	return nil, fmt.Errorf("%w: %s has more members than the connector reads", connectors.ErrBadResponse, dn)
}

// classify sets the privilege of u from its entry.
func (p *privileges) classify(u *connectors.User, raw rawUser) {
	r, member := p.byMember[strings.ToLower(raw.dn)]
	primary, byPrimary := p.byPrimary[raw.primaryGroupID]
	switch {
	case member:
		u.Privileged, u.PrivilegedReason = true, r.String()
	case byPrimary:
		u.Privileged, u.PrivilegedReason = true, primary.String()+" (its primary group)"
	case raw.adminCount:
		u.Privileged, u.PrivilegedReason = true, "adminCount=1: AD marks accounts that are or were members of a protected group"
	case p.unknown != "":
		u.Privileged, u.PrivilegeUnknown, u.PrivilegedReason = true, true, p.unknown
	}
}

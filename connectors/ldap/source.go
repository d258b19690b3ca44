package ldap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
)

var (
	_ connectors.UserSource  = (*source)(nil)
	_ connectors.DeltaSource = (*source)(nil)
	_ connectors.Pinger      = (*source)(nil)
)

// source is an opened AD connection configuration. Each listing dials its
// own LDAP connection and closes it when the listing ends, so a source holds
// no network resources between runs.
type source struct {
	id  string
	cfg *settings
	log *slog.Logger

	// hintsOID is the policy-hints control the DC supports, once known
	// (writeback.go).
	hintsMu  sync.Mutex
	hintsOID string

	// pool keeps the write-back's bound connections (pool.go); a listing
	// dials its own, which live as long as it.
	pool *connPool
}

// Close implements connectors.Source: it closes the write-back's idle
// connections (one in use is closed when its operation ends).
func (s *source) Close() error {
	s.pool.close()
	return nil
}

// Ping connects, binds, reads the RootDSE and checks that every configured
// DN (bases, groups, exclusions) exists.
func (s *source) Ping(ctx context.Context) error {
	c, err := s.dial(ctx)
	if err != nil {
		return s.wrap(err)
	}
	defer c.Close()
	st, err := s.readState(ctx, c)
	if err != nil {
		return s.wrap(err)
	}
	return s.wrap(s.checkScope(ctx, c, st))
}

// Users implements connectors.UserSource. resume is ignored: LDAP paging
// cookies do not survive the connection, so an interrupted run starts over.
func (s *source) Users(ctx context.Context, resume string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		s.prefetch(ctx, nil, yield)
	}
}

// Changes implements connectors.DeltaSource: the users whose uSNChanged is
// above the cursor's USN. It returns an error wrapping
// connectors.ErrResyncRequired when the cursor is malformed, comes from
// another DC or another invocation of its database, is ahead of the DC, or
// when the scope or password policies (or the groups deciding them) changed
// since it was taken. Changes never reports removals: deleted users and users
// that left the scope are found by full runs only.
func (s *source) Changes(ctx context.Context, cursor string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		cur, err := decodeCursor(cursor)
		if err != nil {
			yield(connectors.UserPage{}, s.wrap(err))
			return
		}
		s.prefetch(ctx, &cur, yield)
	}
}

func (s *source) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ad connection %s: %w", s.id, err)
}

// item is a page or the error that ends a listing.
type item struct {
	page connectors.UserPage
	err  error
}

// prefetch runs the listing in a goroutine that reads the next pages from
// the DC while the consumer works on the current one (the sync engine
// commits it): one page waits in the channel and each search holds at most
// one more, so a handful of pages are in memory, however large the
// directory. When the consumer stops, the listing is cancelled and waited
// for.
func (s *source) prefetch(ctx context.Context, since *cursor, yield func(connectors.UserPage, error) bool) {
	ctx, abort := context.WithCancel(ctx)
	stopped := make(chan struct{})
	items := make(chan item, 1)
	go func() {
		defer close(items)
		send := func(it item) bool {
			select {
			case items <- it:
				return true
			case <-stopped: // only the consumer stops: errors always arrive
				return false
			}
		}
		if err := s.list(ctx, since, func(p connectors.UserPage) bool { return send(item{page: p}) }); err != nil {
			send(item{err: s.wrap(err)})
		}
	}()
	defer func() {
		close(stopped)
		abort()
		for range items { // wait for the goroutine
		}
	}()
	for it := range items {
		if !yield(it.page, it.err) || it.err != nil {
			return
		}
	}
}

// errStopped ends a listing whose consumer stopped asking for pages.
var errStopped = errors.New("consumer stopped")

// list runs a full listing (since == nil) or an incremental one.
func (s *source) list(ctx context.Context, since *cursor, yield func(connectors.UserPage) bool) error {
	c, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	// A listing of several parts (see parts) runs them on two connections:
	// the second one is dialled while the first reads the DC's state and
	// policies.
	var second *pendingConn
	if len(s.cfg.bases) > 1 || (since == nil && len(s.cfg.groups) == 0 && len(s.cfg.exclGroup) == 0) {
		dialCtx, stopDial := context.WithCancel(ctx)
		second = s.dialAsync(dialCtx)
		defer second.close()
		defer stopDial() // first: an early return does not wait for the dial
	}

	st, err := s.readState(ctx, c)
	if err != nil {
		return err
	}
	if since != nil {
		if err := since.matchesDC(st); err != nil {
			return err
		}
	}
	if err := s.checkScope(ctx, c, st); err != nil {
		return err
	}
	pol, err := s.readPolicy(ctx, c, st)
	if err != nil {
		return err
	}
	next := cursor{USN: st.usn, InvocationID: st.invocationID, DC: st.dc, Scope: s.scopeHash(), Policy: pol.fingerprint}
	if since != nil {
		if err := since.matchesRun(next, pol); err != nil {
			return err
		}
	}
	nextCursor, err := json.Marshal(next)
	if err != nil {
		return err
	}

	parts := s.parts(ctx, c, since)
	conns := []*conn{c}
	if len(parts) > 1 {
		conns = append(conns, s.secondConn(ctx, c, second))
	}
	r := &listing{
		s: s, c: c, conns: conns, st: st, pol: pol,
		attrs:  s.attributes(pol),
		parts:  parts,
		cursor: string(nextCursor),
		yield:  yield,
	}
	if pol.useConstructed {
		s.log.Warn("the bind account cannot read the password policies (the domain's maxPwdAge and lockoutDuration, or the PSOs in CN=Password Settings Container,CN=System): "+
			"asking the DC for the computed expiry and lockout of every user, which is several times slower; "+
			"grant the account read access to avoid it", "reason", pol.constructedReason)
	}
	err = r.run(ctx)
	if errors.Is(err, errStopped) {
		return nil
	}
	if err != nil {
		return err
	}
	mode := "full"
	if since != nil {
		mode = "incremental"
	}
	s.log.Info("ad listing done", "mode", mode, "users", r.users, "invalid", r.invalid, "pages", r.pages,
		"dc", st.dc, "usn", st.usn, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// secondConn returns the second connection of a listing, or c when it
// could not be dialled: some DCs limit connections per client, and the
// parts then share one connection, slower but complete.
func (s *source) secondConn(ctx context.Context, c *conn, second *pendingConn) *conn {
	if second == nil {
		return c
	}
	c2, err := second.wait()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("a second connection to the DC failed: the listing runs on one connection", "error", err)
		}
		return c
	}
	return c2
}

// dcState is what the RootDSE and the DC's nTDSDSA object say.
type dcState struct {
	usn           int64
	dc            string // dnsHostName, lower case (serverName when missing)
	invocationID  string
	defaultNC     string
	defaultNCDN   *goldap.DN
	functionality int
}

func (s *source) readState(ctx context.Context, c *conn) (dcState, error) {
	var st dcState
	e, err := searchOne(ctx, c, "", goldap.ScopeBaseObject, "(objectClass=*)",
		[]string{"highestCommittedUSN", "dnsHostName", "serverName", "dsServiceName", "defaultNamingContext", "domainFunctionality"})
	if err != nil {
		return st, s.opError("reading the RootDSE", err)
	}
	if e == nil {
		return st, fmt.Errorf("%w: %s returned no RootDSE: is it an Active Directory domain controller?", connectors.ErrBadResponse, s.cfg.addr)
	}
	st.usn, err = strconv.ParseInt(e.GetAttributeValue("highestCommittedUSN"), 10, 64)
	if err != nil || st.usn <= 0 {
		return st, fmt.Errorf("%w: %s: the RootDSE has no highestCommittedUSN: is it an Active Directory domain controller?", connectors.ErrBadResponse, s.cfg.addr)
	}
	st.dc = strings.ToLower(e.GetAttributeValue("dnsHostName"))
	if st.dc == "" {
		st.dc = strings.ToLower(e.GetAttributeValue("serverName"))
	}
	st.defaultNC = e.GetAttributeValue("defaultNamingContext")
	st.functionality, _ = strconv.Atoi(e.GetAttributeValue("domainFunctionality"))
	if st.defaultNCDN, err = goldap.ParseDN(st.defaultNC); err != nil || st.defaultNC == "" {
		return st, fmt.Errorf("%w: %s: the RootDSE has no usable defaultNamingContext (%q)", connectors.ErrBadResponse, s.cfg.addr, st.defaultNC)
	}
	service := e.GetAttributeValue("dsServiceName")
	if service == "" {
		return st, fmt.Errorf("%w: %s: the RootDSE has no dsServiceName", connectors.ErrBadResponse, s.cfg.addr)
	}
	ntds, err := searchOne(ctx, c, service, goldap.ScopeBaseObject, "(objectClass=*)", []string{"invocationId"})
	if err != nil {
		return st, s.opError("reading the DC's invocationId", err)
	}
	if ntds == nil || len(ntds.GetRawAttributeValue("invocationId")) != 16 {
		return st, fmt.Errorf("%w: %s: cannot read the invocationId of %s", connectors.ErrBadResponse, s.cfg.addr, service)
	}
	st.invocationID = guidString(ntds.GetRawAttributeValue("invocationId"))
	return st, nil
}

// checkScope checks that the bases lie in the DC's domain and that every
// configured DN exists.
func (s *source) checkScope(ctx context.Context, c *conn, st dcState) error {
	for i, b := range s.cfg.basesDN {
		if !st.defaultNCDN.EqualFold(b) && !st.defaultNCDN.AncestorOfFold(b) {
			return fmt.Errorf("%w: base DN %q is not in the domain %s served by %s: connect to a DC of that domain",
				connectors.ErrInvalidConfig, s.cfg.bases[i], st.defaultNC, s.cfg.addr)
		}
	}
	check := func(setting string, dns []string) error {
		for _, dn := range dns {
			e, err := searchOne(ctx, c, dn, goldap.ScopeBaseObject, "(objectClass=*)", []string{"objectClass"})
			if err != nil {
				if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) || goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidDNSyntax) {
					return fmt.Errorf("%w: %s %q does not exist on %s (or the bind account cannot see it)", connectors.ErrNotFound, setting, dn, s.cfg.addr)
				}
				return s.opError("checking "+setting+" "+strconv.Quote(dn), err)
			}
			if e == nil {
				return fmt.Errorf("%w: %s %q does not exist on %s (or the bind account cannot see it)", connectors.ErrNotFound, setting, dn, s.cfg.addr)
			}
		}
		return nil
	}
	for _, step := range []struct {
		setting string
		dns     []string
	}{{"base DN", s.cfg.bases}, {"group_dns entry", s.cfg.groups}, {"exclude_groups entry", s.cfg.exclGroup}, {"exclude_ous entry", s.cfg.exclOUStr},
		{"privileged_groups entry", s.cfg.privGroups}} {
		if err := check(step.setting, step.dns); err != nil {
			return err
		}
	}
	for _, dn := range s.cfg.privGroups {
		e, err := searchOne(ctx, c, dn, goldap.ScopeBaseObject, "(objectClass=group)", []string{"1.1"})
		if err != nil {
			return s.opError("checking privileged_groups entry "+strconv.Quote(dn), err)
		}
		if e == nil {
			return fmt.Errorf("%w: privileged_groups entry %q on %s is not a group", connectors.ErrInvalidConfig, dn, s.cfg.addr)
		}
	}
	return nil
}

// cursor is the position an incremental run starts from, JSON-encoded in
// UserPage.Cursor.
type cursor struct {
	// USN is the DC's highestCommittedUSN read before the listing began.
	USN int64 `json:"usn"`
	// InvocationID identifies the DC's database (it changes on restore).
	InvocationID string `json:"invocation_id"`
	// DC is the DC's dnsHostName: USNs are local to one DC.
	DC string `json:"dc"`
	// Scope is a hash of the settings that decide which users are listed.
	Scope string `json:"scope,omitempty"`
	// Policy is a hash of the password policies and of the groups that
	// decide them and the scope.
	Policy string `json:"policy,omitempty"`
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.USN <= 0 || c.InvocationID == "" || c.DC == "" {
		return c, fmt.Errorf("%w: the AD cursor %q is malformed", connectors.ErrResyncRequired, truncate(s, 80))
	}
	return c, nil
}

func (c cursor) matchesDC(st dcState) error {
	switch {
	case !strings.EqualFold(c.DC, st.dc):
		return fmt.Errorf("%w: the last run read DC %s, this one reaches %s (USNs are per DC)", connectors.ErrResyncRequired, c.DC, st.dc)
	case !strings.EqualFold(c.InvocationID, st.invocationID):
		return fmt.Errorf("%w: the invocationId of DC %s changed from %s to %s (database restored?)", connectors.ErrResyncRequired, st.dc, c.InvocationID, st.invocationID)
	case st.usn < c.USN:
		return fmt.Errorf("%w: DC %s is at USN %d, behind the cursor's %d (database restored?)", connectors.ErrResyncRequired, st.dc, st.usn, c.USN)
	}
	return nil
}

func (c cursor) matchesRun(now cursor, pol *policy) error {
	switch {
	case c.Scope != now.Scope:
		return fmt.Errorf("%w: the connection's scope settings changed since the last run", connectors.ErrResyncRequired)
	case c.Policy != now.Policy:
		return fmt.Errorf("%w: the password policies, or the groups that decide them or the scope, changed since the last run", connectors.ErrResyncRequired)
	case pol.maxGroupUSN > c.USN:
		return fmt.Errorf("%w: membership of a group that decides the scope or a password policy changed since the last run (group USN %d > %d)",
			connectors.ErrResyncRequired, pol.maxGroupUSN, c.USN)
	}
	return nil
}

// scopeHash fingerprints the settings that decide which users are listed
// and how they are mapped.
func (s *source) scopeHash() string {
	b, _ := json.Marshal([]any{lowerAll(s.cfg.bases), lowerAll(s.cfg.groups), lowerAll(s.cfg.exclGroup),
		lowerAll(s.cfg.exclOUStr), s.cfg.exclFilt, lowerAll(s.cfg.mobile), lowerAll(s.cfg.privGroups)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = strings.ToLower(v)
	}
	return out
}

// Matching rules of AD.
const (
	// ruleInChain is LDAP_MATCHING_RULE_IN_CHAIN: transitive membership.
	ruleInChain = "1.2.840.113556.1.4.1941"
)

// filter builds the user search filter, with an extra clause (or "").
// Every configured value placed in it is escaped; exclude_filter is a filter
// by design and was validated. Samba tests the clauses of an AND in order
// and stops at the first that fails, for every candidate of its index
// (all the domain's persons, whatever the base): the cheap and selective
// ones (the incremental USN, the extra clause) come first, the in-chain
// group rules, which walk the group graph, last.
func (s *source) filter(since *cursor, extra string) string {
	var b strings.Builder
	b.WriteString("(&")
	if since != nil {
		fmt.Fprintf(&b, "(uSNChanged>=%d)", since.USN+1)
	}
	b.WriteString(extra)
	b.WriteString("(objectCategory=person)(objectClass=user)")
	if s.cfg.exclFilt != "" {
		fmt.Fprintf(&b, "(!%s)", s.cfg.exclFilt)
	}
	if len(s.cfg.groups) > 0 {
		b.WriteString("(|")
		for _, g := range s.cfg.groups {
			fmt.Fprintf(&b, "(memberOf:%s:=%s)", ruleInChain, goldap.EscapeFilter(g))
		}
		b.WriteString(")")
	}
	for _, g := range s.cfg.exclGroup {
		fmt.Fprintf(&b, "(!(memberOf:%s:=%s))", ruleInChain, goldap.EscapeFilter(g))
	}
	b.WriteString(")")
	return b.String()
}

// User attributes read from the directory.
const (
	attrGUID             = "objectGUID"
	attrSAM              = "sAMAccountName"
	attrUPN              = "userPrincipalName"
	attrGiven            = "givenName"
	attrSN               = "sn"
	attrDisplay          = "displayName"
	attrMail             = "mail"
	attrUAC              = "userAccountControl"
	attrPwdLastSet       = "pwdLastSet"
	attrLockoutTime      = "lockoutTime"
	attrPrimaryGroup     = "primaryGroupID"
	attrSID              = "objectSid"
	attrSecondaryKrbTgt  = "msDS-SecondaryKrbTgtNumber"
	attrMemberOf         = "memberOf"
	attrExpiryComputed   = "msDS-UserPasswordExpiryTimeComputed"
	attrUACComputed      = "msDS-User-Account-Control-Computed"
	attrUSNChanged       = "uSNChanged"
	attrGroupType        = "groupType"
	attrPSOApplied       = "msDS-PSOApplied"
	attrPSOAppliesTo     = "msDS-PSOAppliesTo"
	attrPSOPrecedence    = "msDS-PasswordSettingsPrecedence"
	attrPSOMaxAge        = "msDS-MaximumPasswordAge"
	attrPSOLockout       = "msDS-LockoutDuration"
	attrMaxPwdAge        = "maxPwdAge"
	attrLockoutDuration  = "lockoutDuration"
	maxAttributeValueLen = 4096
)

// attributes lists what the user search asks for: only stored attributes,
// unless the policies cannot be read. primaryGroupID and adminCount decide
// privilege (privileged.go).
func (s *source) attributes(pol *policy) []string {
	attrs := []string{attrGUID, attrSAM, attrUPN, attrGiven, attrSN, attrDisplay, attrMail}
	for _, m := range s.cfg.mobile {
		if !containsFold(attrs, m) {
			attrs = append(attrs, m)
		}
	}
	attrs = append(attrs, attrUAC, attrPwdLastSet, attrLockoutTime, attrPrimaryGroup, attrAdminCount)
	switch {
	case pol.useConstructed:
		attrs = append(attrs, attrExpiryComputed, attrUACComputed)
	case pol.hasPSOs():
		attrs = append(attrs, attrSID, attrSecondaryKrbTgt, attrPSOApplied)
		if len(pol.viaGroup) > 0 {
			attrs = append(attrs, attrMemberOf)
		}
	case pol.psoSupported:
		attrs = append(attrs, attrPSOApplied)
	}
	return attrs
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// listing is one run of the paged user search.
type listing struct {
	s      *source
	c      *conn   // reads state, policies and the DC's computed values
	conns  []*conn // one per concurrent search (conns[0] is c)
	st     dcState
	pol    *policy
	attrs  []string
	parts  []part
	cursor string
	yield  func(connectors.UserPage) bool

	pages, users, invalid int
}

// part is one paged search of a listing.
type part struct {
	base   string
	filter string
}

// built is a page of users read by a part, before its hand-over.
type built struct {
	page  connectors.UserPage
	askDC [][]byte // objectGUIDs of users whose state the DC must compute
	last  bool     // the last page of its part
}

// Parity of uSNCreated, which never changes: the two halves of a split
// listing. The bit-AND matching rule is defined for every object (all have a
// uSNCreated), so the halves are disjoint and together complete; a probe
// checks that the DC evaluates the rule before a listing is split.
const (
	oddUSN  = "(uSNCreated:1.2.840.113556.1.4.803:=1)"
	evenUSN = "(!" + oddUSN + ")"
)

// parts splits the listing into paged searches. A full listing without
// group rules (whose in-chain matching costs the DC per candidate entry) is
// split in two halves by the parity of uSNCreated, run on two connections
// (see run). A DC answers a page of a paged search only after it has made
// the whole page, and the next request needs that page's cookie: one
// search leaves the DC idle while this side decodes a page (about a
// quarter of a listing), two on one connection are served one after the
// other by Samba, two on two connections keep the DC busy on both.
func (s *source) parts(ctx context.Context, c *conn, since *cursor) []part {
	split := since == nil && len(s.cfg.groups) == 0 && len(s.cfg.exclGroup) == 0 && s.parityWorks(ctx, c)
	var parts []part
	for _, base := range s.cfg.bases {
		if split {
			parts = append(parts, part{base, s.filter(since, oddUSN)}, part{base, s.filter(since, evenUSN)})
		} else {
			parts = append(parts, part{base, s.filter(since, "")})
		}
	}
	return parts
}

// parityWorks reports whether the DC evaluates the parity rule (true or
// false, never undefined) on the first base object.
func (s *source) parityWorks(ctx context.Context, c *conn) bool {
	e, err := searchOne(ctx, c, s.cfg.bases[0], goldap.ScopeBaseObject, "(|"+oddUSN+evenUSN+")", []string{"1.1"})
	return err == nil && e != nil
}

// run runs the parts, a worker per connection taking them in turn, and
// hands their pages to the consumer as they arrive. The last page of the last part to
// finish carries the cursor, so the cursor is committed only once every
// user has been.
func (r *listing) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan part, len(r.parts))
	for _, p := range r.parts {
		queue <- p
	}
	close(queue)
	workers := min(len(r.conns), len(r.parts))
	pages := make(chan built)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range queue {
				if err := r.search(ctx, r.conns[w], p, pages); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(pages)
	}()

	remaining := len(r.parts)
	var err error
	for b := range pages {
		if err != nil {
			continue // draining after an error or a stop
		}
		if b.last {
			remaining--
		}
		final := remaining == 0
		if len(b.page.Users) == 0 && len(b.page.Invalid) == 0 && !final {
			continue
		}
		if len(b.askDC) > 0 {
			if err = r.fromDC(ctx, &b); err != nil {
				cancel()
				continue
			}
		}
		if final {
			b.page.Cursor = r.cursor
		}
		if !r.hand(b.page) {
			err = errStopped
			cancel()
		}
	}
	if err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if remaining != 0 {
		return fmt.Errorf("%w: the user search ended before its last page", connectors.ErrBadResponse)
	}
	return nil
}

// hand gives a page to the consumer.
func (r *listing) hand(page connectors.UserPage) bool {
	r.pages++
	r.users += len(page.Users)
	r.invalid += len(page.Invalid)
	return r.yield(page)
}

// search runs one part on c, sending its pages to out: every non-empty
// page, and the last one (marked last) even when empty.
func (r *listing) search(ctx context.Context, c *conn, p part, out chan<- built) error {
	var b built
	req := goldap.NewSearchRequest(p.base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false, p.filter, r.attrs, nil)
	err := pagedSearch(ctx, c, req, r.s.cfg.pageSize, func(e *goldap.Entry) { r.entry(&b, e) }, func(last bool) error {
		if len(b.page.Users) == 0 && len(b.page.Invalid) == 0 && !last {
			return nil
		}
		b.last = last
		select {
		case out <- b:
			b = built{}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		return r.s.opError("searching users under "+strconv.Quote(p.base), err)
	}
	return nil
}

// entry maps one search result into the page being built.
func (r *listing) entry(b *built, e *goldap.Entry) {
	if len(r.s.cfg.exclOUs) > 0 && r.excluded(e.DN) {
		return
	}
	raw, reason := parseUser(e, r.s.cfg.mobile)
	if reason != "" {
		b.page.Invalid = append(b.page.Invalid, connectors.InvalidRecord{Ref: validRef(e.DN), Reason: reason, ExternalID: entryGUID(e)})
		return
	}
	u, askDC, reason := r.pol.user(raw, time.Now())
	if reason != "" {
		b.page.Invalid = append(b.page.Invalid, connectors.InvalidRecord{Ref: validRef(e.DN), Reason: reason, ExternalID: guidString(raw.guid)})
		return
	}
	if askDC {
		b.askDC = append(b.askDC, raw.guid)
	}
	r.pol.priv.classify(&u, raw)
	b.page.Users = append(b.page.Users, u)
}

func (r *listing) excluded(dn string) bool {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return false
	}
	for _, ou := range r.s.cfg.exclOUs {
		if ou.EqualFold(parsed) || ou.AncestorOfFold(parsed) {
			return true
		}
	}
	return false
}

// fromDC replaces the computed expiry and lockout of the users in b.askDC
// by the DC's constructed attributes.
func (r *listing) fromDC(ctx context.Context, b *built) error {
	var f strings.Builder
	f.WriteString("(|")
	for _, g := range b.askDC {
		f.WriteString("(objectGUID=")
		f.WriteString(escapeBytes(g))
		f.WriteString(")")
	}
	f.WriteString(")")
	req := goldap.NewSearchRequest(r.st.defaultNC, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		f.String(), []string{attrGUID, attrUAC, attrPwdLastSet, attrLockoutTime, attrExpiryComputed, attrUACComputed}, nil)
	byID := map[string]connectors.User{}
	err := pagedSearch(ctx, r.c, req, r.s.cfg.pageSize, func(e *goldap.Entry) {
		raw, reason := parseUser(e, nil)
		if reason != "" {
			return
		}
		u, _, reason := constructedUser(raw)
		if reason == "" {
			byID[u.ExternalID] = u
		}
	}, func(bool) error { return nil })
	if err != nil {
		return r.s.opError("reading the DC's computed password state", err)
	}
	for i, u := range b.page.Users {
		if dc, ok := byID[u.ExternalID]; ok {
			b.page.Users[i] = withPasswordState(u, dc)
		}
	}
	return nil
}

// searchOne runs a search expected to return at most one entry.
func searchOne(ctx context.Context, c *conn, base string, scope int, filter string, attrs []string) (*goldap.Entry, error) {
	req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
	var found *goldap.Entry
	err := pagedSearch(ctx, c, req, 0, func(e *goldap.Entry) {
		if found == nil {
			found = e
		}
	}, func(bool) error { return nil })
	return found, err
}

// pagedSearch runs req with the paged-results control (pageSize > 0) and
// streams the entries to onEntry; onPage runs after each page, with last set
// on the final one. Referrals are ignored. Only one page of entries is in
// flight at a time, and each page must arrive within the connection's
// timeout.
func pagedSearch(ctx context.Context, c *conn, req *goldap.SearchRequest, pageSize int,
	onEntry func(*goldap.Entry), onPage func(last bool) error) error {
	var paging *goldap.ControlPaging
	if pageSize > 0 {
		paging = goldap.NewControlPaging(uint32(pageSize))
		req.Controls = append(req.Controls, paging)
	}
	buf := pageSize
	if buf <= 0 {
		buf = 16
	}
	for {
		cookie, err := searchPage(ctx, c, req, buf, onEntry)
		if err != nil {
			return err
		}
		last := paging == nil || len(cookie) == 0
		if err := onPage(last); err != nil {
			return err
		}
		if last {
			return nil
		}
		paging.SetCookie(cookie)
	}
}

// searchPage runs one request of a paged search and returns the cookie.
func searchPage(ctx context.Context, c *conn, req *goldap.SearchRequest, buf int, onEntry func(*goldap.Entry)) ([]byte, error) {
	pageCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp := c.SearchAsync(pageCtx, req, buf)
	var cookie []byte
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			onEntry(e)
			continue
		}
		if resp.Referral() != "" {
			continue
		}
		if ctl, ok := goldap.FindControl(resp.Controls(), goldap.ControlTypePaging).(*goldap.ControlPaging); ok {
			cookie = ctl.Cookie
		}
	}
	// go-ldap ends a search silently when its context ends or when the
	// connection is already closing: never mistake that for the end.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if pageCtx.Err() != nil {
		return nil, goldap.NewError(goldap.ErrorNetwork, fmt.Errorf("no answer within %s", c.timeout))
	}
	if err := resp.Err(); err != nil {
		return nil, err
	}
	if c.IsClosing() {
		return nil, goldap.NewError(goldap.ErrorNetwork, errors.New("the connection closed before the search completed"))
	}
	return cookie, nil
}

func validRef(dn string) string {
	return strings.ToValidUTF8(dn, "\uFFFD")
}

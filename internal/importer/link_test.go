package importer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/graph/fakegraph"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// These tests run the sync engine on a hybrid customer: an AD connection
// (a synthetic directory built from the fake tenant's synced users, with
// base64(objectGUID) immutable ids as the AD connector reports them) and an
// Entra ID connection reading the fake Graph server (fakegraph) over HTTPS.
//
// The Entra side is read by graphSource below, a small net/http +
// encoding/json client of Graph's documented wire format, not by
// connectors/graph: only that package and the binary may compile the Graph
// SDK. The connector itself is tested against the same fake in
// connectors/graph, and the graph-import benchmark scenario runs connector
// and engine together into PostgreSQL.

// graphSelect is the connector's $select.
const graphSelect = "id,userPrincipalName,mail,mobilePhone,businessPhones,accountEnabled,lastPasswordChangeDateTime,passwordPolicies," +
	"onPremisesSyncEnabled,onPremisesImmutableId,onPremisesSamAccountName,givenName,surname,displayName"

// graphSource reads users from a fakegraph server like the azure connector:
// Users asks /users/delta?$deltatoken=latest for a delta link, lists /users
// page by page and hands the link out as the last page's Cursor; Changes
// follows a delta link to the next one, @removed entries becoming Removals
// and 410 Gone ErrResyncRequired. Cloud-only users expire 90 days after
// their last password change (the fake's default domain); synced users have
// no expiry, as the connector reports them.
type graphSource struct {
	srv    *fakegraph.Server
	client *http.Client
	token  string
	top    int
}

var _ connectors.DeltaSource = (*graphSource)(nil)

func (s *graphSource) Close() error { return nil }

type graphPage struct {
	NextLink  string      `json:"@odata.nextLink"`
	DeltaLink string      `json:"@odata.deltaLink"`
	Value     []graphUser `json:"value"`
}

type graphUser struct {
	ID                         string `json:"id"`
	UserPrincipalName          string `json:"userPrincipalName"`
	Mail                       string `json:"mail"`
	MobilePhone                string `json:"mobilePhone"`
	AccountEnabled             bool   `json:"accountEnabled"`
	LastPasswordChangeDateTime string `json:"lastPasswordChangeDateTime"`
	PasswordPolicies           string `json:"passwordPolicies"`
	OnPremisesSyncEnabled      *bool  `json:"onPremisesSyncEnabled"`
	OnPremisesImmutableID      string `json:"onPremisesImmutableId"`
	OnPremisesSamAccountName   string `json:"onPremisesSamAccountName"`
	GivenName                  string `json:"givenName"`
	Surname                    string `json:"surname"`
	DisplayName                string `json:"displayName"`
	Removed                    *struct {
		Reason string `json:"reason"`
	} `json:"@removed"`
}

func (s *graphSource) get(ctx context.Context, link string) (graphPage, error) {
	var p graphPage
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return p, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return p, fmt.Errorf("%w: %w", connectors.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusGone:
		return p, fmt.Errorf("%w: delta link answered 410 Gone", connectors.ErrResyncRequired)
	case resp.StatusCode >= 500:
		return p, fmt.Errorf("%w: Graph answered %s", connectors.ErrUnavailable, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return p, fmt.Errorf("%w: Graph answered %s", connectors.ErrBadResponse, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return p, fmt.Errorf("%w: %w", connectors.ErrBadResponse, err)
	}
	return p, nil
}

func (s *graphSource) Users(ctx context.Context, _ string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		latest, err := s.get(ctx, s.srv.GraphURL()+"/users/delta?$deltatoken=latest&$select="+url.QueryEscape(graphSelect))
		if err != nil {
			yield(connectors.UserPage{}, err)
			return
		}
		link := s.srv.GraphURL() + "/users?$select=" + url.QueryEscape(graphSelect) + "&$top=" + strconv.Itoa(s.top)
		for link != "" {
			p, err := s.get(ctx, link)
			if err != nil {
				yield(connectors.UserPage{}, err)
				return
			}
			page := convertGraph(p)
			if link = p.NextLink; link == "" {
				page.Cursor = latest.DeltaLink
			}
			if !yield(page, nil) {
				return
			}
		}
	}
}

func (s *graphSource) Changes(ctx context.Context, cursor string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		for link := cursor; link != ""; {
			p, err := s.get(ctx, link)
			if err != nil {
				yield(connectors.UserPage{}, err)
				return
			}
			page := convertGraph(p)
			if link = p.NextLink; link == "" {
				page.Cursor = p.DeltaLink
			}
			if !yield(page, nil) {
				return
			}
		}
	}
}

func convertGraph(p graphPage) connectors.UserPage {
	var page connectors.UserPage
	for _, g := range p.Value {
		if g.Removed != nil {
			page.Removed = append(page.Removed, connectors.Removal{ExternalID: g.ID, Permanent: g.Removed.Reason == "deleted"})
			continue
		}
		lastSet, err := time.Parse(time.RFC3339, g.LastPasswordChangeDateTime)
		if err != nil {
			page.Invalid = append(page.Invalid, connectors.InvalidRecord{Ref: g.ID, Reason: "lastPasswordChangeDateTime: " + err.Error()})
			continue
		}
		u := connectors.User{
			ExternalID: g.ID, UPN: g.UserPrincipalName, Username: g.OnPremisesSamAccountName,
			FirstName: g.GivenName, LastName: g.Surname, DisplayName: g.DisplayName,
			Email: g.Mail, Mobile: g.MobilePhone, Enabled: g.AccountEnabled, PasswordLastSet: lastSet,
			ImmutableID: g.OnPremisesImmutableID, SyncedFromOnPremises: g.OnPremisesSyncEnabled != nil && *g.OnPremisesSyncEnabled,
		}
		if u.Username == "" {
			u.Username, _, _ = strings.Cut(g.UserPrincipalName, "@")
		}
		switch {
		case u.SyncedFromOnPremises:
		case strings.Contains(g.PasswordPolicies, "DisablePasswordExpiration"):
			u.PasswordNeverExpires = true
		default:
			u.PasswordExpiresAt = lastSet.AddDate(0, 0, 90)
		}
		page.Users = append(page.Users, u)
	}
	return page
}

// adSource is an AD-like directory in memory, in pages.
type adSource struct {
	users    []connectors.User
	pageSize int
}

var _ connectors.UserSource = (*adSource)(nil)

func (s *adSource) Close() error { return nil }

func (s *adSource) Users(ctx context.Context, _ string) iter.Seq2[connectors.UserPage, error] {
	return func(yield func(connectors.UserPage, error) bool) {
		for start := 0; start < len(s.users); start += s.pageSize {
			if !yield(connectors.UserPage{Users: s.users[start:min(start+s.pageSize, len(s.users))]}, nil) {
				return
			}
		}
		if len(s.users) == 0 {
			yield(connectors.UserPage{}, nil)
		}
	}
}

// openConfig opens whatever source its function returns.
type openConfig struct{ open func() connectors.Source }

func (c *openConfig) Open(connectors.Env) (connectors.Source, error) { return c.open(), nil }

// hybridBundle is a customer with an AD connection and an Entra connection
// whose fake tenant has n generated users, a quarter synced from AD.
type hybridBundle struct {
	st        *store.Store
	im        *importer.Importer
	srv       *fakegraph.Server
	tenant    store.Tenant
	customer  store.Customer
	ad, entra store.Connection
	adUsers   []connectors.User
	adExpiry  time.Time
	synced    []fakegraph.User // the fake's synced users, in index order
	cloud     []fakegraph.User // its cloud-only users
}

func setupHybrid(t *testing.T, open func(*testing.T) *store.Store, n int) *hybridBundle {
	t.Helper()
	ctx := context.Background()
	b := &hybridBundle{st: open(t), srv: fakegraph.New(fakegraph.Options{Users: n, DeltaPageSize: 40}), adExpiry: time.Date(2026, 12, 20, 9, 0, 0, 0, time.UTC)}
	t.Cleanup(b.srv.Close)
	var err error
	b.tenant, _, err = b.st.UpsertTenant(ctx, store.Tenant{Name: "acme", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10})
	must(t, err)
	b.customer, _, err = b.st.UpsertCustomer(ctx, store.Customer{TenantID: b.tenant.ID, Name: "Contoso", DefaultRegion: "GB"})
	must(t, err)
	conn := func(name string, kind connectors.Kind) store.Connection {
		c, _, err := b.st.UpsertConnection(ctx, store.Connection{TenantID: b.tenant.ID, CustomerID: &b.customer.ID, Name: name, Kind: kind, EnableSelfServe: true}, false)
		must(t, err)
		return c
	}
	b.ad, b.entra = conn("contoso-ad", connectors.KindAD), conn("contoso-entra", connectors.KindAzure)

	// The fake's generated mobiles are not valid numbers; give some users
	// real ones (synced users: AD has no mobile for them).
	for i := range n {
		u := b.srv.UserAt(i)
		if i%5 == 0 {
			must(t, b.srv.UpdateUser(u.ID, func(u *fakegraph.User) { u.MobilePhone = fmt.Sprintf("+44 7400 1%05d", i) }))
			u = b.srv.UserAt(i)
		}
		if u.OnPremisesSyncEnabled {
			b.synced = append(b.synced, u)
		} else {
			b.cloud = append(b.cloud, u)
		}
	}
	if len(b.synced) < 10 || len(b.cloud) < 10 {
		t.Fatalf("the fake has %d synced and %d cloud users: too few for these tests", len(b.synced), len(b.cloud))
	}
	// AD knows the synced users; every other one has an email there.
	for k, u := range b.synced {
		a := connectors.User{
			ExternalID: "ad-" + u.OnPremisesSamAccountName, Username: u.OnPremisesSamAccountName, UPN: u.UserPrincipalName,
			FirstName: u.GivenName, LastName: u.Surname, DisplayName: u.DisplayName, Enabled: true,
			PasswordLastSet: b.adExpiry.AddDate(0, 0, -42), PasswordExpiresAt: b.adExpiry, ImmutableID: u.OnPremisesImmutableID,
		}
		if k%2 == 0 {
			a.Email = u.OnPremisesSamAccountName + "@ad.contoso.example"
		}
		b.adUsers = append(b.adUsers, a)
	}
	token := b.srv.IssueToken()
	b.im = &importer.Importer{MaxRemovalShare: 0.3, Store: b.st, Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindAD: func() connectors.Config {
			return &openConfig{func() connectors.Source { return &adSource{users: b.adUsers, pageSize: 25} }}
		},
		connectors.KindAzure: func() connectors.Config {
			return &openConfig{func() connectors.Source {
				return &graphSource{srv: b.srv, client: b.srv.Client(), token: token, top: 100}
			}}
		},
	})}
	return b
}

func (b *hybridBundle) sync(t *testing.T, c store.Connection, req importer.Request) store.SyncRun {
	t.Helper()
	res, err := b.syncErr(t, c, req)
	if err != nil {
		t.Fatalf("sync of %s: %v", c.Name, err)
	}
	return res.Run
}

func (b *hybridBundle) syncErr(t *testing.T, c store.Connection, req importer.Request) (importer.Result, error) {
	t.Helper()
	req.TenantID, req.ConnectionID = b.tenant.ID, c.ID
	return b.im.Sync(context.Background(), req)
}

// users returns the end users (removed ones too) by username, failing on a
// duplicated person.
func (b *hybridBundle) users(t *testing.T) map[string]store.EndUser {
	t.Helper()
	us, err := b.st.EndUsers(context.Background(), b.tenant.ID, store.EndUserFilter{IncludeRemoved: true})
	must(t, err)
	m := map[string]store.EndUser{}
	for _, u := range us {
		if _, dup := m[u.Username]; dup {
			t.Fatalf("two end users named %s", u.Username)
		}
		m[u.Username] = u
	}
	return m
}

func (b *hybridBundle) links(t *testing.T) map[string]store.EndUserLink {
	t.Helper()
	ls, err := b.st.ConnectionLinks(context.Background(), b.tenant.ID, b.entra.ID)
	must(t, err)
	m := map[string]store.EndUserLink{}
	for _, l := range ls {
		m[l.ExternalID] = l
	}
	return m
}

func wantRun(t *testing.T, what string, r store.SyncRun, mode store.RunMode, created, updated, unchanged, linked, removed int) {
	t.Helper()
	if r.Status != store.RunSucceeded || r.Mode != mode || r.Created != created || r.Updated != updated || r.Unchanged != unchanged || r.Linked != linked || r.Removed != removed {
		t.Fatalf("%s: %s %s created %d updated %d unchanged %d linked %d removed %d (%s); want succeeded %s %d %d %d %d %d",
			what, r.Status, r.Mode, r.Created, r.Updated, r.Unchanged, r.Linked, r.Removed, r.Error, mode, created, updated, unchanged, linked, removed)
	}
}

// checkHybrid checks the state after both sources synced: one end user per
// person, synced users owned by AD with AD's expiry and Entra's missing
// contact values, cloud users azure end users with an expiry.
func (b *hybridBundle) checkHybrid(t *testing.T) map[string]store.EndUser {
	t.Helper()
	us := b.users(t)
	if len(us) != len(b.synced)+len(b.cloud) {
		t.Fatalf("%d end users, want %d", len(us), len(b.synced)+len(b.cloud))
	}
	links := b.links(t)
	filled := 0
	for k, g := range b.synced {
		u := us[g.OnPremisesSamAccountName]
		if u.Source != rules.SourceAD || u.ExternalID != "ad-"+g.OnPremisesSamAccountName || u.PasswordExpiresAt == nil || !u.PasswordExpiresAt.Equal(b.adExpiry) {
			t.Fatalf("synced %s: %+v, want the AD end user with AD's expiry", g.UserPrincipalName, u)
		}
		if l, ok := links[g.ID]; !ok || l.EndUserID != u.ID {
			t.Fatalf("synced %s: link %+v, want one to end user %d", g.UserPrincipalName, l, u.ID)
		}
		wantEmail := g.Mail
		if k%2 == 0 {
			wantEmail = g.OnPremisesSamAccountName + "@ad.contoso.example"
		}
		if u.Email != wantEmail {
			t.Errorf("synced %s: email %q, want %q (AD's if any, else Entra's)", g.UserPrincipalName, u.Email, wantEmail)
		}
		if mobile, err := rules.NormalizePhone(g.MobilePhone, "GB"); err == nil && mobile != "" {
			filled++
			if u.Mobile != mobile || u.MobileSource != rules.ProvenanceDirectory {
				t.Errorf("synced %s: mobile %q (%s), want Entra's %q", g.UserPrincipalName, u.Mobile, u.MobileSource, mobile)
			}
		}
	}
	if filled == 0 {
		t.Fatal("no synced user has a valid Entra mobile: the fill from Entra went unchecked")
	}
	for _, g := range b.cloud {
		u := us[strings.Split(g.UserPrincipalName, "@")[0]]
		if u.Source != rules.SourceAzure || u.ExternalID != g.ID || (u.PasswordExpiresAt == nil) != strings.Contains(g.PasswordPolicies, "DisablePasswordExpiration") {
			t.Fatalf("cloud %s: %+v, want an azure end user with the connector's expiry", g.UserPrincipalName, u)
		}
	}
	return us
}

func TestHybridADFirst(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setupHybrid(t, open, 250)
		s, c := len(b.synced), len(b.cloud)
		wantRun(t, "AD", b.sync(t, b.ad, importer.Request{}), store.ModeFull, s, 0, 0, 0, 0)
		r := b.sync(t, b.entra, importer.Request{})
		wantRun(t, "Entra", r, store.ModeFull, c, 0, 0, s, 0)
		if stored, err := b.st.Run(context.Background(), b.tenant.ID, r.ID); err != nil || stored.Linked != s {
			t.Fatalf("stored run: linked %d (%v), want %d", stored.Linked, err, s)
		}
		b.checkHybrid(t)

		// Nothing changed anywhere: every sync is a no-op.
		wantRun(t, "Entra delta", b.sync(t, b.entra, importer.Request{}), store.ModeIncremental, 0, 0, 0, 0, 0)
		wantRun(t, "Entra full again", b.sync(t, b.entra, importer.Request{Full: true}), store.ModeFull, 0, 0, s+c, 0, 0)
		wantRun(t, "AD again", b.sync(t, b.ad, importer.Request{}), store.ModeFull, 0, 0, s, 0, 0)
		b.checkHybrid(t)

		// AD removes a linked user: the end user goes and Entra, still
		// listing it, does not bring it back.
		gone := b.adUsers[0]
		b.adUsers = b.adUsers[1:]
		wantRun(t, "AD without one user", b.sync(t, b.ad, importer.Request{}), store.ModeFull, 0, 0, s-1, 0, 1)
		b.sync(t, b.entra, importer.Request{Full: true})
		if u := b.users(t)[gone.Username]; u.RemovedAt == nil || u.Source != rules.SourceAD {
			t.Fatalf("AD-removed %s after an Entra run: %+v", gone.Username, u)
		}
	})
}

func TestHybridEntraFirst(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setupHybrid(t, open, 250)
		s, c := len(b.synced), len(b.cloud)
		wantRun(t, "Entra", b.sync(t, b.entra, importer.Request{}), store.ModeFull, s+c, 0, 0, 0, 0)
		before := b.users(t)
		first := before[b.synced[0].OnPremisesSamAccountName]
		if first.Source != rules.SourceAzure || first.PasswordExpiresAt != nil {
			t.Fatalf("synced user before AD: %+v, want azure with no expiry", first)
		}
		second := before[b.synced[1].OnPremisesSamAccountName]
		_, err := b.st.SetSelfServe(ctx, b.tenant.ID, []int64{first.ID}, false)
		must(t, err)
		_, _, err = b.st.SetContact(ctx, b.tenant.ID, second.ID, ptr("typed@contoso.example"), nil, rules.ProvenanceManual)
		must(t, err)
		_, _, err = b.st.MarkFirstAccess(ctx, b.tenant.ID, second.ID, time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC))
		must(t, err)

		wantRun(t, "AD", b.sync(t, b.ad, importer.Request{}), store.ModeFull, 0, 0, 0, s, 0)
		us := b.users(t)
		for _, g := range b.synced {
			name := g.OnPremisesSamAccountName
			if us[name].ID != before[name].ID {
				t.Fatalf("%s: end user %d replaced by %d", name, before[name].ID, us[name].ID)
			}
		}
		if u := us[first.Username]; u.SelfServe || u.Source != rules.SourceAD {
			t.Errorf("first synced user after AD: switch %v source %s, want off and ad", u.SelfServe, u.Source)
		}
		if u := us[second.Username]; u.Email != "typed@contoso.example" || u.EmailSource != rules.ProvenanceManual || u.FirstAccessAt == nil {
			t.Errorf("second synced user after AD: %+v, want the typed email and first access kept", u)
		}

		// The full Entra run finds every user (AD-owned ones as links):
		// nothing removed, nothing changed.
		wantRun(t, "Entra full again", b.sync(t, b.entra, importer.Request{Full: true}), store.ModeFull, 0, 0, s+c, 0, 0)
		wantRun(t, "AD again", b.sync(t, b.ad, importer.Request{}), store.ModeFull, 0, 0, s, 0, 0)
		if u := b.users(t)[second.Username]; u.Email != "typed@contoso.example" {
			t.Errorf("typed email lost: %q", u.Email)
		}
	})
}

func TestHybridDeltaFlowsIntoStore(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		b := setupHybrid(t, open, 250)
		b.sync(t, b.ad, importer.Request{})
		b.sync(t, b.entra, importer.Request{})
		cloudGone, cloudChanged, linkedGone, linkedChanged := b.cloud[0], b.cloud[1], b.synced[2], b.synced[3]
		added := b.srv.AddUser(fakegraph.User{UserPrincipalName: "newbie@contoso.example", Mail: "newbie@contoso.example", MobilePhone: "+44 7400 100777",
			AccountEnabled: true, LastPasswordChangeDateTime: "2026-11-01T08:00:00Z"})
		must(t, b.srv.UpdateUser(cloudChanged.ID, func(u *fakegraph.User) { u.MobilePhone = "+44 7400 100888" }))
		must(t, b.srv.UpdateUser(linkedChanged.ID, func(u *fakegraph.User) { u.MobilePhone = "+44 7400 100999" }))
		must(t, b.srv.DeleteUser(cloudGone.ID, true))
		must(t, b.srv.DeleteUser(linkedGone.ID, false))

		r := b.sync(t, b.entra, importer.Request{})
		wantRun(t, "delta", r, store.ModeIncremental, 1, 2, 0, 0, 2)
		us := b.users(t)
		if u := us["newbie"]; u.Source != rules.SourceAzure || u.ExternalID != added.ID || u.Mobile != "+447400100777" {
			t.Errorf("added user: %+v", u)
		}
		if u := us[strings.Split(cloudChanged.UserPrincipalName, "@")[0]]; u.Mobile != "+447400100888" {
			t.Errorf("changed cloud user's mobile %q", u.Mobile)
		}
		if u := us[linkedChanged.OnPremisesSamAccountName]; u.Mobile != "+447400100999" || u.Source != rules.SourceAD {
			t.Errorf("changed linked user: mobile %q source %s, want Entra's new mobile on the AD end user", u.Mobile, u.Source)
		}
		if u := us[strings.Split(cloudGone.UserPrincipalName, "@")[0]]; u.RemovedAt == nil {
			t.Error("the deleted cloud user is still present")
		}
		if u := us[linkedGone.OnPremisesSamAccountName]; u.RemovedAt != nil || u.Source != rules.SourceAD {
			t.Errorf("the Entra deletion of a linked user removed the AD end user: %+v", u)
		}
		if _, ok := b.links(t)[linkedGone.ID]; ok {
			t.Error("the deleted linked user's link is still there")
		}
		wantRun(t, "delta without changes", b.sync(t, b.entra, importer.Request{}), store.ModeIncremental, 0, 0, 0, 0, 0)
	})
}

func TestHybridStaleDeltaTokenRunsFull(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		ctx := context.Background()
		b := setupHybrid(t, open, 250)
		b.sync(t, b.ad, importer.Request{})
		b.sync(t, b.entra, importer.Request{})
		conn, err := b.st.Connection(ctx, b.tenant.ID, b.entra.ID)
		must(t, err)
		staleCursor := conn.Cursor
		b.srv.ExpireDeltaTokens()
		must(t, b.srv.UpdateUser(b.cloud[0].ID, func(u *fakegraph.User) { u.MobilePhone = "+44 7400 100555" }))

		r := b.sync(t, b.entra, importer.Request{})
		wantRun(t, "run after the token expired", r, store.ModeFull, 0, 1, len(b.synced)+len(b.cloud)-1, 0, 0)
		if u := b.users(t)[strings.Split(b.cloud[0].UserPrincipalName, "@")[0]]; u.Mobile != "+447400100555" {
			t.Errorf("change not imported by the fallback full run: %q", u.Mobile)
		}
		conn, err = b.st.Connection(ctx, b.tenant.ID, b.entra.ID)
		must(t, err)
		if conn.Cursor == "" || conn.Cursor == staleCursor {
			t.Fatalf("cursor after the fallback: %q, want a fresh delta link", conn.Cursor)
		}
		wantRun(t, "delta with the fresh token", b.sync(t, b.entra, importer.Request{}), store.ModeIncremental, 0, 0, 0, 0, 0)
	})
}

func TestHybridFailedRunRemovesNothing(t *testing.T) {
	t.Parallel()
	faults := map[string]fakegraph.Fault{
		"500":       {Path: "/v1.0/users", After: 2, Times: -1, Status: http.StatusInternalServerError},
		"truncated": {Path: "/v1.0/users", After: 2, Times: -1, Truncate: true},
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, open func(*testing.T) *store.Store) {
				b := setupHybrid(t, open, 250)
				b.sync(t, b.ad, importer.Request{})
				b.sync(t, b.entra, importer.Request{})
				// Deleted in Entra: a complete full run would remove them.
				for _, g := range []fakegraph.User{b.cloud[0], b.cloud[1], b.synced[0]} {
					must(t, b.srv.DeleteUser(g.ID, true))
				}
				before := b.users(t)
				links := len(b.links(t))
				// The delta link and the first page of /users are served;
				// every later page fails.
				b.srv.InjectFault(fault)
				res, err := b.syncErr(t, b.entra, importer.Request{Full: true})
				if err == nil || res.Run.Status != store.RunFailed || res.Run.Removed != 0 || res.Run.Pages != 1 {
					t.Fatalf("failing run: err %v, run %+v; want failed after one page, nothing removed", err, res.Run)
				}
				after := b.users(t)
				for name, u := range after {
					if (u.RemovedAt == nil) != (before[name].RemovedAt == nil) {
						t.Errorf("%s: removed at %v after a failed run, was %v", name, u.RemovedAt, before[name].RemovedAt)
					}
				}
				if n := len(b.links(t)); n != links {
					t.Fatalf("%d links after a failed run, want %d", n, links)
				}

				// Once Graph answers again, the full run removes them: two
				// azure end users and one link (its AD end user stays).
				b.srv.ClearFaults()
				wantRun(t, "full run after the fault", b.sync(t, b.entra, importer.Request{Full: true}), store.ModeFull, 0, 0, len(b.synced)+len(b.cloud)-3, 0, 3)
				if u := b.users(t)[b.synced[0].OnPremisesSamAccountName]; u.RemovedAt != nil {
					t.Errorf("the AD end user of a deleted Entra user was removed: %+v", u)
				}
			})
		})
	}
}

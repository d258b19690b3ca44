package selfserve_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"selfserve/connectors"
	"selfserve/connectors/graph"
	"selfserve/connectors/graph/fakegraph"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
)

// entraHarness imports users of a fake Graph tenant through an Entra
// connection and serves them with the real directory writers.
// before, if set, runs before the import (to store AD end users).
func entraHarness(t *testing.T, before func(st *store.Store, tn store.Tenant, cu store.Customer), users ...fakegraph.User) (*harness, *fakegraph.Server) {
	t.Helper()
	fg := fakegraph.New(fakegraph.Options{})
	t.Cleanup(fg.Close)
	for _, u := range users {
		fg.AddUser(u)
	}
	ca, err := fg.WriteCAFile(t.TempDir())
	must(t, err)
	settings, _ := json.Marshal(map[string]any{"azure_tenant_id": fg.TenantID(), "client_id": fg.ClientID(), "graph_url": fg.GraphURL(),
		"authority_url": fg.AuthorityURL(), "ca_file": ca, "requests_per_second": 1000})
	d := newDirectoryTenant(t, connectors.KindAzure, func() connectors.Config { return new(graph.Config) },
		store.Customer{Name: "Contoso", TimeZone: "Europe/London", DefaultRegion: "GB"}, "contoso-entra",
		settings, json.RawMessage(`{"client_secret":"`+fg.ClientSecret()+`"}`))
	if before != nil {
		before(d.st, d.tenant, d.customer)
	}
	d.importAll(t)
	return d.serve(t, "203.0.113.10"), fg
}

// TestEntraWriteBack: a cloud-only user's reset is a Graph PATCH of its
// passwordProfile; its unlock is refused (Entra has no lockout to clear);
// a user synced from on-premises with no AD account here is refused, and
// Graph is never asked.
func TestEntraWriteBack(t *testing.T) {
	t.Parallel()
	h, fg := entraHarness(t, nil,
		fakegraph.User{UserPrincipalName: "carla@contoso.example", Mail: "carla@contoso.example", MobilePhone: "+44 7400 123201", AccountEnabled: true, DisplayName: "Carla Cloud"},
		fakegraph.User{UserPrincipalName: "sam@contoso.example", Mail: "sam@contoso.example", MobilePhone: "+44 7400 123202", AccountEnabled: true, DisplayName: "Sam Synced",
			OnPremisesSyncEnabled: true, OnPremisesImmutableID: "c2FtLWd1aWQtMDAwMDAwMA==", OnPremisesSamAccountName: "sam"},
	)
	grant, _ := h.grant("carla@contoso.example", "reset")
	const pw = "Harbour-Violet-5521"
	if p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": pw}); p.status != http.StatusOK {
		t.Fatalf("cloud-only reset: %d %s", p.status, p.raw)
	}
	changes := fg.PasswordChanges()
	if len(changes) != 1 || changes[0].Password != pw {
		t.Fatalf("Graph saw %+v", changes)
	}
	ug, _ := h.grant("carla@contoso.example", "unlock")
	if p := h.post(nil, api("/unlock"), map[string]any{"grant": ug}); p.status != http.StatusConflict || !strings.Contains(p.raw, "Entra ID has no lockout") {
		t.Errorf("Entra unlock: %d %s", p.status, p.raw)
	}
	sg, _ := h.grant("sam@contoso.example", "reset")
	if p := h.post(nil, api("/password"), map[string]any{"grant": sg, "new_password": pw + "x"}); p.status != http.StatusConflict || !strings.Contains(p.raw, "on-premises Active Directory") {
		t.Errorf("synced user without an AD connection: %d %s", p.status, p.raw)
	}
	if n := len(fg.PasswordChanges()); n != 1 {
		t.Errorf("Graph was asked to write a synced user's password (%d changes)", n)
	}
}

// TestSyncedUserGoesToAD: an Entra user synced from on-premises, linked to
// its AD account (same immutable id), is reset in AD through the AD
// connection, never through Graph. (The AD connection here points at no
// server, so the job fails at the directory; TestADResetAndUnlock proves
// the AD write itself.)
func TestSyncedUserGoesToAD(t *testing.T) {
	t.Parallel()
	const immutable = "c2FtLWd1aWQtMDAwMDAwMA=="
	var adConn store.Connection
	h, fg := entraHarness(t, func(st *store.Store, tn store.Tenant, cu store.Customer) {
		ctx := context.Background()
		var err error
		adConn, _, err = st.UpsertConnection(ctx, store.Connection{TenantID: tn.ID, CustomerID: &cu.ID, Name: "contoso-ad", Kind: connectors.KindAD,
			Settings: []byte(`{"url":"ldaps://127.0.0.1:1","base_dn":"DC=contoso,DC=example","timeout":"1s"}`), EnableSelfServe: true}, false)
		must(t, err)
		_, err = importer.ApplyPage(ctx, st, store.PageTarget{TenantID: tn.ID, CustomerID: cu.ID, ConnectionID: adConn.ID, RunID: 1, Source: rules.SourceAD, EnableSelfServe: true},
			[]store.UserRecord{{User: connectors.User{ExternalID: "guid-sam", Username: "sam", UPN: "sam@contoso.example", Email: "sam@contoso.example",
				Mobile: "+447400123202", Enabled: true, ImmutableID: immutable}}}, nil)
		must(t, err)
	}, fakegraph.User{UserPrincipalName: "sam@contoso.example", Mail: "sam@contoso.example", MobilePhone: "+44 7400 123202", AccountEnabled: true,
		DisplayName: "Sam Synced", OnPremisesSyncEnabled: true, OnPremisesImmutableID: immutable, OnPremisesSamAccountName: "sam"})
	grant, _ := h.grant("sam@contoso.example", "reset")
	p := h.post(nil, api("/password"), map[string]any{"grant": grant, "new_password": "Harbour-Violet-5521"})
	if p.status == http.StatusOK {
		t.Fatalf("reset against a directory that does not answer: %s", p.raw)
	}
	if n := len(fg.PasswordChanges()); n != 0 {
		t.Errorf("Graph was asked to write a synced user's password (%d changes)", n)
	}
	jobs, err := h.st.PasswordJobs(context.Background(), h.tenant.ID, endUserID(t, h, "sam"), 0)
	must(t, err)
	if len(jobs) != 1 || jobs[0].Target != store.TargetAD || jobs[0].ConnectionID == nil || *jobs[0].ConnectionID != adConn.ID || jobs[0].ExternalID != "guid-sam" {
		t.Errorf("job: %+v", jobs)
	}
}

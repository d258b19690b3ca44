package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"selfserve/connectors"
	"selfserve/connectors/graph/fakegraph"
	"selfserve/internal/connection"
	"selfserve/internal/importer"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
)

// graphSelect is the azure connector's $select (connectors/graph
// userSelect): the raw baseline asks for the same properties.
const graphSelect = "id,userPrincipalName,mail,mobilePhone,businessPhones,accountEnabled,lastPasswordChangeDateTime,passwordPolicies," +
	"onPremisesSyncEnabled,onPremisesImmutableId,onPremisesSamAccountName,givenName,surname,displayName"

// GraphImport measures an Entra ID import of n users served by the fake
// Graph server (fakegraph, generated from the run's seed) into PostgreSQL,
// committed, through the sync engine and the azure connector, against a raw
// net/http + encoding/json decode of the same /users pages ($select, $top
// 999) from the same server with no database. The issue's target is at
// least half the raw decode rate: a time ratio of 2.
//
// azure returns the azure connector's empty Config (new(graph.Config)): the
// harness's binary passes it in, so that only the connector package and
// binaries compile the Graph SDK. The connection is stored like any other
// (settings, sealed client secret) and its request budget is raised out of
// the way: the scenario measures the import, not the throttle.
func GraphImport(azure func() connectors.Config) Scenario {
	return Scenario{
		Name:     "graph-import",
		Baseline: "raw net/http + encoding/json decode of the same /users pages, no database",
		Ours:     "azure connector + sync engine into PostgreSQL, committed",
		Size:     100_000, Quick: 2_000, Unit: "users", Target: 2.0,
		Needs: []string{"postgres"},
		Measure: func(ctx context.Context, env *Env, side Side, size int) (time.Duration, error) {
			return measureGraphImport(ctx, env, azure, side, size)
		},
	}
}

func measureGraphImport(ctx context.Context, env *Env, azure func() connectors.Config, side Side, size int) (time.Duration, error) {
	srv := fakegraph.New(fakegraph.Options{Users: size, Seed: int64(env.Seed)})
	defer srv.Close()
	if side == SideBaseline {
		start := time.Now()
		n, err := rawGraphDecode(ctx, srv)
		elapsed := time.Since(start)
		if err == nil && n != size {
			err = fmt.Errorf("decoded %d users, want %d", n, size)
		}
		return elapsed, err
	}
	if azure == nil {
		return 0, fmt.Errorf("graph-import: no azure connector given")
	}
	st, cleanup, err := FreshStore(ctx, env)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	tgt, box, err := graphConnection(ctx, st, srv, env.TempDir)
	if err != nil {
		return 0, err
	}
	im := &importer.Importer{MaxRemovalShare: 0.3, Store: st, Secrets: box, Registry: connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindAzure: azure})}
	start := time.Now()
	res, err := im.Sync(ctx, importer.Request{TenantID: tgt.tenantID, ConnectionID: tgt.connectionID, Full: true, Trigger: "bench"})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if got := res.Run.Created + res.Run.Invalid; got != size {
		return 0, fmt.Errorf("imported %d users (+%d invalid), want %d", res.Run.Created, res.Run.Invalid, size)
	}
	return elapsed, nil
}

// graphConnection creates an azure connection to srv in st, with its client
// secret sealed as the API stores it and the server's certificate in a new
// directory below dir.
func graphConnection(ctx context.Context, st *store.Store, srv *fakegraph.Server, dir string) (target, *secretbox.Box, error) {
	box, err := secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeySize))
	if err != nil {
		return target{}, nil, err
	}
	caDir, err := os.MkdirTemp(dir, "graph-")
	if err != nil {
		return target{}, nil, err
	}
	ca, err := srv.WriteCAFile(caDir)
	if err != nil {
		return target{}, nil, err
	}
	tgt, err := seedTenant(ctx, st, "bench-graph", connectors.KindAzure)
	if err != nil {
		return tgt, nil, err
	}
	settings, _ := json.Marshal(map[string]any{
		"azure_tenant_id": srv.TenantID(), "client_id": srv.ClientID(),
		"graph_url": srv.GraphURL(), "authority_url": srv.AuthorityURL(), "ca_file": ca,
		"requests_per_second": 100_000,
	})
	secrets, _ := json.Marshal(map[string]string{"client_secret": srv.ClientSecret()})
	sealed, err := connection.Opener{Box: box}.SealSecrets(secrets)
	if err != nil {
		return tgt, nil, err
	}
	conn, err := st.ConnectionByName(ctx, tgt.tenantID, "bench-graph-conn")
	if err != nil {
		return tgt, nil, err
	}
	conn.Settings, conn.SealedSecrets = settings, sealed
	_, _, err = st.UpsertConnection(ctx, conn, false)
	return tgt, box, err
}

// rawGraphUser is what the baseline decodes: the selected properties, typed.
type rawGraphUser struct {
	ID                         string   `json:"id"`
	UserPrincipalName          string   `json:"userPrincipalName"`
	Mail                       string   `json:"mail"`
	MobilePhone                string   `json:"mobilePhone"`
	BusinessPhones             []string `json:"businessPhones"`
	AccountEnabled             bool     `json:"accountEnabled"`
	LastPasswordChangeDateTime string   `json:"lastPasswordChangeDateTime"`
	PasswordPolicies           string   `json:"passwordPolicies"`
	OnPremisesSyncEnabled      *bool    `json:"onPremisesSyncEnabled"`
	OnPremisesImmutableID      string   `json:"onPremisesImmutableId"`
	OnPremisesSamAccountName   string   `json:"onPremisesSamAccountName"`
	GivenName                  string   `json:"givenName"`
	Surname                    string   `json:"surname"`
	DisplayName                string   `json:"displayName"`
}

// rawGraphDecode walks /users with net/http, following @odata.nextLink, and
// decodes every page with encoding/json. It returns the users decoded.
func rawGraphDecode(ctx context.Context, srv *fakegraph.Server) (int, error) {
	client := srv.Client()
	token := srv.IssueToken()
	link := srv.GraphURL() + "/users?$select=" + url.QueryEscape(graphSelect) + "&$top=999"
	n := 0
	for link != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
		if err != nil {
			return n, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return n, err
		}
		var page struct {
			NextLink string         `json:"@odata.nextLink"`
			Value    []rawGraphUser `json:"value"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", link, resp.Status)
		}
		if err != nil {
			return n, err
		}
		n += len(page.Value)
		link = page.NextLink
	}
	return n, nil
}

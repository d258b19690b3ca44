package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"selfserve/connectors"
	"selfserve/connectors/hudu"
	"selfserve/connectors/hudu/fakehudu"
	"selfserve/internal/connection"
	"selfserve/internal/enrich"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
	"selfserve/worker"
)

// TestCustomerImportThroughTheWorker imports customers from a PSA (a fake
// Hudu) for a run the API recorded, and through a schedule tick.
func TestCustomerImportThroughTheWorker(t *testing.T) {
	t.Parallel()
	requireServices(t)
	ctx := context.Background()
	st, _ := postgresStore(t)
	rd := testRedis(t)
	srv := fakehudu.New(fakehudu.Options{Seed: 3, Companies: 7, PeoplePerCompany: 2})
	t.Cleanup(srv.Close)
	box, err := secretbox.New(bytes.Repeat([]byte{9}, 32))
	must(t, err)
	secrets, _ := json.Marshal(map[string]any{"api_key": fakehudu.DefaultAPIKey})
	sealed, err := connection.Opener{Box: box}.SealSecrets(secrets)
	must(t, err)
	f := newFixture(t, st, "psa", 1)
	settings, _ := json.Marshal(map[string]any{"base_url": srv.URL, "page_size": 2, "requests_per_minute": 100000})
	conn, _, err := st.UpsertConnection(ctx, store.Connection{TenantID: f.tenant.ID, Name: "hudu", Kind: connectors.KindHudu, Settings: settings, SealedSecrets: sealed, ScheduleSeconds: 10800}, false)
	must(t, err)

	registry := connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{connectors.KindHudu: func() connectors.Config { return new(hudu.Config) }})
	n := newNode(t, nodeOptions{redis: rd, st: st, registry: registry})
	n.mux = worker.NewServeMux(worker.Deps{Store: st, Client: n.client, Scanner: n.scanner, Sender: n.sender, Logger: testLogger(t),
		Customers: &worker.PSAImporter{Enricher: &enrich.Enricher{Store: st, Registry: registry, Secrets: box, Logger: testLogger(t)}}})
	n.start(t)

	run, err := st.CreatePSARun(ctx, f.tenant.ID, conn.ID, store.RunKindCustomers, nil, "api", store.RunQueued, time.Hour)
	must(t, err)
	must(t, n.client.EnqueueCustomerImport(ctx, run.SyncRun))
	must(t, n.client.EnqueueCustomerImport(ctx, run.SyncRun)) // already queued: no error, no second task
	drain(t, rd, time.Minute)
	done, err := st.PSARun(ctx, f.tenant.ID, run.ID)
	must(t, err)
	if done.Status != store.RunSucceeded {
		t.Fatalf("customer import run %+v", done)
	}
	cs, err := st.Customers(ctx, f.tenant.ID)
	must(t, err)
	if len(cs) != 1+7 {
		t.Fatalf("%d customers after the import, want the fixture's one and Hudu's 7", len(cs))
	}

	// A schedule tick of the PSA connection records a customer import with
	// enrichment and runs it.
	tick, opts, err := worker.NewScheduledSyncTask(conn, 3*time.Hour)
	must(t, err)
	c := asynq.NewClient(rd)
	defer c.Close()
	_, err = c.Enqueue(tick, opts...)
	must(t, err)
	drain(t, rd, time.Minute)
	runs, err := st.Runs(ctx, f.tenant.ID, conn.ID, 10)
	must(t, err)
	if len(runs) != 2 || runs[0].Trigger != "schedule" || runs[0].Status != store.RunSucceeded {
		t.Fatalf("runs after the tick: %+v", runs)
	}
	latest, err := st.PSARun(ctx, f.tenant.ID, runs[0].ID)
	must(t, err)
	if latest.Kind != store.RunKindPSA {
		t.Fatalf("scheduled PSA run of kind %s, want psa", latest.Kind)
	}
}

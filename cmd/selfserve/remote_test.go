package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"selfserve/connectors/shipped"
	"strings"
	"sync"
	"testing"
	"time"

	"selfserve/internal/admin"
	"selfserve/internal/importer"
	"selfserve/internal/store"
)

// inlineQueue is the test's stand-in for the workers: it runs each queued
// sync with the real sync engine in a goroutine.
type inlineQueue struct {
	im *importer.Importer
	wg sync.WaitGroup
}

func (q *inlineQueue) EnqueueSync(_ context.Context, run store.SyncRun) error {
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		ctx := context.Background()
		_, err := q.im.Sync(ctx, importer.Request{TenantID: run.TenantID, ConnectionID: run.ConnectionID, RunID: run.ID, Full: run.Mode == store.ModeFull, Trigger: run.Trigger})
		if err != nil {
			// A connection that cannot even open leaves its run queued:
			// record the failure as a worker does.
			if cur, rerr := q.im.Store.Run(ctx, run.TenantID, run.ID); rerr == nil && !cur.Status.Finished() {
				cur.Status, cur.Error = store.RunFailed, err.Error()
				_ = q.im.Store.FinishRun(ctx, &cur)
			}
		}
	}()
	return nil
}

func (q *inlineQueue) EnqueueCustomerImport(context.Context, store.SyncRun) error {
	return errors.New("no customer imports in this test")
}

func (q *inlineQueue) EnqueueWelcome(context.Context, int64, int64) (bool, error) { return true, nil }

// TestRemoteCommands runs `import` without --inline and `settings` against
// a real admin API over loopback HTTP.
func TestRemoteCommands(t *testing.T) {
	dir := useDatabase(t)
	if code, out, errOut := runCLI(t, "apply", "-f", writeApply(t, dir, applyFile)); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	csv := "username,email,mobile\nalice,alice@contoso.example,07400 123401\nbob,bob@contoso.example,\n"
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	code, token, errOut := runCLI(t, "token", "create", "--tenant", "acme-msp", "--email", "lead@acme-msp.example", "--role", "super")
	if code != 0 {
		t.Fatalf("token: %s", errOut)
	}
	_, helpdesk, _ := runCLI(t, "token", "create", "--tenant", "acme-msp", "--email", "desk@acme-msp.example", "--role", "helpdesk")

	st, err := store.Open(context.Background(), os.Getenv("SELFSERVE_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	queue := &inlineQueue{im: &importer.Importer{MaxRemovalShare: 0.3, Store: st, Registry: shipped.Registry()}}
	h, err := admin.New(admin.Options{Store: st, Registry: shipped.Registry(), Enqueuer: queue})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer queue.wg.Wait()
	t.Setenv("SELFSERVE_API_URL", srv.URL)
	t.Setenv("SELFSERVE_API_TOKEN", strings.TrimSpace(token))
	old := pollInterval
	pollInterval = 10 * time.Millisecond
	defer func() { pollInterval = old }()

	code, out, errOut := runCLI(t, "import", "contoso-local")
	if code != 0 || !strings.Contains(out, "succeeded") || !strings.Contains(out, "created 2") || !strings.Contains(out, "[=====") {
		t.Fatalf("remote import: code %d\n%s%s", code, out, errOut)
	}
	t.Logf("remote import output:\n%s", out)
	// A run that fails gives exit code 1 and the run's error.
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte("name,email\nx,y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "import", "contoso-local", "--full")
	if code != 1 || !strings.Contains(out, "failed") || !strings.Contains(errOut, "username") {
		t.Errorf("failing remote import: code %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "import", "nope"); code != 1 || !strings.Contains(errOut, `no connection "nope"`) {
		t.Errorf("unknown connection: code %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "import", "contoso-local", "--tenant", "other"); code != 2 || !strings.Contains(errOut, "acme-msp") {
		t.Errorf("wrong tenant: code %d %s", code, errOut)
	}

	code, out, errOut = runCLI(t, "settings", "self-serve", "off")
	if code != 0 || !strings.Contains(out, "OFF") {
		t.Fatalf("settings self-serve off: code %d %s%s", code, out, errOut)
	}
	tn, err := st.TenantByName(context.Background(), "acme-msp")
	if err != nil || tn.SelfServe {
		t.Fatalf("override after off: %+v %v", tn, err)
	}
	if code, out, _ := runCLI(t, "settings"); code != 0 || !strings.Contains(out, "OFF") {
		t.Errorf("settings: %d %s", code, out)
	}
	if code, out, _ := runCLI(t, "settings", "self-serve", "on"); code != 0 || !strings.Contains(out, "ON") {
		t.Errorf("settings self-serve on: %d %s", code, out)
	}
	if code, _, _ := runCLI(t, "settings", "self-serve", "maybe"); code != 2 {
		t.Errorf("settings self-serve maybe: code %d", code)
	}
	t.Setenv("SELFSERVE_API_TOKEN", strings.TrimSpace(helpdesk))
	if code, _, errOut := runCLI(t, "settings", "self-serve", "off"); code != 1 || !strings.Contains(errOut, "403") || !strings.Contains(errOut, "helpdesk") {
		t.Errorf("helpdesk turning the override off: code %d %s", code, errOut)
	}
	t.Setenv("SELFSERVE_API_TOKEN", "")
	if code, _, errOut := runCLI(t, "settings"); code != 1 || !strings.Contains(errOut, "SELFSERVE_API_TOKEN") {
		t.Errorf("no token: code %d %s", code, errOut)
	}
}

package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"selfserve/agent"
	"selfserve/connectors"
	agentconn "selfserve/connectors/agent"
	"selfserve/connectors/file"
	"selfserve/internal/agentproto"
	"selfserve/internal/agentserver"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// registry is what the agent and the server open: the file connector stands
// for the directory here (the AD path is tested against the Samba DC in
// process_test.go).
func registry() connectors.Registry {
	return connectors.NewRegistry(map[connectors.Kind]func() connectors.Config{
		connectors.KindFile:  func() connectors.Config { return new(file.Config) },
		connectors.KindAgent: func() connectors.Config { return new(agentconn.Config) },
	})
}

// harness is a server (store, sync engine, agent endpoints on an httptest
// server) with one tenant and one agent connection.
type harness struct {
	t        *testing.T
	st       *store.Store
	svc      *agentserver.Service
	im       *importer.Importer
	srv      *httptest.Server
	tenant   store.Tenant
	customer store.Customer
	conn     store.Connection
	logs     *bytes.Buffer
}

func newHarness(t *testing.T, st *store.Store, tenantName string) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, st: st, logs: &bytes.Buffer{}}
	var err error
	if h.tenant, _, err = st.UpsertTenant(ctx, store.Tenant{Name: tenantName, Subscription: rules.SubscriptionQDesk, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10}); err != nil {
		t.Fatal(err)
	}
	if h.customer, err = st.CreateCustomer(ctx, store.Customer{TenantID: h.tenant.ID, Name: "Contoso", TimeZone: "Europe/London", DefaultRegion: "GB"}); err != nil {
		t.Fatal(err)
	}
	if h.conn, err = st.CreateConnection(ctx, store.Connection{TenantID: h.tenant.ID, CustomerID: &h.customer.ID, Name: "contoso-agent", Kind: connectors.KindAgent,
		Settings: json.RawMessage(`{"directory":"file"}`), EnableSelfServe: true}); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(h.logs, nil))
	h.im = &importer.Importer{Store: st, Registry: registry(), Logger: logger}
	h.svc = &agentserver.Service{Store: st, Importer: h.im, Logger: logger, Poll: 10 * time.Millisecond}
	h.im.Remote = h.svc
	h.srv = httptest.NewServer(h.svc.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

// enrol enrols an agent reading csv and returns it, not yet running.
func (h *harness) enrol(csv string) *agent.Agent {
	h.t.Helper()
	ctx := context.Background()
	code, _, err := h.svc.IssueInstallCode(ctx, h.tenant.ID, h.conn.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	dir := filepath.Join(h.t.TempDir(), "state")
	dc := agent.DirectoryConfig{Kind: connectors.KindFile, Settings: map[string]any{"path": csv, "page_size": 10}}
	st, err := agent.Enrol(ctx, dir, h.srv.URL, code, "", &dc)
	if err != nil {
		h.t.Fatalf("enrol: %v; log:\n%s", err, h.logs)
	}
	return &agent.Agent{State: st, Registry: registry(), Logger: slog.New(slog.NewTextHandler(h.logs, nil))}
}

// run runs a until the test ends; its error arrives on the channel.
func run(t *testing.T, a *agent.Agent) (context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() { done <- a.Run(ctx); close(finished) }()
	t.Cleanup(func() { cancel(); <-finished })
	return cancel, done
}

// waitRun waits for a run to finish.
func (h *harness) waitRun(id int64) store.SyncRun {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		run, err := h.st.Run(context.Background(), h.tenant.ID, id)
		if err != nil {
			h.t.Fatal(err)
		}
		if run.Status.Finished() {
			return run
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("run %d did not finish; log:\n%s", id, h.logs)
	return store.SyncRun{}
}

func sampleCSV(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../examples/contoso-local.csv")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func usernames(t *testing.T, st *store.Store, tenantID, customerID int64) []string {
	t.Helper()
	users, err := st.EndUsers(context.Background(), tenantID, store.EndUserFilter{CustomerID: customerID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range users {
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%v", u.Username, u.Email, u.Mobile, u.Source, u.PasswordExpiresAt))
	}
	return out
}

// TestSyncThroughAgent: an agent enrolled with a one-time code pushes its
// directory; the server commits the same end users as a direct import of
// the same file, and shows the agent online with its last sync.
func TestSyncThroughAgent(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, b.Open(t), "acme")
			csv := sampleCSV(t)
			a := h.enrol(csv)
			state, err := os.Stat(filepath.Join(a.State.Dir(), "sign.key"))
			if err != nil || state.Mode().Perm() != 0o600 {
				t.Fatalf("sign.key: %v, mode %v; want 0600", err, state.Mode().Perm())
			}
			run(t, a)

			res, err := h.im.Sync(ctx, importer.Request{TenantID: h.tenant.ID, ConnectionID: h.conn.ID, Trigger: "test"})
			if err != nil {
				t.Fatal(err)
			}
			got := h.waitRun(res.Run.ID)
			if got.Status != store.RunSucceeded || got.Processed != 25 || got.Created != 24 || got.Invalid != 1 || got.Pages != 3 {
				t.Fatalf("run: %s processed %d created %d pages %d (%s); log:\n%s", got.Status, got.Processed, got.Created, got.Pages, got.Error, h.logs)
			}

			// The same file imported directly, into another customer.
			other, err := h.st.CreateCustomer(ctx, store.Customer{TenantID: h.tenant.ID, Name: "Direct", TimeZone: "Europe/London", DefaultRegion: "GB"})
			if err != nil {
				t.Fatal(err)
			}
			settings, _ := json.Marshal(map[string]any{"path": csv})
			direct, err := h.st.CreateConnection(ctx, store.Connection{TenantID: h.tenant.ID, CustomerID: &other.ID, Name: "direct", Kind: connectors.KindFile, Settings: settings})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.im.Sync(ctx, importer.Request{TenantID: h.tenant.ID, ConnectionID: direct.ID, Trigger: "test"}); err != nil {
				t.Fatal(err)
			}
			viaAgent, viaFile := usernames(t, h.st, h.tenant.ID, h.customer.ID), usernames(t, h.st, h.tenant.ID, other.ID)
			if strings.Join(viaAgent, "\n") != strings.Join(viaFile, "\n") {
				t.Fatalf("through the agent:\n%s\ndirect:\n%s", strings.Join(viaAgent, "\n"), strings.Join(viaFile, "\n"))
			}

			status, err := h.svc.AgentStatus(ctx, h.tenant.ID, h.conn.ID)
			if err != nil {
				t.Fatal(err)
			}
			if status.State != "online" || status.LastSyncAt == nil || status.Version == "" {
				t.Fatalf("status %+v; want online with a last sync and a version", status)
			}

			// A second sync of the unchanged file changes nothing.
			res, err = h.im.Sync(ctx, importer.Request{TenantID: h.tenant.ID, ConnectionID: h.conn.ID, Trigger: "test", Full: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := h.waitRun(res.Run.ID); got.Status != store.RunSucceeded || got.Unchanged != 24 || got.Created != 0 {
				t.Fatalf("second run: %s unchanged %d created %d", got.Status, got.Unchanged, got.Created)
			}
		})
	}
}

// TestInstallCode: a code works once; a used, unknown or expired code gets
// one answer.
func TestInstallCode(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, storetest.Backends()[0].Open(t), "acme")
	code, expires, err := h.svc.IssueInstallCode(ctx, h.tenant.ID, h.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(expires); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("expires in %s; want 24 h", d)
	}
	if _, err := agent.Enrol(ctx, t.TempDir(), h.srv.URL, code, "", nil); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]string{"used": code, "unknown": "ssa_nope"} {
		_, err := agent.Enrol(ctx, t.TempDir(), h.srv.URL, c, "", nil)
		if err == nil || !strings.Contains(err.Error(), "unknown, was used already or has expired") {
			t.Errorf("%s code: %v", name, err)
		}
	}
	h.svc.Now = func() time.Time { return time.Now().Add(-25 * time.Hour) }
	old, _, err := h.svc.IssueInstallCode(ctx, h.tenant.ID, h.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Now = nil
	if _, err := agent.Enrol(ctx, t.TempDir(), h.srv.URL, old, "", nil); err == nil {
		t.Error("an expired code enrolled an agent")
	}
	if _, err := agent.Enrol(ctx, t.TempDir(), "http://192.0.2.1:9", code, "", nil); err == nil || !strings.Contains(err.Error(), "HTTPS only") {
		t.Errorf("plain http to a remote host: %v", err)
	}
}

// TestRevokedAgentStops: revoking makes the agent's next request fail with
// 401, and the agent stops saying so.
func TestRevokedAgentStops(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, storetest.Backends()[0].Open(t), "acme")
	a := h.enrol(sampleCSV(t))
	_, done := run(t, a)
	waitOnline(t, h)
	if _, err := h.st.RevokeAgent(ctx, h.tenant.ID, h.conn.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, agent.ErrRevoked) {
			t.Fatalf("agent ended with %v; want ErrRevoked", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the revoked agent kept running")
	}
}

func waitOnline(t *testing.T, h *harness) {
	t.Helper()
	for range 500 {
		st, err := h.svc.AgentStatus(context.Background(), h.tenant.ID, h.conn.ID)
		if err == nil && st.State == "online" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("agent never came online")
}

// TestClockSkew: an agent whose clock is 20 minutes off still works: it
// corrects its signatures from the server's clock.
func TestClockSkew(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, storetest.Backends()[0].Open(t), "acme")
	a := h.enrol(sampleCSV(t))
	a.Now = func() time.Time { return time.Now().Add(-20 * time.Minute) }
	run(t, a)
	res, err := h.im.Sync(ctx, importer.Request{TenantID: h.tenant.ID, ConnectionID: h.conn.ID, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.waitRun(res.Run.ID); got.Status != store.RunSucceeded || got.Created != 24 {
		t.Fatalf("run %s created %d: %s", got.Status, got.Created, got.Error)
	}
}

// rawAgent signs requests by hand, to forge, replay and misbehave.
type rawAgent struct {
	id  int64
	key ed25519.PrivateKey
	url string
}

func (r rawAgent) post(t *testing.T, path string, body []byte, sign func(req *http.Request)) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url+path, bytes.NewReader(body))
	if sign == nil {
		req.Header.Set("Authorization", agentproto.Sign(r.key, r.id, http.MethodPost, path, body, time.Now()))
	} else {
		sign(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// enrolRaw enrols an agent with keys the test holds.
func (h *harness) enrolRaw(t *testing.T) rawAgent {
	t.Helper()
	code, _, err := h.svc.IssueInstallCode(context.Background(), h.tenant.ID, h.conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	body, _ := json.Marshal(agentproto.EnrolRequest{Code: code, SignKey: pub, BoxKey: make([]byte, 32), Hostname: "raw", Version: "test"})
	resp, err := http.Post(h.srv.URL+"/agent/v1/enrol", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er agentproto.EnrolResponse
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil || resp.StatusCode != 200 {
		t.Fatalf("enrol: %d %v", resp.StatusCode, err)
	}
	return rawAgent{id: er.AgentID, key: key, url: h.srv.URL}
}

// TestBadRequests: forged, replayed, oversized and malformed requests, and
// another tenant's agent, get a precise 4xx and commit nothing.
func TestBadRequests(t *testing.T) {
	ctx := context.Background()
	st := storetest.Backends()[0].Open(t)
	h := newHarness(t, st, "acme")
	ra := h.enrolRaw(t)

	// A sync job held by ra.
	res, err := h.im.Sync(ctx, importer.Request{TenantID: h.tenant.ID, ConnectionID: h.conn.ID, Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	code, body := ra.post(t, "/agent/v1/jobs/next", []byte(`{}`), nil)
	var job agentproto.Job
	if code != 200 || json.Unmarshal([]byte(body), &job) != nil || job.Kind != "sync" || job.Sync.RunID != res.Run.ID {
		t.Fatalf("next job: %d %s", code, body)
	}
	pagePath := fmt.Sprintf("/agent/v1/jobs/%d/pages", job.ID)

	// Another tenant's agent, properly signed, learns nothing of this job.
	other := newHarness(t, st, "globex")
	oa := other.enrolRaw(t)
	oa.url = h.srv.URL
	if code, body := oa.post(t, fmt.Sprintf("/agent/v1/jobs/%d/result", job.ID), []byte(`{"code":"done"}`), nil); code != 404 {
		t.Errorf("other tenant's agent: %d %s; want 404", code, body)
	}

	page := func(seq int, users string) []byte {
		return []byte(fmt.Sprintf(`{"seq":%d,"users":[%s]}`, seq, users))
	}
	good := page(1, `{"external_id":"jdoe","username":"jdoe","email":"jdoe@contoso.example","mobile":"+447400123499","enabled":true}`)
	cases := []struct {
		name   string
		body   []byte
		sign   func(*http.Request)
		status int
	}{
		{"forged signature", good, func(r *http.Request) {
			_, wrong, _ := ed25519.GenerateKey(nil)
			r.Header.Set("Authorization", agentproto.Sign(wrong, ra.id, "POST", pagePath, good, time.Now()))
		}, 401},
		{"signature of another body", good, func(r *http.Request) {
			r.Header.Set("Authorization", agentproto.Sign(ra.key, ra.id, "POST", pagePath, []byte(`{}`), time.Now()))
		}, 401},
		{"no signature", good, func(r *http.Request) {}, 401},
		{"stale time", good, func(r *http.Request) {
			r.Header.Set("Authorization", agentproto.Sign(ra.key, ra.id, "POST", pagePath, good, time.Now().Add(-time.Hour)))
		}, 401},
		{"malformed JSON", []byte(`{"seq":1,"users":[{`), nil, 400},
		{"unknown field", []byte(`{"seq":1,"users":[],"admin":true}`), nil, 400},
		{"user without id", page(1, `{"username":"x"}`), nil, 400},
		{"seq skips ahead", page(3, `{"external_id":"x"}`), nil, 409},
		{"too many users", page(1, strings.TrimSuffix(strings.Repeat(`{"external_id":"x"},`, agentproto.MaxPageUsers+1), ",")), nil, 413},
		{"too large", append(append([]byte(`{"seq":1,"users":[],"resume":"`), bytes.Repeat([]byte("a"), agentproto.MaxBody)...), []byte(`"}`)...), nil, 413},
	}
	for _, c := range cases {
		if code, body := ra.post(t, pagePath, c.body, c.sign); code != c.status {
			t.Errorf("%s: %d %s; want %d", c.name, code, body, c.status)
		}
	}
	if run, _ := h.st.Run(ctx, h.tenant.ID, res.Run.ID); run.Pages != 0 {
		t.Fatalf("a refused page was committed: %d pages", run.Pages)
	}

	// Replay: the very same signed request twice.
	auth := agentproto.Sign(ra.key, ra.id, "POST", pagePath, good, time.Now())
	same := func(r *http.Request) { r.Header.Set("Authorization", auth) }
	if code, body := ra.post(t, pagePath, good, same); code != 200 {
		t.Fatalf("good page: %d %s", code, body)
	}
	if code, _ := ra.post(t, pagePath, good, same); code != 401 {
		t.Errorf("replayed request: %d; want 401", code)
	}
	// A retransmission (freshly signed, same seq) is acknowledged, not applied twice.
	if code, body := ra.post(t, pagePath, good, nil); code != 200 || !strings.Contains(body, `"committed":false`) {
		t.Errorf("retransmitted page: %d %s", code, body)
	}
	if run, _ := h.st.Run(ctx, h.tenant.ID, res.Run.ID); run.Pages != 1 || run.Processed != 1 {
		t.Fatalf("after a retransmission: %d pages, %d processed; want 1, 1", run.Pages, run.Processed)
	}
	if !strings.Contains(h.logs.String(), fmt.Sprintf("agent_id=%d", oa.id)) {
		t.Errorf("the server log does not name the refused agent %d", oa.id)
	}
}

// TestWriteBackOffline: a reset for an agent that is not connected is
// refused at once, never queued.
func TestWriteBackOffline(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, storetest.Backends()[0].Open(t), "acme")
	w := h.svc.Writer(h.conn)
	start := time.Now()
	err := w.SetPassword(ctx, connectors.Account{ExternalID: "x"}, "Correct-Horse-9")
	if !errors.Is(err, agentserver.ErrOffline) || time.Since(start) > time.Second {
		t.Fatalf("not enrolled: %v after %s", err, time.Since(start))
	}
	h.enrolRaw(t) // enrolled, never heard from since: offline
	if err := w.Unlock(ctx, connectors.Account{ExternalID: "x"}); !errors.Is(err, agentserver.ErrOffline) {
		t.Fatalf("offline agent: %v", err)
	}
}

// TestWriteBackUnsupported: the agent of a file directory answers a reset
// with its reason, which reaches the caller; the password never reaches the
// logs.
func TestWriteBackUnsupported(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, storetest.Backends()[0].Open(t), "acme")
	a := h.enrol(sampleCSV(t))
	run(t, a)
	waitOnline(t, h)
	err := h.svc.Writer(h.conn).SetPassword(ctx, connectors.Account{ExternalID: "aturner", Username: "aturner"}, "Sekrit-Value-Never-Logged-7")
	if !errors.Is(err, connectors.ErrUnsupported) {
		t.Fatalf("reset through a file directory's agent: %v", err)
	}
	if strings.Contains(h.logs.String(), "Sekrit-Value") {
		t.Fatal("the password reached the log")
	}
}

// TestInterruptedWriteBackReported: an agent killed while it journalled a
// write-back (only the journal's .tmp file is there) or while it carried
// one out (the entry says "started") reports each failed when it starts
// again, without carrying it out; the end user's request learns at once
// rather than when the lease runs out.
func TestInterruptedWriteBackReported(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, storetest.Backends()[0].Open(t), "acme")
	a := h.enrol(sampleCSV(t))
	row, err := h.st.AgentForAuth(ctx, a.State.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	// Two unlocks delivered to the agent before it was killed.
	var jobs []store.AgentJob
	for range 2 {
		if _, err := h.st.CreateAgentJob(ctx, store.AgentJob{TenantID: h.tenant.ID, ConnectionID: h.conn.ID, Kind: store.AgentJobUnlock,
			Payload: `{"account":{"external_id":"x"}}`, ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		j, err := h.st.LeaseAgentJob(ctx, row, time.Now().Add(agentserver.WriteWait))
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	journal := filepath.Join(a.State.Dir(), "journal")
	if err := os.WriteFile(filepath.Join(journal, fmt.Sprintf("%d.tmp", jobs[0].ID)), []byte("2026-12-05T06:00:00Z started\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(journal, fmt.Sprintf("%d", jobs[1].ID)), []byte("2026-12-05T06:00:00Z started\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, a)
	want := map[int64]string{jobs[0].ID: "the agent stopped before carrying this out", jobs[1].ID: "the agent stopped while carrying this out; it is not applied twice"}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		finished := 0
		for id, reason := range want {
			j, err := h.st.AgentJob(ctx, h.tenant.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if j.Finished() {
				if j.State != store.AgentJobFailed || j.Reason != reason || j.Deliveries != 1 {
					t.Fatalf("job %d: %s %q, %d deliveries; want failed %q, delivered once", id, j.State, j.Reason, j.Deliveries, reason)
				}
				finished++
			}
		}
		if finished == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted agent did not report its interrupted jobs; log:\n%s", h.logs)
		}
	}
	for _, j := range jobs {
		path := filepath.Join(journal, fmt.Sprint(j.ID))
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			data, err := os.ReadFile(path)
			if err == nil && strings.Contains(string(data), "reported") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("journal of job %d: %q %v; want it reported", j.ID, data, err)
			}
		}
	}
}

// TestLateWriteBackNotCarriedOut: a write-back's lease ends when the end
// user stops waiting; one that reaches the agent after that (here the
// server's clock is two minutes past the job's deadline) is reported
// failed and not carried out, so no end user is told "failed" about a
// password that then changes.
func TestLateWriteBackNotCarriedOut(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, storetest.Backends()[0].Open(t), "acme")
	h.svc.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	a := h.enrol(sampleCSV(t))
	job, err := h.st.CreateAgentJob(ctx, store.AgentJob{TenantID: h.tenant.ID, ConnectionID: h.conn.ID, Kind: store.AgentJobUnlock,
		Payload: `{"account":{"external_id":"aturner","username":"aturner"}}`, ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		j, err := h.st.AgentJob(ctx, h.tenant.ID, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Finished() {
			if j.State != store.AgentJobFailed || !strings.Contains(j.Reason, "after the end user stopped waiting") {
				t.Fatalf("late write-back: %s %q; want failed, not carried out", j.State, j.Reason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not report the late write-back; log:\n%s", h.logs)
		}
	}
}

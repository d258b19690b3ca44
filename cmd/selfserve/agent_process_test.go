package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"selfserve/connectors/shipped"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/redis/go-redis/v9"

	"selfserve/config"
	"selfserve/connectors"
	"selfserve/internal/addc"
	"selfserve/internal/agentproto"
	"selfserve/internal/connection"
	"selfserve/internal/importer"
	"selfserve/internal/rules"
	"selfserve/internal/secretbox"
	"selfserve/internal/store"
	"selfserve/internal/store/storetest"
)

// The on-premises agent as a separate process: `selfserve serve` (with
// PostgreSQL, Redis and the public listener, and no address for the
// domain controller) in one child process, `selfserve agent run` in
// others; only the agents reach the project's Samba AD DC
// (scripts/ad-dc.sh; $AD_DIR and $AD_BIND_IP pick the instance). Skipped
// with -short, without root or Samba (failed instead with CI=true), or
// without TEST_DATABASE_URL and TEST_REDIS_URL.

// agentDCUsers is how many users the DC is seeded with (OU=Staff): users
// 22, 23, 122, … are locked out by the seed.
const agentDCUsers = 300

// agentDCPageSize makes a full listing 30 pages, so that a process can be
// killed in the middle of one.
const agentDCPageSize = 10

// dcInfo is the DC, with the test's ways of using it.
type dcInfo struct{ addc.Info }

// startDC brings the DC up and seeded (stopping it at the end if this test
// started it).
func startDC(t *testing.T) dcInfo {
	t.Helper()
	return dcInfo{addc.ForTest(t, addc.Options{Dir: filepath.Join(os.TempDir(), "selfserve-ad-agent"), BindIP: "127.0.0.7", Users: agentDCUsers})}
}

func (info dcInfo) upn(i int) string {
	return fmt.Sprintf("user%05d@%s", i, strings.ToLower(info.Realm))
}

// bind reports whether upn binds with password over LDAPS.
func (info dcInfo) bind(t *testing.T, upn, password string) bool {
	t.Helper()
	ok, err := info.Binds(upn, password)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// setPassword sets upn's password as the domain's administrator (the
// tests' starting point: an earlier run may have changed it).
func (info dcInfo) setPassword(t *testing.T, upn, password string) {
	t.Helper()
	if err := info.SetPassword(upn, password); err != nil {
		t.Fatal(err)
	}
}

// directoryConfig is the agent's directory file: the DC's address and
// credential, which only the agent's machine holds.
func (info dcInfo) directoryConfig() string {
	return fmt.Sprintf(`kind: ad
settings:
  url: %q
  base_dn: %q
  ca_file: %q
  page_size: %d
secrets:
  bind_dn: %q
  bind_password: %q
`, info.LDAPSURL, "OU=Staff,"+info.BaseDN, info.CACert, agentDCPageSize, info.BindDN, info.BindPass)
}

// child is a child process running the CLI (the test binary, see
// TestMain), its output collected.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	code int
}

// cleanEnv is the test's environment without selfserve's settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SELFSERVE_") {
			env = append(env, kv)
		}
	}
	return env
}

// startChild starts the CLI with args in a child process, killed at the
// end of the test.
func startChild(t *testing.T, name string, env []string, args ...string) *child {
	t.Helper()
	c := &child{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(env, childArgs+"="+strings.Join(args, " "))
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = c.cmd.Wait()
		c.code = c.cmd.ProcessState.ExitCode()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			var lines []string
			for line := range strings.Lines(c.out.String()) {
				if !strings.Contains(line, `"msg":"request"`) {
					lines = append(lines, line)
				}
			}
			t.Logf("--- output of %s (without the request log):\n%s", c.name, strings.Join(lines[max(0, len(lines)-150):], ""))
		}
	})
	return c
}

// kill SIGKILLs the process and waits for it.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// exited waits up to d for the process to end by itself.
func (c *child) exited(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
	}
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockRedisDB takes a Redis DB (1..14) of TEST_REDIS_URL's server no other
// test holds (the worker tests' lock), emptied, released at the end.
func lockRedisDB(t *testing.T) string {
	t.Helper()
	opt, err := redis.ParseURL(os.Getenv("TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	for db := 14; db >= 1; db-- {
		o := *opt
		o.DB = db
		c := redis.NewClient(&o)
		ok, err := c.SetNX(context.Background(), "selfserve:worker-test-lock", t.Name(), 15*time.Minute).Result()
		if err != nil {
			c.Close()
			t.Fatalf("redis: %v", err)
		}
		if !ok {
			c.Close()
			continue
		}
		if keys, _ := c.Keys(context.Background(), "asynq:*").Result(); len(keys) > 0 {
			c.Del(context.Background(), keys...)
		}
		t.Cleanup(func() {
			c.FlushDB(context.Background())
			c.Close()
		})
		return fmt.Sprintf("redis://%s/%d", opt.Addr, db)
	}
	t.Skip("every Redis test DB is held by another test")
	return ""
}

// agentWorld is the server process, its database, two tenants with an
// agent connection each, and the DC.
type agentWorld struct {
	// t is the current subtest's; root the whole test's, which owns the
	// long-lived processes.
	t, root  *testing.T
	dc       dcInfo
	dbURL    string
	st       *store.Store
	redisURL string
	key      string
	admin    string // host:port of the admin API
	public   string // host:port of the public listener
	outbox   string
	server   *child
	// logMark is where the server's log of the current check starts.
	logMark int
	acme    tenantSide
	other   tenantSide
}

// tenantSide is one tenant's token, customer and agent connection.
type tenantSide struct {
	name     string
	tenant   store.Tenant
	customer store.Customer
	conn     store.Connection
	token    string
	state    string // the agent's state folder
	agent    *child
}

const agentApply = `tenants:
  - name: acme-msp
    subscription: bundle
    self_serve: true
    timezone: UTC
    logins:
      - {email: lead@acme-msp.example, role: super}
    customers:
      - {name: Corp, timezone: UTC, default_region: US}
  - name: other-msp
    subscription: bundle
    self_serve: true
    timezone: UTC
    logins:
      - {email: lead@other-msp.example, role: super}
    customers:
      - {name: Corp, timezone: UTC, default_region: US}
`

func newAgentWorld(t *testing.T) *agentWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("agent process test: -short")
	}
	if os.Getenv("TEST_DATABASE_URL") == "" || os.Getenv("TEST_REDIS_URL") == "" {
		t.Skip("TEST_DATABASE_URL and TEST_REDIS_URL are not both set")
	}
	w := &agentWorld{t: t, root: t, dc: startDC(t), outbox: t.TempDir()}
	w.dbURL = storetest.FreshPostgresSchema(t, os.Getenv("TEST_DATABASE_URL"))
	w.st = storetest.OpenMigrated(t, w.dbURL)
	w.redisURL = lockRedisDB(t)
	w.key = config.GenerateEncryptionKey().Encoded()
	w.admin, w.public = freeAddr(t), freeAddr(t)

	t.Setenv("SELFSERVE_DATABASE_URL", w.dbURL)
	t.Setenv("SELFSERVE_ENCRYPTION_KEY", w.key)
	t.Setenv("SELFSERVE_LOG_LEVEL", "error")
	apply := filepath.Join(t.TempDir(), "apply.yaml")
	if err := os.WriteFile(apply, []byte(agentApply), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "apply", "-f", apply); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	ctx := context.Background()
	for side, name := range map[*tenantSide]string{&w.acme: "acme-msp", &w.other: "other-msp"} {
		code, token, errOut := runCLI(t, "token", "create", "--tenant", name, "--email", "lead@"+name+".example", "--role", "super")
		if code != 0 {
			t.Fatalf("token: %s", errOut)
		}
		side.name, side.token = name, strings.TrimSpace(token)
		var err error
		if side.tenant, err = w.st.TenantByName(ctx, name); err != nil {
			t.Fatal(err)
		}
		if side.customer, err = w.st.CustomerByName(ctx, side.tenant.ID, "Corp"); err != nil {
			t.Fatal(err)
		}
	}
	w.startServer()
	return w
}

func (w *agentWorld) startServer() {
	w.t.Helper()
	env := append(cleanEnv(),
		"SELFSERVE_DATABASE_URL="+w.dbURL,
		"SELFSERVE_REDIS_URL="+w.redisURL,
		"SELFSERVE_ENCRYPTION_KEY="+w.key,
		"SELFSERVE_ADMIN_ADDR="+w.admin,
		"SELFSERVE_PUBLIC_ADDR="+w.public,
		"SELFSERVE_PUBLIC_URL=http://"+w.public,
		"SELFSERVE_OUTBOX="+w.outbox,
		"SELFSERVE_LOG_FORMAT=json",
		"SELFSERVE_LOG_LEVEL=info")
	w.server = startChild(w.root, "serve", env, "serve")
	waitFor(w.t, time.Minute, "the server does not answer /healthz", func() bool {
		select {
		case <-w.server.done:
			w.t.Fatalf("serve exited %d:\n%s", w.server.code, w.server.out.String())
		default:
		}
		resp, err := http.Get("http://" + w.admin + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		c, err := net.Dial("tcp", w.public)
		if err != nil {
			return false
		}
		c.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// markLog starts a check of the server's log.
func (w *agentWorld) markLog() { w.logMark = len(w.server.out.String()) }

// logged reports whether the server logged, since the mark, a line with
// every one of parts.
func (w *agentWorld) logged(parts ...string) bool {
	text := w.server.out.String()
	for line := range strings.Lines(text[min(w.logMark, len(text)):]) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}

// call sends a request to the admin API with side's token.
func (w *agentWorld) call(side *tenantSide, method, path string, body any) (int, map[string]any) {
	w.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+w.admin+path, r)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+side.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// createAgentConnection makes side's agent connection through the API.
func (w *agentWorld) createAgentConnection(side *tenantSide) {
	w.t.Helper()
	status, body := w.call(side, "POST", "/v1/connections", map[string]any{"name": "corp-dc", "kind": "agent", "customer_id": side.customer.ID,
		"settings": map[string]any{"directory": "ad"}, "enable_self_serve": true, "schedule_seconds": 0})
	if status != http.StatusCreated {
		w.t.Fatalf("create the agent connection: %d %v", status, body)
	}
	var err error
	if side.conn, err = w.st.ConnectionByName(context.Background(), side.tenant.ID, "corp-dc"); err != nil {
		w.t.Fatal(err)
	}
}

// enrol gets an install code from the API and enrols an agent process
// with it into a new state folder.
func (w *agentWorld) enrol(side *tenantSide) {
	w.t.Helper()
	status, body := w.call(side, "POST", fmt.Sprintf("/v1/connections/%d/agent/install-code", side.conn.ID), nil)
	code, _ := body["code"].(string)
	if status != http.StatusCreated || !strings.HasPrefix(code, "ssa_") {
		w.t.Fatalf("install code: %d %v", status, body)
	}
	dir := w.root.TempDir()
	dirFile := filepath.Join(dir, "directory.yaml")
	if err := os.WriteFile(dirFile, []byte(w.dc.directoryConfig()), 0o600); err != nil {
		w.t.Fatal(err)
	}
	side.state = filepath.Join(dir, "state")
	enrol := startChild(w.t, "agent enrol "+side.name, cleanEnv(), "agent", "enrol", "--server", "http://"+w.public, "--code", code, "--directory", dirFile, "--state", side.state)
	if !enrol.exited(time.Minute) || enrol.code != 0 {
		w.t.Fatalf("agent enrol: code %d\n%s", enrol.code, enrol.out.String())
	}
	if !strings.Contains(enrol.out.String(), "enrolled: agent ") {
		w.t.Fatalf("agent enrol said:\n%s", enrol.out.String())
	}
	// The code is single use.
	again := startChild(w.t, "agent enrol again", cleanEnv(), "agent", "enrol", "--server", "http://"+w.public, "--code", code, "--state", filepath.Join(dir, "again"))
	if !again.exited(time.Minute) || again.code == 0 || !strings.Contains(again.out.String(), "refused the install code") {
		w.t.Fatalf("a second enrolment with the same code: code %d\n%s", again.code, again.out.String())
	}
}

// runAgent starts side's agent process (extra: environment for it).
func (w *agentWorld) runAgent(side *tenantSide, extra ...string) *child {
	w.t.Helper()
	side.agent = startChild(w.root, "agent run "+side.name, append(cleanEnv(), extra...), "agent", "run", "--state", side.state, "--log-format", "json")
	return side.agent
}

// waitOnline waits until the API shows side's agent online.
func (w *agentWorld) waitOnline(side *tenantSide) map[string]any {
	w.t.Helper()
	var body map[string]any
	waitFor(w.t, 30*time.Second, "the agent is not online", func() bool {
		var status int
		status, body = w.call(side, "GET", fmt.Sprintf("/v1/connections/%d/agent", side.conn.ID), nil)
		return status == http.StatusOK && body["state"] == "online"
	})
	return body
}

// agentID is side's agent as its state folder names it.
func (side *tenantSide) agentID(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(side.state, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		AgentID int64 `json:"agent_id"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.AgentID
}

// startSync asks the API for a sync of side's connection and returns its
// run's id.
func (w *agentWorld) startSync(side *tenantSide, mode string) int64 {
	w.t.Helper()
	status, body := w.call(side, "POST", fmt.Sprintf("/v1/connections/%d/sync", side.conn.ID), map[string]any{"mode": mode})
	id, _ := body["id"].(float64)
	if status != http.StatusAccepted || id == 0 {
		w.t.Fatalf("start a %s sync: %d %v", mode, status, body)
	}
	return int64(id)
}

// waitRun waits for a run to finish.
func (w *agentWorld) waitRun(side *tenantSide, id int64) store.SyncRun {
	w.t.Helper()
	var run store.SyncRun
	waitFor(w.t, time.Minute, fmt.Sprintf("run %d did not finish", id), func() bool {
		var err error
		run, err = w.st.Run(context.Background(), side.tenant.ID, id)
		if err != nil {
			w.t.Fatal(err)
		}
		return run.Status.Finished()
	})
	return run
}

// endUserRows are the columns an import decides, one line per end user of
// a customer, by external id.
func endUserRows(t *testing.T, st *store.Store, tenantID, customerID int64) []string {
	t.Helper()
	users, err := st.EndUsers(context.Background(), tenantID, store.EndUserFilter{CustomerID: customerID, IncludeRemoved: true})
	if err != nil {
		t.Fatal(err)
	}
	at := func(p *time.Time) string {
		if p == nil {
			return "-"
		}
		return p.UTC().Format(time.RFC3339)
	}
	var rows []string
	for _, u := range users {
		rows = append(rows, strings.Join([]string{u.ExternalID, string(u.Source), u.Username, u.UPN, u.FirstName, u.LastName, u.DisplayName,
			u.Email, string(u.EmailSource), u.Mobile, string(u.MobileSource), strconv.FormatBool(u.Enabled), strconv.FormatBool(u.LockedOut), at(u.LockedOutAt),
			strconv.FormatBool(u.MustChangePassword), strconv.FormatBool(u.PasswordNeverExpires), at(u.PasswordLastSet), at(u.PasswordExpiresAt),
			u.ImmutableID, strconv.FormatBool(u.SelfServe), strconv.FormatBool(u.Privileged), u.PrivilegedReason, at(u.RemovedAt)}, "|"))
	}
	slices.Sort(rows)
	return rows
}

// direct is a direct import of the DC (an ad connection the importer
// opens itself) into a database schema of its own.
type direct struct {
	st       *store.Store
	im       *importer.Importer
	tenant   store.Tenant
	customer store.Customer
	conn     store.Connection
}

func newDirect(t *testing.T, info dcInfo, key string) *direct {
	t.Helper()
	ctx := context.Background()
	d := &direct{st: storetest.OpenMigrated(t, storetest.FreshPostgresSchema(t, os.Getenv("TEST_DATABASE_URL")))}
	k, err := config.ParseEncryptionKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(kb)
	if err != nil {
		t.Fatal(err)
	}
	reg := shipped.Registry()
	if d.tenant, _, err = d.st.UpsertTenant(ctx, store.Tenant{Name: "direct-msp", Subscription: rules.SubscriptionBundle, SelfServe: true, TimeZone: "UTC", SendHour: 9, ReminderDays: 10}); err != nil {
		t.Fatal(err)
	}
	if d.customer, _, err = d.st.UpsertCustomer(ctx, store.Customer{TenantID: d.tenant.ID, Name: "Corp", TimeZone: "UTC", DefaultRegion: "US"}); err != nil {
		t.Fatal(err)
	}
	settings, _ := json.Marshal(map[string]any{"url": info.LDAPSURL, "base_dn": "OU=Staff," + info.BaseDN, "ca_file": info.CACert, "page_size": agentDCPageSize})
	secrets, _ := json.Marshal(map[string]string{"bind_dn": info.BindDN, "bind_password": info.BindPass})
	sealed, err := connection.Opener{Registry: reg, Box: box}.SealSecrets(secrets)
	if err != nil {
		t.Fatal(err)
	}
	if d.conn, _, err = d.st.UpsertConnection(ctx, store.Connection{TenantID: d.tenant.ID, CustomerID: &d.customer.ID, Name: "corp-ad", Kind: connectors.KindAD,
		Settings: settings, SealedSecrets: sealed, EnableSelfServe: true}, false); err != nil {
		t.Fatal(err)
	}
	d.im = &importer.Importer{Store: d.st, Registry: reg, Secrets: box}
	return d
}

// sync runs a direct sync and returns the end users' rows.
func (d *direct) sync(t *testing.T, full bool) (store.SyncRun, []string) {
	t.Helper()
	res, err := d.im.Sync(context.Background(), importer.Request{TenantID: d.tenant.ID, ConnectionID: d.conn.ID, Full: full, Trigger: "test"})
	if err != nil || res.Run.Status != store.RunSucceeded {
		t.Fatalf("direct sync: %+v %v", res.Run, err)
	}
	return res.Run, endUserRows(t, d.st, d.tenant.ID, d.customer.ID)
}

// sameRows fails the test when the rows differ, showing the first
// differences.
func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var diff []string
	for i := range max(len(got), len(want)) {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			diff = append(diff, "  through the agent: "+g+"\n  direct:            "+w)
		}
		if len(diff) == 5 {
			break
		}
	}
	t.Errorf("%s: %d end users through the agent, %d direct; first differences:\n%s", what, len(got), len(want), strings.Join(diff, "\n"))
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// selfServe posts a JSON body to side's public self-serve API.
func (w *agentWorld) selfServe(ctx context.Context, side *tenantSide, path string, body any) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+w.public+"/self-serve/v1/"+side.name+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out, nil
}

// grant walks a challenge for login through its factors, reading each
// code from the outbox, and returns the grant.
func (w *agentWorld) grant(side *tenantSide, login, purpose string) string {
	w.t.Helper()
	ctx := context.Background()
	status, body, err := w.selfServe(ctx, side, "/challenges", map[string]any{"login": login, "purpose": purpose})
	if err != nil || status != http.StatusAccepted {
		w.t.Fatalf("challenge for %s: %d %v %v", login, status, body, err)
	}
	id, _ := body["challenge_id"].(string)
	factors, _ := body["factors"].([]any)
	for len(factors) > 0 {
		ch, _ := factors[0].(map[string]any)["channel"].(string)
		factors = factors[1:]
		var code string
		path := filepath.Join(w.outbox, "code-"+id+"-"+ch+".txt")
		waitFor(w.t, 10*time.Second, "no "+ch+" code in the outbox", func() bool {
			b, err := os.ReadFile(path)
			if err != nil {
				return false
			}
			_, text, _ := strings.Cut(string(b), "\n\n")
			code = sixDigits.FindString(text)
			return code != ""
		})
		status, body, err := w.selfServe(ctx, side, "/challenges/"+id+"/verify", map[string]any{"channel": ch, "code": code})
		if err != nil || status != http.StatusOK {
			w.t.Fatalf("verify %s: %d %v %v", ch, status, body, err)
		}
		if g, ok := body["grant"].(string); ok {
			return g
		}
		if next, ok := body["factors"].([]any); ok { // asked for only now
			factors = append(factors, next...)
		}
	}
	w.t.Fatal("no grant after every factor")
	return ""
}

// giveMobile sets the mobile of side's end user login (the seed's are
// fictional numbers the import does not keep).
func (w *agentWorld) giveMobile(side *tenantSide, login string, n int) {
	w.t.Helper()
	ctx := context.Background()
	us, err := w.st.FindEndUsersByLogin(ctx, side.tenant.ID, login, 2)
	if err != nil || len(us) != 1 {
		w.t.Fatalf("%d end users for %s: %v", len(us), login, err)
	}
	mobile := fmt.Sprintf("+4474001234%02d", n)
	if _, _, err := w.st.SetContact(ctx, side.tenant.ID, us[0].ID, nil, &mobile, rules.ProvenanceManual); err != nil {
		w.t.Fatal(err)
	}
}

// writeJobs are side's write-back jobs, oldest first.
func (w *agentWorld) writeJobs(side *tenantSide) []store.AgentJob {
	w.t.Helper()
	var jobs []store.AgentJob
	rows, err := w.st.DB().QueryContext(context.Background(), w.st.DB().Rebind(`SELECT id FROM agent_jobs WHERE tenant_id = ? AND kind <> 'sync' ORDER BY id`), side.tenant.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			w.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		j, err := w.st.AgentJob(context.Background(), side.tenant.ID, id)
		if err != nil {
			w.t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// rawAgent sends hand-made requests signed with an enrolled agent's key,
// read from its state folder.
type rawAgent struct {
	id   int64
	key  ed25519.PrivateKey
	base string
}

func (w *agentWorld) rawAgent(side *tenantSide) rawAgent {
	w.t.Helper()
	key, err := os.ReadFile(filepath.Join(side.state, "sign.key"))
	if err != nil || len(key) != ed25519.PrivateKeySize {
		w.t.Fatalf("sign.key: %v", err)
	}
	return rawAgent{id: side.agentID(w.t), key: key, base: "http://" + w.public}
}

// answer is an agent endpoint's answer.
type answer struct {
	status int
	code   string
	body   string
}

// sign signs a request of body to path at time at.
func (r rawAgent) sign(path string, body []byte, at time.Time) string {
	return agentproto.Sign(r.key, r.id, http.MethodPost, path, body, at)
}

// post sends body to path with the Authorization header auth.
func (r rawAgent) post(t *testing.T, path string, body []byte, auth string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e agentproto.Error
	_ = json.Unmarshal(raw, &e)
	return answer{status: resp.StatusCode, code: e.Error.Code, body: string(raw)}
}

// send signs body now and posts it.
func (r rawAgent) send(t *testing.T, path string, body []byte) answer {
	t.Helper()
	return r.post(t, path, body, r.sign(path, body, time.Now()))
}

// TestAgentProcess: enrolment with a code from the admin API, a full and
// an incremental sync of the DC through the agent giving the same end
// users as a direct import, and a reset and an unlock through the public
// self-serve API carried out by the agent; then the faults and bad input
// of issue 15, each against the same server and DC.
func TestAgentProcess(t *testing.T) {
	w := newAgentWorld(t)
	acme := &w.acme
	ctx := context.Background()
	d := newDirect(t, w.dc, w.key)

	t.Run("enrol and sync", func(t *testing.T) {
		w.t = t
		w.createAgentConnection(acme)
		w.enrol(acme)
		for _, name := range []string{"agent.json", "sign.key", "box.key", "directory.json"} {
			if fi, err := os.Stat(filepath.Join(acme.state, name)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v; want a 0600 file", name, err)
			}
		}
		w.runAgent(acme)
		if st := w.waitOnline(acme); st["version"] == "" || st["hostname"] == "" {
			t.Errorf("agent state %v: want its version and hostname", st)
		}

		full := w.waitRun(acme, w.startSync(acme, "full"))
		if full.Status != store.RunSucceeded || full.Mode != store.ModeFull || full.Created != agentDCUsers {
			t.Fatalf("full sync through the agent: %s %s, created %d (%s); want succeeded, %d created", full.Status, full.Mode, full.Created, full.Error, agentDCUsers)
		}
		_, want := d.sync(t, true)
		sameRows(t, "full sync", endUserRows(t, w.st, acme.tenant.ID, acme.customer.ID), want)
		if conn, err := w.st.Connection(ctx, acme.tenant.ID, acme.conn.ID); err != nil || conn.Cursor == "" {
			t.Fatalf("after the full sync the connection has no cursor: %v", err)
		}

		// A change in the DC, then an incremental sync on both sides.
		stamp := time.Now().Format("150405.000")
		if err := w.dc.ModifyUser(w.dc.upn(5), func(r *goldap.ModifyRequest) { r.Replace("displayName", []string{"Renamed " + stamp}) }); err != nil {
			t.Fatal(err)
		}
		inc := w.waitRun(acme, w.startSync(acme, "incremental"))
		if inc.Status != store.RunSucceeded || inc.Mode != store.ModeIncremental || inc.Updated < 1 || inc.Processed >= agentDCUsers {
			t.Fatalf("incremental sync through the agent: %s %s, processed %d, updated %d (%s)", inc.Status, inc.Mode, inc.Processed, inc.Updated, inc.Error)
		}
		directInc, want := d.sync(t, false)
		if directInc.Mode != store.ModeIncremental {
			t.Fatalf("the direct sync was %s", directInc.Mode)
		}
		got := endUserRows(t, w.st, acme.tenant.ID, acme.customer.ID)
		sameRows(t, "incremental sync", got, want)
		if !slices.ContainsFunc(got, func(r string) bool { return strings.Contains(r, "|Renamed "+stamp+"|") }) {
			t.Error("the incremental sync did not bring the new display name")
		}
	})

	t.Run("reset and unlock", func(t *testing.T) {
		w.t = t
		const newPassword = "Quartz-Meadow-7713!"
		upn := w.dc.upn(30)
		w.dc.setPassword(t, upn, w.dc.UserPass)
		w.giveMobile(acme, upn, 30)
		grant := w.grant(acme, upn, "reset")
		status, body, err := w.selfServe(ctx, acme, "/password", map[string]any{"grant": grant, "new_password": newPassword})
		if err != nil || status != http.StatusOK {
			t.Fatalf("reset: %d %v %v", status, body, err)
		}
		if !w.dc.bind(t, upn, newPassword) {
			t.Error("the new password does not bind")
		}
		if w.dc.bind(t, upn, w.dc.UserPass) {
			t.Error("the old password still binds")
		}

		locked := w.dc.upn(22)
		if w.dc.bind(t, locked, w.dc.UserPass) {
			t.Fatal("user00022 is not locked out")
		}
		w.giveMobile(acme, locked, 22)
		grant = w.grant(acme, locked, "unlock")
		if status, body, err := w.selfServe(ctx, acme, "/unlock", map[string]any{"grant": grant}); err != nil || status != http.StatusOK {
			t.Fatalf("unlock: %d %v %v", status, body, err)
		}
		if !w.dc.bind(t, locked, w.dc.UserPass) {
			t.Error("user00022 does not bind after the unlock")
		}
		jobs := w.writeJobs(acme)
		if len(jobs) != 2 || jobs[0].Kind != "reset" || jobs[1].Kind != "unlock" {
			t.Fatalf("write-back jobs: %+v", jobs)
		}
		for _, j := range jobs {
			if j.State != store.AgentJobDone || j.Deliveries != 1 || j.Sealed != nil {
				t.Errorf("job %d (%s): %s, %d deliveries, sealed %v; want done, delivered once, no ciphertext kept", j.ID, j.Kind, j.State, j.Deliveries, j.Sealed != nil)
			}
		}
		if strings.Contains(w.server.out.String(), newPassword) || strings.Contains(acme.agent.out.String(), newPassword) {
			t.Error("the new password is in a log")
		}
	})

	other := &w.other
	t.Run("agent killed mid-page", func(t *testing.T) {
		w.t = t
		w.createAgentConnection(other)
		w.enrol(other)
		w.runAgent(other)
		w.waitOnline(other)
		runID := w.startSync(other, "full")
		waitFor(t, time.Minute, "the sync did not get going", func() bool {
			run, err := w.st.Run(ctx, other.tenant.ID, runID)
			return err == nil && run.Pages >= 3
		})
		other.agent.kill()
		killed, err := w.st.Run(ctx, other.tenant.ID, runID)
		if err != nil || killed.Status != store.RunRunning || killed.Created >= agentDCUsers {
			t.Fatalf("run after the kill: %+v %v; want it running, part done", killed, err)
		}
		t.Logf("agent killed at page %d (%d created)", killed.Pages, killed.Created)
		// As if the sync lease had run out since the kill.
		job := w.syncJob(other, runID)
		w.exec(`UPDATE agent_jobs SET lease_until = ? WHERE id = ?`, time.Now().Add(-time.Second).UTC(), job.ID)
		w.runAgent(other)
		final := w.waitRun(other, runID)
		if final.Status != store.RunSucceeded || final.Created != agentDCUsers {
			t.Fatalf("the resumed run: %s, created %d (%s); want succeeded, %d created", final.Status, final.Created, final.Error, agentDCUsers)
		}
		if j := w.syncJob(other, runID); j.State != store.AgentJobDone || j.Deliveries != 2 {
			t.Errorf("sync job: %s, %d deliveries; want done, handed out twice", j.State, j.Deliveries)
		}
		_, want := d.sync(t, true)
		sameRows(t, "full sync resumed after a kill", endUserRows(t, w.st, other.tenant.ID, other.customer.ID), want)
	})

	t.Run("agent killed mid-write-back", func(t *testing.T) {
		w.t = t
		const newPassword = "Harbour-Lantern-4821!"
		upn := w.dc.upn(31)
		w.dc.setPassword(t, upn, w.dc.UserPass)
		w.giveMobile(acme, upn, 31)
		grant := w.grant(acme, upn, "reset")
		journal := filepath.Join(acme.state, "journal")
		seen, _ := os.ReadDir(journal)
		type reply struct {
			status int
			body   map[string]any
			err    error
		}
		replied := make(chan reply, 1)
		go func() {
			status, body, err := w.selfServe(ctx, acme, "/password", map[string]any{"grant": grant, "new_password": newPassword})
			replied <- reply{status, body, err}
		}()
		// The agent journals a write-back before it touches the directory:
		// kill it the moment it has, as it opens the directory.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			now, _ := os.ReadDir(journal)
			if slices.ContainsFunc(now, func(e os.DirEntry) bool {
				return !strings.HasSuffix(e.Name(), ".tmp") && !slices.ContainsFunc(seen, func(s os.DirEntry) bool { return s.Name() == e.Name() })
			}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the agent did not start the reset")
			}
		}
		acme.agent.kill()
		killedOut := acme.agent.out.String()
		w.runAgent(acme)
		var r reply
		select {
		case r = <-replied:
		case <-time.After(time.Minute):
			t.Fatal("the reset request did not end")
		}
		jobs := w.writeJobs(acme)
		j := jobs[len(jobs)-1]
		if j.Kind != "reset" || !j.Finished() || j.Deliveries != 1 {
			t.Fatalf("job %d (%s): %s, %d deliveries; want finished, delivered once", j.ID, j.Kind, j.State, j.Deliveries)
		}
		oldBinds, newBinds := w.dc.bind(t, upn, w.dc.UserPass), w.dc.bind(t, upn, newPassword)
		t.Logf("job %s (%s); API %d %v; old password binds %v, new %v", j.State, j.Reason, r.status, r.body, oldBinds, newBinds)
		switch {
		case oldBinds == newBinds:
			t.Errorf("old password binds %v, new %v: want exactly one", oldBinds, newBinds)
		case j.State == store.AgentJobDone && (r.status != http.StatusOK || !newBinds):
			t.Errorf("job done, but the API answered %d and the new password binds %v", r.status, newBinds)
		case j.State == store.AgentJobFailed && r.status == http.StatusOK:
			t.Errorf("job failed, but the API answered 200")
		}
		// The restarted agent is never handed the job again.
		if received(killedOut, j.ID) != 1 || received(acme.agent.out.String(), j.ID) != 0 {
			t.Errorf("job %d received %d times by the killed agent, %d by the restarted one; want once, never", j.ID, received(killedOut, j.ID), received(acme.agent.out.String(), j.ID))
		}
	})

	t.Run("duplicate delivery", func(t *testing.T) {
		w.t = t
		// The same agent started twice (the service and a console run):
		// both long-poll, one job goes to one of them and is written once.
		twin := startChild(t, "agent run twin", cleanEnv(), "agent", "run", "--state", acme.state, "--log-format", "json")
		waitFor(t, 30*time.Second, "the twin agent did not start", func() bool { return strings.Contains(twin.out.String(), "agent started") })
		locked := w.dc.upn(122)
		if w.dc.bind(t, locked, w.dc.UserPass) {
			t.Fatal("user00122 is not locked out")
		}
		w.giveMobile(acme, locked, 122)
		grant := w.grant(acme, locked, "unlock")
		if status, body, err := w.selfServe(ctx, acme, "/unlock", map[string]any{"grant": grant}); err != nil || status != http.StatusOK {
			t.Fatalf("unlock: %d %v %v", status, body, err)
		}
		if !w.dc.bind(t, locked, w.dc.UserPass) {
			t.Error("user00122 does not bind after the unlock")
		}
		jobs := w.writeJobs(acme)
		j := jobs[len(jobs)-1]
		n := received(acme.agent.out.String(), j.ID) + received(twin.out.String(), j.ID)
		if j.Kind != "unlock" || j.State != store.AgentJobDone || j.Deliveries != 1 || n != 1 {
			t.Errorf("job %d (%s): %s, %d deliveries, received by %d agents; want done, delivered once", j.ID, j.Kind, j.State, j.Deliveries, n)
		}
		twin.kill()
	})

	t.Run("server restarted mid-job", func(t *testing.T) {
		w.t = t
		runID := w.startSync(acme, "full")
		waitFor(t, time.Minute, "the sync did not get going", func() bool {
			run, err := w.st.Run(ctx, acme.tenant.ID, runID)
			return err == nil && run.Pages >= 3
		})
		w.server.kill()
		killed, err := w.st.Run(ctx, acme.tenant.ID, runID)
		if err != nil || killed.Status != store.RunRunning || killed.Processed >= agentDCUsers {
			t.Fatalf("run after the server's kill: %+v %v", killed, err)
		}
		t.Logf("server killed at page %d", killed.Pages)
		w.startServer()
		final := w.waitRun(acme, runID)
		if final.Status != store.RunSucceeded || final.Processed != agentDCUsers || final.Created != 0 || final.Removed != 0 {
			t.Fatalf("run after the server's restart: %s, processed %d, created %d, removed %d (%s)", final.Status, final.Processed, final.Created, final.Removed, final.Error)
		}
		if j := w.syncJob(acme, runID); j.State != store.AgentJobDone || j.Deliveries != 1 {
			t.Errorf("sync job: %s, %d deliveries; want done, handed out once (the agent kept its lease)", j.State, j.Deliveries)
		}
		if rows := endUserRows(t, w.st, acme.tenant.ID, acme.customer.ID); len(rows) != agentDCUsers {
			t.Errorf("%d end users, want %d", len(rows), agentDCUsers)
		}

		// A reset the agent is carrying out when the server dies: the end
		// user's request is lost with the server, the agent's result is
		// not; the job ends done, delivered once.
		const newPassword = "Copper-Thistle-5190!"
		upn := w.dc.upn(32)
		w.dc.setPassword(t, upn, w.dc.UserPass)
		w.giveMobile(acme, upn, 32)
		grant := w.grant(acme, upn, "reset")
		journal := filepath.Join(acme.state, "journal")
		seen, _ := os.ReadDir(journal)
		go func() {
			_, _, _ = w.selfServe(ctx, acme, "/password", map[string]any{"grant": grant, "new_password": newPassword})
		}()
		waitFor(t, 30*time.Second, "the agent did not start the reset", func() bool {
			now, _ := os.ReadDir(journal)
			return len(now) > len(seen)
		})
		w.server.kill()
		w.startServer()
		jobs := w.writeJobs(acme)
		j := jobs[len(jobs)-1]
		waitFor(t, time.Minute, "the reset did not end", func() bool {
			var err error
			j, err = w.st.AgentJob(ctx, acme.tenant.ID, j.ID)
			return err == nil && j.Finished()
		})
		if j.Kind != "reset" || j.State != store.AgentJobDone || j.Deliveries != 1 {
			t.Errorf("job %d (%s): %s (%s), %d deliveries; want done, delivered once", j.ID, j.Kind, j.State, j.Reason, j.Deliveries)
		}
		if !w.dc.bind(t, upn, newPassword) || w.dc.bind(t, upn, w.dc.UserPass) {
			t.Error("after the server's restart the new password does not bind, or the old one still does")
		}
	})

	t.Run("clock skew", func(t *testing.T) {
		w.t = t
		other.agent.kill()
		w.markLog()
		// An agent whose clock is 7 minutes slow corrects it from the
		// server's and works.
		w.runAgent(other, childClockSkew+"=-7m")
		run := w.waitRun(other, w.startSync(other, "incremental"))
		if run.Status != store.RunSucceeded {
			t.Fatalf("incremental sync by the skewed agent: %s (%s)", run.Status, run.Error)
		}
		id := fmt.Sprintf(`"agent_id":%d`, other.agentID(t))
		waitFor(t, 5*time.Second, "the server did not log the skewed request", func() bool { return w.logged(`"reason":"clock skew"`, id) })
		// Within the protocol's window a signature is taken as it is;
		// beyond it, refused with the reason.
		raw := w.rawAgent(other)
		if a := raw.post(t, "/agent/v1/heartbeat", []byte(`{}`), raw.sign("/agent/v1/heartbeat", []byte(`{}`), time.Now().Add(-agentproto.MaxSkew+time.Minute))); a.status != http.StatusOK {
			t.Errorf("a request %s off: %d %s", agentproto.MaxSkew-time.Minute, a.status, a.body)
		}
		a := raw.post(t, "/agent/v1/heartbeat", []byte(`{}`), raw.sign("/agent/v1/heartbeat", []byte(`{}`), time.Now().Add(agentproto.MaxSkew+time.Minute)))
		if a.status != http.StatusUnauthorized || a.code != "clock_skew" || !strings.Contains(a.body, agentproto.HeaderServerTime) {
			t.Errorf("a request %s off: %d %s; want 401 clock_skew naming %s", agentproto.MaxSkew+time.Minute, a.status, a.body, agentproto.HeaderServerTime)
		}
	})

	t.Run("another tenant's agent", func(t *testing.T) {
		w.t = t
		raw := w.rawAgent(other)
		jobs := w.writeJobs(acme)
		theirs := jobs[len(jobs)-1]
		w.markLog()
		// acme's job and a job that never was answer alike: nothing learnt.
		var bodies []string
		for _, id := range []int64{theirs.ID, theirs.ID + 100000} {
			for _, p := range []struct{ path, body string }{
				{fmt.Sprintf("/agent/v1/jobs/%d/result", id), `{"code":"done"}`},
				{fmt.Sprintf("/agent/v1/jobs/%d/pages", id), `{"seq":1,"users":[]}`},
				{fmt.Sprintf("/agent/v1/jobs/%d/extend", id), `{}`},
			} {
				a := raw.send(t, p.path, []byte(p.body))
				if a.status != http.StatusNotFound {
					t.Errorf("%s with another tenant's key: %d %s; want 404", p.path, a.status, a.body)
				}
				bodies = append(bodies, a.body)
			}
		}
		if !slices.Equal(bodies[:3], bodies[3:]) {
			t.Errorf("another tenant's job and no job answer differently:\n%q\n%q", bodies[:3], bodies[3:])
		}
		if after, err := w.st.AgentJob(ctx, acme.tenant.ID, theirs.ID); err != nil || after.State != theirs.State || after.Result != theirs.Result || !after.UpdatedAt.Equal(theirs.UpdatedAt) {
			t.Errorf("acme's job changed: %+v → %+v (%v)", theirs, after, err)
		}
		// Its key presented as acme's agent: 401.
		posing := rawAgent{id: acme.agentID(t), key: raw.key, base: raw.base}
		if a := posing.send(t, "/agent/v1/jobs/next", []byte(`{}`)); a.status != http.StatusUnauthorized || a.code != "unauthenticated" {
			t.Errorf("another tenant's key under acme's agent id: %d %s", a.status, a.body)
		}
		id := fmt.Sprintf(`"agent_id":%d`, raw.id)
		waitFor(t, 5*time.Second, "the server did not log the refusals with the agent's id", func() bool {
			return w.logged(`"status":404`, id) && w.logged(`"reason":"bad signature"`, fmt.Sprintf(`"agent_id":%d`, acme.agentID(t)))
		})
	})

	t.Run("bad input", func(t *testing.T) {
		w.t = t
		other.agent.kill()
		raw := w.rawAgent(other)
		runID := w.startSync(other, "full")
		var job agentproto.Job
		waitFor(t, 30*time.Second, "no sync job for the raw agent", func() bool {
			a := raw.send(t, "/agent/v1/jobs/next", []byte(`{}`))
			return a.status == http.StatusOK && json.Unmarshal([]byte(a.body), &job) == nil && job.Sync != nil && job.Sync.RunID == runID
		})
		pages := fmt.Sprintf("/agent/v1/jobs/%d/pages", job.ID)
		id := fmt.Sprintf(`"agent_id":%d`, raw.id)
		state := func() string {
			run, err := w.st.Run(ctx, other.tenant.ID, runID)
			if err != nil {
				t.Fatal(err)
			}
			j := w.syncJob(other, runID)
			return fmt.Sprintf("run pages %d processed %d; job pages %d; %d end users", run.Pages, run.Processed, j.Pages, len(endUserRows(t, w.st, other.tenant.ID, other.customer.ID)))
		}
		empty := []byte(`{"seq":1,"users":[]}`)
		auth := raw.sign(pages, empty, time.Now())
		if a := raw.post(t, pages, empty, auth); a.status != http.StatusOK || !strings.Contains(a.body, `"committed":true`) {
			t.Fatalf("page 1: %d %s", a.status, a.body)
		}
		before := state()
		_, forgedKey, _ := ed25519.GenerateKey(nil)
		forged := rawAgent{id: raw.id, key: forgedKey, base: raw.base}
		two := []byte(`{"seq":2,"users":[]}`)
		huge := bytes.Repeat([]byte(" "), agentproto.MaxBody+1)
		var many bytes.Buffer
		many.WriteString(`{"seq":2,"users":[`)
		for i := range agentproto.MaxPageUsers + 1 {
			if i > 0 {
				many.WriteByte(',')
			}
			fmt.Fprintf(&many, `{"external_id":"x%d","enabled":true}`, i)
		}
		many.WriteString(`]}`)
		for _, c := range []struct {
			name   string
			send   func() answer
			status int
			code   string
			log    string
			who    string // how the log names the agent (default agent_id)
		}{
			{"forged", func() answer { return forged.send(t, pages, two) }, 401, "unauthenticated", `"reason":"bad signature"`, ""},
			{"body not the one signed", func() answer { return raw.post(t, pages, two, raw.sign(pages, empty, time.Now())) }, 401, "unauthenticated", `"reason":"bad signature"`, ""},
			{"replayed", func() answer { return raw.post(t, pages, empty, auth) }, 401, "replay", `"reason":"replayed nonce"`, ""},
			{"oversized body", func() answer { return raw.send(t, pages, huge) }, 413, "body_too_large", `"status":413`, fmt.Sprintf(`"claimed_agent_id":%d`, raw.id)},
			{"too many users", func() answer { return raw.send(t, pages, many.Bytes()) }, 413, "page_too_large", `"status":413`, ""},
			{"unparsable", func() answer { return raw.send(t, pages, []byte(`{"seq":2,"users":[{"external_id":`)) }, 400, "bad_json", `"status":400`, ""},
			{"unknown field", func() answer { return raw.send(t, pages, []byte(`{"seq":2,"users":[],"colour":"red"}`)) }, 400, "bad_json", `"status":400`, ""},
			{"skipping a page", func() answer { return raw.send(t, pages, []byte(`{"seq":5,"users":[]}`)) }, 409, "conflict", `"status":409`, ""},
			{"result of a job it does not hold", func() answer { return raw.send(t, "/agent/v1/jobs/999999/result", []byte(`{"code":"done"}`)) }, 404, "not_found", `"status":404`, ""},
			{"unknown result", func() answer {
				return raw.send(t, fmt.Sprintf("/agent/v1/jobs/%d/result", job.ID), []byte(`{"code":"maybe"}`))
			}, 400, "invalid_field", `"status":400`, ""},
		} {
			w.markLog()
			a := c.send()
			if a.status != c.status || a.code != c.code {
				t.Errorf("%s: %d %s; want %d %s", c.name, a.status, a.body, c.status, c.code)
			}
			if after := state(); after != before {
				t.Errorf("%s: committed something: %s → %s", c.name, before, after)
			}
			who := c.who
			if who == "" {
				who = id
			}
			waitFor(t, 5*time.Second, c.name+": the server did not log it with the agent's id", func() bool { return w.logged(c.log, who) })
		}
		// A page sent again (its answer was lost) is acknowledged, not applied twice.
		if a := raw.send(t, pages, empty); a.status != http.StatusOK || !strings.Contains(a.body, `"committed":false`) {
			t.Errorf("page 1 again: %d %s; want 200, not committed", a.status, a.body)
		}
		if after := state(); after != before {
			t.Errorf("page 1 again: %s → %s", before, after)
		}
		if a := raw.send(t, fmt.Sprintf("/agent/v1/jobs/%d/result", job.ID), []byte(`{"code":"failed","reason":"test over"}`)); a.status != http.StatusOK {
			t.Errorf("result: %d %s", a.status, a.body)
		}
		if run := w.waitRun(other, runID); run.Status != store.RunFailed || run.Removed != 0 {
			t.Errorf("the raw run: %s, %d removed; want failed, nothing removed", run.Status, run.Removed)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		w.t = t
		w.runAgent(other)
		w.waitOnline(other)
		if status, body := w.call(other, "DELETE", fmt.Sprintf("/v1/connections/%d/agent", other.conn.ID), nil); status/100 != 2 {
			t.Fatalf("revoke: %d %v", status, body)
		}
		if !other.agent.exited(30*time.Second) || other.agent.code == 0 || !strings.Contains(other.agent.out.String(), "refused this agent's key") {
			t.Fatalf("the revoked agent: exited %v, code %d", other.agent.exited(0), other.agent.code)
		}
		raw := w.rawAgent(other)
		if a := raw.send(t, "/agent/v1/heartbeat", []byte(`{}`)); a.status != http.StatusUnauthorized || a.code != "revoked" {
			t.Errorf("a revoked agent's request: %d %s", a.status, a.body)
		}
	})
}

// received counts the times an agent's log says it received job id.
func received(agentLog string, id int64) int {
	return strings.Count(agentLog, fmt.Sprintf(`"msg":"job received","job_id":%d,`, id))
}

// syncJob is the sync job of a run.
func (w *agentWorld) syncJob(side *tenantSide, runID int64) store.AgentJob {
	w.t.Helper()
	var id int64
	if err := w.st.DB().QueryRowContext(context.Background(), w.st.DB().Rebind(`SELECT id FROM agent_jobs WHERE tenant_id = ? AND run_id = ? ORDER BY id DESC LIMIT 1`), side.tenant.ID, runID).Scan(&id); err != nil {
		w.t.Fatalf("the sync job of run %d: %v", runID, err)
	}
	j, err := w.st.AgentJob(context.Background(), side.tenant.ID, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return j
}

// exec runs a statement on the test's database (to move a clock along).
func (w *agentWorld) exec(q string, args ...any) {
	w.t.Helper()
	if _, err := w.st.DB().ExecContext(context.Background(), w.st.DB().Rebind(q), args...); err != nil {
		w.t.Fatal(err)
	}
}

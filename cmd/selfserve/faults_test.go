package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"selfserve/internal/store"
)

// childArgs, when set, makes the test binary run the CLI with these
// arguments (TestMain): a separate process the kill test can SIGKILL.
const childArgs = "SELFSERVE_TEST_CLI_ARGS"

// childClockSkew, when set (a time.Duration), skews the clock of a child
// `agent run` by that much.
const childClockSkew = "SELFSERVE_TEST_AGENT_CLOCK_SKEW"

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgs); args != "" {
		if skew, err := time.ParseDuration(os.Getenv(childClockSkew)); err == nil {
			agentNow = func() time.Time { return time.Now().Add(skew) }
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, strings.Fields(args), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestKilledInlineImportIsResumed: `import --inline --full` SIGKILLed in
// the middle leaves its run running. The next import, while the run's
// heartbeat is recent, is refused with the run's start, progress and last
// heartbeat; once the heartbeat is store.HeartbeatTimeout old, the next
// import takes the run over, says so, and resumes it from its saved
// position: every user once, the same final counts as an uninterrupted run.
func TestKilledInlineImportIsResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 6,000 rows in a child process, then again")
	}
	dir := useDatabase(t)
	p := writeApply(t, dir, strings.Replace(applyFile, "settings: {path: %CSV%}", "settings: {path: %CSV%, page_size: 10}", 1))
	if code, out, errOut := runCLI(t, "apply", "-f", p); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	const rows = 6000
	var csv strings.Builder
	csv.WriteString("username,email,enabled,locked_out,password_last_set,password_expires_at\n")
	for i := range rows {
		fmt.Fprintf(&csv, "user%05d,user%05d@contoso.example,true,false,2026-11-01T09:00:00Z,2026-12-20T09:00:00Z\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, os.Getenv("SELFSERVE_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tenant, err := st.TenantByName(ctx, "acme-msp")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := st.ConnectionByName(ctx, tenant.ID, "contoso-local")
	if err != nil {
		t.Fatal(err)
	}

	child := startChild(t, "import", os.Environ(), "import", "contoso-local", "--inline", "--full")
	var killed store.SyncRun
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		run, err := st.ActiveRun(ctx, tenant.ID, conn.ID)
		if err == nil && run.Pages >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child import did not get going: %+v, %v", run, err)
		}
	}
	child.kill()
	killed, err = st.ActiveRun(ctx, tenant.ID, conn.ID)
	if err != nil || killed.Status != store.RunRunning || killed.Pages == 0 || killed.Processed >= rows {
		t.Fatalf("run after the kill: %+v, %v; want it running, part done", killed, err)
	}
	t.Logf("killed at page %d (%d rows)", killed.Pages, killed.Processed)

	code, out, errOut := runCLI(t, "import", "contoso-local", "--inline", "--full")
	for _, want := range []string{"already queued or running", fmt.Sprintf("run %d, full, running since", killed.ID), fmt.Sprintf("%d pages, %d processed", killed.Pages, killed.Processed), "last heartbeat"} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("import right after the kill: code %d, %q does not say %q\n%s", code, errOut, want, out)
		}
	}

	// As if HeartbeatTimeout had passed since the kill.
	if _, err := st.DB().ExecContext(ctx, `UPDATE sync_runs SET heartbeat_at = ? WHERE id = ?`, killed.HeartbeatAt.Add(-store.HeartbeatTimeout-time.Second), killed.ID); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "import", "contoso-local", "--inline", "--full")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("resuming run %d of contoso-local, whose process stopped", killed.ID)) ||
		!strings.Contains(out, fmt.Sprintf("run %d of contoso-local: succeeded", killed.ID)) || !strings.Contains(out, fmt.Sprintf("processed %d: created %d,", rows, rows)) {
		t.Fatalf("import after the heartbeat stopped: code %d\n%s%s", code, out, errOut)
	}
	var n, distinct int
	if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT external_id) FROM end_users WHERE connection_id = ?`, conn.ID).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != rows || distinct != rows {
		t.Fatalf("%d end users (%d distinct), want %d", n, distinct, rows)
	}
	final, err := st.Run(ctx, tenant.ID, killed.ID)
	if err != nil || final.Pages != rows/10 || final.Created != rows {
		t.Fatalf("final run %+v, %v: want %d pages, %d created", final, err, rows/10, rows)
	}
}

// TestScanCommand: `selfserve scan` runs the expiry scan now against the
// workers' Redis (what is due depends on the hour: the test checks the
// scan ran, not what it found due); with the embedded Redis (private to each
// process) it refuses and says what to do instead.
func TestScanCommand(t *testing.T) {
	dir := useDatabase(t)
	t.Setenv("SELFSERVE_OUTBOX", filepath.Join(dir, "outbox"))
	p := writeApply(t, dir, applyFile)
	if code, out, errOut := runCLI(t, "apply", "-f", p); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	expires := time.Now().Add(3 * 24 * time.Hour).UTC().Format(time.RFC3339)
	csv := "username,email,mobile,enabled,locked_out,password_last_set,password_expires_at\n" +
		"alice,alice@contoso.example,07400 123401,true,false,2026-11-01T09:00:00Z," + expires + "\n"
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "import", "contoso-local", "--inline"); code != 0 {
		t.Fatalf("import: %s%s", out, errOut)
	}
	t.Setenv("SELFSERVE_REDIS_URL", "embedded")
	if code, _, errOut := runCLI(t, "scan"); code != 2 || !strings.Contains(errOut, "POST /v1/ops/scan") {
		t.Fatalf("scan on the embedded Redis: code %d %s", code, errOut)
	}
	mr := miniredis.RunT(t)
	t.Setenv("SELFSERVE_REDIS_URL", "redis://"+mr.Addr()+"/0")
	code, out, errOut := runCLI(t, "scan")
	if code != 0 || !strings.Contains(out, "expiry scan at ") || !strings.Contains(out, "1 candidates") {
		t.Fatalf("scan: code %d\n%s%s", code, out, errOut)
	}
}

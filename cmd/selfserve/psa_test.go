package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"selfserve/connectors/graph/fakegraph"
	"selfserve/connectors/itglue/fakeitglue"
	"selfserve/internal/rules"
)

// TestCustomersImportAndEnrich runs the two PSA commands against a fake IT
// Glue: the import links the customer declared by hand and prints its
// counts; the enrichment fills the end users' mobiles and prints what it
// did; the users become Registration Complete.
func TestCustomersImportAndEnrich(t *testing.T) {
	dir := useDatabase(t)
	srv := fakeitglue.New(fakeitglue.Options{Organizations: 3, ContactsPerOrganization: 12, Seed: 11})
	defer srv.Close()
	org := srv.Organizations()[0]
	var emails, mobiles []string
	for _, c := range srv.Contacts(org.ID) {
		if len(c.WantMobiles) == 0 {
			continue
		}
		if m, err := rules.NormalizePhone(c.WantMobiles[0], "US"); err == nil {
			emails, mobiles = append(emails, c.WantEmails[0]), append(mobiles, m)
		}
	}
	if len(emails) < 2 {
		t.Fatalf("the fake's first organization has %d contacts with a usable mobile, the test needs 2", len(emails))
	}
	t.Setenv("TEST_ITGLUE_KEY", fakeitglue.DefaultAPIKey)
	t.Setenv("SELFSERVE_ALLOWED_PSA_HOSTS", "127.0.0.1") // the fake
	csv := filepath.Join(dir, "users.csv")
	file := fmt.Sprintf(`tenants:
  - name: acme-msp
    subscription: bundle
    connections:
      - {name: acme-itglue, kind: itglue, settings: {base_url: %q, page_size: 2}, secrets: {api_key: "${TEST_ITGLUE_KEY}"}}
    customers:
      - name: %q
        default_region: US
        connections:
          - {name: local, kind: file, enable_self_serve: true, settings: {path: %q}}
`, srv.URL, strings.ToLower(org.Name), csv)
	applyPath := filepath.Join(dir, "apply.yaml")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(applyPath, []byte(file), 0o600))
	must(os.WriteFile(csv, []byte("username,email,enabled\n"+
		fmt.Sprintf("alice,%s,true\nbob,%s,true\n", emails[0], strings.ToUpper(emails[1]))), 0o600))
	if code, out, errOut := runCLI(t, "apply", "-f", applyPath); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	if code, out, errOut := runCLI(t, "import", "local", "--inline"); code != 0 {
		t.Fatalf("import: %s%s", out, errOut)
	}

	code, out, errOut := runCLI(t, "customers", "import", "acme-itglue", "--tenant", "acme-msp")
	if code != 0 || !strings.Contains(out, "(customer import): succeeded") || !strings.Contains(out, "2 customers created") ||
		!strings.Contains(out, "1 existing customer linked by name") {
		t.Fatalf("customers import: code %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "enrich", "acme-itglue", "--customer", strings.ToLower(org.Name))
	if code != 0 || !strings.Contains(out, "(contact enrichment): succeeded") || !strings.Contains(out, "2 mobile numbers filled") ||
		!strings.Contains(out, "1 customer searched") {
		t.Fatalf("enrich: code %d\n%s%s", code, out, errOut)
	}
	t.Logf("selfserve enrich:\n%s", out)
	_, out, _ = runCLI(t, "users", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("users: %s", out)
	}
	for i, line := range lines {
		var u map[string]any
		must(json.Unmarshal([]byte(line), &u))
		if u["status"] != "registration_complete" || u["active"] != true || u["mobile"] != mobiles[i] || u["mobile_source"] != "psa" {
			t.Errorf("user %d after enrichment: %v", i, u)
		}
	}

	if code, _, errOut := runCLI(t, "customers", "list"); code != 2 || !strings.Contains(errOut, "customers import CONNECTION") {
		t.Errorf("customers without import: code %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "enrich", "local"); code != 1 || !strings.Contains(errOut, "not a PSA connection") {
		t.Errorf("enrich of a directory connection: code %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "enrich", "acme-itglue", "--customer", "Nobody"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("enrich of an unknown customer: code %d %s", code, errOut)
	}
}

// runCLIRecordingWaits runs the CLI with throttle waits recorded instead of
// slept.
func runCLIRecordingWaits(t *testing.T, waits *[]time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cli{stdout: &out, stderr: &errOut, sleep: func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return ctx.Err()
	}}
	code = runWith(context.Background(), env, args)
	return code, out.String(), errOut.String()
}

// TestInlineRunsWaitOutThrottling: `customers import` against an IT Glue
// that throttles the second page (no Retry-After, as IT Glue documents)
// waits 2 s, says so, and ends as an unthrottled import does; Ctrl-C during
// a wait stops the run, which the same command resumes; an API that keeps
// throttling stops the run once throttle_wait_max is spent.
func TestInlineRunsWaitOutThrottling(t *testing.T) {
	dir := useDatabase(t)
	srv := fakeitglue.New(fakeitglue.Options{Organizations: 5, ContactsPerOrganization: 1, Seed: 11})
	defer srv.Close()
	t.Setenv("TEST_ITGLUE_KEY", fakeitglue.DefaultAPIKey)
	t.Setenv("SELFSERVE_ALLOWED_PSA_HOSTS", "127.0.0.1") // the fake
	applyPath := filepath.Join(dir, "apply.yaml")
	if err := os.WriteFile(applyPath, []byte(fmt.Sprintf(`tenants:
  - name: acme-msp
    subscription: bundle
    connections:
      - {name: acme-itglue, kind: itglue, settings: {base_url: %q, page_size: 2}, secrets: {api_key: "${TEST_ITGLUE_KEY}"}}
`, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "apply", "-f", applyPath); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	var o fakeitglue.Options // its Faults type is internal to the connectors
	o.Faults.Throttle = map[int]string{2: ""}
	srv.SetFaults(o.Faults)
	var waits []time.Duration
	code, out, errOut := runCLIRecordingWaits(t, &waits, "customers", "import", "acme-itglue")
	if code != 0 || !strings.Contains(out, "IT Glue asked us to slow down: waiting 2 s, page 2 of customers of acme-itglue\n") ||
		!strings.Contains(out, "(customer import): succeeded") || !strings.Contains(out, "5 customers created") {
		t.Fatalf("throttled import: code %d\n%s%s", code, out, errOut)
	}
	if !slices.Equal(waits, []time.Duration{2 * time.Second}) {
		t.Errorf("waits %v, want [2s]", waits)
	}

	// Ctrl-C during a wait stops the run at once, after the pages it
	// committed, and keeps it for the same command to resume.
	o.Faults.Throttle = map[int]string{srv.RequestCount() + 2: "60"}
	srv.SetFaults(o.Faults)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	env := &cli{stdout: &stdout, stderr: &stderr, sleep: func(ctx context.Context, d time.Duration) error {
		cancel() // the technician presses Ctrl-C
		<-ctx.Done()
		return ctx.Err()
	}}
	code = runWith(ctx, env, []string{"customers", "import", "acme-itglue"})
	if code != 1 || !strings.Contains(stdout.String(), "waiting 60 s, page 2 of customers of acme-itglue") ||
		!strings.Contains(stdout.String(), "running (1 pages") || !strings.Contains(stdout.String(), "the same command resumes this run") ||
		!strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("Ctrl-C during a wait: code %d\n%s%s", code, stdout.String(), stderr.String())
	}
	// The same command resumes the run from where it stopped.
	code, out, errOut = runCLIRecordingWaits(t, &waits, "customers", "import", "acme-itglue")
	if code != 0 || !strings.Contains(out, "resuming run 2 of acme-itglue, which stopped after 1 pages") ||
		!strings.Contains(out, "run 2 of acme-itglue (customer import): succeeded (3 pages") || !strings.Contains(out, "5 customers unchanged") {
		t.Fatalf("resumed import: code %d\n%s%s", code, out, errOut)
	}

	// Every request throttled with a minute's Retry-After: past 90 s of
	// waits the run fails, saying why.
	t.Setenv("SELFSERVE_THROTTLE_WAIT_MAX", "90s")
	o.Faults.Throttle = map[int]string{}
	for n := srv.RequestCount() + 1; n < srv.RequestCount()+10; n++ {
		o.Faults.Throttle[n] = "60"
	}
	srv.SetFaults(o.Faults)
	waits = nil
	code, out, errOut = runCLIRecordingWaits(t, &waits, "customers", "import", "acme-itglue")
	if code != 1 || !strings.Contains(out, "waiting 60 s, page 1 of customers of acme-itglue") || !strings.Contains(errOut, "throttle_wait_max") ||
		!slices.Equal(waits, []time.Duration{time.Minute}) {
		t.Fatalf("endless throttling: code %d, waits %v\n%s%s", code, waits, out, errOut)
	}
}

// TestInlineImportWaitsOutGraphThrottling: `import --inline` of an Entra
// connection whose second page of users Graph throttles (with and without
// Retry-After) waits, says so, and imports every user.
func TestInlineImportWaitsOutGraphThrottling(t *testing.T) {
	for _, retryAfter := range []time.Duration{5 * time.Second, 0} {
		t.Run(retryAfter.String(), func(t *testing.T) {
			dir := useDatabase(t)
			srv := fakegraph.New(fakegraph.Options{Users: 30})
			defer srv.Close()
			applyGraph(t, dir, srv)
			srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users", After: 2, Status: 429, RetryAfter: retryAfter})
			var waits []time.Duration
			code, out, errOut := runCLIRecordingWaits(t, &waits, "import", "contoso-entra", "--inline")
			want := cmp.Or(retryAfter, 2*time.Second)
			if code != 0 || !strings.Contains(out, fmt.Sprintf("Microsoft Graph asked us to slow down: waiting %d s, page 2 of users of contoso-entra\n", want/time.Second)) ||
				!strings.Contains(out, ": succeeded (full, 3 pages") || !strings.Contains(out, "processed 30: created 30") {
				t.Fatalf("throttled import: code %d\n%s%s", code, out, errOut)
			}
			if !slices.Equal(waits, []time.Duration{want}) {
				t.Errorf("waits %v, want [%s]", waits, want)
			}
		})
	}
	t.Run("throttled past throttle_wait_max, then resumed", func(t *testing.T) {
		dir := useDatabase(t)
		srv := fakegraph.New(fakegraph.Options{Users: 30})
		defer srv.Close()
		applyGraph(t, dir, srv)
		t.Setenv("SELFSERVE_THROTTLE_WAIT_MAX", "90s")
		srv.InjectFault(fakegraph.Fault{Path: "/v1.0/users", After: 2, Status: 429, RetryAfter: time.Minute, Times: -1})
		var waits []time.Duration
		code, out, errOut := runCLIRecordingWaits(t, &waits, "import", "contoso-entra", "--inline")
		if code != 1 || !strings.Contains(errOut, "throttle_wait_max") || !slices.Equal(waits, []time.Duration{time.Minute}) ||
			!strings.Contains(out, ": running (full, 1 pages") || !strings.Contains(out, "the next import of contoso-entra resumes this run") {
			t.Fatalf("endless throttling: code %d, waits %v\n%s%s", code, waits, out, errOut)
		}
		srv.ClearFaults()
		code, out, errOut = runCLIRecordingWaits(t, &waits, "import", "contoso-entra", "--inline")
		if code != 0 || !strings.Contains(out, "resuming run 1 of contoso-entra") || !strings.Contains(out, "run 1 of contoso-entra: succeeded (full, 3 pages") ||
			!strings.Contains(out, "processed 30: created 30") {
			t.Fatalf("next import: code %d\n%s%s", code, out, errOut)
		}
	})
}

// applyGraph applies a tenant whose customer Contoso has the Entra
// connection contoso-entra to srv.
func applyGraph(t *testing.T, dir string, srv *fakegraph.Server) {
	t.Helper()
	ca, err := srv.WriteCAFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_GRAPH_SECRET", srv.ClientSecret())
	applyPath := filepath.Join(dir, "apply.yaml")
	if err := os.WriteFile(applyPath, []byte(fmt.Sprintf(`tenants:
  - name: acme-msp
    subscription: bundle
    customers:
      - name: Contoso
        default_region: GB
        connections:
          - name: contoso-entra
            kind: azure
            settings: {azure_tenant_id: %q, client_id: %q, graph_url: %q, authority_url: %q, ca_file: %q, page_size: 10}
            secrets: {client_secret: "${TEST_GRAPH_SECRET}"}
`, srv.TenantID(), srv.ClientID(), srv.GraphURL(), srv.AuthorityURL(), ca)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "apply", "-f", applyPath); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"selfserve/config"
	"selfserve/internal/store"
)

// runCLI runs the binary's entry point in-process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// useDatabase points the CLI at a fresh SQLite database and a key.
func useDatabase(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("SELFSERVE_DATABASE_URL", "sqlite:"+filepath.Join(dir, "cli.db"))
	t.Setenv("SELFSERVE_ENCRYPTION_KEY", config.GenerateEncryptionKey().Encoded())
	t.Setenv("SELFSERVE_LOG_LEVEL", "error")
	return dir
}

const applyFile = `tenants:
  - name: acme-msp
    subscription: bundle
    self_serve: true
    timezone: America/New_York
    logins:
      - {email: lead@acme-msp.example, role: super}
    customers:
      - name: Contoso
        timezone: Europe/London
        default_region: GB
        connections:
          - name: contoso-local
            kind: file
            enable_self_serve: true
            settings: {path: %CSV%}
`

func writeApply(t *testing.T, dir, body string) string {
	t.Helper()
	csv := filepath.Join(dir, "users.csv")
	if _, err := os.Stat(csv); err != nil {
		// apply checks that the file is there; tests write its rows later.
		if err := os.WriteFile(csv, []byte("username\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "apply.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "%CSV%", csv)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	dir := useDatabase(t)
	p := writeApply(t, dir, applyFile)
	code, out, errOut := runCLI(t, "apply", "-f", p)
	if code != 0 || !strings.Contains(out, "4 change(s) applied") {
		t.Fatalf("first apply: code %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "apply", "-f", p)
	if code != 0 || !strings.Contains(out, "nothing to change") || strings.Contains(out, "updated") {
		t.Fatalf("second apply: code %d\n%s%s", code, out, errOut)
	}
}

func TestApplyErrorsNameKeyAndLine(t *testing.T) {
	dir := useDatabase(t)
	cases := map[string]struct{ body, want string }{
		"unknown key":      {strings.Replace(applyFile, "    self_serve: true\n", "    self_serve: true\n    colour: blue\n", 1), `line 5: unknown key "colour" in a tenant`},
		"bad time zone":    {strings.Replace(applyFile, "Europe/London", "Europe/Londn", 1), `apply.yaml:10: tenants[0].customers[0].timezone: "Europe/Londn" is not an IANA time zone`},
		"duplicate name":   {strings.Replace(applyFile, "    customers:\n", "    customers:\n      - name: Contoso\n", 1), `customer "Contoso" is declared twice`},
		"bad role":         {strings.Replace(applyFile, "role: super", "role: admin", 1), `apply.yaml:7: tenants[0].logins[0].role: "admin" is not a role`},
		"unknown setting":  {strings.Replace(applyFile, "{path: %CSV%}", "{path: %CSV%, colour: red}", 1), `apply.yaml:16: tenants[0].customers[0].connections[0].settings.colour: unknown key "colour" (known settings: format, max_bytes, max_rows, page_size, path)`},
		"secret setting":   {strings.Replace(applyFile, "role: super}\n", "role: super}\n    connections:\n      - {name: docs, kind: hudu, settings: {base_url: \"https://acme.huducloud.com\", api_key: k}}\n", 1), `apply.yaml:9: tenants[0].connections[0].settings.api_key: api_key is a secret: put api_key under secrets`},
		"not a number":     {strings.Replace(applyFile, "    self_serve: true\n", "    self_serve: true\n    send_hour: nine\n", 1), `apply.yaml:5: tenants[0].send_hour: "nine" is not a whole number`},
		"missing file":     {strings.Replace(applyFile, "{path: %CSV%}", "{path: %CSV%.gone.csv}", 1), `apply.yaml:16: tenants[0].customers[0].connections[0].settings: not found: file `},
		"empty file":       {"# nothing yet\n", "the file is empty"},
		"missing env var":  {strings.Replace(applyFile, "settings: {path: %CSV%}", "settings: {path: %CSV%}\n            secrets: {api_key: \"${NOT_SET_ANYWHERE}\"}", 1), "NOT_SET_ANYWHERE, which is not set"},
		"bad region":       {strings.Replace(applyFile, "default_region: GB", "default_region: XX", 1), `"XX" is not a two-letter region`},
		"directory at top": {strings.Replace(applyFile, "    customers:\n", "    connections:\n      - {name: top, kind: file, settings: {path: x.csv}}\n    customers:\n", 1), "must be declared under a customer"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := writeApply(t, dir, tc.body)
			code, out, errOut := runCLI(t, "apply", "-f", p)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("code %d, stderr does not contain %q:\n%s%s", code, tc.want, out, errOut)
			}
		})
	}
	// Nothing was applied by any of the bad files.
	code, out, _ := runCLI(t, "users", "--json")
	if code != 0 || out != "" {
		t.Fatalf("a bad file left data behind: %q", out)
	}
	code, _, errOut := runCLI(t, "import", "contoso-local", "--inline")
	if code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("a bad file created a connection: %s", errOut)
	}
}

func TestImportUsersAndPreview(t *testing.T) {
	dir := useDatabase(t)
	p := writeApply(t, dir, applyFile)
	if code, out, errOut := runCLI(t, "apply", "-f", p); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	csv := "username,email,mobile,enabled,locked_out,password_last_set,password_expires_at\n" +
		"alice,alice@contoso.example,07400 123401,true,false,2026-11-01T09:00:00Z,2026-11-27T15:00:00Z\n" +
		"bob,bob@contoso.example,,notabool,false,,\n" +
		"carol,carol@contoso.example,,true,false,2026-11-01T09:00:00Z,\n"
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "import", "contoso-local", "--inline")
	if code != 0 || !strings.Contains(out, "created 2") || !strings.Contains(out, "row 3") || !strings.Contains(out, "notabool") {
		t.Fatalf("import: code %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "users", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("users --json: %d lines\n%s", len(lines), out)
	}
	var alice map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &alice); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"tenant", "customer", "connection", "external_id", "username", "upn", "email", "email_source", "mobile", "mobile_source",
		"enabled", "locked_out", "must_change_password", "password_never_expires", "password_last_set", "password_expires_at", "self_serve", "active", "status"} {
		if _, ok := alice[key]; !ok {
			t.Errorf("users --json lacks %q", key)
		}
	}
	if alice["mobile"] != "+447400123401" || alice["status"] != "registration_complete" || alice["active"] != true || alice["password_expires_at"] != "2026-11-27T15:00:00Z" {
		t.Errorf("alice: %v", alice)
	}
	code, out, errOut = runCLI(t, "preview", "--at", "2026-11-24T09:30:00Z", "--json")
	if code != 0 {
		t.Fatalf("preview: %s", errOut)
	}
	var due map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &due); err != nil {
		t.Fatalf("preview --json %q: %v", out, err)
	}
	if due["username"] != "alice" || due["kind"] != "expiry_reminder" || due["occasion"] != "2026-11-24" || due["days_left"] != float64(3) || due["tenant"] != "acme-msp" || due["customer"] != "Contoso" {
		t.Errorf("preview: %v", due)
	}
	if _, ok := due["channels"]; !ok {
		t.Error("preview lacks channels")
	}
	// Before the send hour (09:00 London = 09:00 UTC in November) nothing is due.
	_, out, _ = runCLI(t, "preview", "--at", "2026-11-24T08:30:00Z", "--json")
	if strings.TrimSpace(out) != "" {
		t.Errorf("preview before the send hour: %s", out)
	}
}

func TestTokenCreate(t *testing.T) {
	dir := useDatabase(t)
	if code, out, errOut := runCLI(t, "apply", "-f", writeApply(t, dir, applyFile)); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	code, out, errOut := runCLI(t, "token", "create", "--tenant", "acme-msp", "--email", "desk@acme-msp.example", "--role", "helpdesk", "--expires", "30d")
	if code != 0 || !strings.HasPrefix(out, "ss_") || !strings.Contains(errOut, "shown once") {
		t.Fatalf("token create: code %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "token", "create", "--tenant", "acme-msp", "--email", "x@acme-msp.example", "--role", "root")
	if code != 2 || !strings.Contains(errOut, `--role "root"`) {
		t.Fatalf("bad role: code %d %s", code, errOut)
	}
}

// A token never changes a role: a mismatch is an error and the role stays;
// login set-role changes it, audited with before and after.
func TestTokenNeverChangesARole(t *testing.T) {
	dir := useDatabase(t)
	if code, out, errOut := runCLI(t, "apply", "-f", writeApply(t, dir, applyFile)); code != 0 {
		t.Fatalf("apply: %s%s", out, errOut)
	}
	if code, out, errOut := runCLI(t, "token", "create", "--tenant", "acme-msp", "--email", "desk@acme-msp.example", "--role", "helpdesk"); code != 0 {
		t.Fatalf("token for a new helpdesk login: code %d %s%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "token", "create", "--tenant", "acme-msp", "--email", "desk@acme-msp.example", "--role", "super")
	if code != 2 || out != "" || !strings.Contains(errOut, "is a helpdesk, not a super") || !strings.Contains(errOut, "login set-role") {
		t.Fatalf("role mismatch: code %d %s%s", code, out, errOut)
	}
	role := func() store.Role {
		t.Helper()
		st, err := store.Open(context.Background(), os.Getenv("SELFSERVE_DATABASE_URL"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		tn, err := st.TenantByName(context.Background(), "acme-msp")
		if err != nil {
			t.Fatal(err)
		}
		l, err := st.LoginByEmail(context.Background(), tn.ID, "desk@acme-msp.example")
		if err != nil {
			t.Fatal(err)
		}
		return l.Role
	}
	if r := role(); r != store.RoleHelpdesk {
		t.Fatalf("role after a refused token: %s", r)
	}
	// Without --role, an existing login gets a token of its own role.
	if code, out, errOut := runCLI(t, "token", "create", "--tenant", "acme-msp", "--email", "desk@acme-msp.example"); code != 0 || !strings.Contains(errOut, "(helpdesk)") {
		t.Fatalf("token without --role: code %d %s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "token", "create", "--tenant", "acme-msp", "--email", "new@acme-msp.example"); code != 2 || !strings.Contains(errOut, "give --role") {
		t.Fatalf("new login without --role: code %d %s", code, errOut)
	}

	if code, out, errOut := runCLI(t, "login", "set-role", "--tenant", "acme-msp", "--email", "desk@acme-msp.example", "--role", "engineer"); code != 0 || !strings.Contains(out, "helpdesk → engineer") {
		t.Fatalf("set-role: code %d %s%s", code, out, errOut)
	}
	if r := role(); r != store.RoleEngineer {
		t.Fatalf("role after set-role: %s", r)
	}
	st, err := store.Open(context.Background(), os.Getenv("SELFSERVE_DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tn, err := st.TenantByName(context.Background(), "acme-msp")
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.AuditLog(context.Background(), tn.ID, store.AuditFilter{Action: "login.role_changed", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || !strings.Contains(es[0].Before, `"helpdesk"`) || !strings.Contains(es[0].After, `"engineer"`) {
		t.Fatalf("role change audit: %+v", es)
	}
	if code, _, errOut := runCLI(t, "login", "set-role", "--tenant", "acme-msp", "--email", "nobody@acme-msp.example", "--role", "engineer"); code == 0 || !strings.Contains(errOut, "nobody@acme-msp.example") {
		t.Fatalf("set-role of an unknown login: code %d %s", code, errOut)
	}
	// The tenant's last super login keeps its role until another is super.
	if code, out, errOut := runCLI(t, "login", "set-role", "--tenant", "acme-msp", "--email", "lead@acme-msp.example", "--role", "primary"); code == 0 || out != "" ||
		!strings.Contains(errOut, "a tenant keeps at least one super login: promote another first") {
		t.Fatalf("demoting the last super: code %d %s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "login", "set-role", "--tenant", "acme-msp", "--email", "desk@acme-msp.example", "--role", "super"); code != 0 {
		t.Fatalf("promoting another: code %d %s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "login", "set-role", "--tenant", "acme-msp", "--email", "lead@acme-msp.example", "--role", "primary"); code != 0 {
		t.Fatalf("demoting a super once another is: code %d %s%s", code, out, errOut)
	}
}

func TestDemoOnce(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SELFSERVE_DATABASE_URL", "")
	t.Setenv("SELFSERVE_ENCRYPTION_KEY", "")
	code, out, errOut := runCLI(t, "demo", "--once", "--dir", dir, "--examples", "../../examples")
	if code != 0 {
		t.Fatalf("demo: code %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"Registration Complete", "Incomplete", "Welcome Email Sent", "Accessed Self-Serve", "notices due today", "expiry_reminder"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "encryption.key")); err != nil {
		t.Errorf("demo kept no key: %v", err)
	}
	// A second run reuses the database and key and changes nothing.
	code, out, errOut = runCLI(t, "demo", "--once", "--dir", dir, "--examples", "../../examples")
	if code != 0 || strings.Contains(out, " created\n") {
		t.Fatalf("second demo: code %d\n%s%s", code, out, errOut)
	}
}

func TestFlagsAnywhere(t *testing.T) {
	fs := flags(&cli{stderr: &bytes.Buffer{}}, "import", "")
	tenant := fs.String("tenant", "", "")
	inline := fs.Bool("inline", false, "")
	if err := parse(fs, []string{"conn-a", "--tenant", "acme", "--inline"}); err != nil {
		t.Fatal(err)
	}
	if fs.NArg() != 1 || fs.Arg(0) != "conn-a" || *tenant != "acme" || !*inline {
		t.Fatalf("args %v tenant %q inline %v", fs.Args(), *tenant, *inline)
	}
}

func TestFlagsAfterDoubleDashArePositional(t *testing.T) {
	fs := flags(&cli{stderr: &bytes.Buffer{}}, "import", "")
	tenant := fs.String("tenant", "", "")
	if err := parse(fs, []string{"--tenant", "acme", "--", "-odd-name", "--tenant"}); err != nil {
		t.Fatal(err)
	}
	if *tenant != "acme" || strings.Join(fs.Args(), " ") != "-odd-name --tenant" {
		t.Fatalf("args %q tenant %q", fs.Args(), *tenant)
	}
}

// TestHelpAndDispatch: --help groups the commands by what they work on (the
// local database, the remote API, service roles, on their own); nested
// commands are dispatched from the table, and an unknown or missing one is
// a usage error (exit 2) listing the group's commands; `version` prints the
// binary's version.
func TestHelpAndDispatch(t *testing.T) {
	code, _, _ := runCLI(t, "--help")
	if code != 2 { // the flag package's -h/--help on the global flags
		t.Fatalf("--help: exit %d", code)
	}
	code, out, _ := runCLI(t, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	local := strings.Index(out, "commands on the local database")
	remote := strings.Index(out, "commands through the remote admin API")
	roles := strings.Index(out, "commands service roles")
	own := strings.Index(out, "commands on their own")
	if local < 0 || remote < local || roles < remote || own < roles {
		t.Fatalf("help does not group the commands by reach:\n%s", out)
	}
	for name, section := range map[string][2]int{
		"  users ": {local, remote}, "  login invite|set-role ": {local, remote}, "  import ": {remote, roles}, "  settings ": {remote, roles},
		"  serve ": {roles, own}, "  agent enrol|configure": {own, len(out)}, "  version ": {own, len(out)},
	} {
		if i := strings.Index(out, name); i < section[0] || i > section[1] {
			t.Errorf("help lists %q in the wrong section:\n%s", name, out)
		}
	}

	code, out, _ = runCLI(t, "login", "-h")
	if code != 0 || !strings.Contains(out, "selfserve login invite --tenant T --email E") || !strings.Contains(out, "selfserve login set-role") {
		t.Errorf("login -h: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"login"}, {"login", "promote"}, {"agent", "fly"}, {"token"}} {
		code, _, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, "usage:\n  selfserve "+args[0]+" ") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, code, errOut)
		}
	}
	code, _, errOut := runCLI(t, "agent", "status", "--state", t.TempDir())
	if code != 1 || strings.Contains(errOut, "usage") {
		t.Errorf("agent status of an empty state folder: exit %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "agent", "enroll", "--code", "x")
	if code != 2 || !strings.Contains(errOut, "--server and --code are required") {
		t.Errorf("agent enroll (the alias) without --server: exit %d %s", code, errOut)
	}

	code, out, _ = runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "selfserve ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: exit %d %q", code, out)
	}
	version = "v9.8.7"
	defer func() { version = "" }()
	if _, out, _ = runCLI(t, "version"); !strings.HasPrefix(out, "selfserve v9.8.7 (") {
		t.Errorf("version set by -ldflags: %q", out)
	}
}

package apply_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"selfserve/connectors/shipped"
	"selfserve/internal/apply"
)

// validate parses and validates body, returning the error text ("" when
// the file is valid).
func validate(t *testing.T, body string) string {
	t.Helper()
	f, err := apply.Parse("apply.yaml", []byte(body))
	if err == nil {
		err = f.Validate(apply.Options{Registry: shipped.Registry(), AllowedPSAHosts: []string{"psa.acme.example"},
			Env: func(string) (string, bool) { return "from-env", true }})
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

const base = `tenants:
  - name: acme
    connections:
%s
    customers:
      - name: Contoso
        default_region: GB
        connections:
%s
`

// TestConnectionsCheckedByTheirConnector: apply refuses a connection that
// can never work, with the connector's own words, naming the key and its
// line, without contacting anything.
func TestConnectionsCheckedByTheirConnector(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(csv, []byte("username\nalice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ad := func(settings string) string {
		return "          - name: contoso-ad\n            kind: ad\n            settings: " + settings + "\n            secrets: {bind_dn: svc@corp.example, bind_password: \"${PW}\"}"
	}
	const noTop = "      []"
	cases := []struct {
		name, top, customer string
		want                []string // "" = valid
	}{
		{"valid", "      - {name: psa, kind: itglue, settings: {region: eu}, secrets: {api_key: k}}",
			ad(`{url: "ldaps://dc1.corp.example", base_dn: "DC=corp,DC=example"}`) + "\n          - {name: local, kind: file, settings: {path: " + csv + "}}", nil},
		{"plain ldap", noTop, ad(`{url: "ldap://dc1.corp.example", base_dn: "DC=corp,DC=example"}`),
			[]string{"apply.yaml:11: tenants[0].customers[0].connections[0].settings: url \"ldap://dc1.corp.example\" is plain LDAP", "start_tls"}},
		{"missing file", noTop, "          - {name: local, kind: file, settings: {path: " + csv + ".gone.csv}}",
			[]string{"apply.yaml:9: tenants[0].customers[0].connections[0].settings:", "does not exist"}},
		{"PSA under a customer", noTop, "          - {name: psa, kind: hudu, settings: {base_url: \"https://acme.huducloud.com\"}, secrets: {api_key: k}}",
			[]string{"apply.yaml:9: tenants[0].customers[0].connections[0].kind:", "serves the whole tenant"}},
		{"secret under settings", noTop, ad(`{url: "ldaps://dc1.corp.example", base_dn: "DC=corp,DC=example",
              bind_password: hunter2}`),
			[]string{"apply.yaml:12: tenants[0].customers[0].connections[0].settings.bind_password: bind_password is a secret: put bind_password under secrets"}},
		{"unknown secret", "      - {name: psa, kind: itglue, settings: {region: eu}, secrets: {api_kee: k}}", "          []",
			[]string{"apply.yaml:4: tenants[0].connections[0].secrets.api_kee:", "known secrets: api_key"}},
		{"host not allowed", "      - {name: psa, kind: hudu, settings: {base_url: \"https://docs.evil.example\"}, secrets: {api_key: k}}", "          []",
			[]string{"apply.yaml:4: tenants[0].connections[0].settings.base_url:", "SELFSERVE_ALLOWED_PSA_HOSTS"}},
		{"host allowed", "      - {name: psa, kind: connectwise, settings: {site: psa.acme.example, company_id: acme, client_id: c}, secrets: {public_key: a, private_key: b}}", "          []", nil},
	}
	for _, c := range cases {
		got := validate(t, strings.Replace(strings.Replace(base, "%s", c.top, 1), "%s", c.customer, 1))
		if c.want == nil {
			if got != "" {
				t.Errorf("%s: %s", c.name, got)
			}
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q does not contain %q", c.name, got, w)
			}
		}
		if strings.Contains(got, "hunter2") {
			t.Errorf("%s: the error shows a secret: %s", c.name, got)
		}
	}
}

// TestTypeErrorsNameTheKeyPath: a value of the wrong type names its key
// path and line; an empty file says so.
func TestTypeErrorsNameTheKeyPath(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"send hour":     {"tenants:\n  - name: acme\n    send_hour: nine\n", `apply.yaml:3: tenants[0].send_hour: "nine" is not a whole number`},
		"self serve":    {"tenants:\n  - name: acme\n    self_serve: maybe\n", `apply.yaml:3: tenants[0].self_serve: "maybe" is not true or false`},
		"logins a map":  {"tenants:\n  - name: acme\n    logins: {email: a@b.example}\n", `apply.yaml:3: tenants[0].logins: a mapping is not a list`},
		"flow mapping":  {"tenants:\n  - name: acme\n    customers:\n      - {name: Contoso, connections: [{name: x, kind: file, enable_self_serve: sometimes}]}\n", `apply.yaml:4: tenants[0].customers[0].connections[0].enable_self_serve: "sometimes" is not true or false`},
		"top level":     {"- tenants\n", "apply.yaml:1: the file's top level: a list is not a mapping"},
		"empty":         {"", "apply.yaml: the file is empty: it declares no tenants"},
		"only comments": {"# nothing yet\n", "apply.yaml: the file is empty: it declares no tenants"},
	}
	for name, c := range cases {
		_, err := apply.Parse("apply.yaml", []byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// TestVerificationSetting: a tenant's verification is sms or sms+email; any
// other value is refused naming the key.
func TestVerificationSetting(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]string{"sms": "", "sms+email": "", "fax": `tenants[0].verification`} {
		got := validate(t, "tenants:\n  - name: acme\n    verification: "+value+"\n")
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("verification %s: %q", value, got)
		}
	}
}

// TestPrivilegedSettings: privileged_self_serve takes deny or two_factors;
// an AD connection's privileged_groups entry must be a DN. Each refusal
// names its key.
func TestPrivilegedSettings(t *testing.T) {
	ok := "tenants:\n  - name: acme\n    privileged_self_serve: two_factors\n"
	if got := validate(t, ok); got != "" {
		t.Errorf("two_factors: %s", got)
	}
	if got := validate(t, "tenants:\n  - name: acme\n    privileged_self_serve: allow\n"); !strings.Contains(got, "tenants[0].privileged_self_serve") || !strings.Contains(got, "deny or two_factors") {
		t.Errorf("allow: %q", got)
	}
	ad := `          - name: contoso-ad
            kind: ad
            settings: {url: "ldaps://dc1.contoso.example", base_dn: "DC=contoso,DC=example", privileged_groups: ["Tier 0 Admins"]}
            secrets: {bind_dn: "svc@contoso.example", bind_password: "x"}`
	if got := validate(t, strings.Replace(strings.Replace(base, "%s", "", 1), "%s", ad, 1)); !strings.Contains(got, "privileged_groups") || !strings.Contains(got, "Tier 0 Admins") {
		t.Errorf("privileged_groups entry not a DN: %q", got)
	}
}

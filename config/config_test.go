package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"selfserve/internal/dburl"
	"selfserve/internal/notify"

	"gopkg.in/yaml.v3"
)

// envMap returns an environment lookup over m, as Load expects.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "selfserve.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// validKey is the base64 of 32 bytes 0x00..0x1f.
var validKey = func() string {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	return base64.StdEncoding.EncodeToString(raw)
}()

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load("", envMap(nil))
	if err != nil {
		t.Fatalf("Load with nothing set: %v", err)
	}
	want := Default()
	want.SMTP.Port = 587
	if fmt.Sprintf("%#v", c) != fmt.Sprintf("%#v", want) {
		t.Errorf("Load() = %#v\nwant     %#v", c, want)
	}
	checks := []struct{ name, got, want string }{
		{"database_url", c.DatabaseURL.Reveal(), "sqlite:selfserve.db"},
		{"redis_url", c.RedisURL.Reveal(), "embedded"},
		{"admin_addr", c.AdminAddr, "127.0.0.1:8080"},
		{"log_level", c.LogLevel, "info"},
		{"log_format", c.LogFormat, "json"},
		{"outbox", c.OutboxDir, ""},
		{"smtp.tls", string(c.SMTP.TLS), "starttls"},
		{"sms.base_url", c.SMS.BaseURL, "https://api.twilio.com"},
		{"throttle_wait_max", c.ThrottleWaitMax.String(), "10m0s"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.MaxRemovalShare != 0.3 {
		t.Errorf("max_removal_share = %v, want 0.3", c.MaxRemovalShare)
	}
	if c.EncryptionKey.IsSet() {
		t.Error("an encryption key is set by default")
	}
	if _, err := c.EncryptionKey.Bytes(); !errors.Is(err, ErrNoEncryptionKey) {
		t.Errorf("Bytes() of the unset key: %v, want ErrNoEncryptionKey", err)
	}
	if c.SMTP.Enabled() || c.SMS.Enabled() {
		t.Error("email or SMS enabled by default")
	}
	d, path, err := c.Dialect()
	if err != nil || d != dburl.SQLite || path != "selfserve.db" {
		t.Errorf("Dialect() = %q, %q, %v; want sqlite, selfserve.db", d, path, err)
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestFileThenEnv(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `# selfserve configuration
database_url: postgres://selfserve:file-db-pass@db.internal:5432/selfserve?sslmode=require
redis_url: redis://:file-redis-pass@redis.internal:6379/2
encryption_key: `+validKey+`
admin_addr: 0.0.0.0:9000
log_level: debug
log_format: text
outbox: /var/spool/selfserve
public_url: https://reset.acme-msp.example
max_removal_share: 0.5
throttle_wait_max: 90s
smtp:
  host: smtp.acme-msp.example
  tls: tls
  username: selfserve
  password: file-smtp-pass
  from: Password reminders <noreply@acme-msp.example>
sms:
  account_sid: AC0123456789abcdef0123456789abcdef
  auth_token: file-sms-token
  from: "+12025550100"
`)
	c, err := Load(path, envMap(map[string]string{
		"SELFSERVE_ADMIN_ADDR":        "127.0.0.1:9100",
		"SELFSERVE_LOG_LEVEL":         "warn",
		"SELFSERVE_SMTP_PASSWORD":     "env-smtp-pass",
		"SELFSERVE_MAX_REMOVAL_SHARE": "0",
		"SELFSERVE_OUTBOX":            "", // empty counts as unset
		"SELFSERVE_SMS_BASE_URL":      "http://127.0.0.1:4010",
		"SELFSERVE_UNRELATED":         "ignored",
		"SELFSERVE_ALLOWED_PSA_HOSTS": " 127.0.0.1, *.acme-msp.example,,",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"database_url (file)", c.DatabaseURL.Reveal(), "postgres://selfserve:file-db-pass@db.internal:5432/selfserve?sslmode=require"},
		{"redis_url (file)", c.RedisURL.Reveal(), "redis://:file-redis-pass@redis.internal:6379/2"},
		{"admin_addr (env)", c.AdminAddr, "127.0.0.1:9100"},
		{"log_level (env)", c.LogLevel, "warn"},
		{"throttle_wait_max (file)", c.ThrottleWaitMax.String(), "1m30s"},
		{"log_format (file)", c.LogFormat, "text"},
		{"outbox (file; empty env ignored)", c.OutboxDir, "/var/spool/selfserve"},
		{"public_url (file)", c.PublicURL, "https://reset.acme-msp.example"},
		{"smtp.password (env)", c.SMTP.Password.Reveal(), "env-smtp-pass"},
		{"smtp.username (file)", c.SMTP.Username, "selfserve"},
		{"smtp.address (port from tls mode)", c.SMTP.Address(), "smtp.acme-msp.example:465"},
		{"sms.base_url (env)", c.SMS.BaseURL, "http://127.0.0.1:4010"},
		{"sms.auth_token (file)", c.SMS.AuthToken.Reveal(), "file-sms-token"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if fmt.Sprint(c.AllowedPSAHosts) != "[127.0.0.1 *.acme-msp.example]" {
		t.Errorf("allowed_psa_hosts = %q", c.AllowedPSAHosts)
	}
	if c.SMTP.Port != 465 {
		t.Errorf("smtp.port = %d, want 465 (the default of tls mode)", c.SMTP.Port)
	}
	if c.MaxRemovalShare != 0 {
		t.Errorf("max_removal_share = %v, want 0 from the environment", c.MaxRemovalShare)
	}
	if c.SlogLevel() != slog.LevelWarn {
		t.Errorf("SlogLevel() = %v", c.SlogLevel())
	}
	key, err := c.EncryptionKey.Bytes()
	if err != nil || len(key) != 32 || key[31] != 31 {
		t.Errorf("EncryptionKey.Bytes() = %v, %v", key, err)
	}
	d, dsn, err := c.Dialect()
	if err != nil || d != dburl.Postgres || dsn != c.DatabaseURL.Reveal() {
		t.Errorf("Dialect() = %q, %q, %v", d, dsn, err)
	}
}

func TestEnvOverridesEveryField(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	for _, v := range envVars {
		env[v.name] = "x" // any non-empty value reaches the field or errors
	}
	for name := range env {
		if !strings.HasPrefix(name, "SELFSERVE_") {
			t.Errorf("environment variable %s lacks the SELFSERVE_ prefix", name)
		}
	}
	// Every field with a YAML key has an environment variable.
	for _, typ := range []string{"config.Config", "config.SMTP", "config.SMS"} {
		section, keys := knownKeys(typ)
		for _, k := range keys {
			if section != "" {
				k = section + "." + k
			}
			if k == "smtp" || k == "sms" {
				continue
			}
			if envName(k) == "" {
				t.Errorf("YAML key %s has no environment variable", k)
			}
		}
	}
}

func TestUnknownKeyNamesKeyAndLine(t *testing.T) {
	t.Parallel()
	path := writeFile(t, `database_url: sqlite:x.db
admin_addr: 127.0.0.1:8080
databse_url: postgres://oops
smtp:
  host: smtp.example.com
  hots: smtp.example.com
`)
	_, err := Load(path, envMap(nil))
	if err == nil {
		t.Fatal("Load accepted unknown keys")
	}
	msg := err.Error()
	for _, want := range []string{
		path + `: line 3: unknown key "databse_url"`,
		`known keys: database_url,`,
		path + `: line 6: unknown key "smtp.hots" (known keys in smtp: host, port, username, password, from, tls)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q\ndoes not contain %q", msg, want)
		}
	}
}

func TestFileErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, content, want string
	}{
		{"syntax", "database_url: sqlite:x.db\n  admin_addr: [\n", "line 2"},
		{"wrong type", "smtp:\n  port: five\n", "line 2: cannot unmarshal !!str `five` into int"},
		{"key not a string", "encryption_key: [1, 2]\n", "line 1: encryption_key must be a string"},
		{"duplicate key", "log_level: info\nlog_level: debug\n", `line 2: mapping key "log_level" already defined at line 1`},
		{"two documents", "log_level: info\n---\nlog_level: debug\n", "line 2: a second YAML document starts here"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tc.content)
			_, err := Load(path, envMap(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v\nwant one naming %s and containing %q", err, path, tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), envMap(nil))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %v does not wrap os.ErrNotExist", err)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		t.Parallel()
		if _, err := Load(writeFile(t, "# nothing here\n"), envMap(nil)); err != nil {
			t.Errorf("empty file: %v", err)
		}
	})
}

func TestInvalidValues(t *testing.T) {
	t.Parallel()
	shortKey := base64.StdEncoding.EncodeToString(make([]byte, 16))
	cases := []struct {
		name string
		env  map[string]string
		key  string // the YAML key the error names
		want string
	}{
		{"database scheme", map[string]string{"SELFSERVE_DATABASE_URL": "mysql://root:pw@db/x"}, "database_url", `scheme "mysql" is not supported`},
		{"database not a URL", map[string]string{"SELFSERVE_DATABASE_URL": "selfserve.db"}, "database_url", "not a database URL"},
		{"sqlite without path", map[string]string{"SELFSERVE_DATABASE_URL": "sqlite:"}, "database_url", "needs a file path"},
		{"postgres bad escape", map[string]string{"SELFSERVE_DATABASE_URL": "postgres://u:p%zz@db/x"}, "database_url", "percent-encode"},
		{"redis scheme", map[string]string{"SELFSERVE_REDIS_URL": "http://redis:6379"}, "redis_url", `scheme "http" is not supported`},
		{"redis without host", map[string]string{"SELFSERVE_REDIS_URL": "redis:///0"}, "redis_url", "no host"},
		{"redis bad db", map[string]string{"SELFSERVE_REDIS_URL": "redis://redis:6379/zero"}, "redis_url", `database "zero" in the path is not a number`},
		{"redis bad port", map[string]string{"SELFSERVE_REDIS_URL": "redis://redis:99999/0"}, "redis_url", "port 99999 is out of range"},
		{"key not base64", map[string]string{"SELFSERVE_ENCRYPTION_KEY": "not*base64*at*all"}, "encryption_key", "not base64"},
		{"key 16 bytes", map[string]string{"SELFSERVE_ENCRYPTION_KEY": shortKey}, "encryption_key", "decodes to 16 bytes, it must be exactly 32"},
		{"admin addr without port", map[string]string{"SELFSERVE_ADMIN_ADDR": "localhost"}, "admin_addr", "is not host:port"},
		{"admin port out of range", map[string]string{"SELFSERVE_ADMIN_ADDR": "127.0.0.1:70000"}, "admin_addr", "port 70000 is out of range"},
		{"admin port not a number", map[string]string{"SELFSERVE_ADMIN_ADDR": "127.0.0.1:http"}, "admin_addr", `port "http" is not a number`},
		{"log level", map[string]string{"SELFSERVE_LOG_LEVEL": "verbose"}, "log_level", `"verbose" is not a log level`},
		{"log format", map[string]string{"SELFSERVE_LOG_FORMAT": "xml"}, "log_format", `"xml" is not a log format`},
		{"ops token short", map[string]string{"SELFSERVE_OPS_TOKEN": "hunter2"}, "ops_token", "too short (7 characters)"},
		{"public URL relative", map[string]string{"SELFSERVE_PUBLIC_URL": "/reset"}, "public_url", "not an absolute http:// or https:// URL"},
		{"old self-serve URL", map[string]string{"SELFSERVE_SELF_SERVE_URL": "https://x.example"}, "self_serve_url", "replaced by SELFSERVE_PUBLIC_URL"},
		{"trusted proxy", map[string]string{"SELFSERVE_TRUSTED_PROXIES": "10.0.0.0/8, nonsense"}, "trusted_proxies", `"nonsense" is not an address`},
		{"share above 1", map[string]string{"SELFSERVE_MAX_REMOVAL_SHARE": "1.5"}, "max_removal_share", "1.5 is out of range"},
		{"share negative", map[string]string{"SELFSERVE_MAX_REMOVAL_SHARE": "-0.1"}, "max_removal_share", "-0.1 is out of range"},
		{"share NaN", map[string]string{"SELFSERVE_MAX_REMOVAL_SHARE": "NaN"}, "max_removal_share", "NaN is out of range"},
		{"share not a number", map[string]string{"SELFSERVE_MAX_REMOVAL_SHARE": "30%"}, "max_removal_share", `"30%" is not a number`},
		{"throttle wait not a duration", map[string]string{"SELFSERVE_THROTTLE_WAIT_MAX": "10"}, "throttle_wait_max", `"10" is not a duration`},
		{"throttle wait negative", map[string]string{"SELFSERVE_THROTTLE_WAIT_MAX": "-1m"}, "throttle_wait_max", "-1m0s is negative"},
		{"smtp port out of range", map[string]string{"SELFSERVE_SMTP_HOST": "smtp.example.com", "SELFSERVE_SMTP_FROM": "a@example.com", "SELFSERVE_SMTP_PORT": "65536"}, "smtp.port", "65536 is out of range"},
		{"smtp port not a number", map[string]string{"SELFSERVE_SMTP_PORT": "smtp"}, "smtp.port", `"smtp" is not a port number`},
		{"smtp tls mode", map[string]string{"SELFSERVE_SMTP_TLS": "ssl"}, "smtp.tls", `"ssl" is not a TLS mode`},
		{"smtp host with port", map[string]string{"SELFSERVE_SMTP_HOST": "smtp.example.com:25", "SELFSERVE_SMTP_FROM": "a@example.com"}, "smtp.host", "host name only"},
		{"smtp from missing", map[string]string{"SELFSERVE_SMTP_HOST": "smtp.example.com"}, "smtp.from", "required when smtp.host is set"},
		{"smtp from invalid", map[string]string{"SELFSERVE_SMTP_HOST": "smtp.example.com", "SELFSERVE_SMTP_FROM": "noreply"}, "smtp.from", `"noreply" is not an email address`},
		{"smtp password without host", map[string]string{"SELFSERVE_SMTP_PASSWORD": "pw"}, "smtp.password", "smtp.host is not"},
		{"smtp password without username", map[string]string{"SELFSERVE_SMTP_HOST": "smtp.example.com", "SELFSERVE_SMTP_FROM": "a@example.com", "SELFSERVE_SMTP_PASSWORD": "pw"}, "smtp.username", "required when smtp.password is set"},
		{"sms token missing", map[string]string{"SELFSERVE_SMS_ACCOUNT_SID": "AC1", "SELFSERVE_SMS_FROM": "+12025550100"}, "sms.auth_token", "required when sms.account_sid is set"},
		{"sms from missing", map[string]string{"SELFSERVE_SMS_ACCOUNT_SID": "AC1", "SELFSERVE_SMS_AUTH_TOKEN": "tok"}, "sms.from", "required when sms.account_sid is set"},
		{"sms token without sid", map[string]string{"SELFSERVE_SMS_AUTH_TOKEN": "tok"}, "sms.auth_token", "sms.account_sid is not"},
		{"sms plain http", map[string]string{"SELFSERVE_SMS_BASE_URL": "http://api.twilio.com"}, "sms.base_url", "plain http"},
		{"sms base not a URL", map[string]string{"SELFSERVE_SMS_BASE_URL": "api.twilio.com"}, "sms.base_url", "not an absolute"},
		{"allowed PSA host with scheme", map[string]string{"SELFSERVE_ALLOWED_PSA_HOSTS": "docs.acme.example, https://psa.acme.example"}, "allowed_psa_hosts", "no scheme, port or path"},
		{"allowed PSA hosts a whole TLD", map[string]string{"SELFSERVE_ALLOWED_PSA_HOSTS": "*.com"}, "allowed_psa_hosts", "whole top-level domain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("", envMap(tc.env))
			if err == nil {
				t.Fatal("Load accepted it")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			errs := leaves(err)
			if len(errs) != 1 {
				t.Errorf("want exactly one problem, got %d:\n%v", len(errs), err)
			}
			msg := err.Error()
			prefix := tc.key + " (" + envName(tc.key) + "): "
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to start with %q and contain %q", msg, prefix, tc.want)
			}
		})
	}
}

// leaves flattens an errors.Join tree into its leaf errors.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

func TestEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "log_format: xml\nmax_removal_share: 2\nsmtp:\n  port: 0\n  tls: ssl\n")
	_, err := Load(path, envMap(map[string]string{
		"SELFSERVE_DATABASE_URL":   "mysql://x",
		"SELFSERVE_REDIS_URL":      "memcached://x",
		"SELFSERVE_ENCRYPTION_KEY": "short",
		"SELFSERVE_ADMIN_ADDR":     ":99999",
		"SELFSERVE_LOG_LEVEL":      "loud",
		"SELFSERVE_SMTP_PORT":      "abc", // an environment parse error joins the validation errors
	}))
	if err == nil {
		t.Fatal("Load accepted an invalid configuration")
	}
	got := map[string]bool{}
	for _, e := range leaves(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Errorf("problem %v is not a *FieldError", e)
			continue
		}
		got[fe.Key] = true
	}
	for _, key := range []string{"database_url", "redis_url", "encryption_key", "admin_addr", "log_level", "log_format", "max_removal_share", "smtp.port", "smtp.tls"} {
		if !got[key] {
			t.Errorf("no problem reported for %s in:\n%v", key, err)
		}
	}

	c := &Config{}
	if n := len(leaves(c.Validate())); n < 6 {
		t.Errorf("the zero Config gave %d problems, want one per required field:\n%v", n, c.Validate())
	}
}

func TestEncryptionKey(t *testing.T) {
	t.Parallel()
	k := GenerateEncryptionKey()
	raw, err := k.Bytes()
	if err != nil || len(raw) != KeySize {
		t.Fatalf("generated key: %d bytes, %v", len(raw), err)
	}
	if k2 := GenerateEncryptionKey(); k2.Encoded() == k.Encoded() {
		t.Error("two generated keys are equal")
	}
	parsed, err := ParseEncryptionKey(k.Encoded() + "\n")
	if err != nil {
		t.Fatalf("ParseEncryptionKey(Encoded()): %v", err)
	}
	if raw2, _ := parsed.Bytes(); !bytes.Equal(raw, raw2) {
		t.Error("the key changed through Encoded and ParseEncryptionKey")
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if _, err := ParseEncryptionKey(enc.EncodeToString(raw)); err != nil {
			t.Errorf("%v", err)
		}
	}
	for _, bad := range []string{"", "   ", "!!!!", base64.StdEncoding.EncodeToString(make([]byte, 33))} {
		_, err := ParseEncryptionKey(bad)
		if err == nil {
			t.Errorf("ParseEncryptionKey(%q) accepted it", bad)
			continue
		}
		if !errors.Is(err, ErrBadEncryptionKey) && !errors.Is(err, ErrNoEncryptionKey) {
			t.Errorf("ParseEncryptionKey(%q): %v wraps neither sentinel", bad, err)
		}
	}
}

func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	secrets := []string{"db-pass-4f2a", "query-pass-77c1", "redis-pass-9b3e", "ops-token-1234567890abcdef", "smtp-pass-c0ffee", "sms-token-d00d"}
	key := GenerateEncryptionKey()
	secrets = append(secrets, key.Encoded())
	c := Default()
	c.DatabaseURL = "postgres://selfserve:db-pass-4f2a@db:5432/selfserve?sslpassword=query-pass-77c1"
	c.RedisURL = "rediss://default:redis-pass-9b3e@redis:6380/0"
	c.EncryptionKey = key
	c.OpsToken = "ops-token-1234567890abcdef"
	c.SMTP = SMTP{Host: "smtp.example.com", Port: 587, Username: "u", Password: "smtp-pass-c0ffee", From: "a@example.com", TLS: notify.TLSStartTLS}
	c.SMS = SMS{BaseURL: "https://api.twilio.com", AccountSID: "AC1", AuthToken: "sms-token-d00d", From: "+12025550100"}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		fmt.Fprintf(&out, verb+"\n", c)
		fmt.Fprintf(&out, verb+"\n", *c)
		fmt.Fprintf(&out, verb+"\n", c.SMTP)
	}
	for _, h := range []slog.Handler{slog.NewJSONHandler(&out, nil), slog.NewTextHandler(&out, nil)} {
		l := slog.New(h)
		l.Info("config", "config", c, "smtp", c.SMTP, "sms", c.SMS, "key", c.EncryptionKey, "db", c.DatabaseURL)
		l.Info("config value", "config", *c)
	}
	c.NewLogger(&out).Info("starting", "config", c)
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(j)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(y)

	text := out.String()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("secret %q appears in the output:\n%s", s, text)
		}
	}
	for _, want := range []string{"[redacted]", "postgres://selfserve:xxxxx@db:5432/selfserve", "rediss://default:xxxxx@redis:6380/0", "smtp.example.com"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}

	// Errors about secret values do not quote them either.
	bad := *c
	bad.DatabaseURL = "mysql://root:db-pass-4f2a@db/x"
	bad.EncryptionKey = EncryptionKey{text: "db-pass-4f2a"}
	bad.OpsToken = "db-pass-4f2a"
	if err := bad.Validate(); err == nil || strings.Contains(err.Error(), "db-pass-4f2a") {
		t.Errorf("Validate error quotes a secret or is nil: %v", err)
	}
	if _, err := Load("", envMap(map[string]string{"SELFSERVE_DATABASE_URL": "postgres://u:db-pass-4f2a%zz@db/x"})); err == nil || strings.Contains(err.Error(), "db-pass-4f2a") {
		t.Errorf("Load error quotes a secret or is nil: %v", err)
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := Default()
	c.LogFormat = "text"
	c.LogLevel = "warn"
	l := c.NewLogger(&buf)
	l.Info("hidden")
	l.Warn("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "level=WARN msg=shown") {
		t.Errorf("text logger at warn wrote %q", got)
	}
}

// Package config is selfserve's typed configuration: the settings every
// subcommand reads, loaded from an optional YAML file and then from
// SELFSERVE_* environment variables (the environment wins), with defaults,
// and checked by Validate, which lists every problem at once.
//
// A complete file (every key is optional; the values shown are the defaults
// where one exists):
//
//	database_url: sqlite:selfserve.db        # or postgres://user:pass@db:5432/selfserve
//	redis_url: embedded                      # or redis://redis:6379/0, rediss://…
//	encryption_key: ""                       # base64 of 32 random bytes: openssl rand -base64 32
//	admin_addr: 127.0.0.1:8080
//	log_level: info                          # debug | info | warn | error
//	log_format: json                         # json | text
//	ops_token: ""                            # bearer token for /monitoring and /metrics
//	ops_tenant: ""                           # the tenant whose super logins open /monitoring from the console
//	outbox: ""                               # directory where the demo "sends" notices
//	public_addr: 127.0.0.1:8081              # the end users' self-serve listener (plain HTTP behind a TLS proxy)
//	public_url: https://reset.acme-msp.example  # its external base URL: every link to it
//	trusted_proxies: [10.0.0.0/8]            # proxies whose X-Forwarded-For is believed
//	max_removal_share: 0.3
//	throttle_wait_max: 10m                   # total wait of an inline run for a throttling API
//	file_import_dir: ""                      # one folder per tenant: <dir>/<tenant name>/
//	allowed_psa_hosts: []                    # e.g. [docs.acme-msp.example, "*.acme-msp.example"]
//	api_url: ""                              # the CLI's remote commands; default http:// + admin_addr
//	api_token: ""                            # an API token (ss_…) for the remote commands
//	smtp:
//	  host: smtp.acme-msp.example
//	  port: 587                              # default 587, or 465 when tls is "tls"
//	  username: selfserve
//	  password: ""
//	  from: "Password reminders <noreply@acme-msp.example>"
//	  tls: starttls                          # starttls | tls | none
//	sms:
//	  base_url: https://api.twilio.com
//	  account_sid: ""
//	  auth_token: ""
//	  from: "+12025550100"
//
// Secrets (the encryption key, the ops token, the SMTP password, the SMS auth
// token and any password inside the database or Redis URL) are held in types
// that print, log and marshal redacted.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"selfserve/internal/notify"
	"selfserve/internal/redact"
)

// Config is selfserve's configuration. Each field's comment gives its YAML
// key, its environment variable and its default. An environment variable
// that is set but empty counts as unset.
type Config struct {
	// DatabaseURL names the store: postgres://… or postgresql://… (PostgreSQL
	// through pgx) or sqlite:PATH (the embedded pure-Go SQLite; sqlite:///abs
	// is read as the absolute path /abs). See ParseDatabaseURL.
	// YAML database_url, env SELFSERVE_DATABASE_URL, default "sqlite:selfserve.db".
	DatabaseURL CredentialURL `yaml:"database_url"`

	// RedisURL is the asynq broker: redis://… or rediss://… (TLS), or
	// "embedded" for an in-process Redis (demo and single-process use).
	// YAML redis_url, env SELFSERVE_REDIS_URL, default "embedded".
	RedisURL CredentialURL `yaml:"redis_url"`

	// EncryptionKey encrypts connection secrets at rest (AES-256-GCM): the
	// base64 of exactly 32 random bytes (openssl rand -base64 32). Commands
	// that read or write connection secrets need it (EncryptionKey.Bytes
	// says precisely what is wrong when it is missing); Validate checks its
	// form when it is set.
	// YAML encryption_key, env SELFSERVE_ENCRYPTION_KEY, no default.
	EncryptionKey EncryptionKey `yaml:"encryption_key"`

	// AdminAddr is the host:port the admin HTTP API listens on.
	// YAML admin_addr, env SELFSERVE_ADMIN_ADDR, default "127.0.0.1:8080".
	AdminAddr string `yaml:"admin_addr"`

	// LogLevel is the least level logged: debug, info, warn or error.
	// YAML log_level, env SELFSERVE_LOG_LEVEL, default "info".
	LogLevel string `yaml:"log_level"`

	// LogFormat is the log line format: json or text.
	// YAML log_format, env SELFSERVE_LOG_FORMAT, default "json".
	LogFormat string `yaml:"log_format"`

	// OpsToken is the bearer token that opens the ops endpoints (asynqmon
	// under /monitoring, /metrics). At least 16 characters when set; empty
	// leaves those endpoints closed.
	// YAML ops_token, env SELFSERVE_OPS_TOKEN, no default.
	OpsToken redact.Secret `yaml:"ops_token"`

	// OpsTenant names the tenant whose super logins may open /monitoring
	// with their console session (the console's Ops link), besides the ops
	// token: the operator's own tenant. The dashboard shows every tenant's
	// queues, so no other tenant's login opens it.
	// YAML ops_tenant, env SELFSERVE_OPS_TENANT, default "" (the ops token
	// only).
	OpsTenant string `yaml:"ops_tenant"`

	// OutboxDir is a directory where notices are written as files instead of
	// being sent (the demo's outbox). Empty sends through SMTP and SMS.
	// YAML outbox, env SELFSERVE_OUTBOX, default "" (no outbox).
	OutboxDir string `yaml:"outbox"`

	// FileImportDir holds one folder per tenant, named as the tenant
	// (<file_import_dir>/<tenant name>/): the only files a tenant's
	// technicians may name through the admin API, both a file connection's
	// path and a connection's ca_file. A relative path is read in the
	// tenant's folder; a path outside it is refused (symlinks resolved).
	// Empty refuses both over the API, leaving them to apply files written
	// by the operator. It keeps a technician from reading server files, or
	// another tenant's, through a connection's settings.
	// YAML file_import_dir, env SELFSERVE_FILE_IMPORT_DIR, default "" (none).
	FileImportDir string `yaml:"file_import_dir"`

	// PublicAddr is the host:port of the public listener: the end users'
	// self-serve API and pages, plain HTTP meant to sit behind a
	// TLS-terminating proxy. Nothing of the admin API or the ops endpoints
	// answers there.
	// YAML public_addr, env SELFSERVE_PUBLIC_ADDR, default "127.0.0.1:8081".
	PublicAddr string `yaml:"public_addr"`

	// PublicURL is the external base URL of the public listener (as the
	// proxy serves it): every link to the self-serve pages, in notices and
	// welcome emails, is built from it, never from a request's Host header.
	// An absolute http:// or https:// URL.
	// YAML public_url, env SELFSERVE_PUBLIC_URL, default "" (no links).
	PublicURL string `yaml:"public_url"`

	// TrustedProxies are the addresses (or CIDR prefixes) of the proxies in
	// front of the public listener: only a request from one of them may say
	// who the client is (X-Forwarded-For, read from the right, skipping
	// trusted hops). Empty: the peer is the client.
	// YAML trusted_proxies (a list), env SELFSERVE_TRUSTED_PROXIES (comma
	// separated), default none.
	TrustedProxies []string `yaml:"trusted_proxies"`

	// AllowedPSAHosts are the hosts, besides the vendors' own clouds (IT
	// Glue's regional hosts, *.huducloud.com, ConnectWise's regional api-
	// hosts), that PSA connections may send their API keys to: a
	// self-hosted Hudu or ConnectWise, a proxy, a test server. Each entry is
	// a host name, an IP address or *.domain (any host below domain); no
	// scheme, port or path. The environment variable is a comma-separated
	// list.
	// YAML allowed_psa_hosts, env SELFSERVE_ALLOWED_PSA_HOSTS, default none.
	AllowedPSAHosts []string `yaml:"allowed_psa_hosts"`

	// MaxRemovalShare is the largest share (0..1) of a connection's known
	// end users that one sync may remove; a run that would remove more stops
	// and asks. 0 refuses every removal, 1 allows removing everyone.
	// YAML max_removal_share, env SELFSERVE_MAX_REMOVAL_SHARE, default 0.3.
	MaxRemovalShare float64 `yaml:"max_removal_share"`

	// ThrottleWaitMax bounds how long one run inline in the CLI (import
	// --inline, customers import, enrich) waits in all for APIs that
	// throttle it; past it the run stops with the reason and is kept for the
	// same command to resume. 0 waits nothing.
	// YAML throttle_wait_max (a duration: 90s, 10m), env
	// SELFSERVE_THROTTLE_WAIT_MAX, default 10m.
	ThrottleWaitMax time.Duration `yaml:"throttle_wait_max"`

	// APIURL is where the CLI's remote commands (import without --inline,
	// settings) reach the admin API: an absolute http:// or https:// URL
	// (plain http only to a loopback host, since the token travels with
	// every request). See AdminURL.
	// YAML api_url, env SELFSERVE_API_URL, default "" (http:// + admin_addr).
	APIURL string `yaml:"api_url"`

	// APIToken is the API token (ss_…, from `selfserve token create`) the
	// CLI's remote commands send as their bearer token.
	// YAML api_token, env SELFSERVE_API_TOKEN, no default.
	APIToken redact.Secret `yaml:"api_token"`

	// SMTP is the email channel. YAML key smtp.
	SMTP SMTP `yaml:"smtp"`

	// SMS is the SMS channel (a Twilio-compatible REST API). YAML key sms.
	SMS SMS `yaml:"sms"`
}

// AdminURL returns the admin API's base URL for the CLI's remote
// commands: APIURL, or http:// + AdminAddr when it is empty.
func (c *Config) AdminURL() string {
	if c.APIURL != "" {
		return strings.TrimSuffix(c.APIURL, "/")
	}
	return "http://" + c.AdminAddr
}

// SMTP configures the email channel. It is enabled when Host is set.
type SMTP struct {
	// Host is the SMTP server's host name.
	// YAML smtp.host, env SELFSERVE_SMTP_HOST, default "" (email disabled).
	Host string `yaml:"host"`
	// Port is the SMTP server's port, 1..65535; 0 means the default of the
	// TLS mode, which Load fills in.
	// YAML smtp.port, env SELFSERVE_SMTP_PORT, default 587 (465 when TLS is "tls").
	Port int `yaml:"port"`
	// Username authenticates to the server; empty sends without AUTH.
	// YAML smtp.username, env SELFSERVE_SMTP_USERNAME, default "".
	Username string `yaml:"username"`
	// Password goes with Username.
	// YAML smtp.password, env SELFSERVE_SMTP_PASSWORD, default "".
	Password redact.Secret `yaml:"password"`
	// From is the sender address of notices ("Name <addr@host>" or a bare
	// address). Required when Host is set.
	// YAML smtp.from, env SELFSERVE_SMTP_FROM, default "".
	From string `yaml:"from"`
	// TLS is how the connection is protected: starttls (upgrade a plain
	// connection, refusing servers that cannot), tls (TLS from the first
	// byte) or none (plain text; only when written explicitly).
	// YAML smtp.tls, env SELFSERVE_SMTP_TLS, default "starttls".
	TLS notify.TLSMode `yaml:"tls"`
}

// Enabled reports whether the email channel is configured.
func (s SMTP) Enabled() bool { return s.Host != "" }

// Address returns host:port of the server, with the TLS mode's default port
// when Port is 0.
func (s SMTP) Address() string {
	port := s.Port
	if port == 0 {
		port = s.TLS.DefaultPort()
	}
	return s.Host + ":" + strconv.Itoa(port)
}

// SMS configures the SMS channel, a Twilio-compatible REST API. It is enabled
// when AccountSID is set.
type SMS struct {
	// BaseURL is the API's root; https is required unless the host is a
	// loopback address (a local fake).
	// YAML sms.base_url, env SELFSERVE_SMS_BASE_URL, default "https://api.twilio.com".
	BaseURL string `yaml:"base_url"`
	// AccountSID is the account's id (Twilio: AC followed by 32 hex digits).
	// YAML sms.account_sid, env SELFSERVE_SMS_ACCOUNT_SID, default "" (SMS disabled).
	AccountSID string `yaml:"account_sid"`
	// AuthToken is the account's secret. Required when AccountSID is set.
	// YAML sms.auth_token, env SELFSERVE_SMS_AUTH_TOKEN, default "".
	AuthToken redact.Secret `yaml:"auth_token"`
	// From is the sending number in E.164 (or an alphanumeric sender id or
	// messaging service id the provider accepts). Required when AccountSID is
	// set.
	// YAML sms.from, env SELFSERVE_SMS_FROM, default "".
	From string `yaml:"from"`
}

// Enabled reports whether the SMS channel is configured.
func (s SMS) Enabled() bool { return s.AccountSID != "" }

// Default returns the configuration used when neither file nor environment
// says otherwise.
func Default() *Config {
	return &Config{
		DatabaseURL:     "sqlite:selfserve.db",
		RedisURL:        "embedded",
		AdminAddr:       "127.0.0.1:8080",
		PublicAddr:      "127.0.0.1:8081",
		LogLevel:        "info",
		LogFormat:       "json",
		MaxRemovalShare: 0.3,
		ThrottleWaitMax: 10 * time.Minute,
		SMTP:            SMTP{TLS: notify.TLSStartTLS},
		SMS:             SMS{BaseURL: "https://api.twilio.com"},
	}
}

// Load builds the configuration: Default, then the YAML file at path (""
// for none; unknown keys are errors naming the key and line), then the
// SELFSERVE_* variables that env reports (pass os.LookupEnv, or a map's
// lookup in tests), then Validate. The error lists every problem found in
// the environment and by Validate together; a file that cannot be read or
// parsed is reported alone.
func Load(path string, env func(string) (string, bool)) (*Config, error) {
	c := Default()
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return nil, err
		}
	}
	var problems []error
	if env != nil {
		for _, v := range envVars {
			value, ok := env(v.name)
			if !ok || value == "" {
				continue
			}
			if err := v.set(c, value); err != nil {
				problems = append(problems, &FieldError{Key: v.key, Env: v.name, Problem: err.Error()})
			}
		}
	}
	if c.SMTP.Port == 0 {
		c.SMTP.Port = c.SMTP.TLS.DefaultPort()
	}
	if err := c.Validate(); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(c)
	if errors.Is(err, io.EOF) {
		return nil // empty file, or only comments
	}
	if err != nil {
		return fileError(path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return fileError(path, err)
		}
		return fmt.Errorf("config file %s: line %d: a second YAML document starts here; the file must hold one", path, line)
	}
	return nil
}

var unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)

// fileError rewrites yaml.v3's messages so that each names the file, the line
// and the key as it is written in the file.
func fileError(path string, err error) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return fmt.Errorf("config file %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	errs := make([]error, 0, len(typeErr.Errors))
	for _, msg := range typeErr.Errors {
		m := unknownFieldRE.FindStringSubmatch(msg)
		if m == nil {
			errs = append(errs, fmt.Errorf("config file %s: %s", path, msg))
			continue
		}
		section, known := knownKeys(m[3])
		key := m[2]
		if section != "" {
			key = section + "." + key
		}
		errs = append(errs, fmt.Errorf("config file %s: line %s: unknown key %q (known keys%s: %s)",
			path, m[1], key, inSection(section), strings.Join(known, ", ")))
	}
	return errors.Join(errs...)
}

func inSection(section string) string {
	if section == "" {
		return ""
	}
	return " in " + section
}

// knownKeys returns the YAML section a Go type name decodes and the keys it
// accepts.
func knownKeys(typeName string) (section string, keys []string) {
	var t reflect.Type
	switch typeName {
	case "config.SMTP":
		section, t = "smtp", reflect.TypeFor[SMTP]()
	case "config.SMS":
		section, t = "sms", reflect.TypeFor[SMS]()
	default:
		t = reflect.TypeFor[Config]()
	}
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return section, keys
}

// envVar binds one environment variable to the field it sets.
type envVar struct {
	name string // SELFSERVE_…
	key  string // the YAML key, for messages
	set  func(c *Config, value string) error
}

// envVars lists every environment variable Load reads.
var envVars = []envVar{
	{"SELFSERVE_DATABASE_URL", "database_url", func(c *Config, v string) error { c.DatabaseURL = CredentialURL(v); return nil }},
	{"SELFSERVE_REDIS_URL", "redis_url", func(c *Config, v string) error { c.RedisURL = CredentialURL(v); return nil }},
	{"SELFSERVE_ENCRYPTION_KEY", "encryption_key", func(c *Config, v string) error { c.EncryptionKey = EncryptionKey{text: v}; return nil }},
	{"SELFSERVE_ADMIN_ADDR", "admin_addr", func(c *Config, v string) error { c.AdminAddr = v; return nil }},
	{"SELFSERVE_LOG_LEVEL", "log_level", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"SELFSERVE_LOG_FORMAT", "log_format", func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"SELFSERVE_OPS_TOKEN", "ops_token", func(c *Config, v string) error { c.OpsToken = redact.Secret(v); return nil }},
	{"SELFSERVE_OPS_TENANT", "ops_tenant", func(c *Config, v string) error { c.OpsTenant = v; return nil }},
	{"SELFSERVE_OUTBOX", "outbox", func(c *Config, v string) error { c.OutboxDir = v; return nil }},
	{"SELFSERVE_FILE_IMPORT_DIR", "file_import_dir", func(c *Config, v string) error { c.FileImportDir = v; return nil }},
	{"SELFSERVE_PUBLIC_ADDR", "public_addr", func(c *Config, v string) error { c.PublicAddr = v; return nil }},
	{"SELFSERVE_PUBLIC_URL", "public_url", func(c *Config, v string) error { c.PublicURL = v; return nil }},
	{"SELFSERVE_TRUSTED_PROXIES", "trusted_proxies", func(c *Config, v string) error {
		c.TrustedProxies = strings.Split(v, ",")
		return nil
	}},
	{"SELFSERVE_SELF_SERVE_URL", "self_serve_url", func(c *Config, v string) error {
		return errors.New("replaced by SELFSERVE_PUBLIC_URL (the public listener's external base URL); rename it")
	}},
	{"SELFSERVE_ALLOWED_PSA_HOSTS", "allowed_psa_hosts", func(c *Config, v string) error { c.AllowedPSAHosts = splitList(v); return nil }},
	{"SELFSERVE_MAX_REMOVAL_SHARE", "max_removal_share", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number (write a share such as 0.3)", v)
		}
		c.MaxRemovalShare = f
		return nil
	}},
	{"SELFSERVE_THROTTLE_WAIT_MAX", "throttle_wait_max", func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a duration (write one such as 10m or 90s)", v)
		}
		c.ThrottleWaitMax = d
		return nil
	}},
	{"SELFSERVE_API_URL", "api_url", func(c *Config, v string) error { c.APIURL = v; return nil }},
	{"SELFSERVE_API_TOKEN", "api_token", func(c *Config, v string) error { c.APIToken = redact.Secret(v); return nil }},
	{"SELFSERVE_SMTP_HOST", "smtp.host", func(c *Config, v string) error { c.SMTP.Host = v; return nil }},
	{"SELFSERVE_SMTP_PORT", "smtp.port", func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a port number", v)
		}
		c.SMTP.Port = n
		return nil
	}},
	{"SELFSERVE_SMTP_USERNAME", "smtp.username", func(c *Config, v string) error { c.SMTP.Username = v; return nil }},
	{"SELFSERVE_SMTP_PASSWORD", "smtp.password", func(c *Config, v string) error { c.SMTP.Password = redact.Secret(v); return nil }},
	{"SELFSERVE_SMTP_FROM", "smtp.from", func(c *Config, v string) error { c.SMTP.From = v; return nil }},
	{"SELFSERVE_SMTP_TLS", "smtp.tls", func(c *Config, v string) error { c.SMTP.TLS = notify.TLSMode(v); return nil }},
	{"SELFSERVE_SMS_BASE_URL", "sms.base_url", func(c *Config, v string) error { c.SMS.BaseURL = v; return nil }},
	{"SELFSERVE_SMS_ACCOUNT_SID", "sms.account_sid", func(c *Config, v string) error { c.SMS.AccountSID = v; return nil }},
	{"SELFSERVE_SMS_AUTH_TOKEN", "sms.auth_token", func(c *Config, v string) error { c.SMS.AuthToken = redact.Secret(v); return nil }},
	{"SELFSERVE_SMS_FROM", "sms.from", func(c *Config, v string) error { c.SMS.From = v; return nil }},
}

// splitList reads a comma-separated list, trimming each entry and
// dropping empty ones.
func splitList(v string) []string {
	var out []string
	for e := range strings.SplitSeq(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// envName returns the environment variable of a YAML key.
func envName(key string) string {
	for _, v := range envVars {
		if v.key == key {
			return v.name
		}
	}
	return ""
}

// SlogLevel returns LogLevel as a slog.Level (info when it is not valid).
func (c *Config) SlogLevel() slog.Level {
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// NewLogger returns a logger writing to w in LogFormat at LogLevel.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if strings.EqualFold(c.LogFormat, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// LogValue implements slog.LogValuer: the configuration without its secrets,
// for a "starting" log line.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("database_url", c.DatabaseURL.String()),
		slog.String("redis_url", c.RedisURL.String()),
		slog.Bool("encryption_key_set", c.EncryptionKey.IsSet()),
		slog.String("admin_addr", c.AdminAddr),
		slog.String("log_level", c.LogLevel),
		slog.String("log_format", c.LogFormat),
		slog.Bool("ops_token_set", c.OpsToken != ""),
		slog.String("ops_tenant", c.OpsTenant),
		slog.String("outbox", c.OutboxDir),
		slog.String("file_import_dir", c.FileImportDir),
		slog.String("public_addr", c.PublicAddr),
		slog.String("public_url", c.PublicURL),
		slog.Any("trusted_proxies", c.TrustedProxies),
		slog.Any("allowed_psa_hosts", c.AllowedPSAHosts),
		slog.Float64("max_removal_share", c.MaxRemovalShare),
		slog.Duration("throttle_wait_max", c.ThrottleWaitMax),
		slog.String("api_url", c.AdminURL()),
		slog.Bool("api_token_set", c.APIToken != ""),
		slog.Group("smtp",
			slog.String("address", c.SMTP.Address()),
			slog.String("username", c.SMTP.Username),
			slog.String("from", c.SMTP.From),
			slog.String("tls", string(c.SMTP.TLS)),
			slog.Bool("enabled", c.SMTP.Enabled()),
		),
		slog.Group("sms",
			slog.String("base_url", c.SMS.BaseURL),
			slog.String("account_sid", c.SMS.AccountSID),
			slog.String("from", c.SMS.From),
			slog.Bool("enabled", c.SMS.Enabled()),
		),
	)
}

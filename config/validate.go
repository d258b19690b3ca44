package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"selfserve/connectors"
	"selfserve/internal/dburl"
	"selfserve/internal/notify"
)

// FieldError is one problem Validate or Load found: the field as it is
// written in the YAML file and in the environment, and what is wrong.
type FieldError struct {
	// Key is the YAML key ("smtp.port").
	Key string
	// Env is the environment variable ("SELFSERVE_SMTP_PORT").
	Env string
	// Problem says what is wrong and how to fix it. It never quotes a
	// secret.
	Problem string
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s (%s): %s", e.Key, e.Env, e.Problem)
}

// Validate checks every field and returns all problems at once (an
// errors.Join of *FieldError), or nil. It changes nothing.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Env: envName(key), Problem: fmt.Sprintf(format, args...)})
	}

	if _, _, err := dburl.Parse(c.DatabaseURL.Reveal()); err != nil {
		bad("database_url", "%s", err)
	}
	if err := checkRedisURL(c.RedisURL.Reveal()); err != nil {
		bad("redis_url", "%s", err)
	}
	if c.EncryptionKey.IsSet() {
		if _, err := c.EncryptionKey.Bytes(); err != nil {
			bad("encryption_key", "%s", err)
		}
	}
	if err := checkHostPort(c.AdminAddr); err != nil {
		bad("admin_addr", "%s", err)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not a log level; use debug, info, warn or error", c.LogLevel)
	}
	switch strings.ToLower(c.LogFormat) {
	case "json", "text":
	default:
		bad("log_format", "%q is not a log format; use json or text", c.LogFormat)
	}
	if n := len(c.OpsToken.Reveal()); n > 0 && n < 16 {
		bad("ops_token", "too short (%d characters); use at least 16, e.g. `openssl rand -hex 32`", n)
	}
	if err := checkHostPort(c.PublicAddr); err != nil {
		bad("public_addr", "%s", err)
	}
	if c.PublicURL != "" {
		if err := checkHTTPURL(c.PublicURL, false); err != nil {
			bad("public_url", "%s", err)
		}
	}
	if _, err := ParsePrefixes(c.TrustedProxies); err != nil {
		bad("trusted_proxies", "%s", err)
	}
	if c.APIURL != "" {
		if err := checkHTTPURL(c.APIURL, true); err != nil {
			bad("api_url", "%s", err)
		}
	}
	if t := c.APIToken.Reveal(); t != "" && (!strings.HasPrefix(t, "ss_") || len(t) != 46) {
		bad("api_token", "not an API token: a token starts with ss_ and has 46 characters (make one with `selfserve token create`)")
	}
	if c.ThrottleWaitMax < 0 {
		bad("throttle_wait_max", "%s is negative; it is the total wait of an inline run for a throttling API (10m by default, 0 to never wait)", c.ThrottleWaitMax)
	}
	for _, h := range c.AllowedPSAHosts {
		if err := connectors.CheckHostPattern(h); err != nil {
			bad("allowed_psa_hosts", "%s", err)
		}
	}
	if math.IsNaN(c.MaxRemovalShare) || c.MaxRemovalShare < 0 || c.MaxRemovalShare > 1 {
		bad("max_removal_share", "%v is out of range; it is a share between 0 and 1 (0.3 allows removing up to 30%% of known users in one run)", c.MaxRemovalShare)
	}

	// SMTP.
	s := c.SMTP
	if s.Port < 0 || s.Port > 65535 {
		bad("smtp.port", "%d is out of range; use 1..65535 (or 0 for the default of the TLS mode)", s.Port)
	}
	switch s.TLS {
	case notify.TLSStartTLS, notify.TLSImplicit, notify.TLSNone:
	default:
		bad("smtp.tls", "%q is not a TLS mode; use starttls, tls or none", s.TLS)
	}
	if s.Host == "" {
		for _, f := range []struct {
			key string
			set bool
		}{{"smtp.username", s.Username != ""}, {"smtp.password", s.Password != ""}, {"smtp.from", s.From != ""}} {
			if f.set {
				bad(f.key, "is set but smtp.host is not; set SELFSERVE_SMTP_HOST to enable email")
			}
		}
	} else {
		if strings.ContainsAny(s.Host, ":/ ") {
			bad("smtp.host", "%q must be a host name only; put the port in smtp.port", s.Host)
		}
		if s.From == "" {
			bad("smtp.from", "required when smtp.host is set: the sender address of notices")
		} else if _, err := mail.ParseAddress(s.From); err != nil {
			bad("smtp.from", "%q is not an email address (write noreply@example.com or \"Name <noreply@example.com>\")", s.From)
		}
		if s.Password != "" && s.Username == "" {
			bad("smtp.username", "required when smtp.password is set")
		}
	}

	// SMS.
	m := c.SMS
	if err := checkHTTPURL(m.BaseURL, true); err != nil {
		bad("sms.base_url", "%s", err)
	}
	if m.AccountSID == "" {
		if m.AuthToken != "" {
			bad("sms.auth_token", "is set but sms.account_sid is not; set SELFSERVE_SMS_ACCOUNT_SID to enable SMS")
		}
		if m.From != "" {
			bad("sms.from", "is set but sms.account_sid is not; set SELFSERVE_SMS_ACCOUNT_SID to enable SMS")
		}
	} else {
		if m.AuthToken == "" {
			bad("sms.auth_token", "required when sms.account_sid is set")
		}
		if m.From == "" {
			bad("sms.from", "required when sms.account_sid is set: the sending number in E.164, e.g. +12025550100")
		}
		if strings.ContainsAny(m.AccountSID, "/?# ") {
			bad("sms.account_sid", "%q is not an account id (it goes into the API path)", m.AccountSID)
		}
	}
	return errors.Join(errs...)
}

// Dialect returns the dialect of the configured database and what to hand its
// driver: the URL for PostgreSQL, the file path for SQLite.
func (c *Config) Dialect() (dburl.Dialect, string, error) {
	return dburl.Parse(c.DatabaseURL.Reveal())
}

func checkRedisURL(raw string) error {
	if raw == "embedded" {
		return nil
	}
	if raw == "" {
		return errors.New(`required: redis://host:6379/0, rediss://host:6380/0 or "embedded"`)
	}
	scheme, _, hasColon := strings.Cut(raw, ":")
	if !hasColon || !dburl.IsScheme(scheme) {
		return errors.New(`not a Redis URL; use redis://host:6379/0, rediss://host:6380/0 or "embedded"`)
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss":
	default:
		return fmt.Errorf(`scheme %q is not supported; use redis://, rediss:// or "embedded"`, scheme)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL (percent-encode special characters in the password)")
	}
	if u.Host == "" {
		return fmt.Errorf("no host; write %s://host:6379/0", scheme)
	}
	if port := u.Port(); port != "" {
		if err := checkPort(port); err != nil {
			return err
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return fmt.Errorf("database %q in the path is not a number; write %s://host:6379/0", db, scheme)
		}
	}
	return nil
}

func checkHostPort(addr string) error {
	if addr == "" {
		return errors.New("required: host:port to listen on, e.g. 127.0.0.1:8080")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080, or :8080 for every interface)", addr)
	}
	return checkPort(port)
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("port %q is not a number", port)
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("port %d is out of range 0..65535", n)
	}
	return nil
}

// checkHTTPURL checks that raw is an absolute http(s) URL; with httpsOnly,
// plain http is allowed only to a loopback host (a local fake), since the
// request carries credentials.
func checkHTTPURL(raw string, httpsOnly bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%q is not an absolute http:// or https:// URL", raw)
	}
	if httpsOnly && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q uses plain http, which would send the credentials in clear; use https (http is allowed only to localhost)", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParsePrefixes reads addresses and CIDR prefixes ("10.0.0.0/8",
// "127.0.0.1"); blank entries are skipped.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range list {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix", part)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR prefix", part)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

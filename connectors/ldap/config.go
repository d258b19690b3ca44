// Package ldap is the Active Directory connector (kind "ad"): it reads the end
// users of an on-premises domain over LDAPS (or LDAP with StartTLS) with
// github.com/go-ldap/ldap/v3.
//
// A run binds once, reads the DC's RootDSE (highestCommittedUSN, DNS name,
// invocationId), the domain password policy and the fine-grained password
// policies (PSOs), then streams a paged search of the users in scope: one LDAP
// page is one connectors.UserPage, handed to the sync engine as soon as it
// is read, so that the engine commits it while the next ones are read (the
// last page carries the incremental cursor).
//
// A full listing runs as two paged searches (odd and even uSNCreated), each
// on its own connection: a Samba DC serves a connection in one process, one
// request at a time, so two connections let it work on both halves at once,
// and each half's next page is prepared while the other's is decoded here.
// Each half costs the DC a pass over the domain's person index (on Samba
// about 0.2 s for 20,000 users), little next to what paged results cost it
// per entry returned (about 0.1 ms), unless the scope is a small part of a
// large domain.
//
// Password expiry and lockout are computed from stored attributes exactly
// as the DC computes the constructed attributes
// msDS-UserPasswordExpiryTimeComputed and msDS-User-Account-Control-Computed
// (asking the DC for those makes the dump about six times slower); when the
// bind account cannot read the PSOs, or for the rare user whose values
// cannot be computed safely, the connector asks the DC for the constructed
// attributes instead.
//
// Every user is classified as privileged or not (adminCount=1, or a member,
// nested groups included, of a protected group found by its well-known SID
// or of a group listed in privileged_groups) from the group graph each run
// reads, without a per-user group rule: see privileged.go.
//
// Incremental runs (Changes) read the entries whose uSNChanged is above the
// USN remembered by the previous run, on the same DC (same dnsHostName and
// invocationId), with the same scope and password policies, and with no
// change to the groups that decide them or privilege (a membership change
// leaves the member's uSNChanged alone); anything else makes the cursor
// doubtful and asks for a full run.
//
// For self-serve the source is also a connectors.PasswordWriter: it resets
// passwords (unicodePwd with the password-policy-hints control) and clears
// lockouts (lockoutTime = 0) over LDAPS or StartTLS only, and its
// CheckWriteAccess tells "test connection" whether the bind account holds
// the Reset Password right and write access to lockoutTime; writeback.go
// explains how.
package ldap

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"selfserve/connectors"
	"selfserve/internal/redact"
)

// Defaults applied by Open.
const (
	// DefaultPageSize is the LDAP paged-results size (AD's MaxPageSize is 1000).
	DefaultPageSize = 500
	// DefaultTimeout bounds connecting and each LDAP operation.
	DefaultTimeout = 30 * time.Second
	// MaxPageSize is the largest page_size accepted.
	MaxPageSize = 5000
)

// Config is the configuration of an Active Directory connection. Settings and
// secrets are decoded into it by connectors.Registry.Decode (unknown keys are
// rejected); bind_dn and bind_password are secrets.
//
// Example apply-file entry:
//
//	kind: ad
//	settings:
//	  url: ldaps://dc1.corp.example.com:636
//	  base_dn: OU=Staff,DC=corp,DC=example,DC=com
//	  ca_file: /etc/selfserve/corp-root-ca.pem
//	  group_dns:
//	    - CN=SSPR Users,OU=Groups,DC=corp,DC=example,DC=com
//	  exclude_ous:
//	    - OU=Service Accounts,OU=Staff,DC=corp,DC=example,DC=com
//	  exclude_filter: (employeeType=contractor)
//	  privileged_groups:
//	    - CN=Tier 0 Admins,OU=Groups,DC=corp,DC=example,DC=com
//	  mobile_attributes: [mobile, telephoneNumber]
//	  timeout: 30s
//	secrets:
//	  bind_dn: svc-selfserve@corp.example.com
//	  bind_password: "…"
//
// The bind account needs read access to the users in scope, to the domain
// object (maxPwdAge, lockoutDuration) and, for exact expiry dates of users
// governed by fine-grained password policies without the slow fallback, to
// the objects in CN=Password Settings Container,CN=System (by default only
// Domain Admins can read them: delegate "Read all properties" on that
// container to the service account), and to the groups of the domain and
// their members (Authenticated Users have it by default): without it, users
// cannot be classified as privileged or not, and are imported as privileged
// with the reason. A full run, and any run over several
// base DNs, holds two connections to the DC (one when a second is
// refused); other runs hold one. For self-serve write-back it also needs
// the Reset Password right and write access to lockoutTime on those users
// (delegate "Reset user passwords and force password change at next logon"
// and "Write lockoutTime" on their OU), and the url must be ldaps:// or use
// start_tls: allow_insecure permits reading only.
type Config struct {
	// URL of the domain controller: ldaps://host[:636], or ldap://host[:389]
	// with start_tls (or allow_insecure). Required.
	URL string `json:"url" connector:"endpoint" help:"Domain controller address: ldaps://dc01.corp.example (port 636), or ldap:// with StartTLS."`
	// BaseDN is the subtree whose users are imported. Required unless
	// base_dns is set.
	BaseDN string `json:"base_dn" help:"Subtree whose users are imported, e.g. OU=Staff,DC=corp,DC=example (the OU's distinguishedName in Active Directory Users and Computers)."`
	// BaseDNs lists further subtrees to import, in addition to base_dn.
	// Subtrees may not overlap. Default: none.
	BaseDNs []string `json:"base_dns" help:"Further subtrees to import besides the base DN; they may not overlap."`
	// CAFile is a PEM file of the CA certificates that issued the DC's
	// certificate. Default: the system's trusted roots.
	CAFile string `json:"ca_file" connector:"endpoint,file" help:"PEM file of the CA that issued the domain controller's certificate. Empty: the system's trusted roots."`
	// StartTLS upgrades an ldap:// connection with StartTLS. Default false.
	StartTLS bool `json:"start_tls" connector:"endpoint" help:"Upgrade an ldap:// connection with StartTLS."`
	// AllowInsecure allows ldap:// without StartTLS: the password and the
	// directory then cross the network in clear text. Default false.
	AllowInsecure bool `json:"allow_insecure" connector:"endpoint" help:"Allow ldap:// without StartTLS: the bind password crosses the network in clear text, and passwords cannot be reset."`
	// ServerName is the name expected on the DC's certificate, when the URL
	// uses another name or an IP address. Default: the URL's host.
	ServerName string `json:"server_name" connector:"endpoint" help:"Name on the domain controller's certificate, when the address uses another name or an IP address."`
	// PageSize is the LDAP paged-results page size, also the number of users
	// per page handed to the sync engine. Default 500.
	PageSize int `json:"page_size" help:"Users read per LDAP page. Default 500."`
	// GroupDNs limits the import to members of these groups, nested groups
	// included (LDAP_MATCHING_RULE_IN_CHAIN; primary-group membership is
	// not a member link and does not count). Default: no group scope.
	GroupDNs []string `json:"group_dns" help:"Import only members of these groups (DNs), nested groups included. Empty: no group scope."`
	// ExcludeOUs skips users below these OUs. Default: none.
	ExcludeOUs []string `json:"exclude_ous" help:"Skip the users below these OUs (DNs)."`
	// ExcludeGroups skips members of these groups, nested groups included.
	// Default: none.
	ExcludeGroups []string `json:"exclude_groups" help:"Skip the members of these groups (DNs), nested groups included."`
	// PrivilegedGroups lists further groups whose members (nested groups
	// included) are privileged accounts, beside the protected groups found
	// by their well-known SIDs (Domain Admins, Administrators, …: see
	// privileged.go). Default: none.
	PrivilegedGroups []string `json:"privileged_groups" help:"Further groups (DNs) whose members are privileged accounts, beside Domain Admins and the other protected groups."`
	// ExcludeFilter is a raw LDAP filter; users matching it are skipped.
	// Default: none.
	ExcludeFilter string `json:"exclude_filter" help:"LDAP filter of users to skip, e.g. (description=service*)."`
	// MobileAttributes are the attributes read for the mobile number, in
	// order of preference: the first non-empty one wins. Default ["mobile"].
	MobileAttributes []string `json:"mobile_attributes" help:"Attributes read for the mobile number, first non-empty wins. Default mobile."`
	// Timeout bounds connecting (TCP, TLS, bind) and each LDAP operation
	// (one page of a search), as a Go duration ("30s") or a number of
	// seconds. Default 30s.
	Timeout Duration `json:"timeout" help:"Limit on connecting and on each page of a search, e.g. 30s. Default 30s."`

	// BindDN is the account the connector binds as: a DN, a UPN
	// (svc@corp.example.com) or DOMAIN\name. Secret. Required.
	BindDN redact.Secret `json:"bind_dn" help:"Service account the connector signs in as: a DN, a UPN (svc@corp.example) or CORP\\svc."`
	// BindPassword is the bind account's password. Secret. Required.
	BindPassword redact.Secret `json:"bind_password" help:"Password of that service account."`
}

// Duration is a time.Duration that decodes from a Go duration string ("30s",
// "1m30s") or a number of seconds.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: use a Go duration such as \"30s\" or \"2m\"", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return errors.New("a duration must be a string such as \"30s\" or a number of seconds")
	}
	*d = Duration(time.Duration(secs * float64(time.Second)))
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// transport says how the connection is protected.
type transport int

const (
	transportLDAPS transport = iota
	transportStartTLS
	transportPlain
)

// settings is a validated Config with defaults filled in.
type settings struct {
	addr       string // host:port
	host       string
	transport  transport
	tlsName    string
	roots      *x509.CertPool // nil: system roots
	bases      []string
	basesDN    []*goldap.DN
	pageSize   int
	groups     []string
	exclGroup  []string
	privGroups []string
	exclOUs    []*goldap.DN
	exclOUStr  []string
	exclFilt   string
	mobile     []string
	timeout    time.Duration
	bindDN     redact.Secret
	bindPass   redact.Secret
}

var attrNameRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$`)

// Open validates the configuration (reporting every problem at once), fills
// in defaults and returns the source. It does not contact the DC: Ping does.
func (c *Config) Open(env connectors.Env) (connectors.Source, error) {
	id, logger := env.ID, env.Logger
	s, err := c.validate()
	if err != nil {
		return nil, err // Registry.Open names the connection
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	src := &source{id: id, cfg: s, log: logger}
	src.pool = newConnPool(src.dialPooled, poolMaxConns, poolPerConn)
	return src, nil
}

func (c *Config) validate() (*settings, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	s := &settings{
		pageSize: c.PageSize,
		exclFilt: strings.TrimSpace(c.ExcludeFilter),
		timeout:  time.Duration(c.Timeout),
		bindDN:   redact.Secret(strings.TrimSpace(c.BindDN.Reveal())),
		bindPass: c.BindPassword,
	}

	// url, transport, TLS
	switch u, err := url.Parse(strings.TrimSpace(c.URL)); {
	case c.URL == "":
		bad("url is required (ldaps://dc.example.com or ldap://dc.example.com with start_tls)")
	case err != nil:
		bad("url %q is not a URL", c.URL)
	case u.Hostname() == "":
		bad("url %q has no host", c.URL)
	default:
		port := u.Port()
		switch strings.ToLower(u.Scheme) {
		case "ldaps":
			s.transport = transportLDAPS
			if port == "" {
				port = "636"
			}
			if c.StartTLS {
				bad("start_tls applies to ldap:// URLs; %q is already ldaps://", c.URL)
			}
		case "ldap":
			if port == "" {
				port = "389"
			}
			switch {
			case c.StartTLS:
				s.transport = transportStartTLS
			case c.AllowInsecure:
				s.transport = transportPlain
			default:
				bad("url %q is plain LDAP: use ldaps://, set start_tls: true, or set allow_insecure: true to send the password in clear text", c.URL)
			}
		default:
			bad("url %q: scheme must be ldaps or ldap", c.URL)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			bad("url %q: port %q is not a TCP port", c.URL, port)
		}
		s.host = u.Hostname()
		s.addr = net.JoinHostPort(s.host, port)
		s.tlsName = s.host
	}
	if c.ServerName != "" {
		s.tlsName = strings.TrimSpace(c.ServerName)
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		switch {
		case err != nil:
			bad("ca_file %q cannot be read: %v", c.CAFile, errors.Unwrap(err))
		default:
			s.roots = x509.NewCertPool()
			if !s.roots.AppendCertsFromPEM(pem) {
				bad("ca_file %q holds no PEM certificate", c.CAFile)
			}
		}
	}

	// scope
	bases := c.BaseDNs
	if c.BaseDN != "" {
		bases = append([]string{c.BaseDN}, bases...)
	}
	if len(bases) == 0 {
		bad("base_dn is required (for example OU=Staff,DC=corp,DC=example,DC=com)")
	}
	for _, b := range bases {
		dn, err := parseDN(b)
		if err != nil {
			bad("base DN %q: %v", b, err)
			continue
		}
		overlap := false
		for i, other := range s.basesDN {
			if other.EqualFold(dn) || other.AncestorOfFold(dn) || dn.AncestorOfFold(other) {
				bad("base DNs %q and %q overlap: list only the outer one", s.bases[i], b)
				overlap = true
			}
		}
		if !overlap {
			s.bases = append(s.bases, strings.TrimSpace(b))
			s.basesDN = append(s.basesDN, dn)
		}
	}
	for _, g := range c.GroupDNs {
		if _, err := parseDN(g); err != nil {
			bad("group_dns: %q: %v", g, err)
		}
		s.groups = append(s.groups, strings.TrimSpace(g))
	}
	for _, g := range c.ExcludeGroups {
		if _, err := parseDN(g); err != nil {
			bad("exclude_groups: %q: %v", g, err)
		}
		s.exclGroup = append(s.exclGroup, strings.TrimSpace(g))
	}
	for _, g := range c.PrivilegedGroups {
		if _, err := parseDN(g); err != nil {
			bad("privileged_groups: %q is not a group DN: %v", g, err)
		}
		s.privGroups = append(s.privGroups, strings.TrimSpace(g))
	}
	for _, o := range c.ExcludeOUs {
		dn, err := parseDN(o)
		if err != nil {
			bad("exclude_ous: %q: %v", o, err)
			continue
		}
		s.exclOUs = append(s.exclOUs, dn)
		s.exclOUStr = append(s.exclOUStr, strings.TrimSpace(o))
	}
	if s.exclFilt != "" {
		if _, err := goldap.CompileFilter(s.exclFilt); err != nil {
			bad("exclude_filter %q is not a valid LDAP filter (it must be parenthesised, like (title=Contractor)): %v", s.exclFilt, errors.Unwrap(err))
		}
	}

	// mapping and limits
	if len(c.MobileAttributes) == 0 {
		s.mobile = []string{"mobile"}
	}
	seen := map[string]bool{}
	for _, a := range c.MobileAttributes {
		a = strings.TrimSpace(a)
		if !attrNameRE.MatchString(a) {
			bad("mobile_attributes: %q is not an attribute name", a)
			continue
		}
		if !seen[strings.ToLower(a)] {
			seen[strings.ToLower(a)] = true
			s.mobile = append(s.mobile, a)
		}
	}
	switch {
	case s.pageSize == 0:
		s.pageSize = DefaultPageSize
	case s.pageSize < 0 || s.pageSize > MaxPageSize:
		bad("page_size %d must be between 1 and %d", s.pageSize, MaxPageSize)
	}
	switch {
	case s.timeout == 0:
		s.timeout = DefaultTimeout
	case s.timeout < 0:
		bad("timeout %s must be positive", s.timeout)
	}

	// secrets: never quote their values
	if s.bindDN == "" {
		bad("secret bind_dn is required (the service account's DN or UPN)")
	}
	if s.bindPass == "" {
		bad("secret bind_password is required")
	}

	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", connectors.ErrInvalidConfig, strings.Join(problems, "; "))
	}
	return s, nil
}

// parseDN parses a non-empty DN.
func parseDN(s string) (*goldap.DN, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty DN")
	}
	dn, err := goldap.ParseDN(s)
	if err != nil {
		return nil, fmt.Errorf("not a valid DN: %w", err)
	}
	if len(dn.RDNs) == 0 {
		return nil, errors.New("empty DN")
	}
	return dn, nil
}

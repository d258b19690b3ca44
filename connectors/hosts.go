package connectors

import (
	"fmt"
	"net"
	"regexp"
	"strings"
)

// VendorHosted is implemented by the Config of a connector that calls a
// vendor's cloud API (the PSA connectors). Its credentials must only go to
// the vendor's documented cloud hosts or to hosts the operator allows (a
// self-hosted instance, a test server): see CheckHost.
type VendorHosted interface {
	// APIHost returns the setting that names the host the connection calls
	// (such as "base_url"), the host, and whether it is one of the vendor's
	// documented cloud hosts. host is "" when the settings name no valid
	// host: Open reports that.
	APIHost() (key, host string, vendorCloud bool)
}

// CheckHost refuses a VendorHosted config whose host is neither one of its
// vendor's cloud hosts nor matched by allowed (patterns as
// CheckHostPattern accepts). Other configs pass. The error is a *KeyError
// naming the setting.
func CheckHost(cfg Config, allowed []string) error {
	vh, ok := cfg.(VendorHosted)
	if !ok {
		return nil
	}
	key, host, vendorCloud := vh.APIHost()
	if host == "" || vendorCloud || MatchHost(host, allowed) {
		return nil
	}
	return &KeyError{Section: "settings", Key: key, Problem: fmt.Sprintf(
		"%s is not one of the vendor's cloud hosts; the operator may allow it (a self-hosted instance) in SELFSERVE_ALLOWED_PSA_HOSTS", host)}
}

// MatchHost reports whether host matches one of patterns: a pattern is a
// host name or IP address (matched exactly, ignoring case) or "*.domain"
// (any host below domain, not domain itself).
func MatchHost(host string, patterns []string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if host == p {
			return true
		}
	}
	return false
}

var hostNameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// CheckHostPattern checks one pattern of an allowed-hosts list: a host
// name, an IP address, or "*." and a domain. No scheme, port or path.
func CheckHostPattern(p string) error {
	p = strings.ToLower(strings.TrimSpace(p))
	if net.ParseIP(p) != nil {
		return nil
	}
	name, wildcard := strings.CutPrefix(p, "*.")
	switch {
	case p == "":
		return fmt.Errorf("an empty host")
	case !hostNameRE.MatchString(name):
		return fmt.Errorf("%q is not a host name, an IP address or *.domain (no scheme, port or path)", p)
	case wildcard && !strings.Contains(name, "."):
		return fmt.Errorf("%q allows a whole top-level domain: name a domain such as *.example.com", p)
	}
	return nil
}

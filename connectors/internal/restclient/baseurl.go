package restclient

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ParseBaseURL checks an API base URL setting and returns it with its path
// set: defaultPath when the setting has none ("https://acme.huducloud.com" →
// "https://acme.huducloud.com/api/v1"), the setting's own path otherwise (a
// self-hosted instance's codebase). The scheme must be https; plain http is
// accepted only for loopback hosts (test servers), so that keys never cross a
// network in clear. The error describes the problem for a config report.
func ParseBaseURL(raw, defaultPath string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", raw)
	}
	switch {
	case u.Scheme == "" || u.Host == "":
		return nil, fmt.Errorf("%q must be an absolute URL such as https://host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("must not contain credentials; put them in the connection's secrets")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%q must not have a query or fragment", raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("%q must use https (http is allowed only for loopback test servers)", raw)
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%q must use https", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if u.Path == "" {
		u.Path = defaultPath
	}
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

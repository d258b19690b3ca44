package selfserve

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The client's address, for rate limits and the audit.
//
// The public listener sits behind a TLS-terminating proxy, so the peer is
// usually the proxy. X-Forwarded-For is believed only when the peer is one
// of the configured proxies (SELFSERVE_TRUSTED_PROXIES); the header is then
// read from the right, skipping trusted proxies, and the first address that
// is not one is the client. Anything a client writes to the left of that is
// ignored, so a client cannot choose its own address. With no trusted
// proxies, the peer's address is the client.

// clientIP returns the request's client address as the trusted proxies
// tell it.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: stop believing the header
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP finds a request's client address: the peer, or, when the peer is
// a trusted proxy, the right-most address in X-Forwarded-For that is not
// itself a trusted proxy (addresses to its left are the client's own claim).
type ClientIP struct {
	trusted []netip.Prefix
}

// NewClientIP trusts X-Forwarded-For from peers within the given prefixes.
func NewClientIP(trusted []netip.Prefix) *ClientIP { return &ClientIP{trusted: trusted} }

func (c *ClientIP) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Of returns the client address of r.
func (c *ClientIP) Of(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !c.isTrusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr // garbage: stop at the last address we could trust
			}
			addr = a.Unmap()
			if !c.isTrusted(addr) {
				return addr
			}
		}
	}
	return addr
}

package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// The settings that are lists of network names, parsed into the typed
// values the server takes (auth.NewClientIP, httpx.CORS).

// parsePrefixes parses TRUSTED_PROXIES: a comma-separated list of addresses
// and CIDR prefixes; an address is the prefix of that one address.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// parseOrigins parses CORS_ORIGINS: comma-separated origins, each exactly as
// a browser sends it in the Origin header (scheme://host[:port], lower case,
// no default port, no path), since CORS compares them byte for byte. It
// refuses "*" and "null": apikeyd allows only the origins it is told.
func parseOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" || o == "null" {
			return nil, fmt.Errorf("%q is not allowed: list each origin, such as https://app.example.com", o)
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil ||
			u.Opaque != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Path != "" ||
			o != u.Scheme+"://"+u.Host || strings.ToLower(u.Host) != u.Host ||
			u.Scheme == "https" && u.Port() == "443" || u.Scheme == "http" && u.Port() == "80" {
			return nil, fmt.Errorf("%q is not an origin as browsers send it: scheme://host[:port] in lower case, without a default port, path or trailing slash, such as https://app.example.com", o)
		}
		out = append(out, o)
	}
	return out, nil
}

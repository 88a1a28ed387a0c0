package httpx

import (
	"fmt"
	"net/url"
	"strings"
)

// ParseOrigins parses CORS_ORIGINS: comma-separated origins, each exactly as
// a browser sends it in the Origin header (scheme://host[:port], lower case,
// no default port, no path), since CORS compares them byte for byte. It
// refuses "*" and "null": apikeyd allows only the origins it is told.
func ParseOrigins(s string) ([]string, error) {
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

// Package outbound holds what apikeyd's own outgoing HTTP requests share (a
// webhook delivery, the fetch of a JWKS or of a leak report key set): their
// errors never quote the URL they went to.
package outbound

import (
	"net/url"
)

// WithoutURL returns the error of one of apikeyd's own outgoing requests
// without the URL that a *url.Error quotes: a configured URL may carry
// credentials, and such errors are logged.
func WithoutURL(err error) error {
	if u, ok := err.(*url.Error); ok { // as http.Client.Do returns it
		return u.Err
	}
	return err
}

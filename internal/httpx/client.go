package httpx

import (
	"net/url"
)

// WithoutURL returns the error of one of apikeyd's own outgoing requests
// (a webhook delivery, a key set fetch) without the URL that a *url.Error
// quotes: a configured URL may carry credentials, and such errors are
// logged.
func WithoutURL(err error) error {
	if u, ok := err.(*url.Error); ok { // as http.Client.Do returns it
		return u.Err
	}
	return err
}

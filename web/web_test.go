package web

import (
	"net/http"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                         false,
		"gzip":                     true,
		"gzip, deflate, br, zstd":  true,
		"br;q=1.0, GZIP;q=0.5":     true,
		"identity":                 false,
		"gzip;q=0":                 false,
		"deflate, gzip; q=0.000":   false,
		"x-gzip":                   false,
		"br, gzip;q=0.1, identity": true,
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", header)
		if got := acceptsGzip(r); got != want {
			t.Errorf("Accept-Encoding %q: acceptsGzip %v, want %v", header, got, want)
		}
	}
}

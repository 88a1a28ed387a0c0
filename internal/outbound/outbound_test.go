package outbound_test

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/outbound"
)

func TestWithoutURL(t *testing.T) {
	// A port nothing listens on: the request fails in the transport.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const secret = "s3cr3t-in-the-url"
	_, doErr := http.Get("http://user:" + secret + "@" + addr + "/keys?token=" + secret)
	if doErr == nil {
		t.Fatal("request to a closed port succeeded")
	}
	if !strings.Contains(doErr.Error(), secret) {
		t.Fatalf("the transport error no longer quotes its URL (%q): this test proves nothing", doErr)
	}

	plain := errors.New("status 500")
	for name, tc := range map[string]struct {
		in   error
		want func(error) bool
	}{
		"transport error": {doErr, func(err error) bool { return err != nil && !strings.Contains(err.Error(), secret) }},
		"other error":     {plain, func(err error) bool { return err == plain }},
		"nil":             {nil, func(err error) bool { return err == nil }},
	} {
		t.Run(name, func(t *testing.T) {
			if got := outbound.WithoutURL(tc.in); !tc.want(got) {
				t.Errorf("WithoutURL(%v) = %v", tc.in, got)
			}
		})
	}
}

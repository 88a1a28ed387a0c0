package config

import (
	"slices"
	"testing"
)

func TestParseOrigins(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: ""},
		{in: " , ,"},
		{in: "https://app.example.com", want: []string{"https://app.example.com"}},
		{in: "https://a.example, http://127.0.0.1:3000 ,http://[::1]:8080", want: []string{"https://a.example", "http://127.0.0.1:3000", "http://[::1]:8080"}},
		{in: "https://a.example:8443", want: []string{"https://a.example:8443"}},
		{in: "*", bad: true},
		{in: "https://a.example,null", bad: true},
		{in: "https://A.example", bad: true},
		{in: "HTTPS://a.example", bad: true},
		{in: "https://a.example/", bad: true},
		{in: "https://a.example/app", bad: true},
		{in: "https://a.example:443", bad: true},
		{in: "http://a.example:80", bad: true},
		{in: "https://a.example?x", bad: true},
		{in: "https://a.example?", bad: true},
		{in: "https://a.example#x", bad: true},
		{in: "https://user@a.example", bad: true},
		{in: "ftp://a.example", bad: true},
		{in: "a.example", bad: true},
		{in: "https://", bad: true},
		{in: "mailto:x@a.example", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseOrigins(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("ParseOrigins(%q) error = %v, want error %v", tc.in, err, tc.bad)
			}
			if !tc.bad && !slices.Equal(got, tc.want) {
				t.Errorf("ParseOrigins(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

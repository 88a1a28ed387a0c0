package model

import (
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// UsageRange is the range of a usage report as GraphQL's arguments give it:
// the enum's value is the REST granularity in upper case.
func UsageRange(g *UsageGranularity, from, to *time.Time) apikey.UsageRange {
	r := apikey.UsageRange{From: from, To: to}
	if g != nil {
		r.Granularity = apikey.Granularity(strings.ToLower(string(*g)))
	}
	return r
}

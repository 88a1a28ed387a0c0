package rest

import (
	"net/http"
	"net/url"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// countsJSON is the counts of a bucket or a key's totals, by outcome.
type countsJSON struct {
	Valid             int64 `json:"valid"`
	Disabled          int64 `json:"disabled"`
	IPNotAllowed      int64 `json:"ip_not_allowed"`
	InsufficientScope int64 `json:"insufficient_scope"`
	RateLimited       int64 `json:"rate_limited"`
	UsageExceeded     int64 `json:"usage_exceeded"`
	CreditsSpent      int64 `json:"credits_spent"`
}

func countsOf(c apikey.Counts) countsJSON {
	return countsJSON{
		Valid:             c.Valid,
		Disabled:          c.Disabled,
		IPNotAllowed:      c.IPNotAllowed,
		InsufficientScope: c.InsufficientScope,
		RateLimited:       c.RateLimited,
		UsageExceeded:     c.UsageExceeded,
		CreditsSpent:      c.CreditsSpent,
	}
}

type bucketJSON struct {
	Start string `json:"start"`
	countsJSON
}

type usageJSON struct {
	Granularity apikey.Granularity `json:"granularity"`
	Buckets     []bucketJSON       `json:"buckets"`
}

func usageOf(u apikey.Usage) usageJSON {
	out := usageJSON{Granularity: u.Granularity, Buckets: make([]bucketJSON, len(u.Buckets))}
	for i, b := range u.Buckets {
		out.Buckets[i] = bucketJSON{Start: apitime.Format(b.Start), countsJSON: countsOf(b.Counts)}
	}
	return out
}

// keyUsage answers GET /auth/api-keys/{id}/usage.
func (a *API) keyUsage(w http.ResponseWriter, r *http.Request) {
	in, err := usageRange(r.URL.Query())
	if err == nil {
		var u apikey.Usage
		if u, err = a.svc.KeyUsage(r.Context(), r.PathValue("id"), in); err == nil {
			httpx.WriteJSON(w, http.StatusOK, usageOf(u))
			return
		}
	}
	httpx.WriteError(w, r, a.log, err)
}

// usageSummary answers GET /auth/usage.
func (a *API) usageSummary(w http.ResponseWriter, r *http.Request) {
	in, err := usageRange(r.URL.Query())
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	s, err := a.svc.UsageSummary(r.Context(), in)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	type keyTotalsJSON struct {
		KeyID     string  `json:"key_id"`
		KeyPrefix string  `json:"key_prefix"`
		Name      *string `json:"name"`
		countsJSON
	}
	out := struct {
		usageJSON
		Keys []keyTotalsJSON `json:"keys"`
	}{usageJSON: usageOf(s.Usage), Keys: make([]keyTotalsJSON, len(s.Keys))}
	for i, k := range s.Keys {
		out.Keys[i] = keyTotalsJSON{KeyID: k.KeyID, KeyPrefix: k.KeyPrefix, Name: k.Name, countsJSON: countsOf(k.Counts)}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// usageRange reads the granularity, from and to parameters of a usage
// report, each optional and given at most once; their rules are the
// service's (apikey.UsageRange).
// Returns INVALID_REQUEST naming a parameter that is repeated, empty or,
// for from and to, not a timestamp.
func usageRange(q url.Values) (apikey.UsageRange, error) {
	var r apikey.UsageRange
	for _, p := range []struct {
		name string
		set  func(string) error
	}{
		{"granularity", func(v string) error { r.Granularity = apikey.Granularity(v); return nil }},
		{"from", func(v string) error { return parseBound(&r.From, "from", v) }},
		{"to", func(v string) error { return parseBound(&r.To, "to", v) }},
	} {
		vs, ok := q[p.name]
		if !ok {
			continue
		}
		if len(vs) > 1 || vs[0] == "" {
			return r, apperr.Errorf(apperr.InvalidRequest, "%s must be given once, not empty", p.name)
		}
		if err := p.set(vs[0]); err != nil {
			return r, err
		}
	}
	return r, nil
}

func parseBound(dst **time.Time, name, v string) error {
	t, err := apitime.Parse(name, v)
	*dst = &t
	return err
}

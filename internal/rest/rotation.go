package rest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// roll answers POST /auth/api-keys/{id}/roll: 201 with the new key, as a
// create does, plus rolled_from.
func (a *API) roll(w http.ResponseWriter, r *http.Request) {
	if !requireJWT(w, r, a.log) {
		return
	}
	grace, err := decodeRoll(w, r)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	k, err := a.svc.Roll(r.Context(), r.PathValue("id"), grace)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	writeCreated(w, k.Created, k.Previous.ID)
}

// decodeRoll reads the optional body of a roll: the grace period, 0 when
// absent. Unknown fields are ignored, as on create. Its range is the
// service's to check.
func decodeRoll(w http.ResponseWriter, r *http.Request) (time.Duration, error) {
	b, err := httpx.ReadBody(w, r, httpx.MaxBodyBytes)
	if err != nil || b == nil {
		return 0, err
	}
	var grace time.Duration
	err = httpx.DecodeObject(b, func(name string, dec *json.Decoder) error {
		if name != "grace_period_seconds" {
			return httpx.SkipValue(dec)
		}
		raw, err := httpx.DecodeRaw(dec)
		if err != nil {
			return err
		}
		// Only an integer literal: not 1.5, 1e3, "60" or null.
		n, err := strconv.Atoi(string(raw))
		if err != nil {
			return apikey.ErrBadGrace
		}
		grace = apikey.GraceSeconds(&n)
		return nil
	})
	return grace, err
}

// update answers PATCH /auth/api-keys/{id}: any subset of the fields a
// key's owner may change (docs/usage-policy.md).
func (a *API) update(w http.ResponseWriter, r *http.Request) {
	if !requireJWT(w, r, a.log) {
		return
	}
	in, err := decodeUpdate(w, r)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	k, err := a.svc.Update(r.Context(), r.PathValue("id"), in)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listed(k))
}

// decodeUpdate reads the body of a PATCH: at least one of the fields that
// may change, and nothing else. null clears a field (enabled excepted); an
// absent one is left alone.
func decodeUpdate(w http.ResponseWriter, r *http.Request) (apikey.UpdateInput, error) {
	var in apikey.UpdateInput
	b, err := httpx.ReadBody(w, r, httpx.MaxBodyBytes)
	if err != nil {
		return in, err
	}
	if b == nil {
		return in, errUpdateBody
	}
	seen := false
	err = httpx.DecodeObject(b, func(field string, dec *json.Decoder) (err error) {
		seen = true
		switch field {
		case "name":
			in.Name.Set = true
			in.Name.Value, err = httpx.DecodeNullableString(field, dec)
		case "enabled":
			in.Enabled.Set = true
			in.Enabled.Value, err = decodeEnabled(dec)
		case "rate_limit":
			in.RateLimit.Set = true
			in.RateLimit.Value, err = decodeRateLimit(dec)
		case "credits":
			in.Credits.Set = true
			in.Credits.Value, err = decodeCredits(dec)
		case "allowed_ips":
			in.AllowedIPs.Set = true
			in.AllowedIPs.Value, err = decodeAllowedIPs(dec)
		case "meta":
			in.Meta.Set = true
			in.Meta.Value, err = decodeMeta(dec)
		default:
			err = apperr.Errorf(apperr.InvalidRequest, "%s cannot change: a PATCH changes %s", strconv.Quote(field), updatable)
		}
		return err
	})
	if err == nil && !seen {
		err = errUpdateBody
	}
	return in, err
}

// updatable lists the fields a PATCH may change.
const updatable = "name, enabled, rate_limit, credits, allowed_ips and meta"

var errUpdateBody = apperr.New(apperr.InvalidRequest, "the body must set at least one of "+updatable)

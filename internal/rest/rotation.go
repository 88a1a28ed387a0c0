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
	if _, err := apikey.RequireJWT(r.Context()); err != nil {
		httpx.WriteError(w, r, a.log, err)
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

// rename answers PATCH /auth/api-keys/{id}: only name may change.
func (a *API) rename(w http.ResponseWriter, r *http.Request) {
	if _, err := apikey.RequireJWT(r.Context()); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	name, err := decodeRename(w, r)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	k, err := a.svc.Rename(r.Context(), r.PathValue("id"), name)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, listed(k))
}

// decodeRename reads the body of a rename, which must set name and nothing
// else.
func decodeRename(w http.ResponseWriter, r *http.Request) (*string, error) {
	b, err := httpx.ReadBody(w, r, httpx.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errRenameBody
	}
	var name *string
	seen := false
	err = httpx.DecodeObject(b, func(field string, dec *json.Decoder) error {
		if field != "name" {
			return errOnlyName
		}
		seen = true
		name, err = httpx.DecodeNullableString(field, dec)
		return err
	})
	if err == nil && !seen {
		err = errRenameBody
	}
	return name, err
}

var errRenameBody = apperr.New(apperr.InvalidRequest, `the body must be {"name": "…"}`)
var errOnlyName = apperr.New(apperr.InvalidRequest, "only name may change")

package model

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/org"
)

// KeyScope returns ctx scoped to the organisation a new key is for, when
// the input names one: the service then makes an organisation key.
func KeyScope(ctx context.Context, in *CreateAPIKeyInput) context.Context {
	if in == nil || in.OrganizationID == nil {
		return ctx
	}
	return apikey.WithOrg(ctx, *in.OrganizationID)
}

// KeyOrgScope returns ctx scoped to k's organisation when k is an
// organisation key: what the service reads of it is the organisation's.
func KeyOrgScope(ctx context.Context, k *apikey.APIKey) context.Context {
	if k.OrgID == "" {
		return ctx
	}
	return apikey.WithOrg(ctx, k.OrgID)
}

// OrgUpdateInput returns in for the service: a field left out stays unset,
// a field given is set, maxKeyLifetimeSeconds: null clearing the limit.
// Returns INVALID_REQUEST when name is null: an organisation always has
// one.
func OrgUpdateInput(in UpdateOrganizationInput) (org.UpdateInput, error) {
	out := org.UpdateInput{
		MaxKeyLifetime: optional(in.MaxKeyLifetimeSeconds, func(n *int64) *time.Duration {
			if n == nil {
				return nil
			}
			// Out of range stays out of range, for the service to refuse.
			d := apikey.SecondsUpTo(*n, org.LongestKeyLifetime)
			return &d
		}),
	}
	if name, ok := in.Name.ValueOK(); ok {
		if name == nil {
			return org.UpdateInput{}, apperr.New(apperr.InvalidRequest, "name must be a string")
		}
		out.Name = apikey.Optional[string]{Set: true, Value: *name}
	}
	return out, nil
}

// MaxKeyLifetimeSeconds returns o's key lifetime limit in seconds; nil
// when it has none.
func MaxKeyLifetimeSeconds(o *org.Org) *int64 {
	if o.MaxKeyLifetime <= 0 {
		return nil
	}
	s := int64(o.MaxKeyLifetime / time.Second)
	return &s
}

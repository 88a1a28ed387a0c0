package apikey

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/apikeyd/apikeyd/internal/audit"
)

// Update changes the fields of the key id of the JWT principal of ctx (one
// it may revoke: see Revoke) that in sets (nil clears where the API allows null) and returns the key as
// listed. Setting Credits sets the balance, which the key shares with the
// keys of its lineage. The change is one api_key.updated event whose
// details hold, for each field that really changed, {"old", "new"} in the
// REST shape; a change that changes nothing records none. This server's
// cache forgets the key before Update returns (others when the store's
// notification reaches them), so that the next verification checks the new
// policy.
// Returns INVALID_REQUEST naming the first bad field (and changes nothing),
// NOT_FOUND and INSUFFICIENT_ROLE as Revoke does (a rolled key past its
// grace is gone), and the auth errors of Create.
func (s *Service) Update(ctx context.Context, id string, in UpdateInput) (APIKey, error) {
	next, invalid := checkUpdate(in)
	key, err := s.ownKey(ctx, id, RoleAdmin, invalid, errKeyNotFound)
	if err != nil {
		return APIKey{}, err
	}
	at := s.timestamp()
	k, hash, err := s.store.UpdateKey(ctx, key.owner, key.id, at, func(old APIKey) (KeyUpdate, error) {
		showBalance(&old, at) // the balance a change replaces is the one a spend would find
		k := old
		if in.Name.Set {
			k.Name = next.Name
		}
		if in.Enabled.Set {
			k.Disabled = next.Disabled
		}
		if in.RateLimit.Set {
			k.RateLimit = next.RateLimit
		}
		if in.Credits.Set {
			k.Credits = next.Credits
		}
		if in.AllowedIPs.Set {
			k.AllowedIPs = next.AllowedIPs
		}
		if in.Meta.Set {
			k.Meta = next.Meta
		}
		details := changes(old, k)
		u := KeyUpdate{Key: k}
		if _, ok := details["credits"]; ok {
			u.SetCredits = true
		}
		if len(details) > 0 {
			u.Event = key.event(ctx, audit.KeyUpdated, at)
			u.Event.Details = details
		}
		return u, nil
	})
	if err != nil {
		return APIKey{}, notFoundAs(err, errKeyNotFound)
	}
	s.forget(hash)
	showBalance(&k, at)
	return k, nil
}

// checkUpdate checks the fields in sets and returns them canonical, in a
// key, or the first field's refusal.
func checkUpdate(in UpdateInput) (APIKey, error) {
	var k APIKey
	var err error
	if in.Name.Set {
		if k.Name, err = normalizeName(in.Name.Value); err != nil {
			return APIKey{}, err
		}
	}
	var enabled *bool
	if in.Enabled.Set {
		enabled = &in.Enabled.Value
	}
	var rl *RateLimit
	if in.RateLimit.Set {
		rl = in.RateLimit.Value
	}
	var credits *Credits
	if in.Credits.Set {
		credits = in.Credits.Value
	}
	var ips []string
	if in.AllowedIPs.Set {
		ips = in.AllowedIPs.Value
	}
	var meta json.RawMessage
	if in.Meta.Set {
		meta = in.Meta.Value
	}
	k.Policy, err = newPolicy(CreateInput{Enabled: enabled, RateLimit: rl, Credits: credits, AllowedIPs: ips, Meta: meta})
	return k, err
}

// changes returns, for each field a PATCH may change whose value differs
// between old and k, {"old", "new"} as the REST API writes the field.
func changes(old, k APIKey) map[string]any {
	details := map[string]any{}
	for _, f := range []struct {
		name     string
		was, now any
	}{
		{"name", old.Name, k.Name},
		{"enabled", !old.Disabled, !k.Disabled},
		{"rate_limit", old.RateLimit, k.RateLimit},
		{"credits", old.Credits, k.Credits},
		{"allowed_ips", old.AllowedIPs, k.AllowedIPs},
		{"meta", rawOrNull(old.Meta), rawOrNull(k.Meta)},
	} {
		was, errWas := json.Marshal(f.was)
		now, errNow := json.Marshal(f.now)
		if errWas != nil || errNow != nil || !bytes.Equal(was, now) {
			details[f.name] = map[string]any{"old": json.RawMessage(was), "new": json.RawMessage(now)}
		}
	}
	return details
}

// rawOrNull is meta as JSON: null when there is none.
func rawOrNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("null")
	}
	return m
}

package audit

import "github.com/apikeyd/apikeyd/internal/apitime"

// JSON is an event as the REST API and webhooks show it.
type JSON struct {
	ID         string    `json:"id"`
	Action     string    `json:"action"`
	OccurredAt string    `json:"occurred_at"`
	Actor      ActorJSON `json:"actor"`
	// OrgID is the organisation of an organisation's event (its keys,
	// members and invitations); absent from a personal event, which
	// shows as it did before organisations.
	OrgID     *string        `json:"org_id,omitempty"`
	KeyID     *string        `json:"key_id"`
	KeyPrefix *string        `json:"key_prefix"`
	IP        *string        `json:"ip"`
	UserAgent *string        `json:"user_agent"`
	Details   map[string]any `json:"details"`
}

// ActorJSON is who made a change.
type ActorJSON struct {
	Type string  `json:"type"`
	ID   *string `json:"id"`
}

// ToJSON returns ev as the REST API and webhooks show it.
func (ev Event) ToJSON() JSON {
	d := ev.Details
	if d == nil {
		d = map[string]any{}
	}
	return JSON{
		ID:         ev.ID,
		Action:     ev.Action,
		OccurredAt: apitime.Format(ev.OccurredAt),
		Actor:      ActorJSON{Type: ev.ActorType, ID: opt(ev.ActorID)},
		OrgID:      opt(ev.OrgID),
		KeyID:      opt(ev.KeyID),
		KeyPrefix:  opt(ev.KeyPrefix),
		IP:         opt(ev.IP),
		UserAgent:  opt(ev.UserAgent),
		Details:    d,
	}
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

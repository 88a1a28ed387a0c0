package model

import (
	"encoding/json"

	"github.com/apikeyd/apikeyd/internal/audit"
)

// AuditConnection returns a page of the audit log as a Relay connection:
// each edge's cursor resumes after its node, as the REST next_cursor does.
func AuditConnection(p audit.Page, err error) (AuditEventConnection, error) {
	if err != nil {
		return AuditEventConnection{}, err
	}
	c := AuditEventConnection{Edges: make([]AuditEventEdge, len(p.Events))}
	for i, ev := range p.Events {
		c.Edges[i] = AuditEventEdge{Cursor: audit.EncodeCursor(ev.ID), Node: auditEvent(ev)}
	}
	c.PageInfo.HasNextPage = p.Next != ""
	if n := len(c.Edges); n > 0 {
		c.PageInfo.EndCursor = &c.Edges[n-1].Cursor
	}
	return c, nil
}

// OrDefault returns *n, or def when n is nil.
func OrDefault[T any](n *T, def T) T {
	if n == nil {
		return def
	}
	return *n
}

func auditEvent(ev audit.Event) AuditEvent {
	j := ev.ToJSON()
	details, _ := json.Marshal(j.Details) // a map decoded from JSON always encodes
	d := string(details)
	return AuditEvent{
		ID:         ev.ID,
		Action:     ev.Action,
		OccurredAt: ev.OccurredAt,
		Actor:      AuditActor{Type: j.Actor.Type, ID: j.Actor.ID},
		KeyID:      j.KeyID,
		KeyPrefix:  j.KeyPrefix,
		IP:         j.IP,
		UserAgent:  j.UserAgent,
		Details:    &d,
		OrgID:      j.OrgID,
	}
}

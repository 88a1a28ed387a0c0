// Package webhook delivers audit events to an operator's endpoint following
// the Standard Webhooks specification: each event that Delivered accepts
// (the api_key.* and org.* events) is queued in an outbox in the same transaction as
// the change (see the store), then POSTed at least once, signed, and retried
// along a schedule until it is accepted or given up.
package webhook

import (
	"encoding/json"
	"strings"
)

// Delivered reports whether events of action are delivered as webhooks:
// the api_key.* events (keys, personal and organisations') and the org.*
// events (organisations, their members and invitations). It is the one place that decides; the app hands it
// to the store, which queues those events, and wakes the dispatcher for
// them.
func Delivered(action string) bool {
	return strings.HasPrefix(action, "api_key.") || strings.HasPrefix(action, "org.")
}

// Body returns the body POSTed for a queued event (audit.Queued):
// {"type", "timestamp", "data"}, data being the event as the audit log
// shows it, its queued bytes unchanged, so every attempt sends the same
// body. An entry queued by an apikeyd that queued bodies (before the outbox
// held events) is that body, returned as it is.
func Body(queued []byte) ([]byte, error) {
	var ev struct {
		Action     string          `json:"action"`
		OccurredAt string          `json:"occurred_at"`
		Data       json.RawMessage `json:"data"` // only in a queued body
	}
	if err := json.Unmarshal(queued, &ev); err != nil {
		return nil, err
	}
	if ev.Data != nil {
		return queued, nil
	}
	return json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{ev.Action, ev.OccurredAt, queued})
}

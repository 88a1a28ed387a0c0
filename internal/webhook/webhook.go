// Package webhook delivers audit events to an operator's endpoint following
// the Standard Webhooks specification: each api_key.* event is queued in an
// outbox in the same transaction as the change (see the store), then POSTed
// at least once, signed, and retried along a schedule until it is accepted or
// given up.
package webhook

import (
	"encoding/json"

	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// Body returns the body POSTed for ev: {"type", "timestamp", "data"}, data
// being the event as the audit log shows it. It is built once, when the
// event is queued, and sent unchanged on every attempt.
func Body(ev audit.Event) ([]byte, error) {
	return json.Marshal(struct {
		Type      string     `json:"type"`
		Timestamp string     `json:"timestamp"`
		Data      audit.JSON `json:"data"`
	}{ev.Action, apitime.Format(ev.OccurredAt), ev.ToJSON()})
}

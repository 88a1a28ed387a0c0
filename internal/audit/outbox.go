package audit

import "encoding/json"

// Delivery is an event queued in the outbox (the store writes it in the
// transaction of the change it records), taken for one delivery attempt.
type Delivery struct {
	EventID string
	// Event is what was queued: the event as the audit log shows it (the
	// JSON of Event.ToJSON, from Queued). The receiver (the webhook
	// dispatcher) decides what it sends from it.
	Event   []byte
	Attempt int // 1 for the first attempt
}

// Queued is the form in which ev is queued for delivery: the JSON of
// ev.ToJSON(), as the audit log shows it.
func Queued(ev Event) ([]byte, error) {
	return json.Marshal(ev.ToJSON())
}

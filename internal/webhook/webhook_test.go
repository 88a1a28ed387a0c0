package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/webhook"
)

// queuedBody is the body as apikeyd built it when the outbox held bodies
// (and still queues in rows written then): the reference Body must match.
func queuedBody(t *testing.T, ev audit.Event) []byte {
	t.Helper()
	b, err := json.Marshal(struct {
		Type      string     `json:"type"`
		Timestamp string     `json:"timestamp"`
		Data      audit.JSON `json:"data"`
	}{ev.Action, apitime.Format(ev.OccurredAt), ev.ToJSON()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBody(t *testing.T) {
	ev := audit.New(context.Background(), "alice", audit.KeyUpdated, time.Date(2026, 1, 15, 12, 0, 0, 123_000_000, time.UTC))
	ev.KeyID, ev.KeyPrefix, ev.IP, ev.UserAgent = "0190a1b2-0000-7000-8000-000000000001", "ak_Ab12", "203.0.113.7", "<agent> & co"
	ev.Details = map[string]any{"name": map[string]any{"old": "a <b>", "new": nil}, "scopes": []any{"orders:read"}, "grace_seconds": 3600}
	want := queuedBody(t, ev)

	queued, err := audit.Queued(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := webhook.Body(queued); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Body(queued event) = %s, %v\nwant %s", got, err, want)
	}
	// A row queued before the outbox held events holds the body: sent as is.
	if got, err := webhook.Body(want); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Body(queued body) = %s, %v\nwant %s", got, err, want)
	}
	if _, err := webhook.Body([]byte("not json")); err == nil {
		t.Error("Body of a corrupt entry: no error")
	}
}

func TestDelivered(t *testing.T) {
	for action, want := range map[string]bool{
		audit.KeyCreated: true, audit.KeyUpdated: true, audit.KeyRolled: true, audit.KeyRevoked: true, audit.KeyLeaked: true,
		audit.OrgCreated: true, audit.OrgUpdated: true, audit.OrgDeleted: true,
		audit.OrgMemberAdded: true, audit.OrgMemberRemoved: true, audit.OrgMemberRoleChanged: true,
		audit.OrgInvitationCreated: true, audit.OrgInvitationAccepted: true, audit.OrgInvitationRevoked: true,
		audit.UserRegistered: false, audit.UserLogin: false, audit.UserLoginFailed: false,
	} {
		if got := webhook.Delivered(action); got != want {
			t.Errorf("Delivered(%q) = %v, want %v", action, got, want)
		}
	}
}

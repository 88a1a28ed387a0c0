package audit_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

func TestCleanUserAgent(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"curl/8.5.0", "curl/8.5.0"},
		{"  padded  ", "padded"},
		{"tab\there", "tabhere"},
		{"esc\x1b[31mred\x1b[0m", "esc[31mred[0m"},
		{"new\r\nline", "newline"},
		{"del\x7fc1\u0085", "delc1"},
		{"bad\xffutf8", "badutf8"},
		{strings.Repeat("é", 300), strings.Repeat("é", audit.MaxUserAgent)},
	} {
		if got := audit.CleanUserAgent(c.in); got != c.want {
			t.Errorf("CleanUserAgent(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNewEventCarriesTheOrigin(t *testing.T) {
	ctx := audit.WithOrigin(context.Background(), audit.Origin{Addr: netip.MustParseAddr("192.0.2.1"), RawUserAgent: "ua\x00/1"})
	at := time.Date(2026, 1, 15, 12, 0, 0, 123_456_789, time.UTC)
	ev := audit.New(ctx, "alice", audit.KeyCreated, at)
	if ev.IP != "192.0.2.1" || ev.UserAgent != "ua/1" || ev.ActorType != audit.ActorUser || ev.ActorID != "alice" ||
		ev.UserID != "alice" || !ev.OccurredAt.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("event %+v", ev)
	}
	later := audit.New(ctx, "alice", audit.KeyRevoked, at)
	if later.ID <= ev.ID {
		t.Errorf("ids %s then %s: later events must sort after earlier ones", ev.ID, later.ID)
	}
	if got := audit.New(context.Background(), "bob", audit.UserLogin, at); got.IP != "" || got.UserAgent != "" {
		t.Errorf("no origin: %+v", got)
	}
}

func TestCursors(t *testing.T) {
	ev := audit.New(context.Background(), "alice", audit.KeyCreated, time.Now())
	c := audit.EncodeCursor(ev.ID)
	if id, err := audit.DecodeCursor(c); err != nil || id != ev.ID {
		t.Fatalf("round trip: %q %v", id, err)
	}
	for _, bad := range []string{
		"", "not base64!", "ZTE6", // "e1:" alone
		audit.EncodeCursor("not-a-uuid-but-thirty-six-chars-long"),
		audit.EncodeCursor("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), // a v1 UUID
		audit.EncodeCursor(strings.ToUpper(ev.ID)),
		strings.TrimPrefix(c, "Z"),
	} {
		if _, err := audit.DecodeCursor(bad); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("DecodeCursor(%q) = %v, want INVALID_REQUEST", bad, err)
		}
	}
}

// TestNewServiceNeedsRetention: AUDIT_RETENTION's default is the
// configuration's alone, so a service built without a retention is a
// mistake caught at construction, never a log pruned to nothing.
func TestNewServiceNeedsRetention(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewService took a zero retention")
		}
	}()
	audit.NewService(nil, audit.Config{Principal: func(context.Context) (string, error) { return "", nil }})
}

// Package audit is apikeyd's audit log: one Event per change, written by the
// store in the same transaction as the change itself (so a change that
// commits has exactly one event and one that fails has none), and read back
// by the user it belongs to, newest first. It never holds a secret, a hash or
// a token.
package audit

import (
	"context"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The actions recorded.
const (
	KeyCreated      = "api_key.created"
	KeyUpdated      = "api_key.updated"
	KeyRolled       = "api_key.rolled"
	KeyRevoked      = "api_key.revoked"
	KeyLeaked       = "api_key.leaked"
	UserRegistered  = "user.registered"
	UserLogin       = "user.login"
	UserLoginFailed = "user.login_failed"

	OrgCreated            = "org.created"
	OrgUpdated            = "org.updated"
	OrgDeleted            = "org.deleted"
	OrgMemberAdded        = "org.member.added"
	OrgMemberRemoved      = "org.member.removed"
	OrgMemberRoleChanged  = "org.member.role_changed"
	OrgInvitationCreated  = "org.invitation.created"
	OrgInvitationAccepted = "org.invitation.accepted"
	OrgInvitationRevoked  = "org.invitation.revoked"
)

// The kinds of actor.
const (
	ActorUser       = "user"
	ActorLeakReport = "leak_report"
	ActorSystem     = "system"
)

// MaxUserAgent is the longest user agent kept, in characters.
const MaxUserAgent = 255

// Event is one recorded change.
type Event struct {
	ID     string // a UUIDv7: ids sort in the order events were made
	UserID string // whose log it belongs to
	// OrgID is the organisation whose log the event is also in: set on
	// the events of an organisation, its members, invitations and keys;
	// empty for a personal event.
	OrgID      string
	Action     string
	OccurredAt time.Time
	ActorType  string
	ActorID    string // empty: none
	KeyID      string // empty: none
	KeyPrefix  string // empty: none
	IP         string // empty: unknown
	UserAgent  string // empty: none
	// Details are the action's own facts (see the table of docs/audit.md); nil is
	// an empty object. Never a secret, a hash or a token.
	Details map[string]any
}

// New returns an event of action in userID's log, made by userID at at,
// from the request origin of ctx (see WithOrigin).
func New(ctx context.Context, userID, action string, at time.Time) Event {
	o := OriginOf(ctx)
	return Event{
		ID:         uuid.Must(uuid.NewV7()).String(),
		UserID:     userID,
		Action:     action,
		OccurredAt: at.UTC().Truncate(time.Millisecond),
		ActorType:  ActorUser,
		ActorID:    userID,
		IP:         o.IP(),
		UserAgent:  o.UserAgent(),
	}
}

// Origin is where a request came from, as it arrived. It is formatted and
// cleaned only when recorded (IP, UserAgent): every request carries one, few
// record a change or a key's use.
type Origin struct {
	Addr         netip.Addr // the client address, honouring TRUSTED_PROXIES; invalid: unknown
	RawUserAgent string     // the User-Agent header as sent
}

// IP returns the client address as recorded; empty when unknown.
func (o Origin) IP() string {
	if !o.Addr.IsValid() {
		return ""
	}
	return o.Addr.String()
}

// UserAgent returns the user agent as recorded (see CleanUserAgent).
func (o Origin) UserAgent() string { return CleanUserAgent(o.RawUserAgent) }

type originKey struct{}

// WithOrigin returns ctx carrying o.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginOf returns the origin ctx carries; the zero Origin when none.
func OriginOf(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// CleanUserAgent returns ua valid UTF-8 without control characters, cut to
// MaxUserAgent characters and trimmed: fit to be shown and logged.
func CleanUserAgent(ua string) string {
	var b strings.Builder
	n := 0
	for _, r := range ua {
		if n == MaxUserAgent {
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

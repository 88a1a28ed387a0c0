package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/schema"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// keyRow is a row of api_keys, and the one definition of a key's columns:
// bun's queries take it as their model, and the queries written as text
// select keyColumns, listColumns or lookupColumns and scan through their
// dest, all derived from these fields' tags. A column added to api_keys is
// a field here, its migration pair, its line in newKeyRow and domain, its
// name in lookupColumns if a verification needs it, and, if the key's owner
// sets it, its line in copySettings (roll.go) and its name in
// updatedColumns (update.go).
type keyRow struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID         string     `bun:"id,pk"`
	UserID     string     `bun:"user_id,notnull"` // who made the key; its owner unless OrgID is set
	OrgID      *string    `bun:"org_id"`          // the owning organisation; NULL: a personal key
	KeyHash    string     `bun:"key_hash,notnull"`
	KeyPrefix  string     `bun:"key_prefix,notnull"`
	Name       *string    `bun:"name"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	LastUsedAt *time.Time `bun:"last_used_at"`
	ExpiresAt  *time.Time `bun:"expires_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
	Scopes     *string    `bun:"scopes"` // JSON array; NULL: unrestricted
	ReplacedBy *string    `bun:"replaced_by"`

	// Where the last use came from, written with last_used_at.
	LastUsedIP        *string `bun:"last_used_ip"`
	LastUsedUserAgent *string `bun:"last_used_user_agent"`

	// The usage policy (apikey.Policy) but its credits, which are the
	// lineage's row of credit_balances.
	LineageID  string        `bun:"lineage_id,notnull"`
	Disabled   bool          `bun:"disabled,notnull"`
	RateLimit  sql.NullInt64 `bun:"rate_limit"`          // tokens; NULL: no rate limit
	RatePeriod sql.NullInt64 `bun:"rate_period_seconds"` // NULL exactly when rate_limit is
	AllowedIPs *string       `bun:"allowed_ips"`         // JSON array of prefixes; NULL: anywhere
	Meta       *string       `bun:"meta"`                // JSON object; NULL: none
}

// keyColumns is a key as the store reads it back: every column of keyRow
// but key_hash (a hash is looked up, never returned). The two hot paths read
// less, as each column read costs: listColumns, a listing's unrevoked keys
// (revoked_at is NULL), and lookupColumns, what a verification that misses
// the cache needs (FindKeyByHash). Both are read with the lineage's balance
// (creditColumns).
var (
	keyColumns    = keyRowColumns(func(name string) bool { return name != "key_hash" })
	listColumns   = keyRowColumns(func(name string) bool { return name != "key_hash" && name != "revoked_at" })
	lookupColumns = keyRowColumnsNamed("id", "user_id", "org_id", "key_prefix", "created_at", "expires_at", "revoked_at", "scopes",
		"lineage_id", "disabled", "rate_limit", "rate_period_seconds", "allowed_ips", "meta")
)

// columns are some of keyRow's columns, in keyRow's order.
type columns struct {
	list   string   // "id, user_id, …", for a query's text
	names  []string // the same, one by one
	fields [][]int  // the matching fields' indexes in keyRow
}

// of returns the list qualified by a table's name or alias, for a query
// that joins another table: "k.id, k.user_id, …", with lineage_id read as
// NULL when it is the key's own id (every key but those a roll made), so
// that reading it costs no allocation (see ownLineage).
func (c columns) of(table string) string {
	exprs := make([]string, len(c.names))
	for i, name := range c.names {
		exprs[i] = table + "." + name
		if name == "lineage_id" {
			exprs[i] = "NULLIF(" + table + ".lineage_id, " + table + ".id)"
		}
	}
	return strings.Join(exprs, ", ")
}

// ownLineage scans lineage_id into keyRow.LineageID, NULL as "": the key's
// own id (domain).
type ownLineage string

func (l *ownLineage) Scan(src any) error {
	switch src := src.(type) {
	case nil:
		*l = ""
	case string:
		*l = ownLineage(src)
	case []byte:
		*l = ownLineage(src)
	default:
		return fmt.Errorf("lineage_id: unexpected %T", src)
	}
	return nil
}

// keyRowColumns returns the columns of keyRow that include reports true
// for, from bun's reading of keyRow's tags.
func keyRowColumns(include func(name string) bool) columns {
	var c columns
	for _, f := range schema.NewTables(sqlitedialect.New()).Get(reflect.TypeFor[keyRow]()).Fields {
		if include(f.Name) {
			c.names = append(c.names, f.Name)
			c.fields = append(c.fields, f.Index)
		}
	}
	c.list = strings.Join(c.names, ", ")
	return c
}

// keyRowColumnsNamed returns the named columns, which must all be keyRow's.
func keyRowColumnsNamed(names ...string) columns {
	c := keyRowColumns(func(name string) bool { return slices.Contains(names, name) })
	if len(c.fields) != len(names) {
		panic(fmt.Sprintf("store: not all of %v are columns of keyRow", names))
	}
	return c
}

// destBuf holds a query's scan destinations: on the caller's stack, when
// keyRow and the balance have no more fields than it has room for.
type destBuf [32]any

// dest returns the scan destinations of c in r, in buf. Scanning many rows
// into one r through one dest reflects once per query, not per row:
// rows.Scan gives every pointer field a new value, so r can be copied out
// (domain) after each row.
func (c columns) dest(r *keyRow, buf *destBuf) []any {
	v := reflect.ValueOf(r).Elem()
	dest := buf[:0]
	for i, index := range c.fields {
		if c.names[i] == "lineage_id" {
			dest = append(dest, (*ownLineage)(&r.LineageID))
			continue
		}
		dest = append(dest, v.FieldByIndex(index).Addr().Interface())
	}
	return dest
}

// creditColumns are the lineage's balance as a key is read with it: the
// columns of credit_balances c, joined on c.lineage_id = k.lineage_id by a
// LEFT JOIN (all NULL when the lineage has no balance), in the order of
// joinedCredits.dest.
const creditColumns = "c.remaining, c.refill_amount, c.refill_interval, c.refill_day, c.refill_at"

// joinedCredits is a balance read through creditColumns.
type joinedCredits struct {
	Remaining sql.NullInt64
	refillColumns
	RefillAt sql.NullTime
}

// dest appends the scan destinations of creditColumns to dest.
func (c *joinedCredits) dest(dest []any) []any {
	return append(dest, &c.Remaining, &c.RefillAmount, &c.RefillInterval, &c.RefillDay, &c.RefillAt)
}

// credits is the balance c holds, or nil when the lineage has none
// (unlimited).
func (c *joinedCredits) credits() *apikey.Credits {
	if !c.Remaining.Valid {
		return nil
	}
	refill, ok := c.refill()
	if !ok {
		return &apikey.Credits{Remaining: c.Remaining.Int64}
	}
	// One allocation for both.
	both := &struct {
		apikey.Credits
		refill apikey.Refill
	}{Credits: apikey.Credits{Remaining: c.Remaining.Int64, RefillAt: c.RefillAt.Time.UTC()}, refill: refill}
	both.Refill = &both.refill
	return &both.Credits
}

// keyWithCredits is a key read with its lineage's balance.
type keyWithCredits struct {
	keyRow
	credits joinedCredits
}

// destWithCredits returns the scan destinations of c, then creditColumns,
// in r.
func (c columns) destWithCredits(r *keyWithCredits, buf *destBuf) []any {
	return r.credits.dest(c.dest(&r.keyRow, buf))
}

// decode is the key r holds, with its credits (decodeKey).
func (r *keyWithCredits) decode() (apikey.APIKey, error) {
	k, err := decodeKey(&r.keyRow)
	k.Credits = r.credits.credits()
	return k, err
}

// newKeyRow is the row that stores k: the one conversion of a key to a row.
// A key without a lineage is its own.
func newKeyRow(k apikey.NewKey) *keyRow {
	r := &keyRow{
		ID:         k.ID,
		UserID:     k.UserID,
		OrgID:      nullable(k.OrgID),
		KeyHash:    k.Hash,
		KeyPrefix:  k.KeyPrefix,
		Name:       k.Name,
		CreatedAt:  k.CreatedAt,
		LastUsedAt: k.LastUsedAt,
		ExpiresAt:  k.ExpiresAt,
		RevokedAt:  k.RevokedAt,
		Scopes:     encodeStrings(k.Scopes),
		ReplacedBy: k.ReplacedBy,

		LastUsedIP:        k.LastUsedIP,
		LastUsedUserAgent: k.LastUsedUserAgent,

		LineageID: cmp.Or(k.Lineage, k.ID),
	}
	r.setPolicy(k.Policy)
	return r
}

// setPolicy sets the columns of p in r (all of p but its credits).
func (r *keyRow) setPolicy(p apikey.Policy) {
	r.Disabled = p.Disabled
	r.RateLimit, r.RatePeriod = sql.NullInt64{}, sql.NullInt64{}
	if p.RateLimit != nil {
		r.RateLimit = sql.NullInt64{Int64: p.RateLimit.Limit, Valid: true}
		r.RatePeriod = sql.NullInt64{Int64: int64(p.RateLimit.Period / time.Second), Valid: true}
	}
	r.AllowedIPs = encodeAllowedIPs(p.AllowedIPs)
	r.Meta = nil
	if len(p.Meta) > 0 && string(p.Meta) != "null" {
		meta := string(p.Meta)
		r.Meta = &meta
	}
}

// domain is the key r holds, its scopes and allowed addresses not decoded
// (decodeKey) and without credits: the one conversion of a row to a key.
// Its times are r's, set to UTC in place.
func (r *keyRow) domain() apikey.APIKey {
	r.CreatedAt = r.CreatedAt.UTC()
	toUTC(r.LastUsedAt)
	toUTC(r.ExpiresAt)
	toUTC(r.RevokedAt)
	k := apikey.APIKey{
		ID:         r.ID,
		UserID:     r.UserID,
		OrgID:      deref(r.OrgID),
		KeyPrefix:  r.KeyPrefix,
		Name:       r.Name,
		CreatedAt:  r.CreatedAt,
		LastUsedAt: r.LastUsedAt,
		ExpiresAt:  r.ExpiresAt,
		RevokedAt:  r.RevokedAt,
		ReplacedBy: r.ReplacedBy,

		LastUsedIP:        r.LastUsedIP,
		LastUsedUserAgent: r.LastUsedUserAgent,

		Policy:  apikey.Policy{Disabled: r.Disabled},
		Lineage: cmp.Or(r.LineageID, r.ID),
	}
	if r.RateLimit.Valid {
		k.RateLimit = &apikey.RateLimit{Limit: r.RateLimit.Int64, Period: time.Duration(r.RatePeriod.Int64) * time.Second}
	}
	if r.Meta != nil {
		k.Meta = json.RawMessage(*r.Meta)
	}
	return k
}

// decodeKey is r.domain() with its JSON arrays (scopes, allowed_ips)
// decoded; one that does not decode fails naming the row.
func decodeKey(r *keyRow) (apikey.APIKey, error) {
	k := r.domain()
	var err error
	if k.Scopes, err = decodeScopes(r.Scopes); err != nil {
		return k, rowError("api_keys", r.ID, err)
	}
	if k.AllowedIPs, err = decodeAllowedIPs(r.AllowedIPs); err != nil {
		return k, rowError("api_keys", r.ID, err)
	}
	return k, nil
}

// encodeStrings writes a list as stored: a JSON array, or NULL (nil) for a
// nil list (for scopes: an unrestricted key).
func encodeStrings(list []string) *string {
	if list == nil {
		return nil
	}
	b, _ := json.Marshal(list) // a []string always marshals
	s := string(b)
	return &s
}

// encodeAllowedIPs writes a key's allowed addresses as stored: a JSON array
// of prefixes, or NULL (nil) for a key usable from anywhere.
func encodeAllowedIPs(ips []netip.Prefix) *string {
	if ips == nil {
		return nil
	}
	list := make([]string, len(ips))
	for i, p := range ips {
		list[i] = p.String()
	}
	return encodeStrings(list)
}

// decodeScopes reads a stored scopes column; NULL is nil (unrestricted) and
// '[]' an empty, non-nil list.
func decodeScopes(col *string) ([]string, error) {
	if col == nil {
		return nil, nil
	}
	if scopes, ok := plainScopes(*col); ok {
		return scopes, nil
	}
	scopes := []string{}
	if err := json.Unmarshal([]byte(*col), &scopes); err != nil {
		return nil, fmt.Errorf("scopes: not a JSON array of strings: %w", err)
	}
	return scopes, nil
}

// decodeAllowedIPs reads a stored allowed_ips column; NULL is nil
// (anywhere) and '[]' an empty, non-nil list.
func decodeAllowedIPs(col *string) ([]netip.Prefix, error) {
	if col == nil {
		return nil, nil
	}
	if ips, ok := plainArray(*col, parsePrefix); ok {
		return ips, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(*col), &list); err != nil || list == nil {
		return nil, fmt.Errorf("allowed_ips: not a JSON array of strings: %w", err)
	}
	ips := make([]netip.Prefix, len(list))
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("allowed_ips: %w", err)
		}
		ips[i] = p
	}
	return ips, nil
}

func parsePrefix(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

// plainScopes reads the form encodeStrings writes for scopes (scope names
// are letters, digits and _ . : -) with one allocation; it runs for every
// key of every listing. It reports false for anything else, which
// encoding/json then reads.
func plainScopes(col string) ([]string, bool) {
	return plainArray(col, func(s string) (string, bool) { return s, true })
}

// plainArray reads the form encodeStrings writes, a JSON array of strings
// with no space and nothing escaped, each item read by item, with one
// allocation (for the slice). It reports false for anything else, or when
// item does.
func plainArray[T any](col string, item func(string) (T, bool)) ([]T, bool) {
	if len(col) < 2 || col[0] != '[' || col[len(col)-1] != ']' {
		return nil, false
	}
	body := col[1 : len(col)-1]
	if body == "" {
		return []T{}, true
	}
	out := make([]T, 0, strings.Count(body, ",")+1)
	for s := range strings.SplitSeq(body, ",") {
		if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' || strings.ContainsAny(s[1:len(s)-1], "\"\\ \t\r\n") {
			return nil, false
		}
		v, ok := item(s[1 : len(s)-1])
		if !ok {
			return nil, false
		}
		out = append(out, v)
	}
	return out, true
}

// toUTC sets *t, when t is not nil, to UTC in place.
func toUTC(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}

// Store is the bun implementation of apikey.Store.
type Store struct {
	db            *bun.DB
	findKeyByHash *statement
	listKeys      *statement
	listOrgKeys   *statement
	spendCredits  *statement
	readCredits   *statement

	queue   func(action string) bool // Config.Queue
	onEvent func(action string)      // Config.OnEvent
}

var _ apikey.Store = (*Store)(nil)

// Config is what a Store does besides storing.
type Config struct {
	// Queue says which events to queue in the outbox for delivery, in the
	// transaction that records them (webhook.Delivered); nil: none.
	Queue func(action string) bool
	// OnEvent is told the action of every event once it is committed (for
	// metrics, and to wake the delivery of a queued one); nil: nobody.
	OnEvent func(action string)
}

// New returns a Store over db, whose schema must be migrated.
func New(db *bun.DB, cfg Config) *Store {
	return &Store{
		db:            db,
		findKeyByHash: newStatement(db, findKeyByHashQuery),
		listKeys:      newStatement(db, listKeysQuery(apikey.OwnerUser)),
		listOrgKeys:   newStatement(db, listKeysQuery(apikey.OwnerOrg)),
		spendCredits:  newStatement(db, spendCreditsQuery),
		readCredits:   newStatement(db, readCreditsQuery),
		queue:         cfg.Queue,
		onEvent:       cfg.OnEvent,
	}
}

// CreateKey implements apikey.Store, inserting the key and, when it has
// credits, its lineage's balance. The count and the inserts run in one
// transaction that holds a per-owner lock (PostgreSQL: an advisory lock;
// SQLite: the database write lock, taken at BEGIN IMMEDIATE), so concurrent
// creates cannot together exceed max. An organisation key's organisation
// is read in the same transaction (PostgreSQL: FOR SHARE, so that a
// concurrent deletion waits for the key and then revokes it too).
func (s *Store) CreateKey(ctx context.Context, k apikey.NewKey, max int) error {
	row := newKeyRow(k)
	owner := k.Owner()
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if IsPostgresDB(tx) {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", ownerLock(owner)); err != nil {
				return err
			}
		}
		if owner.Type == apikey.OwnerOrg {
			if err := lockLiveOrg(ctx, tx, owner.ID); err != nil {
				return err
			}
		}
		n, err := activeKeys(tx, owner).Where(notGone, k.CreatedAt).Count(ctx)
		if err != nil {
			return err
		}
		if n >= int64(max) {
			if owner.Type == apikey.OwnerOrg {
				return apperr.Errorf(apperr.KeyLimitReached, "this organisation already has %d active API keys; revoke one first", max)
			}
			return apperr.Errorf(apperr.KeyLimitReached, "you already have %d active API keys; revoke one first", max)
		}
		if _, err = tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return err
		}
		if k.Credits != nil {
			if _, err := setCredits(ctx, tx, row.LineageID, k.Credits, k.CreatedAt); err != nil {
				return err
			}
		}
		return s.recordChangeEvent(ctx, tx, k.Event)
	})
	if err != nil {
		return translate(err)
	}
	s.changeEventWritten(k.Event)
	return nil
}

// InsertKeys inserts keys as they are, in one statement (and the balances
// of those with credits in another), with no per-user limit and no event:
// it fills a database for a benchmark (bench/seed).
func InsertKeys(ctx context.Context, db bun.IDB, keys []apikey.NewKey) error {
	rows := make([]*keyRow, len(keys))
	var balances []*creditsRow
	for i, k := range keys {
		rows[i] = newKeyRow(k)
		if k.Credits != nil {
			balances = append(balances, newCreditsRow(rows[i].LineageID, k.Credits, k.CreatedAt))
		}
	}
	if _, err := db.NewInsert().Model(&rows).Exec(ctx); err != nil {
		return translate(err)
	}
	if len(balances) > 0 {
		_, err := db.NewInsert().Model(&balances).Exec(ctx)
		return translate(err)
	}
	return nil
}

// notGone is the condition, given the time now, that a key was not rolled
// or its grace has not ended (a rolled key always has an expires_at).
const notGone = "(replaced_by IS NULL OR expires_at > ?)"

// activeKeys selects an owner's unrevoked keys.
func activeKeys(db bun.IDB, owner apikey.Owner) *bun.SelectQuery {
	cond, arg := ownedBy("", owner)
	return db.NewSelect().Model((*keyRow)(nil)).
		Where(cond, arg).
		Where("revoked_at IS NULL")
}

// KeyOwner implements apikey.Store.
func (s *Store) KeyOwner(ctx context.Context, id string) (apikey.Owner, error) {
	var r keyRow
	err := s.db.NewSelect().Model(&r).Column("user_id", "org_id").
		Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return apikey.Owner{}, errNotFound
	}
	if err != nil {
		return apikey.Owner{}, translate(err)
	}
	k := apikey.APIKey{UserID: r.UserID, OrgID: deref(r.OrgID)}
	return k.Owner(), nil
}

// ListKeys implements apikey.Store with a prepared statement, each key
// with its lineage's balance.
func (s *Store) ListKeys(ctx context.Context, owner apikey.Owner) ([]apikey.APIKey, error) {
	list := s.listKeys
	if owner.Type == apikey.OwnerOrg {
		list = s.listOrgKeys
	}
	rows, err := list.query(ctx, owner.ID)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	keys := make([]apikey.APIKey, 0, 8)
	var r keyWithCredits
	var buf destBuf
	dest := listColumns.destWithCredits(&r, &buf)
	for rows.Next() {
		r = keyWithCredits{} // a row that does not scan is not named by the last one's id
		if err := rows.Scan(dest...); err != nil {
			return nil, rowError("api_keys", r.ID, err)
		}
		k, err := r.decode()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return keys, nil
}

// RevokeKey implements apikey.Store with one conditional UPDATE … RETURNING,
// so of many concurrent revokes of one key exactly one changes a row and
// learns the key's hash; that one records ev (completed with the key's id
// and prefix) in the same transaction. On PostgreSQL the same statement
// publishes the hash on RevocationChannel (pg_notify in a data-modifying
// WITH query), delivered to every listening server when, and only if, the
// revocation commits.
func (s *Store) RevokeKey(ctx context.Context, owner apikey.Owner, id string, at time.Time, ev audit.Event) (string, error) {
	cond, arg := ownedBy("", owner)
	return s.revoke(ctx, ev, func(db bun.IDB) *bun.UpdateQuery {
		return db.NewUpdate().Model((*keyRow)(nil)).
			Set("revoked_at = ?", at).
			Where("id = ?", id).
			Where(cond, arg).
			Where("revoked_at IS NULL").
			Where(notGone, at)
	})
}

// revoke runs, in one transaction, the update that update builds on it (a
// conditional UPDATE of api_keys that sets revoked_at on at most one
// unrevoked row) through updateAndNotify, and records ev about the key it
// changed (changedKey.event). Every revocation goes through here, so every
// one reaches the other servers and the audit log. Returns the key's hash,
// or apperr.NotFound when no row changed (and nothing is recorded).
func (s *Store) revoke(ctx context.Context, ev audit.Event, update func(bun.IDB) *bun.UpdateQuery) (string, error) {
	var k changedKey
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if k, err = updateAndNotify(ctx, tx, update(tx)); err != nil {
			return err
		}
		ev = k.event(ev)
		return s.recordChangeEvent(ctx, tx, ev)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNotFound
	}
	if err != nil {
		return "", translate(err)
	}
	s.changeEventWritten(ev)
	return k.Hash, nil
}

// changedKey is the key an update changed: its hash for the other servers'
// caches, the rest for the audit log.
type changedKey struct {
	ID, UserID, Prefix, Hash string
	OrgID                    *string // NULL: a personal key
}

// event completes ev (unless it is the zero Event) with the key it is about:
// its id and prefix, and, when ev names none, the user who made it and its
// organisation (an event made by no user: a leak report).
func (k changedKey) event(ev audit.Event) audit.Event {
	if ev.ID == "" {
		return ev
	}
	if ev.UserID == "" {
		ev.UserID = k.UserID
	}
	if ev.OrgID == "" {
		ev.OrgID = deref(k.OrgID)
	}
	ev.KeyID, ev.KeyPrefix = k.ID, k.Prefix
	return ev
}

// updateAndNotify runs update, which changes at most one key in a way every
// server's cache must learn of (a revocation, a roll), through
// notifyingUpdate, and returns the key. Returns sql.ErrNoRows when no row
// changed.
func updateAndNotify(ctx context.Context, db bun.IDB, update *bun.UpdateQuery) (k changedKey, err error) {
	q, notifies := notifyingUpdate(db, update)
	dest := []any{&k.ID, &k.UserID, &k.OrgID, &k.Prefix, &k.Hash}
	var notified string
	if notifies {
		dest = append(dest, &notified)
	}
	err = q.Scan(ctx, dest...)
	return k, err
}

// notifyingUpdate returns update, which changes keys in a way every
// server's cache must learn of (a revocation, a roll), as the query that
// runs it and returns each changed key's id, user_id, org_id, key_prefix
// and key_hash. On PostgreSQL (notifies) the same statement publishes each
// hash on RevocationChannel (pg_notify in a data-modifying WITH query),
// delivered to every listening server when, and only if, the change
// commits; its result is one more column, to scan as a string.
func notifyingUpdate(db bun.IDB, update *bun.UpdateQuery) (q interface {
	Scan(ctx context.Context, dest ...any) error
}, notifies bool) {
	update = update.Returning("id, user_id, org_id, key_prefix, key_hash")
	if !IsPostgresDB(db) {
		return update, false
	}
	// pg_notify returns void, which has no binary form: cast it.
	return db.NewSelect().
		With("changed", update).
		TableExpr("changed").
		ColumnExpr("id::text, user_id, org_id, key_prefix, key_hash").
		ColumnExpr("pg_notify(?, key_hash)::text", RevocationChannel), true
}

// FindKeyByHash implements apikey.Store with a prepared statement, through
// the unique index on key_hash, the key with its lineage's balance. Revoked
// keys are returned too: the caller checks RevokedAt.
func (s *Store) FindKeyByHash(ctx context.Context, hash string) (apikey.APIKey, error) {
	rows, err := s.findKeyByHash.query(ctx, hash)
	if err != nil {
		return apikey.APIKey{}, translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return apikey.APIKey{}, translate(err)
		}
		return apikey.APIKey{}, errNotFound
	}
	var r keyWithCredits
	var buf destBuf
	if err := rows.Scan(lookupColumns.destWithCredits(&r, &buf)...); err != nil {
		return apikey.APIKey{}, rowError("api_keys", r.ID, err)
	}
	return r.decode()
}

// errNotFound is the answer for a key that is not there for this caller.
var errNotFound = apperr.New(apperr.NotFound, "API key not found")

// TouchKeys implements apikey.Store in one statement: an UPDATE … FROM a
// VALUES list that carries each key's own origin.
func (s *Store) TouchKeys(ctx context.Context, uses []apikey.Use, at time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 1, 3*len(uses)+2)
	args[0] = at // last_used_at = ?, before the VALUES list
	for i, u := range uses {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, u.KeyID, nullable(u.IP), nullable(u.UserAgent))
	}
	// VALUES names its columns column1, column2, … on both databases. The
	// statement starts with UPDATE, as the load test's count expects.
	idMatch := "api_keys.id = used.column1"
	if IsPostgresDB(s.db) {
		idMatch = "api_keys.id = used.column1::uuid"
	}
	args = append(args, at)
	_, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = ?, last_used_ip = used.column2, last_used_user_agent = used.column3
FROM (VALUES `+b.String()+`) AS used
WHERE `+idMatch+` AND api_keys.revoked_at IS NULL AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < ?)`, args...)
	return translate(err)
}

// Ping implements apikey.Store.
func (s *Store) Ping(ctx context.Context) error {
	return translate(s.db.PingContext(ctx))
}

package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// The queries of the hot paths: a verification that misses the cache, a
// listing (REST and GraphQL), and the spending of credits at each
// verification of a credited key. They run as prepared statements, so that
// PostgreSQL parses and plans them once per connection rather than once per
// request (bun inlines arguments into the SQL text, which makes every query
// new to the server), and rows are scanned through their columns' dest,
// without bun's per-row reflection. Written with ? placeholders;
// PostgreSQL gets $1, $2, ….
var (
	findKeyByHashQuery = `SELECT ` + lookupColumns.of("k") + `, ` + creditColumns + `
FROM api_keys k LEFT JOIN credit_balances c ON c.lineage_id = k.lineage_id
WHERE k.key_hash = ? LIMIT 1`
	// spendCreditsQuery is SpendCredits' one statement in the common case:
	// arguments cost, lineage, cost, now.
	spendCreditsQuery = `UPDATE credit_balances SET remaining = remaining - ?
WHERE lineage_id = ? AND remaining >= ? AND (refill_at IS NULL OR refill_at > ?)
RETURNING remaining`
	// readCreditsQuery reads a balance when spendCreditsQuery changed
	// nothing, or for a cost of 0.
	readCreditsQuery = `SELECT remaining, refill_at FROM credit_balances WHERE lineage_id = ?`
)

// listKeysQuery lists the unrevoked keys of an owner of type t, whose id
// is its argument.
func listKeysQuery(t apikey.OwnerType) string {
	cond, _ := ownedBy("k", apikey.Owner{Type: t})
	return `SELECT ` + listColumns.of("k") + `, ` + creditColumns + `
FROM api_keys k LEFT JOIN credit_balances c ON c.lineage_id = k.lineage_id
WHERE ` + cond + ` AND k.revoked_at IS NULL ORDER BY k.created_at DESC, k.id DESC`
}

// statement is a query prepared on first use and kept; database/sql
// prepares it again on each connection it runs on. A failure to prepare is
// not kept: the next use tries again.
type statement struct {
	db   *bun.DB
	text string

	mu       sync.Mutex // serializes preparing
	prepared atomic.Pointer[sql.Stmt]
}

func newStatement(db *bun.DB, query string) *statement {
	if IsPostgresDB(db) {
		query = numberPlaceholders(query)
	}
	return &statement{db: db, text: query}
}

// timeArg is t as an argument of the statement. SQLite compares timestamps
// as text, so it gets t as bun writes them (sqliteTimeFormat, in UTC), not
// as the driver would (time.Time.String, which sorts differently).
func (s *statement) timeArg(t time.Time) any {
	if IsPostgresDB(s.db) {
		return t
	}
	return t.UTC().Format(sqliteTimeFormat)
}

// sqliteTimeFormat is how bun writes a time for SQLite (in UTC).
const sqliteTimeFormat = "2006-01-02 15:04:05.999999-07:00"

// query runs the statement, preparing it first if need be.
func (s *statement) query(ctx context.Context, args ...any) (*sql.Rows, error) {
	st := s.prepared.Load()
	if st == nil {
		var err error
		if st, err = s.prepare(ctx); err != nil {
			return nil, err
		}
	}
	return st.QueryContext(ctx, args...)
}

func (s *statement) prepare(ctx context.Context) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.prepared.Load(); st != nil {
		return st, nil
	}
	st, err := s.db.DB.PrepareContext(ctx, s.text)
	if err != nil {
		return nil, err
	}
	s.prepared.Store(st)
	return st, nil
}

// numberPlaceholders rewrites the ? placeholders of query as $1, $2, …
// The queries above hold no other question mark.
func numberPlaceholders(query string) string {
	var b strings.Builder
	n := 0
	for _, part := range strings.SplitAfter(query, "?") {
		if strings.HasSuffix(part, "?") {
			n++
			b.WriteString(part[:len(part)-1])
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}

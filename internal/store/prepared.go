package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// The queries of the hot paths: a verification that misses the cache and a
// listing (REST and GraphQL). They run as prepared statements, so that
// PostgreSQL parses and plans them once per connection rather than once per
// request (bun inlines arguments into the SQL text, which makes every query
// new to the server), and rows are scanned without reflection. Written with
// ? placeholders; PostgreSQL gets $1, $2, ….
const (
	findKeyByHashQuery = `SELECT id, user_id, key_prefix, created_at, expires_at FROM api_keys
WHERE key_hash = ? AND revoked_at IS NULL LIMIT 1`
	listKeysQuery = `SELECT id, user_id, key_prefix, name, created_at, last_used_at, expires_at FROM api_keys
WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`
)

// statements prepares each query once, on first use, and keeps it.
// database/sql prepares a statement again on each connection it runs on.
type statements struct {
	db    *bun.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStatements(db *bun.DB) *statements {
	return &statements{db: db, stmts: map[string]*sql.Stmt{}}
}

// get returns the prepared statement of query. A failure is not kept: the
// next call tries again.
func (s *statements) get(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	text := query
	if s.db.Dialect().Name() == dialect.PG {
		text = numberPlaceholders(query)
	}
	st, err := s.db.DB.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	s.stmts[query] = st
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

// query runs the prepared statement of query.
func (s *statements) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

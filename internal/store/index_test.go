package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// TestKeyLookupUsesTheHashIndex: verifying a key is one index lookup of its
// SHA-256 on every database, never a scan that compares keys.
func TestKeyLookupUsesTheHashIndex(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		// The query FindKeyByHash prepares, with a hash in place of its
		// parameter.
		q := db.NewRaw(store.FindKeyByHashQuery, apikey.Hash("x")).String()

		// Enough active keys, of few users, that scanning them would show.
		pg := strings.HasPrefix(dsn, "postgres")
		fill := []string{
			`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 3000)
			 INSERT INTO api_keys (id, user_id, key_hash, key_prefix, created_at, lineage_id)
			 SELECT printf('id-%d', i), 'user-' || (i % 3), printf('%064d', i), 'atiru_xxxx', '2026-01-01 00:00:00+00:00', printf('id-%d', i) FROM s`,
			`ANALYZE`,
		}
		if pg {
			fill = []string{
				`INSERT INTO api_keys (id, user_id, key_hash, key_prefix, created_at, lineage_id)
				 SELECT id, 'user-' || (i % 3), lpad(i::text, 64, '0'), 'atiru_xxxx', now(), id
				 FROM (SELECT gen_random_uuid() AS id, i FROM generate_series(1, 3000) AS i) AS s`,
				`ANALYZE api_keys`,
			}
		}
		for _, stmt := range fill {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}

		text := queryPlan(t, db, q)
		if !strings.Contains(text, "api_keys_key_hash_key") || strings.Contains(text, "Seq Scan") || strings.Contains(text, "SCAN api_keys") {
			t.Errorf("the key lookup does not use the unique hash index:\n%s", text)
		}
	})
}

// queryPlan returns the plan db chooses for the query q, as text.
func queryPlan(t *testing.T, db *bun.DB, q string) string {
	t.Helper()
	explain := "EXPLAIN QUERY PLAN "
	if store.IsPostgresDB(db) {
		explain = "EXPLAIN "
	}
	rows, err := db.QueryContext(context.Background(), explain+q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan []string
	for rows.Next() {
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if s, ok := (*v.(*any)).(string); ok {
				plan = append(plan, s)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// queries records the statements run through bun on a database it is
// added to as a query hook.
type queries struct {
	mu   sync.Mutex
	list []string
}

func (h *queries) BeforeQuery(ctx context.Context, ev *bun.QueryEvent) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.list = append(h.list, ev.Query)
	return ctx
}

func (h *queries) AfterQuery(context.Context, *bun.QueryEvent) {}

// TestOrgLogUsesItsIndex: a page of an organisation's log is read through
// the (org_id, id) index on every database, never by scanning the log.
func TestOrgLogUsesItsIndex(t *testing.T) {
	ctx := context.Background()
	dbtest.Each(t, func(t *testing.T, dsn string) {
		db := dbtest.OpenDSN(t, dsn)
		s := store.New(db, store.Config{})
		// Enough events, of enough organisations and users, that scanning
		// them would show.
		fill := []string{
			`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 5000)
			 INSERT INTO audit_events (id, user_id, org_id, action, occurred_at, actor_type, details)
			 SELECT printf('%08d-0000-7000-8000-000000000000', i), 'user-' || (i % 7), 'org-' || (i % 50), 'org.updated', '2026-01-01 00:00:00+00:00', 'user', '{}' FROM s`,
			`INSERT INTO orgs (id, name, created_at) VALUES ('org-1', 'Acme', '2026-01-01 00:00:00+00:00')`,
			`ANALYZE`,
		}
		if store.IsPostgresDB(db) {
			fill = []string{
				`INSERT INTO audit_events (id, user_id, org_id, action, occurred_at, actor_type, details)
				 SELECT gen_random_uuid(), 'user-' || (i % 7), 'org-' || (i % 50), 'org.updated', now(), 'user', '{}'
				 FROM generate_series(1, 5000) AS i`,
				`INSERT INTO orgs (id, name, created_at) VALUES ('org-1', 'Acme', now())`,
				`ANALYZE`,
			}
		}
		for _, stmt := range fill {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		seen := &queries{}
		db.AddQueryHook(seen)
		evs, err := s.ListOrgEvents(ctx, "org-1", "", 20)
		if err != nil || len(evs) != 20 {
			t.Fatalf("ListOrgEvents: %d events, %v; want 20", len(evs), err)
		}
		if len(seen.list) != 1 {
			t.Fatalf("a page took %d statements, want 1: %q", len(seen.list), seen.list)
		}
		text := queryPlan(t, db, seen.list[0])
		searched := strings.Contains(text, "SEARCH event_row USING INDEX audit_events_org_idx (org_id=?)")
		if store.IsPostgresDB(db) {
			searched = strings.Contains(text, "audit_events_org_idx") && !strings.Contains(text, "Seq Scan on audit_events")
		}
		if !searched {
			t.Errorf("a page of an organisation's log does not use audit_events_org_idx:\n%s", text)
		}
	})
}

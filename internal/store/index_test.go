package store_test

import (
	"context"
	"strings"
	"testing"

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

		explain := "EXPLAIN QUERY PLAN "
		if pg {
			explain = "EXPLAIN "
		}
		rows, err := db.QueryContext(ctx, explain+q)
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
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "api_keys_key_hash_key") || strings.Contains(text, "Seq Scan") || strings.Contains(text, "SCAN api_keys") {
			t.Errorf("the key lookup does not use the unique hash index:\n%s", text)
		}
	})
}

package store_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// TestMigrationsDefineOneSchema: migrations/pg and migrations/sqlite define
// the same tables, columns (name, nullability, type family, whether they
// have a default), indexes (name, columns and their order, uniqueness,
// partial predicate) and constraints (primary keys, foreign keys, unique,
// the number of checks), read back from each migrated database. It also
// rolls every migration back and applies them again on both.
func TestMigrationsDefineOneSchema(t *testing.T) {
	ctx := context.Background()
	pg, lite := dbtest.Open(t, "postgres"), dbtest.Open(t, "sqlite")
	pgSchema, liteSchema := describePostgres(t, pg), describeSQLite(t, lite)
	if len(pgSchema) == 0 {
		t.Fatal("no schema read back from PostgreSQL")
	}
	if diff := schemaDiff(pgSchema, liteSchema); diff != "" {
		t.Errorf("the migrations define different schemas (- PostgreSQL only, + SQLite only):\n%s", diff)
	}

	for _, db := range []struct {
		name     string
		db       *bun.DB
		describe func(testing.TB, *bun.DB) []string
		want     []string
	}{{"postgres", pg, describePostgres, pgSchema}, {"sqlite", lite, describeSQLite, liteSchema}} {
		t.Run("DownAndUpAgain/"+db.name, func(t *testing.T) {
			for {
				g, err := store.MigrateDown(ctx, db.db)
				if err != nil {
					t.Fatalf("migrate down: %v", err)
				}
				if g.IsZero() {
					break
				}
			}
			if left := db.describe(t, db.db); len(left) != 0 {
				t.Errorf("left after migrating down:\n%s", strings.Join(left, "\n"))
			}
			if _, err := store.MigrateUp(ctx, db.db); err != nil {
				t.Fatalf("migrate up again: %v", err)
			}
			if diff := schemaDiff(db.want, db.describe(t, db.db)); diff != "" {
				t.Errorf("migrated up again, the schema differs (- first, + again):\n%s", diff)
			}
		})
	}
}

// A schema is described as sorted lines, one per column, index or
// constraint, each starting with its table's name; bun's own tables are left
// out.

// schemaDiff lists the lines only in a (-) and only in b (+), or "".
func schemaDiff(a, b []string) string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	slices.SortFunc(out, func(x, y string) int { return strings.Compare(x[2:], y[2:]) })
	return strings.Join(out, "\n")
}

// typeFamily reduces a column type of either database to what both can
// express: SQLite has no uuid, no length limits and no time zone type.
func typeFamily(typ string) string {
	typ = strings.ToLower(typ)
	switch {
	case strings.Contains(typ, "int"):
		return "integer"
	case strings.HasPrefix(typ, "timestamp"), typ == "datetime":
		return "timestamp"
	case typ == "uuid", typ == "text", strings.Contains(typ, "char"), strings.Contains(typ, "clob"):
		return "text"
	case strings.HasPrefix(typ, "bool"):
		return "boolean"
	}
	return typ // reported as it is
}

func columnLine(table, column, typ string, notNull, hasDefault bool) string {
	l := fmt.Sprintf("%s: column %s %s", table, column, typeFamily(typ))
	if notNull {
		l += " not null"
	}
	if hasDefault {
		l += " default"
	}
	return l
}

// predicate normalises an index's WHERE clause: lower case, without
// parentheses (PostgreSQL adds them) or repeated spaces.
func predicate(where string) string {
	where = strings.NewReplacer("(", "", ")", "").Replace(strings.ToLower(where))
	return strings.Join(strings.Fields(where), " ")
}

func indexLine(table, name string, unique bool, columns []string, where string) string {
	kind := "index"
	if unique {
		kind = "unique index"
	}
	l := fmt.Sprintf("%s: %s %s (%s)", table, kind, name, strings.Join(columns, ", "))
	if where = predicate(where); where != "" {
		l += " where " + where
	}
	return l
}

func foreignKeyLine(table string, from []string, refTable string, to []string, onUpdate, onDelete string) string {
	return fmt.Sprintf("%s: foreign key (%s) references %s (%s) on update %s on delete %s", table,
		strings.Join(from, ", "), refTable, strings.Join(to, ", "), strings.ToLower(onUpdate), strings.ToLower(onDelete))
}

func scanLines(tb testing.TB, db *bun.DB, query string, line func(scan func(dest ...any) error) (string, error)) []string {
	tb.Helper()
	rows, err := db.QueryContext(context.Background(), query)
	if err != nil {
		tb.Fatalf("%v\n%s", err, query)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		l, err := line(rows.Scan)
		if err != nil {
			tb.Fatal(err)
		}
		if l != "" {
			out = append(out, l)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func describePostgres(tb testing.TB, db *bun.DB) []string {
	tb.Helper()
	const ours = `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname NOT LIKE 'bun\_%'`
	var out []string
	out = append(out, scanLines(tb, db, `SELECT c.relname FROM pg_class c WHERE c.oid IN (`+ours+`)`,
		func(scan func(...any) error) (string, error) {
			var table string
			err := scan(&table)
			return table + ": table", err
		})...)
	out = append(out, scanLines(tb, db, `SELECT table_name, column_name, data_type, is_nullable = 'NO', column_default IS NOT NULL
FROM information_schema.columns WHERE table_schema = current_schema() AND table_name NOT LIKE 'bun\_%'`,
		func(scan func(...any) error) (string, error) {
			var table, column, typ string
			var notNull, hasDefault bool
			err := scan(&table, &column, &typ, &notNull, &hasDefault)
			return columnLine(table, column, typ, notNull, hasDefault), err
		})...)
	// Indexes, but those of primary keys and unique constraints, which are
	// listed as constraints: SQLite names those itself.
	out = append(out, scanLines(tb, db, `SELECT t.relname, i.relname, x.indisunique,
	(SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true) ||
		CASE WHEN pg_index_column_has_property(x.indexrelid, k, 'desc') THEN ' desc' ELSE '' END, ',' ORDER BY k)
	FROM generate_series(1, x.indnkeyatts) k),
	coalesce(pg_get_expr(x.indpred, x.indrelid, true), '')
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE x.indrelid IN (`+ours+`)
AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u'))`,
		func(scan func(...any) error) (string, error) {
			var table, name, columns, where string
			var unique bool
			err := scan(&table, &name, &unique, &columns, &where)
			return indexLine(table, name, unique, strings.Split(columns, ","), where), err
		})...)
	out = append(out, scanLines(tb, db, `SELECT c.conrelid::regclass::text, c.contype,
	coalesce((SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY k(attnum, n)
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum), ''),
	coalesce(c.confrelid::regclass::text, ''),
	coalesce((SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY k(attnum, n)
		JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum), ''),
	c.confupdtype, c.confdeltype
FROM pg_constraint c WHERE c.conrelid IN (`+ours+`)`,
		func(scan func(...any) error) (string, error) {
			var table, kind, cols, refTable, refCols, onUpdate, onDelete string
			if err := scan(&table, &kind, &cols, &refTable, &refCols, &onUpdate, &onDelete); err != nil {
				return "", err
			}
			actions := map[string]string{"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}
			switch kind {
			case "p":
				return fmt.Sprintf("%s: primary key (%s)", table, strings.ReplaceAll(cols, ",", ", ")), nil
			case "u":
				return fmt.Sprintf("%s: unique (%s)", table, strings.ReplaceAll(cols, ",", ", ")), nil
			case "f":
				return foreignKeyLine(table, strings.Split(cols, ","), refTable, strings.Split(refCols, ","), actions[onUpdate], actions[onDelete]), nil
			case "c":
				return table + ": check", nil
			}
			return fmt.Sprintf("%s: constraint of kind %s", table, kind), nil
		})...)
	return countChecks(out)
}

// countChecks sorts a schema's lines, with a table's "check" lines (one per
// CHECK constraint) made into one that counts them: the lines are compared
// as sets, which would not tell three checks from two.
func countChecks(lines []string) []string {
	checks := map[string]int{}
	out := lines[:0]
	for _, l := range lines {
		if table, ok := strings.CutSuffix(l, ": check"); ok {
			checks[table]++
			continue
		}
		out = append(out, l)
	}
	for table, n := range checks {
		out = append(out, fmt.Sprintf("%s: %d checks", table, n))
	}
	slices.Sort(out)
	return out
}

// sqliteCheck finds CHECK constraints in a table's CREATE statement.
var sqliteCheck = regexp.MustCompile(`(?i)\bcheck\s*\(`)

func describeSQLite(tb testing.TB, db *bun.DB) []string {
	tb.Helper()
	var tables []struct {
		Name string `bun:"name"`
		SQL  string `bun:"sql"`
	}
	err := db.NewSelect().TableExpr("sqlite_master").Column("name", "sql").
		Where("type = 'table'").Where("name NOT LIKE 'bun\\_%' ESCAPE '\\'").Where("name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").
		Scan(context.Background(), &tables)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, t := range tables {
		out = append(out, t.Name+": table")
		for range sqliteCheck.FindAllString(t.SQL, -1) {
			out = append(out, t.Name+": check")
		}
		var pk []string
		out = append(out, scanLines(tb, db, fmt.Sprintf(`SELECT name, type, "notnull", dflt_value IS NOT NULL, pk FROM pragma_table_info('%s') ORDER BY pk, cid`, t.Name),
			func(scan func(...any) error) (string, error) {
				var column, typ string
				var notNull, hasDefault bool
				var inPK int
				err := scan(&column, &typ, &notNull, &hasDefault, &inPK)
				if inPK > 0 {
					pk = append(pk, column)
				}
				return columnLine(t.Name, column, typ, notNull, hasDefault), err
			})...)
		if len(pk) > 0 {
			out = append(out, fmt.Sprintf("%s: primary key (%s)", t.Name, strings.Join(pk, ", ")))
		}
		var indexes []struct {
			Name    string `bun:"name"`
			Unique  bool   `bun:"unique"`
			Origin  string `bun:"origin"`
			Partial bool   `bun:"partial"`
			SQL     string `bun:"sql"`
		}
		err := db.NewRaw(`SELECT l.name, l."unique", l.origin, l.partial, coalesce(m.sql, '') AS sql
FROM pragma_index_list(?) l LEFT JOIN sqlite_master m ON m.type = 'index' AND m.name = l.name`, t.Name).
			Scan(context.Background(), &indexes)
		if err != nil {
			tb.Fatal(err)
		}
		for _, ix := range indexes {
			var columns []string
			err := db.NewRaw(`SELECT CASE WHEN "desc" THEN name || ' desc' ELSE name END FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno`, ix.Name).
				Scan(context.Background(), &columns)
			if err != nil {
				tb.Fatal(err)
			}
			switch ix.Origin {
			case "pk": // listed as the primary key
			case "u":
				out = append(out, fmt.Sprintf("%s: unique (%s)", t.Name, strings.Join(columns, ", ")))
			default:
				where := ""
				if ix.Partial {
					_, where, _ = strings.Cut(ix.SQL, " WHERE ")
				}
				out = append(out, indexLine(t.Name, ix.Name, ix.Unique, columns, where))
			}
		}
		var fks []struct {
			ID       int    `bun:"id"`
			Table    string `bun:"table"`
			From     string `bun:"from"`
			To       string `bun:"to"`
			OnUpdate string `bun:"on_update"`
			OnDelete string `bun:"on_delete"`
		}
		err = db.NewRaw(`SELECT id, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`, t.Name).
			Scan(context.Background(), &fks)
		if err != nil {
			tb.Fatal(err)
		}
		for i := 0; i < len(fks); {
			var from, to []string
			j := i
			for ; j < len(fks) && fks[j].ID == fks[i].ID; j++ {
				from, to = append(from, fks[j].From), append(to, fks[j].To)
			}
			out = append(out, foreignKeyLine(t.Name, from, fks[i].Table, to, fks[i].OnUpdate, fks[i].OnDelete))
			i = j
		}
	}
	return countChecks(out)
}

package store

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// countRow is a row of key_usage: a key's authentications in one UTC hour
// (see the migration). countColumns are its count columns, in the order
// every query below writes and reads them.
type countRow struct {
	bun.BaseModel `bun:"table:key_usage"`

	KeyID             string    `bun:"key_id,pk"`
	Hour              time.Time `bun:"hour,pk"`
	Valid             int64     `bun:"valid,notnull"`
	Disabled          int64     `bun:"disabled,notnull"`
	IPNotAllowed      int64     `bun:"ip_not_allowed,notnull"`
	InsufficientScope int64     `bun:"insufficient_scope,notnull"`
	RateLimited       int64     `bun:"rate_limited,notnull"`
	UsageExceeded     int64     `bun:"usage_exceeded,notnull"`
	CreditsSpent      int64     `bun:"credits_spent,notnull"`
}

var countColumns = []string{"valid", "disabled", "ip_not_allowed", "insufficient_scope", "rate_limited", "usage_exceeded", "credits_spent"}

// values are the counts of c in countColumns' order.
func values(c apikey.Counts) [7]int64 {
	return [7]int64{c.Valid, c.Disabled, c.IPNotAllowed, c.InsufficientScope, c.RateLimited, c.UsageExceeded, c.CreditsSpent}
}

func (r *countRow) domain() apikey.HourCounts {
	return apikey.HourCounts{KeyID: r.KeyID, Hour: r.Hour.UTC(), Counts: apikey.Counts{
		Valid:             r.Valid,
		Disabled:          r.Disabled,
		IPNotAllowed:      r.IPNotAllowed,
		InsufficientScope: r.InsufficientScope,
		RateLimited:       r.RateLimited,
		UsageExceeded:     r.UsageExceeded,
		CreditsSpent:      r.CreditsSpent,
	}}
}

// addCountsFrom is the upsert of AddCounts from src, a query of rows of
// key_id, hour and countColumns: each count is added to its row's, which
// is created at zero first.
func addCountsFrom(src string) string {
	set := make([]string, len(countColumns))
	for i, c := range countColumns {
		set[i] = c + " = key_usage." + c + " + excluded." + c
	}
	return "INSERT INTO key_usage (key_id, hour, " + strings.Join(countColumns, ", ") + ") " + src +
		" ON CONFLICT (key_id, hour) DO UPDATE SET " + strings.Join(set, ", ")
}

// AddCounts implements apikey.Store in one statement whatever the number
// of rows, which neither database could take as a VALUES list (bind
// parameters are limited): PostgreSQL reads them from one array per column
// (unnest), SQLite from one JSON text (json_each).
func (s *Store) AddCounts(ctx context.Context, counts []apikey.HourCounts) error {
	if len(counts) == 0 {
		return nil
	}
	if IsPostgresDB(s.db) {
		ids := make([]string, len(counts))
		hours := make([]time.Time, len(counts))
		cols := make([][]int64, len(countColumns))
		for i := range cols {
			cols[i] = make([]int64, len(counts))
		}
		for i, c := range counts {
			ids[i], hours[i] = c.KeyID, c.Hour
			for j, v := range values(c.Counts) {
				cols[j][i] = v
			}
		}
		args := []any{pgdialect.Array(ids), pgdialect.Array(hours)}
		src := "SELECT * FROM unnest(?::uuid[], ?::timestamptz[]"
		for i := range cols {
			args = append(args, pgdialect.Array(cols[i]))
			src += ", ?::bigint[]"
		}
		_, err := s.db.ExecContext(ctx, addCountsFrom(src+")"), args...)
		return translate(err)
	}
	// [[key_id, hour, valid, …], …]; hour as bun writes times to SQLite, so
	// that a row's key is the same text whoever wrote it.
	rows := make([][]any, len(counts))
	for i, c := range counts {
		v := values(c.Counts)
		row := make([]any, 0, 2+len(v))
		row = append(row, c.KeyID, sqliteTime(s.db, c.Hour))
		for _, n := range v {
			row = append(row, n)
		}
		rows[i] = row
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	cols := make([]string, 2+len(countColumns))
	for i := range cols {
		cols[i] = "value ->> " + strconv.Itoa(i)
	}
	// WHERE true: without it SQLite would read ON CONFLICT as a join's.
	src := "SELECT " + strings.Join(cols, ", ") + " FROM json_each(?) WHERE true"
	_, err = s.db.ExecContext(ctx, addCountsFrom(src), string(b))
	return translate(err)
}

// sqliteTime is t as bun writes a time to SQLite, without the quotes.
func sqliteTime(db bun.IDB, t time.Time) string {
	return strings.Trim(string(db.Dialect().AppendTime(nil, t)), "'")
}

// KeyCounts implements apikey.Store.
func (s *Store) KeyCounts(ctx context.Context, owner apikey.Owner, id string, from, to time.Time) ([]apikey.HourCounts, error) {
	cond, arg := ownedBy("", owner)
	own, err := s.db.NewSelect().Model((*keyRow)(nil)).
		Where("id = ?", id).
		Where(cond, arg).
		Exists(ctx)
	if err != nil {
		return nil, translate(err)
	}
	if !own {
		return nil, errNotFound
	}
	return s.counts(ctx, s.db.NewSelect().
		TableExpr("key_usage AS u").
		Where("u.key_id = ?", id).
		OrderExpr("u.hour"), from, to)
}

// OwnerCounts implements apikey.Store in one query, through the index of
// an owner's unrevoked keys and key_usage's primary key.
func (s *Store) OwnerCounts(ctx context.Context, owner apikey.Owner, from, to time.Time) ([]apikey.HourCounts, error) {
	cond, arg := ownedBy("k", owner)
	return s.counts(ctx, s.db.NewSelect().
		TableExpr("api_keys AS k").
		Join("JOIN key_usage AS u ON u.key_id = k.id").
		Where(cond, arg).
		Where("k.revoked_at IS NULL"), from, to)
}

// counts runs q, a query of key_usage AS u, for the rows of hours in
// [from, to).
func (s *Store) counts(ctx context.Context, q *bun.SelectQuery, from, to time.Time) ([]apikey.HourCounts, error) {
	var rows []countRow
	err := q.ColumnExpr("u.key_id, u.hour").
		ColumnExpr(prefixed("u.", countColumns)).
		Where("u.hour >= ?", from.UTC()).
		Where("u.hour < ?", to.UTC()).
		Scan(ctx, &rows)
	if err != nil {
		return nil, translate(err)
	}
	out := make([]apikey.HourCounts, len(rows))
	for i := range rows {
		out[i] = rows[i].domain()
	}
	return out, nil
}

// prefixed is columns, each prefixed, separated by commas.
func prefixed(prefix string, columns []string) string {
	return prefix + strings.Join(columns, ", "+prefix)
}

// PruneCounts implements apikey.Store: one DELETE of the oldest hour's
// rows, through the index on hour.
func (s *Store) PruneCounts(ctx context.Context, cutoff time.Time) (int, error) {
	oldest := s.db.NewSelect().Model((*countRow)(nil)).ColumnExpr("MIN(hour)")
	res, err := s.db.NewDelete().Model((*countRow)(nil)).
		Where("hour < ?", cutoff.UTC()).
		Where("hour <= (?)", oldest).
		Exec(ctx)
	if err != nil {
		return 0, translate(err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

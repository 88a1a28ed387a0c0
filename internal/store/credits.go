package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

// creditsRow is a row of credit_balances: the balance of a lineage of keys
// that has credits (a lineage without one is unlimited). RefillAt is when
// the balance is next refilled; the first spend at or after it applies the
// refill and moves it to the following refill time, so a refill is applied
// once, however many servers spend at once.
type creditsRow struct {
	bun.BaseModel `bun:"table:credit_balances"`

	LineageID string `bun:"lineage_id,pk"`
	Remaining int64  `bun:"remaining,notnull"`
	refillColumns
	RefillAt *time.Time `bun:"refill_at"` // NULL exactly when there is no refill
}

// refillColumns are a balance's refill, as stored; all NULL: none.
type refillColumns struct {
	RefillAmount   sql.NullInt64  `bun:"refill_amount"`
	RefillInterval sql.NullString `bun:"refill_interval"`
	RefillDay      sql.NullInt64  `bun:"refill_day"` // monthly refills only
}

// newCreditsRow is the balance c of lineage, set at at: its next refill is
// the first refill time after at.
func newCreditsRow(lineage string, c *apikey.Credits, at time.Time) *creditsRow {
	r := &creditsRow{LineageID: lineage, Remaining: c.Remaining}
	if f := c.Refill; f != nil {
		r.RefillAmount = sql.NullInt64{Int64: f.Amount, Valid: true}
		r.RefillInterval = sql.NullString{String: string(f.Interval), Valid: true}
		if f.Interval == apikey.RefillMonthly {
			r.RefillDay = sql.NullInt64{Int64: int64(f.DayOfMonth), Valid: true}
		}
		next := f.Next(at)
		r.RefillAt = &next
	}
	return r
}

// refill returns the refill c holds, and false when there is none.
func (c refillColumns) refill() (apikey.Refill, bool) {
	if !c.RefillAmount.Valid {
		return apikey.Refill{}, false
	}
	r := apikey.Refill{Amount: c.RefillAmount.Int64, Interval: apikey.RefillMonthly, DayOfMonth: int(c.RefillDay.Int64)}
	// The constants, rather than the string read: a listing keeps no copy.
	if c.RefillInterval.String == string(apikey.RefillDaily) {
		r.Interval = apikey.RefillDaily
	}
	return r, true
}

// setCredits sets the balance of lineage to c at at, replacing any; nil
// deletes it (unlimited). It returns the balance as it now is: c with its
// next refill time.
func setCredits(ctx context.Context, db bun.IDB, lineage string, c *apikey.Credits, at time.Time) (*apikey.Credits, error) {
	if c == nil {
		_, err := db.NewDelete().Model((*creditsRow)(nil)).Where("lineage_id = ?", lineage).Exec(ctx)
		return nil, err
	}
	row := newCreditsRow(lineage, c, at)
	_, err := db.NewInsert().Model(row).
		On("CONFLICT (lineage_id) DO UPDATE").
		Set("remaining = EXCLUDED.remaining").
		Set("refill_amount = EXCLUDED.refill_amount").
		Set("refill_interval = EXCLUDED.refill_interval").
		Set("refill_day = EXCLUDED.refill_day").
		Set("refill_at = EXCLUDED.refill_at").
		Exec(ctx)
	set := *c
	set.RefillAt = time.Time{}
	if row.RefillAt != nil {
		set.RefillAt = *row.RefillAt
	}
	return &set, err
}

// lineageCredits returns the balance of lineage, nil when it has none.
func lineageCredits(ctx context.Context, db bun.IDB, lineage string) (*apikey.Credits, error) {
	var c joinedCredits
	err := db.QueryRowContext(ctx, "SELECT "+creditColumns+" FROM credit_balances c WHERE c.lineage_id = ?", lineage).
		Scan(c.dest(nil)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return c.credits(), err
}

// errNoBalance is SpendCredits' answer for a lineage without credits.
var errNoBalance = apperr.New(apperr.NotFound, "this API key has no credits")

// SpendCredits implements apikey.Store. The common case is one statement,
// prepared: a conditional UPDATE … RETURNING that spends cost only if the
// balance holds it and no refill is due, atomic on its row on either
// database, so concurrent spends on any number of servers never spend more
// than the balance. When it changes nothing (a balance too low, a refill
// due, none at all) or cost is 0, a read tells which; a refill due, or a
// balance that grew meanwhile, goes through spendLocked.
func (s *Store) SpendCredits(ctx context.Context, lineage string, cost int64, now time.Time) (remaining int64, ok bool, err error) {
	if cost < 0 || cost > apikey.MaxCost {
		return 0, false, apperr.Errorf(apperr.InvalidRequest, "cost must be an integer from 0 to %d", apikey.MaxCost)
	}
	if cost > 0 {
		rows, err := s.spendCredits.query(ctx, cost, lineage, cost, s.spendCredits.timeArg(now))
		if err != nil {
			return 0, false, translate(err)
		}
		spent := rows.Next()
		if spent {
			err = rows.Scan(&remaining)
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			return 0, false, translate(err)
		}
		if spent {
			return remaining, true, nil
		}
	}
	var refillAt *time.Time
	rows, err := s.readCredits.query(ctx, lineage)
	if err != nil {
		return 0, false, translate(err)
	}
	found := rows.Next()
	if found {
		err = rows.Scan(&remaining, &refillAt)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rows.Err()
	}
	switch {
	case err != nil:
		return 0, false, translate(err)
	case !found:
		return 0, false, errNoBalance
	case refillAt == nil || refillAt.After(now):
		if remaining < cost {
			return remaining, false, nil
		}
		if cost == 0 {
			return remaining, true, nil
		}
	}
	return s.spendLocked(ctx, lineage, cost, now)
}

// spendLocked spends cost from the balance of lineage in a transaction that
// holds its row (PostgreSQL: FOR UPDATE; SQLite: the write lock taken at
// BEGIN IMMEDIATE), applying first the refill due at now, if any: the
// balance becomes the refill's amount if it was lower, and refill_at the
// next refill time after now. Of concurrent spends straddling a refill time
// only the first applies it: the others, waiting for the row, find
// refill_at moved past now.
func (s *Store) spendLocked(ctx context.Context, lineage string, cost int64, now time.Time) (remaining int64, ok bool, err error) {
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var b creditsRow
		q := tx.NewSelect().Model(&b).Where("lineage_id = ?", lineage)
		if IsPostgresDB(tx) {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			return err
		}
		changed := false
		if refill, due := b.refill(); due && b.RefillAt != nil && !b.RefillAt.After(now) {
			b.Remaining = max(b.Remaining, refill.Amount)
			next := refill.Next(now)
			b.RefillAt = &next
			changed = true
		}
		if ok = b.Remaining >= cost; ok && cost > 0 {
			b.Remaining -= cost
			changed = true
		}
		remaining = b.Remaining
		if !changed {
			return nil
		}
		_, err := tx.NewUpdate().Model(&b).Column("remaining", "refill_at").WherePK().Exec(ctx)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, errNoBalance
	}
	if err != nil {
		return 0, false, translate(err)
	}
	return remaining, ok, nil
}

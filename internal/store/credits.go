package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
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
// deletes it (unlimited).
func setCredits(ctx context.Context, db bun.IDB, lineage string, c *apikey.Credits, at time.Time) error {
	if c == nil {
		_, err := db.NewDelete().Model((*creditsRow)(nil)).Where("lineage_id = ?", lineage).Exec(ctx)
		return err
	}
	_, err := db.NewInsert().Model(newCreditsRow(lineage, c, at)).
		On("CONFLICT (lineage_id) DO UPDATE").
		Set("remaining = EXCLUDED.remaining").
		Set("refill_amount = EXCLUDED.refill_amount").
		Set("refill_interval = EXCLUDED.refill_interval").
		Set("refill_day = EXCLUDED.refill_day").
		Set("refill_at = EXCLUDED.refill_at").
		Exec(ctx)
	return err
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

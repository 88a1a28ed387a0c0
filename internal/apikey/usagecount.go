package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// Counts are authentications by one key or several in some time, by
// outcome, and the credits they spent (docs/usage.md). Every
// authentication by a known key is counted once, under its outcome:
// Valid, or the refusal that answered it.
type Counts struct {
	Valid             int64
	Disabled          int64
	IPNotAllowed      int64
	InsufficientScope int64
	RateLimited       int64
	UsageExceeded     int64
	CreditsSpent      int64
}

// Add adds c to n.
func (n *Counts) Add(c Counts) {
	n.Valid += c.Valid
	n.Disabled += c.Disabled
	n.IPNotAllowed += c.IPNotAllowed
	n.InsufficientScope += c.InsufficientScope
	n.RateLimited += c.RateLimited
	n.UsageExceeded += c.UsageExceeded
	n.CreditsSpent += c.CreditsSpent
}

// Total is the number of authentications c counts, whatever their outcome.
func (n Counts) Total() int64 {
	return n.Valid + n.Disabled + n.IPNotAllowed + n.InsufficientScope + n.RateLimited + n.UsageExceeded
}

// HourCounts are the Counts of one key in one UTC hour, starting at Hour.
type HourCounts struct {
	KeyID string
	Hour  time.Time
	Counts
}

// CountStore is the part of the Store that usage counts need.
type CountStore interface {
	// AddCounts adds each of counts (distinct key and hour pairs) to the
	// stored counts of its key and hour, creating them at zero first, in
	// one statement whatever their number. Several servers add to the same
	// rows: the sums are exact.
	AddCounts(ctx context.Context, counts []HourCounts) error
	// KeyCounts returns the hourly counts of the owner's key id (revoked
	// or not) whose hour is in [from, to), in hour order; hours without
	// use are absent. Returns apperr.NotFound when the owner has no key id.
	KeyCounts(ctx context.Context, owner Owner, id string, from, to time.Time) ([]HourCounts, error)
	// OwnerCounts returns the hourly counts in [from, to) of every
	// unrevoked key of the owner, in any order.
	OwnerCounts(ctx context.Context, owner Owner, from, to time.Time) ([]HourCounts, error)
	// PruneCounts deletes the counts of the oldest hour before cutoff
	// and returns how many rows it deleted (0: none left before cutoff).
	PruneCounts(ctx context.Context, cutoff time.Time) (int, error)
}

// KeyTotals is one key and its counts added up over a range.
type KeyTotals struct {
	KeyID     string
	KeyPrefix string
	Name      *string
	Counts
}

// The columns of a tally, in a fixed order: one per counted outcome, then
// the credits spent.
const (
	colValid = iota
	colDisabled
	colIPNotAllowed
	colInsufficientScope
	colRateLimited
	colUsageExceeded
	colCredits
	tallyCols
)

// countedOutcome returns the column of a verification outcome, or false
// for the outcomes of no known key (unknown, revoked, expired, …), which
// belong to no key's usage.
func countedOutcome(o Outcome) (int, bool) {
	switch o {
	case OutcomeOK:
		return colValid, true
	case OutcomeDisabled:
		return colDisabled, true
	case OutcomeIPNotAllowed:
		return colIPNotAllowed, true
	case OutcomeInsufficientScope:
		return colInsufficientScope, true
	case OutcomeRateLimited:
		return colRateLimited, true
	case OutcomeUsageExceeded:
		return colUsageExceeded, true
	}
	return 0, false
}

// tallyShards spreads the tally over this many locks, so that concurrent
// verifications of different keys seldom meet on one.
const tallyShards = 64

// tally adds up authentications in memory, per key and UTC hour, until the
// writer takes them (FlushCounts), and keeps when each key's use was last
// marked for last_used_at: a verification looks its key up
// once for both. Counting or marking a key already seen this second takes a
// shared lock, one lookup by the key's id and an atomic add: the exclusive
// lock is only for a key's first authentication of the second (or of an
// hour), a use to mark, and the writer's swap.
type tally struct {
	shards [tallyShards]tallyShard

	interval time.Duration                        // between two marks of a key's use
	mark     func(ctx context.Context, id string) // queues a marked use for last_used_at
	off      atomic.Bool                          // counts nothing (a benchmark's baseline)

	// backlog holds what the database did not take (an outage) until a
	// later write takes it; only FlushCounts touches it, under flushing.
	flushing sync.Mutex
	backlog  map[tallyKey]*tallyRow
}

type tallyShard struct {
	mu sync.RWMutex
	// keys holds each key's counts of the latest hour it was counted in
	// since the last swap, and its last mark; other, the rare counts of an
	// earlier hour (of a request that began before the hour turned).
	keys  map[string]*keyTally
	other map[tallyKey]*tallyRow
	_     [32]byte // a shard per cache line: no false sharing between locks
}

type keyTally struct {
	row    *tallyRow // nil until counted
	marked int64     // Unix nanoseconds of the last marked use; 0: none
}

type tallyKey struct {
	keyID string
	hour  int64 // Unix seconds of the hour's start
}

// tallyRow is the counts of one key in one hour: its columns, then the
// hour, which never changes.
type tallyRow struct {
	n    [tallyCols]atomic.Int64
	hour int64
}

// noCount is the column of a use that counts nothing: every use while
// counting is off.
const noCount = -1

// maxBacklog caps the key-hours kept through an outage, so that memory
// stays bounded: about 150 bytes each. A variable only for tests.
var maxBacklog = 200_000

func newTally(interval time.Duration, mark func(context.Context, string)) *tally {
	t := &tally{interval: interval, mark: mark, backlog: map[tallyKey]*tallyRow{}}
	for i := range t.shards {
		t.shards[i].keys = map[string]*keyTally{}
		t.shards[i].other = map[tallyKey]*tallyRow{}
	}
	return t
}

// add counts one authentication by key id at now under column col (none
// when noCount), with the credits it spent, and, when touch, marks its use
// for last_used_at unless it was marked less than the interval ago.
func (t *tally) add(ctx context.Context, id string, col int, credits int64, now time.Time, touch bool) {
	if t.off.Load() {
		col = noCount
	}
	unix, ns := now.Unix(), now.UnixNano()
	hour := unix - unix%3600 // the times counted are after 1970
	sh := &t.shards[shardOf(id)]
	sh.mu.RLock()
	if k := sh.keys[id]; k != nil && (!touch || ns-k.marked < int64(t.interval)) {
		switch {
		case col == noCount:
			sh.mu.RUnlock()
			return
		case k.row != nil && k.row.hour == hour:
			k.row.bump(col, credits) // under the shared lock: take waits for it
			sh.mu.RUnlock()
			return
		}
	}
	sh.mu.RUnlock()
	sh.mu.Lock()
	k := sh.keys[id]
	if k == nil {
		k = &keyTally{}
		sh.keys[id] = k
	}
	if col != noCount {
		sh.row(k, id, hour).bump(col, credits)
	}
	if touch && ns-k.marked >= int64(t.interval) {
		k.marked = ns
		t.mark(ctx, id)
	}
	sh.mu.Unlock()
}

// row returns the row of key k (whose id is id) for hour, made if need be;
// the caller holds the exclusive lock.
func (sh *tallyShard) row(k *keyTally, id string, hour int64) *tallyRow {
	switch r := k.row; {
	case r != nil && r.hour == hour:
		return r
	case r == nil || r.hour < hour: // the key's first count, or of a new hour
		if r != nil {
			sh.other[tallyKey{id, r.hour}] = r // never there: the hour was k's until now
		}
		k.row = &tallyRow{hour: hour}
		return k.row
	}
	tk := tallyKey{id, hour}
	r := sh.other[tk]
	if r == nil {
		r = &tallyRow{hour: hour}
		sh.other[tk] = r
	}
	return r
}

// shardOf spreads key ids over the shards by their last characters: the
// random end of a UUID, so that the map's own hash is the only one
// computed on the hot path.
func shardOf(id string) int {
	h := 0
	for i := max(0, len(id)-3); i < len(id); i++ {
		h = h*31 + int(id[i])
	}
	return h % tallyShards
}

func (r *tallyRow) bump(col int, credits int64) {
	r.n[col].Add(1)
	if credits != 0 {
		r.n[colCredits].Add(credits)
	}
}

// take moves what every shard counted into the backlog and returns the
// backlog's rows; the caller holds flushing. Rows beyond maxBacklog are
// dropped, the newest first: their number is returned. The marks of keys
// used less than the interval before now are kept, the others forgotten, so
// that the shards hold only keys used recently.
func (t *tally) take(now time.Time) (rows []HourCounts, dropped int) {
	keep := func(k tallyKey, r *tallyRow) {
		if b := t.backlog[k]; b != nil {
			for c := range r.n {
				b.n[c].Add(r.n[c].Load())
			}
			return
		}
		if len(t.backlog) >= maxBacklog {
			dropped++
			return
		}
		t.backlog[k] = r
	}
	ns := now.UnixNano()
	type taken struct {
		id  string
		row *tallyRow
	}
	var counted []taken
	for i := range t.shards {
		sh := &t.shards[i]
		counted = counted[:0]
		sh.mu.Lock()
		for id, k := range sh.keys {
			if k.row != nil {
				counted = append(counted, taken{id, k.row})
				k.row = nil
			}
			if ns-k.marked >= int64(t.interval) {
				delete(sh.keys, id)
			}
		}
		var other map[tallyKey]*tallyRow
		if len(sh.other) > 0 {
			other, sh.other = sh.other, map[tallyKey]*tallyRow{}
		}
		sh.mu.Unlock()
		for _, c := range counted {
			keep(tallyKey{c.id, c.row.hour}, c.row)
		}
		for k, r := range other {
			keep(k, r)
		}
	}
	rows = make([]HourCounts, 0, len(t.backlog))
	for k, r := range t.backlog {
		rows = append(rows, HourCounts{KeyID: k.keyID, Hour: time.Unix(k.hour, 0).UTC(), Counts: Counts{
			Valid:             r.n[colValid].Load(),
			Disabled:          r.n[colDisabled].Load(),
			IPNotAllowed:      r.n[colIPNotAllowed].Load(),
			InsufficientScope: r.n[colInsufficientScope].Load(),
			RateLimited:       r.n[colRateLimited].Load(),
			UsageExceeded:     r.n[colUsageExceeded].Load(),
			CreditsSpent:      r.n[colCredits].Load(),
		}})
	}
	return rows, dropped
}

// FlushCounts writes the counted authentications now, in one statement
// however many keys they are of. When the database is unavailable they are
// kept, and added to, for the next flush (up to a bound: what is over it is
// dropped, and the error says how much). A write the database refuses
// otherwise is dropped, not retried: the error says so.
func (s *Service) FlushCounts(ctx context.Context) error {
	t := s.counts
	t.flushing.Lock()
	defer t.flushing.Unlock()
	rows, dropped := t.take(s.now())
	var err error
	if len(rows) > 0 {
		err = s.store.AddCounts(ctx, rows)
	}
	switch {
	case err == nil:
		clear(t.backlog)
	case apperr.CodeOf(err) == apperr.ServerBusy || ctx.Err() != nil:
		err = fmt.Errorf("usage counts of %d key-hours kept for the next write: %w", len(rows), err)
	default:
		clear(t.backlog)
		err = fmt.Errorf("usage counts of %d key-hours refused by the database, dropped: %w", len(rows), err)
	}
	if dropped > 0 {
		err = errors.Join(fmt.Errorf("usage counts of %d key-hours dropped: more than %d were waiting to be written", dropped, maxBacklog), err)
	}
	return err
}

// flushAll writes recorded key uses and usage counts: the background
// writer's work, every flushEvery and once more, final, on shutdown.
func (s *Service) flushAll(ctx context.Context, log *slog.Logger, final bool) {
	prefix := ""
	if final {
		prefix = "final "
	}
	if err := s.FlushUsage(ctx); err != nil && (final || ctx.Err() == nil) {
		log.Warn(prefix+"last_used_at flush failed", "err", err)
	}
	if err := s.FlushCounts(ctx); err != nil && (final || ctx.Err() == nil) {
		log.Warn(prefix+"usage count flush failed", "err", err)
	}
}

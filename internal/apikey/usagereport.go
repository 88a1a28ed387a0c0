package apikey

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// Granularity is the width of the buckets of a usage report: an hour or a
// UTC day.
type Granularity string

// Granularities.
const (
	Hourly Granularity = "hour"
	Daily  Granularity = "day"
)

// The ranges of a usage report (docs/usage.md).
const (
	MaxHourlyBuckets = 744 // 31 days
	MaxDailyBuckets  = 366
	// DefaultHourlyBuckets and DefaultDailyBuckets are the buckets of a
	// report whose range is not given: up to the current one included.
	DefaultHourlyBuckets = 24
	DefaultDailyBuckets  = 30
)

// DefaultUsageRetention is how long usage counts are kept unless
// USAGE_RETENTION says otherwise: 90 days.
const DefaultUsageRetention = 2160 * time.Hour

// UsageRange is what a caller asks of a usage report: each field optional.
type UsageRange struct {
	Granularity Granularity // empty: Hourly
	From, To    *time.Time  // [From, To), each on a bucket boundary (UTC)
}

// UsageBucket is the counts of one bucket of a report, starting at Start.
type UsageBucket struct {
	Start time.Time
	Counts
}

// Usage is one key's report: every bucket of the range, in order.
type Usage struct {
	Granularity Granularity
	Buckets     []UsageBucket
}

// UsageSummary is the report of all of an owner's keys: their counts
// together, bucket by bucket, and each key's totals, most used first.
type UsageSummary struct {
	Usage
	Keys []KeyTotals
}

// span is a resolved UsageRange: the buckets [from, to) of width step.
type span struct {
	granularity Granularity
	step        time.Duration
	from, to    time.Time
}

// resolve checks r and fills in its defaults at now.
// Returns INVALID_REQUEST, naming the parameter, for an unknown
// granularity, a bound off the granularity's boundaries, a range that is
// empty or reversed, or one of more buckets than the granularity allows.
func resolve(r UsageRange, now time.Time) (span, error) {
	sp := span{granularity: r.Granularity}
	var n, max int
	switch r.Granularity {
	case Hourly, "":
		sp.granularity, sp.step, n, max = Hourly, time.Hour, DefaultHourlyBuckets, MaxHourlyBuckets
	case Daily:
		sp.step, n, max = 24*time.Hour, DefaultDailyBuckets, MaxDailyBuckets
	default:
		return span{}, errBadGranularity
	}
	// Every bucket starts on a multiple of its width since the Unix epoch,
	// which was midnight UTC: Truncate on the zero time agrees.
	sp.to = now.UTC().Truncate(sp.step).Add(sp.step) // the current bucket included
	if r.To != nil {
		if sp.to = r.To.UTC(); !sp.to.Equal(sp.to.Truncate(sp.step)) {
			return span{}, unaligned("to", sp.granularity)
		}
	}
	sp.from = sp.to.Add(-time.Duration(n) * sp.step)
	if r.From != nil {
		if sp.from = r.From.UTC(); !sp.from.Equal(sp.from.Truncate(sp.step)) {
			return span{}, unaligned("from", sp.granularity)
		}
	}
	switch {
	case !sp.from.Before(sp.to):
		return span{}, apperr.New(apperr.InvalidRequest, "from must be before to")
	case sp.to.Sub(sp.from) > time.Duration(max)*sp.step:
		return span{}, apperr.Errorf(apperr.InvalidRequest, "from and to must be at most %d buckets of a %s apart", max, sp.granularity)
	}
	return sp, nil
}

var errBadGranularity = apperr.New(apperr.InvalidRequest, `granularity must be "hour" or "day"`)

func unaligned(param string, g Granularity) error {
	if g == Daily {
		return apperr.Errorf(apperr.InvalidRequest, "%s must be a day's start, 00:00:00 UTC, with granularity day", param)
	}
	return apperr.Errorf(apperr.InvalidRequest, "%s must be an hour's start (UTC), with no minutes or seconds", param)
}

// buckets returns every bucket of sp, in order, with the hourly counts
// hours (of sp, in any order) added into theirs.
func (sp span) buckets(hours []HourCounts) []UsageBucket {
	out := make([]UsageBucket, sp.to.Sub(sp.from)/sp.step)
	for i := range out {
		out[i].Start = sp.from.Add(time.Duration(i) * sp.step)
	}
	for _, h := range hours {
		if i := int(h.Hour.Sub(sp.from) / sp.step); i >= 0 && i < len(out) {
			out[i].Add(h.Counts)
		}
	}
	return out
}

// KeyUsage returns the usage of the key id of the JWT principal of ctx over
// r: every bucket, zeros included. The key is one of its personal keys or a
// key of an organisation of which it is a member (see ownKey). The key may
// be revoked, or rolled past its grace: its usage stays readable on its id
// until USAGE_RETENTION.
// Returns INVALID_REQUEST for a bad range (see UsageRange), NOT_FOUND when
// id is not one of the keys the caller may see, and the auth errors of
// Create.
func (s *Service) KeyUsage(ctx context.Context, id string, r UsageRange) (Usage, error) {
	sp, badRange := resolve(r, s.now())
	key, err := s.ownKey(ctx, id, RoleMember, badRange, errKeyNotFound)
	if err != nil {
		return Usage{}, err
	}
	hours, err := s.store.KeyCounts(ctx, key.owner, key.id, sp.from, sp.to)
	if err != nil {
		return Usage{}, notFoundAs(err, errKeyNotFound)
	}
	return Usage{Granularity: sp.granularity, Buckets: sp.buckets(hours)}, nil
}

// UsageSummary returns the usage over r of the keys that List returns in
// ctx (the principal's personal keys, or its organisation's): all
// together, bucket by bucket, and each key's totals, most used first (the
// newest first among equals). Two queries, whatever the number of keys.
// Returns INVALID_REQUEST for a bad range, then the errors of List.
func (s *Service) UsageSummary(ctx context.Context, r UsageRange) (UsageSummary, error) {
	p, err := RequireJWT(ctx)
	if err != nil {
		return UsageSummary{}, err
	}
	sp, err := resolve(r, s.now())
	if err != nil {
		return UsageSummary{}, err
	}
	owner, _, err := s.scopeOwner(ctx, p, RoleMember)
	if err != nil {
		return UsageSummary{}, err
	}
	keys, err := s.list(ctx, owner)
	if err != nil {
		return UsageSummary{}, err
	}
	hours, err := s.store.OwnerCounts(ctx, owner, sp.from, sp.to)
	if err != nil {
		return UsageSummary{}, err
	}
	totals := make([]KeyTotals, len(keys))
	index := make(map[string]int, len(keys))
	for i, k := range keys {
		totals[i] = KeyTotals{KeyID: k.ID, KeyPrefix: k.KeyPrefix, Name: k.Name}
		index[k.ID] = i
	}
	listed := hours[:0] // the counts of keys gone since (rolled past their grace) are no listed key's
	for _, h := range hours {
		if i, ok := index[h.KeyID]; ok {
			totals[i].Add(h.Counts)
			listed = append(listed, h)
		}
	}
	// Stable: keys that were used as much stay newest first, as listed.
	slices.SortStableFunc(totals, func(a, b KeyTotals) int { return cmp.Compare(b.Total(), a.Total()) })
	return UsageSummary{Usage: Usage{Granularity: sp.granularity, Buckets: sp.buckets(listed)}, Keys: totals}, nil
}

// ListedKeyUsage returns the usage over r of the key id, one of the keys
// the JWT principal of ctx was just given by List in ctx (a listing: its
// personal keys, or its organisation's). Within a context made by
// WithUsageBatch, the first call for a range and an owner reads the counts
// of all the owner's keys in one query (after asking OrgAccess, for an
// organisation), and the calls for the other keys of the listing read
// none: a listing of any number of keys with their usage costs one query
// per range asked. A key that is not the owner's has no usage.
// Returns the errors of UsageSummary.
func (s *Service) ListedKeyUsage(ctx context.Context, id string, r UsageRange) ([]UsageBucket, error) {
	p, err := RequireJWT(ctx)
	if err != nil {
		return nil, err
	}
	sp, err := resolve(r, s.now())
	if err != nil {
		return nil, err
	}
	b, _ := ctx.Value(usageBatchKey{}).(*usageBatch)
	if b == nil {
		b = &usageBatch{}
	}
	owner := UserOwner(p.UserID)
	orgID, scoped := OrgOf(ctx)
	if scoped {
		owner = OrgOwner(orgID)
	}
	byKey, err := b.load(owner, sp, func() ([]HourCounts, error) {
		if scoped {
			if _, err := s.authorize(ctx, p, orgID, RoleMember); err != nil {
				return nil, err
			}
		}
		return s.store.OwnerCounts(ctx, owner, sp.from, sp.to)
	})
	if err != nil {
		return nil, err
	}
	return sp.buckets(byKey[id]), nil
}

// WithUsageBatch returns ctx carrying a batch for ListedKeyUsage: the
// counts it reads are kept for the context's life (one request).
func WithUsageBatch(ctx context.Context) context.Context {
	return context.WithValue(ctx, usageBatchKey{}, &usageBatch{})
}

type usageBatchKey struct{}

// usageBatch is the counts of an owner's keys read once per owner and span
// for one request; the listing's keys ask for them concurrently.
type usageBatch struct {
	mu    sync.Mutex
	spans map[batchKey]*usageLoad
}

// batchKey is what a usageBatch reads once: an owner's counts over a span,
// by the Unix seconds of its from and to.
type batchKey struct {
	owner    Owner
	from, to int64
}

type usageLoad struct {
	done  chan struct{}
	byKey map[string][]HourCounts
	err   error
}

// load returns the counts of owner's keys over sp's hours by key, read by
// read once.
func (b *usageBatch) load(owner Owner, sp span, read func() ([]HourCounts, error)) (map[string][]HourCounts, error) {
	k := batchKey{owner, sp.from.Unix(), sp.to.Unix()}
	b.mu.Lock()
	l := b.spans[k]
	if l == nil {
		if b.spans == nil {
			b.spans = map[batchKey]*usageLoad{}
		}
		l = &usageLoad{done: make(chan struct{})}
		b.spans[k] = l
		b.mu.Unlock()
		hours, err := read()
		l.err = err
		l.byKey = map[string][]HourCounts{}
		for _, h := range hours {
			l.byKey[h.KeyID] = append(l.byKey[h.KeyID], h)
		}
		close(l.done)
	} else {
		b.mu.Unlock()
		<-l.done
	}
	return l.byKey, l.err
}

// PruneCounts deletes the usage counts older than USAGE_RETENTION, an
// hour's at a time, and returns how many rows it deleted.
func (s *Service) PruneCounts(ctx context.Context) (int, error) {
	cutoff := s.now().Add(-s.retention)
	total := 0
	for {
		n, err := s.store.PruneCounts(ctx, cutoff)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

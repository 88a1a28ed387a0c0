package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// flushEvery is how often recorded key uses are written: the first use of a
// key shows in last_used_at within about this long.
const flushEvery = time.Second

// usage coalesces last_used_at writes: each key is marked at most once per
// interval, and marks are written in few statements per flush, off the
// verification path. When a key was last marked is kept with its usage
// counts (tally.add), so that a verification looks its key up once for
// both.
type usage struct {
	counts *tally

	mu      sync.Mutex
	pending map[string]audit.Origin // marked since the last flush, with where the use came from
}

// newUsage returns the last_used_at writer of keys marked at most once per
// interval, and the counts that keep the marks.
func newUsage(interval time.Duration) (*usage, *tally) {
	u := &usage{pending: map[string]audit.Origin{}}
	u.counts = newTally(interval, u.mark)
	return u, u.counts
}

// mark queues the use of key id that ctx's request made for the next write.
func (u *usage) mark(ctx context.Context, id string) {
	u.mu.Lock()
	u.pending[id] = audit.OriginOf(ctx)
	u.mu.Unlock()
}

// take returns the pending uses.
func (u *usage) take() []Use {
	u.mu.Lock()
	defer u.mu.Unlock()
	ids := make([]Use, 0, len(u.pending))
	for id, o := range u.pending {
		ids = append(ids, Use{KeyID: id, IP: o.IP(), UserAgent: o.UserAgent()})
	}
	clear(u.pending)
	return ids
}

// putBack re-queues uses whose write failed, unless a newer use of the
// same key is pending.
func (u *usage) putBack(uses []Use) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, us := range uses {
		if _, ok := u.pending[us.KeyID]; !ok {
			addr, _ := netip.ParseAddr(us.IP)                                          // as IP() wrote it; "" stays unknown
			u.pending[us.KeyID] = audit.Origin{Addr: addr, RawUserAgent: us.UserAgent} // cleaning is idempotent
		}
	}
}

// touchBatch is the most key uses written in one statement, so that the
// backlog of an outage goes out in statements of bounded size. A variable
// only for tests.
var touchBatch = 500

// FlushUsage writes the recorded key uses now, in statements of at most
// touchBatch uses. When the database is unavailable, the uses of the batch
// that failed and of the batches after it are kept for the next flush. A
// batch the database refuses (a row it will never take, not an outage) is
// split until the refused uses stand alone; these are dropped, not
// retried, and the returned error names their keys.
func (s *Service) FlushUsage(ctx context.Context) error {
	uses := s.usage.take()
	if len(uses) == 0 {
		return nil
	}
	at := s.timestamp()
	var errs []error
	for start := 0; start < len(uses); start += touchBatch {
		dropped, err := s.touch(ctx, uses[start:min(start+touchBatch, len(uses))], at)
		errs = append(errs, dropped...)
		if err != nil {
			s.usage.putBack(uses[start:])
			errs = append(errs, err)
			break
		}
	}
	err := errors.Join(errs...)
	s.observer.UsageFlushed(len(uses), err)
	return err
}

// touch writes uses in one statement. If the database refuses it, it
// writes each half the same way, so that only the uses it refuses alone
// are dropped, each with an error naming its key. err is an outage: the
// database is unavailable or ctx is done.
func (s *Service) touch(ctx context.Context, uses []Use, at time.Time) (dropped []error, err error) {
	err = s.store.TouchKeys(ctx, uses, at)
	switch {
	case err == nil:
		return nil, nil
	case apperr.CodeOf(err) == apperr.ServerBusy || ctx.Err() != nil:
		return nil, err
	case len(uses) == 1:
		return []error{fmt.Errorf("last_used_at of key %s refused by the database, dropped: %w", uses[0].KeyID, err)}, nil
	}
	half := len(uses) / 2
	dropped, err = s.touch(ctx, uses[:half], at)
	if err != nil {
		return dropped, err
	}
	more, err := s.touch(ctx, uses[half:], at)
	return append(dropped, more...), err
}

// RunUsageFlusher writes recorded key uses and usage counts every second
// until ctx is done, then writes what remains, so nothing is lost on a
// graceful shutdown.
func (s *Service) RunUsageFlusher(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flushAll(ctx, log, false)
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.flushAll(final, log, true)
			cancel()
			return
		}
	}
}

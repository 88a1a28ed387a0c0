package apikey

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/audit"
)

// flushEvery is how often recorded key uses are written: the first use of a
// key shows in last_used_at within about this long.
const flushEvery = time.Second

// usage coalesces last_used_at writes: each key is marked at most once per
// interval, and marks are written in one statement per flush, off the
// verification path.
type usage struct {
	interval time.Duration

	mu      sync.RWMutex
	marked  map[string]time.Time    // key id -> when its use was last marked
	pending map[string]audit.Origin // marked since the last flush, with where the use came from
}

func newUsage(interval time.Duration) *usage {
	return &usage{interval: interval, marked: map[string]time.Time{}, pending: map[string]audit.Origin{}}
}

// touch records a use of key id at now, from where ctx's request came; it
// never blocks on the database. The origin written is that of the use that
// was marked, looked up only then: most uses find their key marked.
func (u *usage) touch(ctx context.Context, id string, now time.Time) {
	// Nearly every use finds its key marked: a shared lookup says so.
	u.mu.RLock()
	last, ok := u.marked[id]
	u.mu.RUnlock()
	if ok && now.Sub(last) < u.interval {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if last, ok := u.marked[id]; ok && now.Sub(last) < u.interval {
		return
	}
	u.marked[id] = now
	u.pending[id] = audit.OriginOf(ctx)
}

// take returns the pending uses and forgets marks older than the interval,
// so the map holds only keys used recently.
func (u *usage) take(now time.Time) []Use {
	u.mu.Lock()
	defer u.mu.Unlock()
	ids := make([]Use, 0, len(u.pending))
	for id, o := range u.pending {
		ids = append(ids, Use{KeyID: id, IP: o.IP(), UserAgent: o.UserAgent()})
	}
	clear(u.pending)
	for id, t := range u.marked {
		if now.Sub(t) >= u.interval {
			delete(u.marked, id)
		}
	}
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

// FlushUsage writes the recorded key uses now.
func (s *Service) FlushUsage(ctx context.Context) error {
	ids := s.usage.take(s.now())
	if len(ids) == 0 {
		return nil
	}
	err := s.store.TouchKeys(ctx, ids, s.timestamp())
	s.observer.UsageFlushed(len(ids), err)
	if err != nil {
		s.usage.putBack(ids)
		return err
	}
	return nil
}

// RunUsageFlusher writes recorded key uses every second until ctx is done,
// then writes what remains, so no use is lost on a graceful shutdown.
func (s *Service) RunUsageFlusher(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.FlushUsage(ctx); err != nil && ctx.Err() == nil {
				log.Warn("last_used_at flush failed", "err", err)
			}
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.FlushUsage(final); err != nil {
				log.Warn("final last_used_at flush failed", "err", err)
			}
			cancel()
			return
		}
	}
}

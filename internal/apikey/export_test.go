package apikey

import (
	"context"
	"testing"
	"time"
)

// SetTouchBatch sets the most key uses written in one statement until tb
// ends, so that a test needs no huge backlog to span several statements.
func SetTouchBatch(tb testing.TB, n int) {
	old := touchBatch
	touchBatch = n
	tb.Cleanup(func() { touchBatch = old })
}

// Len returns the number of buckets m holds.
func (m *MemoryLimiter) Len() int { return m.len() }

// RateLimiterOf returns the rate limiter s takes tokens from.
func RateLimiterOf(s *Service) RateLimiter { return s.limiter }

// Count records an authentication by the known key id, as a verification
// that ended in o at now, spending credits, does.
// Unlike a verification, it never marks the use for last_used_at.
func (s *Service) Count(id string, o Outcome, credits int64, now time.Time) {
	if col, ok := countedOutcome(o); ok {
		s.counts.add(context.Background(), id, col, credits, now, false)
	}
}

// SetMaxBacklog sets the most key-hours kept through an outage until tb
// ends.
func SetMaxBacklog(tb testing.TB, n int) {
	old := maxBacklog
	maxBacklog = n
	tb.Cleanup(func() { maxBacklog = old })
}

// WithoutCounting turns off s's usage counting, for a benchmark of what
// counting costs.
func WithoutCounting(s *Service) { s.counts.off.Store(true) }

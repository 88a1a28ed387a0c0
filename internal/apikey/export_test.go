package apikey

import "testing"

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

package apikey

import "testing"

// SetTouchBatch sets the most key uses written in one statement until tb
// ends, so that a test needs no huge backlog to span several statements.
func SetTouchBatch(tb testing.TB, n int) {
	old := touchBatch
	touchBatch = n
	tb.Cleanup(func() { touchBatch = old })
}

// Package testenv decides what a test does when the machine lacks something
// it needs (a database, Redis, nginx, a browser, root): locally it is
// skipped, so that `go test ./...` runs what it can; under CI (CI=true),
// where ./scripts/test provides everything, it fails, so that no guarantee
// goes untested there unnoticed.
package testenv

import (
	"os"
	"testing"
)

// Missing stops tb for want of what problem names; fix says how to provide
// it. A skip, but a failure under CI.
func Missing(tb testing.TB, problem, fix string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s: under CI every test must run; %s (./scripts/test does this)", problem, fix)
	}
	tb.Skipf("%s; %s, or run ./scripts/test, which does", problem, fix)
}

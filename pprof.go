//go:build pprof

package main

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"runtime"
	"time"
)

// A binary built with -tags pprof (bench/load does, when asked to profile)
// serves net/http/pprof on APIKEYD_PPROF_ADDR, a separate listener that the
// API's handler never exposes. Release builds do not contain it.
func init() {
	addr := os.Getenv("APIKEYD_PPROF_ADDR")
	if addr == "" {
		return
	}
	// Contention shows in /debug/pprof/mutex and /debug/pprof/block.
	runtime.SetMutexProfileFraction(10)
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof listener failed", "err", err)
		}
	}()
}

package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/httpx"
	"github.com/apikeyd/apikeyd/internal/metrics"
	"github.com/apikeyd/apikeyd/internal/store"
)

// Listening tells where Serve listens.
type Listening struct {
	Addr        string // the API
	MetricsAddr string // /metrics alone, when Config.MetricsAddr is set
}

// shutdownGrace is how long in-flight requests may take to finish once
// Serve is told to stop.
const shutdownGrace = 30 * time.Second

// pruneEvery is how often the retention jobs (AUDIT_RETENTION,
// USAGE_RETENTION) delete what is past its time.
const pruneEvery = 10 * time.Minute

// prunePeriodically calls prune, a retention job named what, now and then
// every pruneEvery until ctx is done, logging its failures.
func prunePeriodically(ctx context.Context, what string, prune func(context.Context) (int, error), log *slog.Logger) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if _, err := prune(ctx); err != nil && ctx.Err() == nil {
			log.Warn(what+" failed", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Serve runs apikeyd until ctx is done, then shuts down gracefully: in-flight
// requests finish and recorded key uses are written. ready, when not nil,
// receives the listening addresses once the listeners are open.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger, ready chan<- Listening) error {
	a, err := Open(ctx, cfg, Deps{Log: log})
	if err != nil {
		return err
	}
	defer a.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	at := Listening{Addr: ln.Addr().String()}
	servers := map[*http.Server]net.Listener{defaultLimits.server(a.Handler, log): ln}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		at.MetricsAddr = mln.Addr().String()
		servers[defaultLimits.server(metricsOnly(a.Metrics, log), log)] = mln
	}

	flushCtx, stopFlusher := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.Keys.RunUsageFlusher(flushCtx, log) })
	wg.Go(func() { prunePeriodically(flushCtx, "audit retention", a.Audit.Prune, log) })
	wg.Go(func() { prunePeriodically(flushCtx, "usage count retention", a.Keys.PruneCounts, log) })
	if a.Webhooks != nil {
		wg.Go(func() { a.Webhooks.Run(flushCtx) })
	}

	errc := make(chan error, len(servers))
	for srv, l := range servers {
		go func() { errc <- srv.Serve(l) }()
	}
	attrs := []any{"addr", at.Addr, "database", store.Describe(cfg.DatabaseURL), "rate_limits", "per server"}
	if a.rateLimits != nil {
		attrs[len(attrs)-1] = "redis"
	}
	if at.MetricsAddr != "" {
		attrs = append(attrs, "metrics_addr", at.MetricsAddr)
	}
	log.Info("apikeyd listening", attrs...)
	if ready != nil {
		ready <- at
	}

	select {
	case err = <-errc: // a listener failed: stop the other too
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	for srv := range servers {
		if e := srv.Shutdown(shutCtx); err == nil {
			err = e
		}
	}
	cancel()
	stopFlusher()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// metricsOnly serves GET /metrics and nothing else, for the separate
// metrics listener.
func metricsOnly(m *metrics.Metrics, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mountMetrics(mux, m, func(h http.Handler) http.Handler { return h }, log) // as before: this listener verifies no credential
	mux.Handle(notFoundPattern, httpx.NotFound(log))
	return mux
}

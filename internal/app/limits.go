package app

import (
	"log/slog"
	"net/http"
	"time"
)

// httpLimits bounds what one client connection may take of the server, so
// that slow or oversized requests (slowloris, header floods) cannot hold
// connections or memory. Tests shrink them; Serve uses defaultLimits.
type httpLimits struct {
	ReadHeaderTimeout time.Duration // to read the request line and headers
	ReadTimeout       time.Duration // to read the whole request, body included
	WriteTimeout      time.Duration // from the end of the headers to the end of the answer
	IdleTimeout       time.Duration // a kept-alive connection waiting for its next request
	MaxHeaderBytes    int           // request line and headers; larger requests get 431
}

// defaultLimits leave room for an 8 KiB login token in the headers and
// for a 64 KiB body on a slow link, and for nothing much more.
var defaultLimits = httpLimits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       15 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       120 * time.Second,
	MaxHeaderBytes:    32 << 10,
}

// server returns an http.Server for h with these limits, logging
// connection-level errors to log.
func (l httpLimits) server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

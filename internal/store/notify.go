package store

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"
)

// RevocationChannel is the PostgreSQL notification channel on which RevokeKey
// publishes the hash of each key it revokes. An empty payload is a ping.
const RevocationChannel = "apikeyd_revoked"

// RevocationCache is the verification cache a RevocationListener keeps in
// step with revocations made by other servers (apikey.Service).
type RevocationCache interface {
	// EvictHash drops the key whose hex SHA-256 is hash.
	EvictHash(hash string) error
	// SuspendCache empties the cache and stops caching: revocations may be
	// missed from now on.
	SuspendCache()
	// ResumeCache empties the cache and starts caching again: revocations
	// are received again.
	ResumeCache()
}

// RevocationListener receives, on a connection of its own, the revocations
// every server sharing the PostgreSQL database publishes, and evicts the
// revoked keys from this server's cache.
//
// A notification sent while the connection is down is lost, so the cache is
// suspended (emptied, and kept empty) from the moment the connection fails
// until LISTEN is in force again, and emptied once more then: no key revoked
// meanwhile stays cached. LISTEN is known to be in force when a notification
// arrives on it, so the listener pings itself until one does. A connection
// that fails without a word is found out the same way: when nothing, not
// even a ping, arrives within two PingInterval, it is treated as lost.
type RevocationListener struct {
	DB    *bun.DB
	Cache RevocationCache
	Log   *slog.Logger // slog.Default() when nil
	// PingInterval is how long the connection may stay silent before a
	// ping is sent; 5 s when zero.
	PingInterval time.Duration
	// MaxBackoff bounds the wait between reconnection attempts, which
	// doubles from 100 ms; 5 s when zero.
	MaxBackoff time.Duration
}

var errSilent = errors.New("no notification and no answer to a ping")

// Run listens until ctx is done, reconnecting whenever the connection fails.
// The cache is suspended until the first LISTEN succeeds and when Run
// returns. On a database other than PostgreSQL it returns at once: such a
// database serves a single server.
func (l *RevocationListener) Run(ctx context.Context) {
	if !IsPostgresDB(l.DB) {
		return
	}
	if l.Log == nil {
		l.Log = slog.Default()
	}
	if l.PingInterval <= 0 {
		l.PingInterval = 5 * time.Second
	}
	if l.MaxBackoff <= 0 {
		l.MaxBackoff = 5 * time.Second
	}
	l.Cache.SuspendCache()
	defer l.Cache.SuspendCache()
	backoff := time.Duration(0)
	for {
		listening, err := l.session(ctx)
		l.Cache.SuspendCache()
		if ctx.Err() != nil {
			return
		}
		if listening {
			backoff = 0 // it worked for a while: try again at once
		}
		l.Log.Warn("revocation listener disconnected; key cache suspended until it reconnects",
			"err", err.Error(), "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), l.MaxBackoff)
	}
}

// session connects, LISTENs, resumes the cache and evicts what is revoked
// until the connection fails or ctx is done. listening reports whether LISTEN
// was in force.
func (l *RevocationListener) session(ctx context.Context) (listening bool, err error) {
	ln := pgdriver.NewListener(l.DB)
	defer ln.Close()
	// Receiving blocks in a read that only closing the connection ends.
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()

	if err := ln.Listen(ctx, RevocationChannel); err != nil {
		return false, err
	}
	// Listen has sent LISTEN but not waited for it to take effect, and a
	// notification committed before then is lost. Any notification that
	// arrives proves it in force, so ping until one does.
	if err := l.confirm(ctx, ln); err != nil {
		return false, err
	}
	// From here on every revocation reaches this server; those before are
	// forgotten along with everything else.
	l.Cache.ResumeCache()
	l.Log.Info("revocation listener connected; key cache on")

	pinged := false
	for {
		_, payload, err := ln.ReceiveTimeout(ctx, l.PingInterval)
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case isTimeout(err):
			if pinged {
				return true, errSilent
			}
			if err := l.ping(ctx); err != nil {
				return true, err
			}
			pinged = true
			continue
		case err != nil:
			return true, err
		}
		pinged = false // any notification shows the connection works
		l.handle(payload)
	}
}

// confirm pings until a notification arrives on ln, for at most two
// PingInterval.
func (l *RevocationListener) confirm(ctx context.Context, ln *pgdriver.Listener) error {
	every := min(l.PingInterval, 100*time.Millisecond)
	deadline := time.Now().Add(2 * l.PingInterval)
	for {
		if err := l.ping(ctx); err != nil {
			return err
		}
		_, payload, err := ln.ReceiveTimeout(ctx, every)
		switch {
		case err == nil:
			l.handle(payload)
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !isTimeout(err):
			return err
		case time.Now().After(deadline):
			return errSilent
		}
	}
}

// handle acts on a notification's payload: a revoked key's hash, or empty
// for a ping.
func (l *RevocationListener) handle(payload string) {
	if payload == "" {
		return
	}
	if err := l.Cache.EvictHash(payload); err != nil {
		// Not a hash this version knows: drop every entry rather than
		// risk keeping a revoked one.
		l.Log.Warn("unexpected revocation notification; key cache emptied", "err", err.Error())
		l.Cache.SuspendCache()
		l.Cache.ResumeCache()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ping sends an empty notification through the pool, to every listener of
// the channel, this one included.
func (l *RevocationListener) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.PingInterval)
	defer cancel()
	_, err := l.DB.ExecContext(ctx, "SELECT pg_notify(?, '')", RevocationChannel)
	return err
}

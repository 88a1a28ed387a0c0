package store_test

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// recordingCache records what a RevocationListener asks of the cache.
type recordingCache struct {
	events chan string // "suspend", "resume" or the evicted hash
}

func newRecordingCache() *recordingCache { return &recordingCache{events: make(chan string, 100)} }

func (c *recordingCache) EvictHash(hash string) error {
	if b, err := hex.DecodeString(hash); err != nil || len(b) != 32 {
		return errors.New("not a hash")
	}
	c.events <- hash
	return nil
}
func (c *recordingCache) SuspendCache() { c.events <- "suspend" }
func (c *recordingCache) ResumeCache()  { c.events <- "resume" }

// next returns the next event, failing the test after a few seconds.
func (c *recordingCache) next(t *testing.T) string {
	t.Helper()
	select {
	case e := <-c.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event from the listener in 5s")
		return ""
	}
}

// expect reads events up to want, failing on any other but the allowed ones.
func (c *recordingCache) expect(t *testing.T, want string, allowed ...string) {
	t.Helper()
	for {
		e := c.next(t)
		if e == want {
			return
		}
		ok := false
		for _, a := range allowed {
			ok = ok || e == a
		}
		if !ok {
			t.Fatalf("listener event %q, waiting for %q", e, want)
		}
	}
}

// runListener runs l until the test ends.
func runListener(t *testing.T, l *store.RevocationListener) {
	t.Helper()
	if l.Log == nil {
		l.Log = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the listener did not stop within 10s of its context ending")
		}
	})
}

// revoke creates a key for user and revokes it through s, returning its hash.
func revoke(t *testing.T, s *store.Store, user string) string {
	t.Helper()
	ctx := context.Background()
	k, _ := newKey(t, user, time.Now())
	if err := s.CreateKey(ctx, k, 100); err != nil {
		t.Fatal(err)
	}
	hash, err := s.RevokeKey(ctx, apikey.UserOwner(user), k.ID, time.Now(), audit.Event{})
	if err != nil {
		t.Fatal(err)
	}
	return hash
}

func TestRevocationListener(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.DSN(t, "postgres")
	writer := store.New(dbtest.OpenDSN(t, dsn), store.Config{})
	listenDB := dbtest.OpenDSN(t, dsn)
	cache := newRecordingCache()
	runListener(t, &store.RevocationListener{DB: listenDB, Cache: cache})
	if e := cache.next(t); e != "suspend" {
		t.Fatalf("first event %q, want suspend: nothing may be cached before LISTEN", e)
	}
	cache.expect(t, "resume")

	t.Run("RevocationArrives", func(t *testing.T) {
		// A revoke that finds nothing publishes nothing: the next
		// notification is the real revocation's.
		if _, err := writer.RevokeKey(ctx, apikey.UserOwner("nobody"), "00000000-0000-0000-0000-000000000000", time.Now(), audit.Event{}); err == nil {
			t.Fatal("revoking an unknown key succeeded")
		}
		hash := revoke(t, writer, "alice")
		cache.expect(t, hash)
	})

	t.Run("UnexpectedPayloadEmptiesTheCache", func(t *testing.T) {
		if _, err := listenDB.ExecContext(ctx, "SELECT pg_notify(?, 'not-a-hash')", store.RevocationChannel); err != nil {
			t.Fatal(err)
		}
		cache.expect(t, "suspend")
		cache.expect(t, "resume")
	})

	t.Run("ReconnectsAfterTheConnectionIsKilled", func(t *testing.T) {
		var n int
		err := listenDB.NewRaw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(ctx, &n)
		if err != nil {
			t.Fatal(err)
		}
		if n < 1 {
			t.Fatal("no listening connection to terminate")
		}
		cache.expect(t, "suspend")
		cache.expect(t, "resume", "suspend") // retries while the server refuses are fine
		hash := revoke(t, writer, "bob")
		cache.expect(t, hash)
	})
}

func TestRevocationListenerNoticesASilentConnection(t *testing.T) {
	dsn := dbtest.DSN(t, "postgres")
	writer := store.New(dbtest.OpenDSN(t, dsn), store.Config{})
	// The listener reaches PostgreSQL through a proxy that can go silent:
	// connections stay open but carry nothing, as when a network path dies.
	proxy := newFreezingProxy(t, dsn)
	listenDB := dbtest.OpenDSN(t, proxy.dsn)
	cache := newRecordingCache()
	runListener(t, &store.RevocationListener{DB: listenDB, Cache: cache, PingInterval: 100 * time.Millisecond})
	cache.expect(t, "resume", "suspend")

	proxy.freeze()
	cache.expect(t, "suspend", "resume")
	proxy.thaw()
	cache.expect(t, "resume", "suspend")
	hash := revoke(t, writer, "carol")
	cache.expect(t, hash)
}

func TestRevocationListenerIsANoOpOnSQLite(t *testing.T) {
	l := &store.RevocationListener{DB: dbtest.Open(t, "sqlite"), Cache: newRecordingCache()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(context.Background())
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return on SQLite")
	}
}

// freezingProxy forwards TCP connections to a PostgreSQL server. Frozen,
// it stops forwarding on the connections it has (they stay open) until
// thawed; the connections that are open while it is frozen are dropped when
// it thaws, and new ones are forwarded.
type freezingProxy struct {
	dsn    string
	target string

	mu     sync.Mutex
	thawed chan struct{} // closed unless frozen
	conns  []net.Conn
}

func newFreezingProxy(t *testing.T, dsn string) *freezingProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{target: u.Host, thawed: make(chan struct{})}
	close(p.thawed)
	u.Host = ln.Addr().String()
	p.dsn = u.String()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *freezingProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, client, server)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		defer src.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			thawed := p.thawed
			p.mu.Unlock()
			<-thawed
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go pipe(server, client)
	pipe(client, server)
}

func (p *freezingProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.thawed = make(chan struct{})
}

func (p *freezingProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	close(p.thawed)
}

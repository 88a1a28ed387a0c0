// Package redistest gives tests real Redis servers: the one in
// APIKEYD_TEST_REDIS_URL, which ./scripts/test starts, and redis-server
// processes of a test's own, to stop and start again (outages).
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apikeyd/apikeyd/internal/testenv"
)

// Variables ./scripts/test sets.
const (
	// URLEnv holds the URL of a Redis server tests may share (each test
	// uses keys of its own).
	URLEnv = "APIKEYD_TEST_REDIS_URL"
	// ServerEnv holds the path of the redis-server program, for tests that
	// run their own.
	ServerEnv = "APIKEYD_TEST_REDIS_SERVER"
)

// URL returns the URL of the shared test Redis. Without one, the test is
// skipped, except under CI=true, where it fails.
func URL(tb testing.TB) *url.URL {
	tb.Helper()
	v := os.Getenv(URLEnv)
	if v == "" {
		testenv.Missing(tb, URLEnv+" is not set", "start a Redis the tests may write to and set it")
	}
	u, err := url.Parse(v)
	if err != nil {
		tb.Fatalf("redistest: %s is not a URL", URLEnv)
	}
	return u
}

// Unique returns a name no other test uses, beginning with prefix.
func Unique(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Server is a redis-server process of the test's own, on a loopback port,
// with a password, keeping nothing on disk. It is killed when the test ends.
type Server struct {
	tb       testing.TB
	bin, dir string
	port     int
	password string
	cmd      *exec.Cmd
}

// Start starts a redis-server (APIKEYD_TEST_REDIS_SERVER, else the one on
// PATH) and waits until it answers. Without APIKEYD_TEST_REDIS_URL the test
// is skipped, as URL does.
func Start(tb testing.TB) *Server {
	tb.Helper()
	URL(tb)
	bin := os.Getenv(ServerEnv)
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			tb.Fatalf("redistest: %s is not set and no redis-server is on PATH", ServerEnv)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), port: port, password: Unique("pw-")}
	tb.Cleanup(s.Kill)
	s.Restart()
	return s
}

// URL returns the server's URL, its password included.
func (s *Server) URL() *url.URL {
	return &url.URL{Scheme: "redis", User: url.UserPassword("", s.password), Host: fmt.Sprintf("127.0.0.1:%d", s.port), Path: "/0"}
}

// Password returns the server's password.
func (s *Server) Password() string { return s.password }

// Kill kills the server (SIGKILL) and waits for it to exit. It does
// nothing when the server is not running.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again, on the same port, and waits until it
// answers. Its data is gone: it keeps none.
func (s *Server) Restart() {
	s.tb.Helper()
	if s.cmd != nil {
		s.tb.Fatal("redistest: Restart of a running server")
	}
	cmd := exec.Command(s.bin,
		"--bind", "127.0.0.1", "--port", fmt.Sprint(s.port),
		"--requirepass", s.password,
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", "redis.log")
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start %s: %v", s.bin, err)
	}
	s.cmd = cmd
	opts, _ := redis.ParseURL(s.URL().String())
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.tb.Fatalf("redistest: redis-server on port %d does not answer: %v\n%s", s.port, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a client of the Redis at u, closed when the test ends.
func Client(tb testing.TB, u *url.URL) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

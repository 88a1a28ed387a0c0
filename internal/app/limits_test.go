package app

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Transport limits (SECURITY.md, "Transport and browsers"): the http.Server
// that Serve runs has every timeout and a header cap, and each of them cuts
// off the client it is meant for.

func TestHTTPServerLimits(t *testing.T) {
	t.Parallel()
	srv := defaultLimits.server(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	l := defaultLimits
	for _, c := range []struct {
		name      string
		got, want time.Duration
		max       time.Duration
	}{
		{"ReadHeaderTimeout", srv.ReadHeaderTimeout, l.ReadHeaderTimeout, 10 * time.Second},
		{"ReadTimeout", srv.ReadTimeout, l.ReadTimeout, time.Minute},
		{"WriteTimeout", srv.WriteTimeout, l.WriteTimeout, time.Minute},
		{"IdleTimeout", srv.IdleTimeout, l.IdleTimeout, 5 * time.Minute},
	} {
		if c.got != c.want || c.got <= 0 || c.got > c.max {
			t.Errorf("%s = %v, want %v (0 < d <= %v)", c.name, c.got, c.want, c.max)
		}
	}
	// Room for an 8 KiB login token, not much more.
	if srv.MaxHeaderBytes != l.MaxHeaderBytes || srv.MaxHeaderBytes < 16<<10 || srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes = %d", srv.MaxHeaderBytes)
	}
	if srv.ErrorLog == nil {
		t.Error("connection errors are not logged through slog")
	}
}

// limitedServer serves apikeyd (on SQLite) through l.server on a loopback
// listener and returns its address.
func limitedServer(t *testing.T, l httpLimits) string {
	t.Helper()
	a := newTestApp(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.server(a.Handler, slog.New(slog.DiscardHandler))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedWithin reports whether the server closes conn within d while feed
// keeps sending to it, one piece every 50 ms.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration, feed func(i int) string) bool {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, conn) // returns when the server closes
	}()
	deadline := time.After(d)
	for i := 0; ; i++ {
		select {
		case <-closed:
			return true
		case <-deadline:
			return false
		case <-time.After(50 * time.Millisecond):
			if _, err := io.WriteString(conn, feed(i)); err != nil {
				<-closed
				return true
			}
		}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestHTTPServerCutsOffSlowClients(t *testing.T) {
	t.Parallel()
	const short = 300 * time.Millisecond
	const patience = 3 * time.Second // far more than any limit below
	// Each case shrinks only the limit it tests: net/http falls back on
	// ReadTimeout for the others.
	limits := func(change func(*httpLimits)) httpLimits {
		l := httpLimits{time.Minute, time.Minute, time.Minute, time.Minute, defaultLimits.MaxHeaderBytes}
		change(&l)
		return l
	}

	t.Run("SlowHeaders", func(t *testing.T) { // slowloris
		conn := dial(t, limitedServer(t, limits(func(l *httpLimits) { l.ReadHeaderTimeout = short })))
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: apikeyd\r\n")
		start := time.Now()
		if !closedWithin(t, conn, patience, func(i int) string { return fmt.Sprintf("X-Slow-%d: x\r\n", i) }) {
			t.Fatalf("a client trickling headers is still connected after %v", patience)
		}
		if d := time.Since(start); d < short/2 {
			t.Errorf("cut off after %v, before ReadHeaderTimeout", d)
		}
	})

	t.Run("SlowBody", func(t *testing.T) {
		conn := dial(t, limitedServer(t, limits(func(l *httpLimits) { l.ReadTimeout = short })))
		fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: apikeyd\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"query\":\"")
		if !closedWithin(t, conn, patience, func(int) string { return "a" }) {
			t.Fatalf("a client trickling its body is still connected after %v", patience)
		}
	})

	t.Run("IdleKeepAlive", func(t *testing.T) {
		addr := limitedServer(t, limits(func(l *httpLimits) { l.IdleTimeout = short }))
		conn := dial(t, addr)
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: apikeyd\r\n\r\n")
		br := bufio.NewReader(conn)
		res, b := readAnswer(t, br)
		checkHealthz(t, res, b)
		if res.StatusCode != http.StatusOK || res.Close {
			t.Fatalf("healthz: %d, close %v", res.StatusCode, res.Close)
		}
		// The connection stays open for a next request, then is closed.
		_ = conn.SetReadDeadline(time.Now().Add(patience))
		if _, err := br.ReadByte(); err == nil || isTimeout(err) {
			t.Fatalf("an idle kept-alive connection was not closed within %v (%v)", patience, err)
		}
	})
}

// readAnswer reads one answer and its whole body from a raw connection.
func readAnswer(t *testing.T, br *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// checkHealthz checks an answer to a raw GET /healthz: the document's
// {"status":"ok"} in JSON. (The OpenAPI check of every exchange is the
// root package's; this package's raw clients check the one answer they get.)
func checkHealthz(t *testing.T, res *http.Response, body []byte) {
	t.Helper()
	var v struct{ Status string }
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
		json.Unmarshal(body, &v) != nil || v.Status != "ok" {
		t.Errorf("healthz: %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestHTTPServerSlowHandlerWriteTimeout(t *testing.T) {
	t.Parallel()
	l := defaultLimits
	l.WriteTimeout = 200 * time.Millisecond
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(600 * time.Millisecond)
		_, _ = io.WriteString(w, "too late")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.server(slow, slog.New(slog.DiscardHandler))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	// The stand-in handler is not apikeyd's: no OpenAPI check.
	res, err := http.Get("http://" + ln.Addr().String() + "/")
	if err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("an answer written after WriteTimeout arrived: %d %q", res.StatusCode, b)
	}
}

func TestHTTPServerHeaderCap(t *testing.T) {
	t.Parallel()
	addr := limitedServer(t, defaultLimits)
	get := func(headerBytes int) int {
		t.Helper()
		conn := dial(t, addr)
		// Written while the answer is read: the server answers 431 before
		// it has read everything.
		go fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: apikeyd\r\nX-Pad: %s\r\nConnection: close\r\n\r\n", strings.Repeat("p", headerBytes))
		res, b := readAnswer(t, bufio.NewReader(conn))
		// A 431 is net/http's own plain-text answer, written before any
		// handler runs: not apikeyd's API, not in the document.
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			checkHealthz(t, res, b)
		}
		return res.StatusCode
	}
	// A header the size of the largest login token (8 KiB) and then some.
	if status := get(16 << 10); status != http.StatusOK {
		t.Errorf("16 KiB of headers: %d, want 200", status)
	}
	// net/http allows 4 KiB over MaxHeaderBytes before answering 431.
	if status := get(defaultLimits.MaxHeaderBytes + 8<<10); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over the cap: %d, want 431", status)
	}
	if status := get(1 << 20); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MiB of headers: %d, want 431", status)
	}
}

package auth

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// slowVerifier refuses every login token, slowly: each verification waits
// until every request of the burst has reached it, or until a settling time
// has passed with no new one, as a slow check (a password hash, a key set
// fetch) would keep it in flight.
type slowVerifier struct {
	n     int64 // requests in the burst
	calls atomic.Int64
	open  chan struct{}
	once  sync.Once
}

func (v *slowVerifier) Verify(ctx context.Context, _ string) (apikey.Principal, error) {
	if v.calls.Add(1) == v.n {
		v.release()
	}
	<-v.open
	return apikey.Principal{}, apperr.New(apperr.InvalidToken, "invalid or expired token")
}

func (v *slowVerifier) release() { v.once.Do(func() { close(v.open) }) }

// settle releases the verifications once no new one has arrived for a
// while: then every request that will be evaluated is being evaluated.
func (v *slowVerifier) settle() {
	for last := int64(-1); ; {
		time.Sleep(200 * time.Millisecond)
		now := v.calls.Load()
		if now == last {
			v.release()
			return
		}
		last = now
	}
}

// TestAuthenticatorFailuresInParallel: a burst of bad credentials sent at
// once, whose check is slow, cannot outrun the address's failure budget:
// exactly burst are evaluated (401), the others are refused (429 with
// Retry-After) without being checked.
func TestAuthenticatorFailuresInParallel(t *testing.T) {
	const burst, n = 10, 64
	limiter, _ := newTestLimiter[netip.Addr](burst, 1) // a clock that stands still: no refill
	tokens := &slowVerifier{n: n, open: make(chan struct{})}
	a := NewAuthenticator(tokens, apikey.NewService(nil, apikey.Config{}), &AddressLimiter{l: limiter}, nil, nil)
	refuse := func(w http.ResponseWriter, r *http.Request, err error) {
		httpx.WriteError(w, r, slog.New(slog.DiscardHandler), err)
	}
	srv := httptest.NewServer(a.Optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := apikey.AuthOf(r.Context()).Require()
		httpx.WriteError(w, r, slog.New(slog.DiscardHandler), err)
	}), refuse))
	defer srv.Close()
	go tokens.settle()

	var (
		start       = make(chan struct{})
		wg          sync.WaitGroup
		mu          sync.Mutex
		statuses    = map[int]int{}
		retryAfters int
	)
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.Header.Set("Authorization", "Bearer not.a.token")
			<-start
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			statuses[res.StatusCode]++
			if res.Header.Get("Retry-After") != "" {
				retryAfters++
			}
		})
	}
	close(start)
	wg.Wait()
	if statuses[401] != burst || statuses[429] != n-burst || retryAfters != n-burst {
		t.Errorf("answers %v (%d with Retry-After), checks %d; want %d × 401 and %d × 429 with Retry-After", statuses, retryAfters, tokens.calls.Load(), burst, n-burst)
	}
	if got := tokens.calls.Load(); got != burst {
		t.Errorf("%d of %d bad tokens were checked, want %d", got, n, burst)
	}
}

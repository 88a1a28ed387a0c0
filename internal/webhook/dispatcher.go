package webhook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/outbound"
)

// Outbox is the queue of events to deliver, written in the transaction of
// each change (see the store). Implementations translate their failures as
// apikey.Store does.
type Outbox interface {
	// ClaimDeliveries takes up to n deliveries due at now, for one attempt
	// each: it counts the attempt and moves each one's next attempt to
	// now+lease, atomically, so that no other dispatcher (on any server)
	// takes it meanwhile, and it is due again should this one die.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, n int) ([]audit.Delivery, error)
	// FinishDelivery removes a delivered or given-up event from the queue.
	FinishDelivery(ctx context.Context, eventID string) error
	// RetryDelivery makes the event due again at at, unless another attempt
	// has taken it since attempt.
	RetryDelivery(ctx context.Context, eventID string, attempt int, at time.Time) error
	// QueueDepth counts the events waiting.
	QueueDepth(ctx context.Context) (int, error)
}

// Observer is told the outcome of each attempt and the queue depth.
type Observer interface {
	WebhookAttempt(outcome string) // delivered, failed, given_up
	WebhookQueue(n int)
}

// Timeout is how long one attempt may take before it counts as failed.
const Timeout = 10 * time.Second

// lease is how long a claimed delivery stays taken: longer than an attempt
// can last, so no two attempts at one event ever overlap.
const lease = Timeout + 5*time.Second

// Config configures a Dispatcher.
type Config struct {
	URL *url.URL
	Key []byte // the HMAC key (webhooksecret.Parse)
	// Schedule is the wait before each retry (WEBHOOK_RETRY_SCHEDULE, whose
	// default is the configuration's): after the last one fails, the event
	// is given up; with none, the first failure gives it up.
	Schedule []time.Duration
	Observer Observer // none when nil
	Log      *slog.Logger
	// PollEvery is how often the queue is checked when it was found empty;
	// one second when zero.
	PollEvery time.Duration
	// Client sends the attempts; when nil, one with Timeout that follows
	// no redirect.
	Client *http.Client
	Now    func() time.Time
}

// Dispatcher delivers queued events. Several may run on one database, one
// per server: each takes different deliveries.
type Dispatcher struct {
	cfg    Config
	outbox Outbox
	wake   chan struct{}
}

// workers is how many attempts one dispatcher makes at once, so that one
// slow endpoint delays the others by no more than a batch.
const workers = 4

// NewDispatcher returns a Dispatcher over outbox.
func NewDispatcher(outbox Outbox, cfg Config) *Dispatcher {
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: Timeout,
			// A redirect is an answer, not a 2xx: never followed, so an
			// event never reaches a host other than WEBHOOK_URL's.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Dispatcher{cfg: cfg, outbox: outbox, wake: make(chan struct{}, 1)}
}

// Wake has Run look at the queue now rather than at its next poll: call it
// once an event has been queued. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

type nopObserver struct{}

func (nopObserver) WebhookAttempt(string) {}
func (nopObserver) WebhookQueue(int)      {}

// Run delivers events until ctx is done. An attempt in flight when ctx ends
// is abandoned; its lease runs out and it is attempted again later (at least
// once).
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.PollEvery)
	defer t.Stop()
	for {
		n, err := d.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			d.cfg.Log.Warn("webhook queue unavailable", "err", err)
		}
		if n == workers {
			continue // more may be due
		}
		if depth, err := d.outbox.QueueDepth(ctx); err == nil {
			d.cfg.Observer.WebhookQueue(depth)
		}
		select {
		case <-t.C:
		case <-d.wake:
		case <-ctx.Done():
			return
		}
	}
}

// RunOnce claims the deliveries due now, attempts them, and returns how many
// it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	batch, err := d.outbox.ClaimDeliveries(ctx, d.cfg.Now(), lease, workers)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, dl := range batch {
		wg.Go(func() { d.attempt(ctx, dl) })
	}
	wg.Wait()
	return len(batch), nil
}

// attempt sends one delivery and records what came of it.
func (d *Dispatcher) attempt(ctx context.Context, dl audit.Delivery) {
	err := d.send(ctx, dl)
	if ctx.Err() != nil {
		return // shutting down: the lease makes it due again
	}
	// The queue is updated even if ctx ends now: the attempt was made.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var qerr error
	switch {
	case err == nil:
		d.cfg.Observer.WebhookAttempt("delivered")
		qerr = d.outbox.FinishDelivery(qctx, dl.EventID)
	case dl.Attempt > len(d.cfg.Schedule):
		d.cfg.Observer.WebhookAttempt("given_up")
		d.cfg.Log.Warn("webhook given up", "event_id", dl.EventID, "attempts", dl.Attempt, "err", err)
		qerr = d.outbox.FinishDelivery(qctx, dl.EventID)
	default:
		d.cfg.Observer.WebhookAttempt("failed")
		next := d.cfg.Now().Add(d.cfg.Schedule[dl.Attempt-1])
		d.cfg.Log.Info("webhook attempt failed; will retry", "event_id", dl.EventID, "attempt", dl.Attempt, "next_attempt_at", next, "err", err)
		qerr = d.outbox.RetryDelivery(qctx, dl.EventID, dl.Attempt, next)
	}
	if qerr != nil {
		d.cfg.Log.Warn("webhook queue update failed; the event will be attempted again", "event_id", dl.EventID, "err", qerr)
	}
}

// statusError is a non-2xx answer.
type statusError int

func (e statusError) Error() string { return "endpoint answered " + strconv.Itoa(int(e)) }

// send POSTs dl's Body, signed for this attempt's timestamp.
func (d *Dispatcher) send(ctx context.Context, dl audit.Delivery) error {
	body, err := Body(dl.Event)
	if err != nil {
		return err
	}
	ts := d.cfg.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.URL.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "apikeyd-webhook")
	req.Header.Set("webhook-id", dl.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(d.cfg.Key, dl.EventID, ts, body))
	res, err := d.cfg.Client.Do(req)
	if err != nil {
		return outbound.WithoutURL(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return statusError(res.StatusCode)
	}
	return nil
}

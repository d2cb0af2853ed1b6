package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twofold-id/twofold/store"
)

// Outbox is what the Worker needs of the store.
type Outbox interface {
	ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (store.Mail, error)
	MarkMailSent(ctx context.Context, id int64, attempt int, at time.Time) error
	RetryMail(ctx context.Context, id int64, attempt int, next time.Time, cause string) error
	FailMail(ctx context.Context, id int64, attempt int, at time.Time, cause string) error
}

var _ Outbox = (*store.DB)(nil)

// Retry is the schedule of attempts at a message that could not be
// delivered.
type Retry struct {
	// Base is the wait after the first failed attempt; each further failure
	// doubles it, up to Max.
	Base, Max time.Duration
	// GiveUpAfter is how long after it was enqueued a message may still
	// fail and be retried; a failure after that gives it up for good.
	GiveUpAfter time.Duration
}

// DefaultRetry waits 30 s, doubling to 1 h, and gives up a day after the
// message was enqueued (about 30 attempts). A day is the default lifetime of
// a reset link: a later delivery would bring a dead link.
var DefaultRetry = Retry{Base: 30 * time.Second, Max: time.Hour, GiveUpAfter: 24 * time.Hour}

// Delay returns the wait after a message's attempts-th failed attempt.
func (r Retry) Delay(attempts int) time.Duration {
	d := r.Base
	for i := 1; i < attempts && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// Worker defaults.
const (
	DefaultPollInterval = 2 * time.Second
	// DefaultLease is how long a claimed message is the worker's alone. The
	// SMTP conversation is cut off after a quarter of it, leaving the rest
	// for recording the result.
	DefaultLease = 2 * time.Minute
)

const (
	// maxAttempts bounds the claims of one message. The retry schedule
	// stays far below it; only a message whose worker keeps dying before
	// recording a result (so it is never retried through Retry) gets there.
	maxAttempts = 100
	// maxErrorLen bounds the error text kept with a message.
	maxErrorLen = 1000
	// recordTimeout bounds writing an attempt's result.
	recordTimeout = 10 * time.Second
)

// Worker delivers the outbox over SMTP. Any number of workers, in any number
// of processes, may share one outbox: each message is leased to one of them
// at a time (see store.DB.ClaimMail), and no transaction is open while a
// worker talks to the SMTP server.
type Worker struct {
	Store Outbox
	SMTP  SMTPConfig
	// Logger gets one line per attempt: message id, attempt, outcome.
	// Subjects, bodies and recipients are never logged.
	Logger *slog.Logger
	Now    func() time.Time
	// Retry is the back-off schedule; zero fields take DefaultRetry's.
	Retry Retry
	// PollInterval is how often Run looks for due mail (default
	// DefaultPollInterval); Nudge makes it look at once.
	PollInterval time.Duration
	// Lease is how long a claimed message is held (default DefaultLease,
	// at least a minute); the SMTP conversation is cut off after a quarter
	// of it.
	Lease time.Duration

	wakeOnce sync.Once
	wake     chan struct{}
}

// Run delivers due mail every PollInterval, and when nudged, until ctx ends;
// then it returns nil, after finishing the message under way. It returns an
// error at once if the configuration is invalid.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.check(); err != nil {
		return err
	}
	w.logger().Info("mail worker started", "smtp", w.SMTP.String())
	tick := time.NewTicker(w.pollInterval())
	defer tick.Stop()
	for {
		if _, err := w.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			w.logger().Error("mail worker: delivering due mail", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-w.wakeup():
		}
	}
}

// Nudge makes Run look for due mail now rather than at its next poll; call
// it after committing a transaction that enqueued mail. It never blocks.
func (w *Worker) Nudge() {
	select {
	case w.wakeup() <- struct{}{}:
	default:
	}
}

// DeliverDue delivers the messages due now, one at a time, until none is
// left, and returns how many the SMTP server accepted. A failed message is
// scheduled for a later attempt, not retried here. When ctx ends it returns
// ctx's error, after finishing (and recording) the message under way.
func (w *Worker) DeliverDue(ctx context.Context) (int, error) {
	if err := w.check(); err != nil {
		return 0, err
	}
	sent := 0
	for {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		m, err := w.Store.ClaimMail(ctx, w.now(), w.lease())
		if errors.Is(err, store.ErrNotFound) {
			return sent, nil
		}
		if err != nil {
			return sent, err
		}
		if w.deliver(ctx, m) {
			sent++
		}
	}
}

// deliver makes one attempt at m, which the caller has claimed, records
// the outcome and reports whether the server accepted the message.
func (w *Worker) deliver(ctx context.Context, m store.Mail) bool {
	log := w.logger().With("mail_id", m.ID, "attempt", m.Attempts)
	// Why both the send and the records outlive ctx (up to their own
	// deadlines): a conversation cut off after DATA may still have
	// delivered the message, and a delivery not recorded is sent again.
	// Finishing them makes shutdown wait, but not send twice.
	detached := context.WithoutCancel(ctx)
	if m.Attempts > maxAttempts {
		cause := fmt.Sprintf("gave up after %d attempts; last error: %s", m.Attempts-1, m.LastError)
		if w.record(detached, log, "give up", func(ctx context.Context) error {
			return w.Store.FailMail(ctx, m.ID, m.Attempts, w.now(), clip(cause))
		}) {
			log.Error("mail given up unsent: too many attempts")
		}
		return false
	}
	sendCtx, cancel := context.WithTimeout(detached, w.lease()/4)
	err := w.SMTP.send(sendCtx, m)
	cancel()
	now := w.now()
	switch {
	case err == nil:
		if w.record(detached, log, "mark sent", func(ctx context.Context) error {
			return w.Store.MarkMailSent(ctx, m.ID, m.Attempts, now)
		}) {
			log.Info("mail sent")
		}
		return true
	case now.Sub(m.CreatedAt) >= w.retry().GiveUpAfter:
		if w.record(detached, log, "give up", func(ctx context.Context) error {
			return w.Store.FailMail(ctx, m.ID, m.Attempts, now, clip(err.Error()))
		}) {
			log.Error("mail delivery failed; given up", "err", err, "age", now.Sub(m.CreatedAt))
		}
	default:
		next := now.Add(w.retry().Delay(m.Attempts))
		if w.record(detached, log, "schedule retry", func(ctx context.Context) error {
			return w.Store.RetryMail(ctx, m.ID, m.Attempts, next, clip(err.Error()))
		}) {
			log.Warn("mail delivery failed; will retry", "err", err, "retry_at", next)
		}
	}
	return false
}

// record writes an attempt's outcome and reports whether it was written.
// When it was not, the message stays leased and is claimed again once the
// lease ends.
func (w *Worker) record(ctx context.Context, log *slog.Logger, what string, write func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	err := write(ctx)
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		// The lease ran out and another worker claimed the message.
		log.Warn("mail outcome not recorded: lease lost to another worker", "outcome", what)
	default:
		log.Error("mail outcome not recorded; the message will be retried after its lease", "outcome", what, "err", err)
	}
	return false
}

// check reports a configuration that cannot work.
func (w *Worker) check() error {
	var errs []error
	if w.Store == nil {
		errs = append(errs, errors.New("mail: worker has no store"))
	}
	errs = append(errs, w.SMTP.Validate())
	r := w.retry()
	if r.Base < time.Second || r.Max < r.Base || r.GiveUpAfter <= 0 {
		errs = append(errs, fmt.Errorf("mail: retry schedule %+v needs Base ≥ 1s, Max ≥ Base and GiveUpAfter > 0", r))
	}
	if w.Lease < 0 || w.PollInterval < 0 {
		errs = append(errs, errors.New("mail: negative lease or poll interval"))
	}
	// A quarter of the lease for the conversation must leave the rest
	// enough to record the outcome before another worker may claim it.
	if l := w.lease(); l < time.Minute {
		errs = append(errs, fmt.Errorf("mail: lease %v is shorter than a minute", l))
	}
	return errors.Join(errs...)
}

func (w *Worker) wakeup() chan struct{} {
	w.wakeOnce.Do(func() { w.wake = make(chan struct{}, 1) })
	return w.wake
}

func (w *Worker) now() time.Time {
	if w.Now == nil {
		return time.Now()
	}
	return w.Now()
}

func (w *Worker) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.Default()
	}
	return w.Logger
}

func (w *Worker) retry() Retry {
	r := w.Retry
	if r.Base == 0 {
		r.Base = DefaultRetry.Base
	}
	if r.Max == 0 {
		r.Max = DefaultRetry.Max
	}
	if r.GiveUpAfter == 0 {
		r.GiveUpAfter = DefaultRetry.GiveUpAfter
	}
	return r
}

func (w *Worker) lease() time.Duration {
	if w.Lease == 0 {
		return DefaultLease
	}
	return w.Lease
}

func (w *Worker) pollInterval() time.Duration {
	if w.PollInterval == 0 {
		return DefaultPollInterval
	}
	return w.PollInterval
}

// clip shortens an error text for storage, keeping it valid UTF-8.
func clip(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorLen], "")
}

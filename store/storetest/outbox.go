package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

// testLease is the lease the outbox tests claim messages with.
const testLease = 2 * time.Minute

func enqueue(t *testing.T, db *store.DB, to string, at time.Time) int64 {
	t.Helper()
	id, err := db.EnqueueMail(ctx, store.Mail{Recipient: to, Subject: "Hi " + to, Text: "text", HTML: "<p>html</p>", CreatedAt: at})
	must(t, err, "enqueue mail to %s", to)
	return id
}

// claimNothing fails the test unless nothing is due at now.
func claimNothing(t *testing.T, db *store.DB, now time.Time, why string) {
	t.Helper()
	if m, err := db.ClaimMail(ctx, now, testLease); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: claim = %+v, %v; want ErrNotFound", why, m, err)
	}
}

// testOutbox walks one message through a failed attempt, its retry and
// its delivery.
func testOutbox(t *testing.T, db *store.DB) {
	id := enqueue(t, db, "a@example.com", t0)
	n, age, err := db.MailBacklog(ctx, t0.Add(time.Minute))
	must(t, err, "backlog")
	if n != 1 || age != time.Minute {
		t.Fatalf("backlog = %d, %v; want 1, 1m", n, age)
	}
	m, err := db.ClaimMail(ctx, t0, testLease)
	must(t, err, "claim")
	if m.ID != id || m.Recipient != "a@example.com" || m.Subject != "Hi a@example.com" || m.Text != "text" ||
		m.HTML != "<p>html</p>" || m.Attempts != 1 || !m.NextAttemptAt.Equal(t0.Add(testLease).Truncate(time.Microsecond)) {
		t.Fatalf("claimed %+v", m)
	}
	// While the lease holds, nobody else gets the message.
	claimNothing(t, db, t0, "claim of a leased message")
	// A failed send is retried later, not at once.
	must(t, db.RetryMail(ctx, id, m.Attempts, t0.Add(time.Minute), "smtp down"), "retry")
	claimNothing(t, db, t0.Add(59*time.Second), "claim before the retry time")
	m, err = db.ClaimMail(ctx, t0.Add(time.Minute), testLease)
	must(t, err, "claim at the retry time")
	if m.ID != id || m.Attempts != 2 || m.LastError != "smtp down" {
		t.Fatalf("second claim = %+v", m)
	}
	must(t, db.MarkMailSent(ctx, id, m.Attempts, t0.Add(time.Minute)), "mark sent")
	got, err := db.GetMail(ctx, id)
	must(t, err, "get mail")
	if !got.SentAt.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) || got.Attempts != 2 || got.LastError != "" {
		t.Fatalf("after delivery: %+v", got)
	}
	if n, _, _ := db.MailBacklog(ctx, t0); n != 0 {
		t.Fatalf("backlog after delivery = %d", n)
	}
	claimNothing(t, db, t0.Add(time.Hour), "claim after delivery")
	if err := db.MarkMailSent(ctx, id, m.Attempts, t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("marking a sent message again: %v, want ErrNotFound", err)
	}
	if _, err := db.GetMail(ctx, id+1000); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing mail: %v, want ErrNotFound", err)
	}
}

// testOutboxOrder: the message due longest goes first, and a message not
// yet due is left alone.
func testOutboxOrder(t *testing.T, db *store.DB) {
	later := enqueue(t, db, "later@example.com", t0.Add(time.Second))
	first := enqueue(t, db, "first@example.com", t0)
	enqueue(t, db, "future@example.com", t0.Add(time.Hour))
	for _, want := range []int64{first, later} {
		m, err := db.ClaimMail(ctx, t0.Add(time.Minute), testLease)
		must(t, err, "claim")
		if m.ID != want {
			t.Fatalf("claimed message %d, want %d", m.ID, want)
		}
	}
	claimNothing(t, db, t0.Add(time.Minute), "claim of a message not yet due")
	list, err := db.ListMail(ctx, 2)
	must(t, err, "list")
	if len(list) != 2 || list[0].Recipient != "future@example.com" || list[1].ID != first {
		t.Fatalf("list newest first = %+v", list)
	}
}

// testOutboxLeaseExpiry: when a lease runs out another worker may retry
// the message, and the first worker can no longer record anything for it.
func testOutboxLeaseExpiry(t *testing.T, db *store.DB) {
	id := enqueue(t, db, "a@example.com", t0)
	stale, err := db.ClaimMail(ctx, t0, testLease)
	must(t, err, "first claim")
	claimNothing(t, db, t0.Add(testLease-time.Microsecond), "claim just before the lease ends")
	fresh, err := db.ClaimMail(ctx, t0.Add(testLease), testLease)
	must(t, err, "claim after the lease ended")
	if fresh.ID != id || fresh.Attempts != stale.Attempts+1 {
		t.Fatalf("second claim = %+v after %+v", fresh, stale)
	}
	later := t0.Add(testLease + time.Second)
	for what, err := range map[string]error{
		"mark sent": db.MarkMailSent(ctx, id, stale.Attempts, later),
		"retry":     db.RetryMail(ctx, id, stale.Attempts, later.Add(time.Hour), "stale"),
		"fail":      db.FailMail(ctx, id, stale.Attempts, later, "stale"),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("stale worker's %s: %v, want ErrNotFound", what, err)
		}
	}
	m, err := db.GetMail(ctx, id)
	must(t, err, "get mail")
	if !m.SentAt.IsZero() || m.Attempts != 2 || m.LastError != "" ||
		!m.NextAttemptAt.Equal(t0.Add(2*testLease).Truncate(time.Microsecond)) {
		t.Fatalf("a stale worker changed the message: %+v", m)
	}
	must(t, db.MarkMailSent(ctx, id, fresh.Attempts, later), "current holder marks sent")

	// A worker whose lease ran out but was not taken over still records
	// its result: the mail was sent, and saying so prevents a duplicate.
	id = enqueue(t, db, "b@example.com", t0)
	slow, err := db.ClaimMail(ctx, t0, testLease)
	must(t, err, "claim")
	must(t, db.MarkMailSent(ctx, id, slow.Attempts, t0.Add(2*testLease)), "late mark sent")
}

// testOutboxGiveUp: a message given up is never claimed again, leaves the
// backlog and keeps its last error.
func testOutboxGiveUp(t *testing.T, db *store.DB) {
	id := enqueue(t, db, "a@example.com", t0)
	m, err := db.ClaimMail(ctx, t0, testLease)
	must(t, err, "claim")
	must(t, db.FailMail(ctx, id, m.Attempts, t0, "550 no such user"), "fail")
	claimNothing(t, db, t0.Add(48*time.Hour), "claim of a failed message")
	if n, _, _ := db.MailBacklog(ctx, t0); n != 0 {
		t.Fatalf("backlog with only a failed message = %d", n)
	}
	got, err := db.GetMail(ctx, id)
	must(t, err, "get mail")
	if got.LastError != "550 no such user" || !got.SentAt.IsZero() || !got.FailedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Fatalf("failed message = %+v, failed at %v", got, got.FailedAt)
	}
	if err := db.MarkMailSent(ctx, id, m.Attempts, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mark a failed message sent: %v, want ErrNotFound", err)
	}
}

// testOutboxClaimHoldsNoLock: between claim and mark, other writers are
// not blocked (on SQLite, an open write transaction would stop them until
// the busy timeout), and claiming inside a transaction is refused.
func testOutboxClaimHoldsNoLock(t *testing.T, db *store.DB) {
	id := enqueue(t, db, "a@example.com", t0)
	m, err := db.ClaimMail(ctx, t0, testLease)
	must(t, err, "claim")
	// The "SMTP conversation" happens here: other writes must go through.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err = db.EnqueueMail(wctx, store.Mail{Recipient: "b@example.com", Subject: "s", CreatedAt: t0})
	must(t, err, "enqueue while a message is leased")
	must(t, db.MarkMailSent(ctx, id, m.Attempts, t0), "mark sent")

	err = db.InTx(ctx, func(ctx context.Context) error {
		_, err := db.ClaimMail(ctx, t0, testLease)
		return err
	})
	if err == nil {
		t.Fatal("ClaimMail inside a transaction succeeded")
	}
	got, err := db.ListMail(ctx, 10)
	must(t, err, "list")
	for _, m := range got {
		if m.Recipient == "b@example.com" && m.Attempts != 0 {
			t.Fatalf("refused claim changed the message: %+v", m)
		}
	}
}

// testOutboxConcurrentClaimOne: many workers claiming one message at once:
// exactly one gets it, and again exactly one when its lease ends.
func testOutboxConcurrentClaimOne(t *testing.T, db *store.DB) {
	enqueue(t, db, "a@example.com", t0)
	for _, tc := range []struct {
		at   time.Time
		want int
	}{{t0, 1}, {t0.Add(testLease - time.Microsecond), 0}, {t0.Add(testLease), 1}} {
		ok, errs := concurrently(10, func(int) error {
			_, err := db.ClaimMail(ctx, tc.at, testLease)
			return err
		})
		if ok != tc.want {
			t.Fatalf("at %v: %d of 10 concurrent claims succeeded, want %d", tc.at.Sub(t0), ok, tc.want)
		}
		for _, err := range errs {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("unexpected error: %v", err)
			}
		}
	}
}

// testOutboxConcurrent: many workers draining one outbox send each message
// exactly once, and every one of them is recorded as sent.
func testOutboxConcurrent(t *testing.T, db *store.DB) {
	const messages, workers = 30, 6
	for i := range messages {
		enqueue(t, db, fmt.Sprintf("u%d@example.com", i), t0.Add(time.Duration(i)*time.Microsecond))
	}
	sends := make(chan int64, messages*workers)
	_, errs := concurrently(workers, func(int) error {
		for {
			m, err := db.ClaimMail(ctx, t0.Add(time.Second), testLease)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			sends <- m.ID
			runtime.Gosched() // let the others claim while this one "sends"
			if err := db.MarkMailSent(ctx, m.ID, m.Attempts, t0.Add(time.Second)); err != nil {
				return err
			}
		}
	})
	if len(errs) > 0 {
		t.Fatalf("workers failed: %v", errs)
	}
	close(sends)
	seen := map[int64]int{}
	for id := range sends {
		seen[id]++
	}
	if len(seen) != messages {
		t.Fatalf("%d distinct messages sent, want %d", len(seen), messages)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %d sent %d times", id, n)
		}
	}
	if n, _, _ := db.MailBacklog(ctx, t0); n != 0 {
		t.Fatalf("backlog after draining = %d", n)
	}
}

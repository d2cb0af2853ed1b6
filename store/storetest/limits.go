package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"
)

var testBackoff = store.Backoff{Free: 3, Base: 30 * time.Second, Max: 4 * time.Minute, Forget: 24 * time.Hour}

func testRateLimit(t *testing.T, db *store.DB) {
	now := t0
	for i := range 3 {
		must(t, db.RateLimitAttempt(ctx, "k", testBackoff, now), "free attempt %d", i+1)
	}
	// The fourth attempt is allowed but blocks the key for 30 s.
	must(t, db.RateLimitAttempt(ctx, "k", testBackoff, now), "fourth attempt")
	if err := db.RateLimitAttempt(ctx, "k", testBackoff, now.Add(29*time.Second)); !errors.Is(err, store.ErrThrottled) {
		t.Fatalf("attempt while blocked: %v, want ErrThrottled", err)
	}
	n, err := db.RateLimitFailures(ctx, "k")
	must(t, err, "failures")
	if n != 4 {
		t.Fatalf("a throttled attempt changed the count: %d, want 4", n)
	}
	// After the delay, the next failure doubles it.
	now = now.Add(30 * time.Second)
	must(t, db.RateLimitAttempt(ctx, "k", testBackoff, now), "after delay")
	if err := db.RateLimitAttempt(ctx, "k", testBackoff, now.Add(59*time.Second)); !errors.Is(err, store.ErrThrottled) {
		t.Fatalf("doubled delay not applied: %v", err)
	}
	must(t, db.RateLimitAttempt(ctx, "k", testBackoff, now.Add(60*time.Second)), "after doubled delay")
	// Other keys are independent; a reset forgets the failures.
	must(t, db.RateLimitAttempt(ctx, "other", testBackoff, now), "other key")
	must(t, db.ResetRateLimit(ctx, "k"), "reset")
	if n, _ := db.RateLimitFailures(ctx, "k"); n != 0 {
		t.Fatalf("failures after reset = %d", n)
	}
	// A key quiet for longer than Forget starts over.
	for range 5 {
		_ = db.RateLimitAttempt(ctx, "old", testBackoff, t0)
	}
	must(t, db.RateLimitAttempt(ctx, "old", testBackoff, t0.Add(25*time.Hour)), "forgotten key")
	if n, _ := db.RateLimitFailures(ctx, "old"); n != 1 {
		t.Fatalf("forgotten key failures = %d, want 1", n)
	}
}

// testRateLimitConcurrent: many attempts at once are each counted, and no
// more get through than the schedule allows.
func testRateLimitConcurrent(t *testing.T, db *store.DB) {
	ok, errs := concurrently(20, func(int) error { return db.RateLimitAttempt(ctx, "burst", testBackoff, t0) })
	// Three free attempts and the fourth (which starts the block) pass.
	if ok != 4 {
		t.Fatalf("%d of 20 concurrent attempts passed, want 4", ok)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrThrottled) {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if n, _ := db.RateLimitFailures(ctx, "burst"); n != 4 {
		t.Fatalf("failures = %d, want 4", n)
	}
}

func testOutbox(t *testing.T, db *store.DB) {
	id, err := db.EnqueueMail(ctx, store.Mail{Recipient: "a@example.com", Subject: "Hi", Text: "text", HTML: "<p>html</p>", CreatedAt: t0})
	must(t, err, "enqueue")
	n, age, err := db.MailBacklog(ctx, t0.Add(time.Minute))
	must(t, err, "backlog")
	if n != 1 || age != time.Minute {
		t.Fatalf("backlog = %d, %v", n, age)
	}
	retry := func(attempts int) time.Duration { return time.Duration(attempts) * time.Minute }
	// A failed send is retried later, not at once.
	claimed, err := db.ClaimMail(ctx, t0, retry, func(store.Mail) error { return errors.New("smtp down") })
	must(t, err, "claim")
	if !claimed {
		t.Fatal("nothing claimed")
	}
	claimed, err = db.ClaimMail(ctx, t0.Add(59*time.Second), retry, func(store.Mail) error { t.Fatal("sent before its retry time"); return nil })
	must(t, err, "claim early")
	if claimed {
		t.Fatal("claimed a message before its retry time")
	}
	var sent []store.Mail
	claimed, err = db.ClaimMail(ctx, t0.Add(time.Minute), retry, func(m store.Mail) error { sent = append(sent, m); return nil })
	must(t, err, "claim")
	if !claimed || len(sent) != 1 || sent[0].ID != id || sent[0].Subject != "Hi" || sent[0].Attempts != 1 {
		t.Fatalf("sent = %+v", sent)
	}
	m, err := db.GetMail(ctx, id)
	must(t, err, "get mail")
	if m.SentAt.IsZero() || m.Attempts != 2 || m.LastError != "" {
		t.Fatalf("after delivery: %+v", m)
	}
	if n, _, _ := db.MailBacklog(ctx, t0); n != 0 {
		t.Fatalf("backlog after delivery = %d", n)
	}
}

// testOutboxConcurrentWorkers: many workers draining one outbox send each
// message exactly once.
func testOutboxConcurrent(t *testing.T, db *store.DB) {
	const messages = 30
	for i := range messages {
		_, err := db.EnqueueMail(ctx, store.Mail{Recipient: fmt.Sprintf("u%d@example.com", i), Subject: "s", CreatedAt: t0})
		must(t, err, "enqueue")
	}
	sends := make(chan int64, messages*2)
	retry := func(int) time.Duration { return time.Minute }
	concurrently(6, func(int) error {
		for {
			claimed, err := db.ClaimMail(ctx, t0, retry, func(m store.Mail) error { sends <- m.ID; return nil })
			if err != nil {
				return err
			}
			if !claimed {
				return nil
			}
		}
	})
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
}

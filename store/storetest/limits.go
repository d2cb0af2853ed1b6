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
	// Concurrent callers read their clocks before taking the lock: an
	// attempt stamped a moment before the last recorded one is still one
	// of the free attempts, not blocked by a zero-length delay.
	must(t, db.RateLimitAttempt(ctx, "skew", testBackoff, t0), "first attempt")
	must(t, db.RateLimitAttempt(ctx, "skew", testBackoff, t0.Add(-time.Millisecond)), "earlier-stamped free attempt")

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
	// A refund takes back one counted attempt.
	must(t, db.RefundRateLimit(ctx, "k"), "refund")
	if n, _ := db.RateLimitFailures(ctx, "k"); n != 5 {
		t.Fatalf("failures after refund = %d, want 5", n)
	}
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

// testRateLimitConcurrentKeys: a burst over several keys at once, each
// starting without a row, counts every attempt on every key exactly.
func testRateLimitConcurrentKeys(t *testing.T, db *store.DB) {
	b := store.Backoff{Free: 100, Base: time.Second, Max: time.Minute}
	const keys, perKey = 4, 12
	ok, errs := concurrently(keys*perKey, func(i int) error {
		return db.RateLimitAttempt(ctx, fmt.Sprintf("spread-%d", i%keys), b, t0.Add(time.Duration(i)*time.Millisecond))
	})
	if ok != keys*perKey {
		t.Fatalf("%d of %d attempts passed, want all: %v", ok, keys*perKey, errs)
	}
	for k := range keys {
		if n, _ := db.RateLimitFailures(ctx, fmt.Sprintf("spread-%d", k)); n != perKey {
			t.Fatalf("key %d counted %d failures, want %d", k, n, perKey)
		}
	}
}

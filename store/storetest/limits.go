package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
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
	// Settling a success resets one key (lifting its block) and refunds one
	// attempt of the other (keeping its block), leaving a third alone.
	for range 4 {
		for _, k := range []string{"settle-reset", "settle-refund", "settle-other"} {
			must(t, db.RateLimitAttempt(ctx, k, testBackoff, t0), "attempt on %s", k)
		}
	}
	must(t, db.SettleRateLimits(ctx, "settle-reset", "settle-refund"), "settle")
	must(t, db.SettleRateLimits(ctx, "settle-missing", "settle-missing-too"), "settle keys without rows")
	for k, want := range map[string]int{"settle-reset": 0, "settle-refund": 3, "settle-other": 4} {
		if n, err := db.RateLimitFailures(ctx, k); err != nil || n != want {
			t.Fatalf("after settling, %s counts %d failures (%v), want %d", k, n, err, want)
		}
	}
	must(t, db.RateLimitAttempt(ctx, "settle-reset", testBackoff, t0.Add(time.Second)), "attempt after the reset")
	for _, k := range []string{"settle-refund", "settle-other"} {
		if err := db.RateLimitAttempt(ctx, k, testBackoff, t0.Add(time.Second)); !errors.Is(err, store.ErrThrottled) {
			t.Fatalf("%s after settling: %v, want ErrThrottled (still blocked)", k, err)
		}
	}
	// Refunds that bring a blocked key back under its free attempts do not
	// lift the block: only time does.
	for i := range 4 {
		must(t, db.RateLimitAttempt(ctx, "refunded", testBackoff, t0), "attempt %d", i+1)
	}
	must(t, db.RefundRateLimit(ctx, "refunded"), "refund")
	must(t, db.RefundRateLimit(ctx, "refunded"), "refund")
	if err := db.RateLimitAttempt(ctx, "refunded", testBackoff, t0.Add(time.Second)); !errors.Is(err, store.ErrThrottled) {
		t.Fatalf("attempt while blocked after refunds: %v, want ErrThrottled", err)
	}
	must(t, db.RateLimitAttempt(ctx, "refunded", testBackoff, t0.Add(30*time.Second)), "attempt after the delay")
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

// limitModel is the rate-limit schedule written out independently of the
// store, the oracle testRateLimitModel checks the store against.
type limitModel struct {
	failures      int
	last, blocked time.Time
	exists        bool
}

// attempt applies one attempt and says how it went: "locked out",
// "blocked", "free" (no delay follows) or "delayed", with " after forgetting"
// when a quiet key started over.
func (m *limitModel) attempt(b store.Backoff, now time.Time) string {
	how := ""
	switch {
	case b.Lockout > 0 && m.failures >= b.Lockout:
		return "locked out"
	case m.blocked.After(m.last) && now.Before(m.blocked):
		return "blocked"
	case b.Forget > 0 && now.Sub(m.last) > b.Forget && m.exists:
		m.failures, how = 0, " after forgetting"
	}
	m.failures++
	m.last, m.blocked, m.exists = now, now.Add(b.Delay(m.failures)), true
	if b.Delay(m.failures) == 0 {
		return "free" + how
	}
	return "delayed" + how
}

// testRateLimitModel replays a long pseudo-random history of attempts,
// resets and refunds (clock steps from a slight skew backwards to over a
// day) against the store and the model, and requires the same decision
// and count after every step. It covers every path RateLimitAttempt
// takes: the one-statement free attempt, the read-then-write, the lock.
func testRateLimitModel(t *testing.T, db *store.DB) {
	b := store.Backoff{Free: 3, Base: 30 * time.Second, Max: 4 * time.Minute, Forget: time.Hour, Lockout: 8}
	rnd := rand.New(rand.NewPCG(7, 11))
	// Mostly short steps, so that keys reach their delays and lockout;
	// now and then a quiet hour or day, so that they are forgotten.
	steps := []time.Duration{-time.Millisecond, 0, 0, time.Second, time.Second, 29 * time.Second, 31 * time.Second, 31 * time.Second,
		2 * time.Minute, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute, 61 * time.Minute, 25 * time.Hour}
	var m limitModel
	now := t0
	seen := map[string]int{}
	for i := range 600 {
		now = now.Add(steps[rnd.IntN(len(steps))])
		var op string
		// Refunds are frequent enough that a key comes back under its free
		// attempts while still blocked.
		switch r := rnd.IntN(40); {
		case r == 0:
			op = "reset"
			must(t, db.ResetRateLimit(ctx, "model"), "step %d: reset", i)
			if m.exists {
				m.failures, m.blocked = 0, m.last
			}
		case r <= 4:
			op = "refund"
			must(t, db.RefundRateLimit(ctx, "model"), "step %d: refund", i)
			if m.failures > 0 {
				m.failures--
			}
		default:
			op = "attempt"
			before := m.failures
			how := m.attempt(b, utcMicro(now))
			seen[how]++
			want := how != "locked out" && how != "blocked"
			err := db.RateLimitAttempt(ctx, "model", b, now)
			if err != nil && !errors.Is(err, store.ErrThrottled) {
				t.Fatalf("step %d: attempt: %v", i, err)
			}
			if got := err == nil; got != want {
				t.Fatalf("step %d (failures %d before): attempt allowed = %v, model says %s", i, before, got, how)
			}
		}
		n, err := db.RateLimitFailures(ctx, "model")
		must(t, err, "step %d: failures", i)
		if n != m.failures {
			t.Fatalf("step %d, after %s: store counts %d failures, model %d", i, op, n, m.failures)
		}
	}
	// The history must have gone through every case, or it proves little.
	for _, how := range []string{"free", "delayed", "blocked", "locked out", "free after forgetting"} {
		if seen[how] == 0 {
			t.Errorf("the history never had an attempt %s (had %v)", how, seen)
		}
	}
}

// utcMicro is a time as the store keeps it.
func utcMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

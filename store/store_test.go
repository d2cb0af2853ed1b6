package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twofold-id/twofold/store"

	"github.com/twofold-id/twofold/store/storetest"
)

// TestConformance runs the conformance suite on every configured backend.
func TestConformance(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		storetest.Run(t, b.Open)
	})
}

// TestReadCommitted: on PostgreSQL every transaction runs at READ
// COMMITTED even where the server's or the URL's default is stricter; the
// ordering of an owner's reset against code and token writes depends on
// it (store.insertSessions).
func TestReadCommitted(t *testing.T) {
	b, ok := storetest.Postgres(t)
	if !ok {
		t.Skip("no PostgreSQL (" + storetest.EnvPostgresURL + ")")
	}
	dsn := b.URL(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db := storetest.OpenURL(t, dsn+sep+"default_transaction_isolation=serializable")
	ctx := context.Background()
	if level, err := db.Isolation(ctx); err != nil || level != "serializable" {
		t.Fatalf("the URL's default did not take: a statement runs at %q (%v)", level, err)
	}
	err := db.InTx(ctx, func(ctx context.Context) error {
		level, err := db.Isolation(ctx)
		if err == nil && level != "read committed" {
			err = fmt.Errorf("a transaction runs at %q, want read committed", level)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRateLimitLockedFallback runs the rate-limit tests through the locked
// transaction RateLimitAttempt falls back to after lost races, which the
// conformance run reaches only by chance.
func TestRateLimitLockedFallback(t *testing.T) {
	store.ForceLockedRateLimits(t)
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		storetest.RunRateLimits(t, b.Open)
	})
}

// TestRateLimitReadPath runs the rate-limit tests with free attempts too
// decided on the row read, as attempts that set a delay always are.
func TestRateLimitReadPath(t *testing.T) {
	store.ForceReadRateLimits(t)
	storetest.ForEach(t, func(t *testing.T, b storetest.Backend) {
		storetest.RunRateLimits(t, b.Open)
	})
}

// TestRateLimitNotFreeHints: once a key's attempt is found not free, this
// instance skips the one-statement path for it (refused guesses then cost
// a read, not a write) until the hint expires or the key is reset; the
// hints are bounded however many keys an attacker uses.
func TestRateLimitNotFreeHints(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, be storetest.Backend) {
		db := be.Open(t)
		ctx := context.Background()
		b := store.Backoff{Free: 3, Base: 30 * time.Second, Max: time.Hour, Forget: 24 * time.Hour}
		t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		for i := range 3 {
			if err := db.RateLimitAttempt(ctx, "hint", b, t0); err != nil {
				t.Fatalf("free attempt %d: %v", i+1, err)
			}
			if db.SkipsFreeAttempt("hint", t0) {
				t.Fatalf("a free attempt left a hint")
			}
		}
		if err := db.RateLimitAttempt(ctx, "hint", b, t0); err != nil {
			t.Fatalf("fourth attempt: %v", err)
		}
		if !db.SkipsFreeAttempt("hint", t0.Add(59*time.Second)) || db.SkipsFreeAttempt("hint", t0.Add(61*time.Second)) {
			t.Fatal("the attempt past the free ones left no hint, or one that lasts more than a minute")
		}
		if err := db.RateLimitAttempt(ctx, "hint", b, t0.Add(time.Second)); !errors.Is(err, store.ErrThrottled) {
			t.Fatalf("attempt while blocked, on the hinted path: %v", err)
		}
		if err := db.ResetRateLimit(ctx, "hint"); err != nil {
			t.Fatal(err)
		}
		if db.SkipsFreeAttempt("hint", t0.Add(time.Second)) {
			t.Fatal("a reset kept the hint")
		}
		// A backoff without free attempts delays from the first one, and
		// its keys take the read path from the start, leaving no hint.
		none := store.Backoff{Base: time.Minute, Max: time.Minute}
		if err := db.RateLimitAttempt(ctx, "no-free", none, t0); err != nil {
			t.Fatalf("first attempt without free ones: %v", err)
		}
		if err := db.RateLimitAttempt(ctx, "no-free", none, t0.Add(time.Second)); !errors.Is(err, store.ErrThrottled) {
			t.Fatalf("second attempt within the first one's delay: %v, want ErrThrottled", err)
		}
		if db.SkipsFreeAttempt("no-free", t0.Add(time.Second)) {
			t.Fatal("a key without free attempts left a hint")
		}
		// Keys past their free attempts, more of them than the bound.
		store.BoundNotFreeHints(t, 16)
		one := store.Backoff{Free: 1, Base: time.Second, Max: time.Second}
		for i := range 16 + 10 {
			k := fmt.Sprintf("spray-%d", i)
			_ = db.RateLimitAttempt(ctx, k, one, t0)
			_ = db.RateLimitAttempt(ctx, k, one, t0)
		}
		if n := db.NotFreeHints(); n != 16 {
			t.Fatalf("%d hints, want the bound, 16", n)
		}
		// Expired hints make room for new ones.
		for range 2 {
			_ = db.RateLimitAttempt(ctx, "late", one, t0.Add(2*time.Minute))
		}
		if !db.SkipsFreeAttempt("late", t0.Add(2*time.Minute)) {
			t.Fatal("a full set of expired hints took no new one")
		}
	})
}

func TestBackoffDelay(t *testing.T) {
	b := store.Backoff{Free: 3, Base: 30 * time.Second, Max: 4 * time.Minute}
	for failures, want := range map[int]time.Duration{0: 0, 3: 0, 4: 30 * time.Second, 5: time.Minute, 6: 2 * time.Minute, 7: 4 * time.Minute, 50: 4 * time.Minute} {
		if got := b.Delay(failures); got != want {
			t.Errorf("Delay(%d) = %v, want %v", failures, got, want)
		}
	}
}

// TestMailNeverPrintsBodies: a message logged or printed by mistake shows
// no body, subject or recipient.
func TestMailNeverPrintsBodies(t *testing.T) {
	m := store.Mail{ID: 7, Recipient: "ada@example.com", Subject: "Reset", Text: "https://id/reset/SECRET", HTML: "SECRET"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "mail", m)
	for _, out := range []string{buf.String(), fmt.Sprint(m), fmt.Sprintf("%v %+v", m, m)} {
		if strings.Contains(out, "SECRET") || strings.Contains(out, "ada@") || strings.Contains(out, "Reset") {
			t.Fatalf("mail printed its contents: %s", out)
		}
	}
}

package store_test

import (
	"bytes"
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

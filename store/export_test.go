package store

import (
	"context"
	"testing"
	"time"
)

// ForceLockedRateLimits makes RateLimitAttempt take its locked fallback
// every time, for the rest of t.
func ForceLockedRateLimits(t testing.TB) {
	saved, fast := rateLimitCASTries, rateLimitFastPath
	rateLimitCASTries, rateLimitFastPath = 0, false
	t.Cleanup(func() { rateLimitCASTries, rateLimitFastPath = saved, fast })
}

// ForceReadRateLimits makes RateLimitAttempt skip its one-statement path
// for free attempts, for the rest of t, so that free attempts too are
// decided on the row read (compare-and-swap).
func ForceReadRateLimits(t testing.TB) {
	saved := rateLimitFastPath
	rateLimitFastPath = false
	t.Cleanup(func() { rateLimitFastPath = saved })
}

// SkipsFreeAttempt reports whether RateLimitAttempt would skip its
// one-statement path for key at now (a hint left by an attempt that was
// not free).
func (db *DB) SkipsFreeAttempt(key string, now time.Time) bool { return db.notFree.has(key, utc(now)) }

// NotFreeHints is how many keys hold such a hint.
func (db *DB) NotFreeHints() int { return db.notFree.len() }

// BoundNotFreeHints lowers the bound on NotFreeHints to n for the rest of t.
func BoundNotFreeHints(t testing.TB, n int) {
	saved := maxNotFree
	maxNotFree = n
	t.Cleanup(func() { maxNotFree = saved })
}

// Isolation reports the isolation level a statement with ctx runs at
// (PostgreSQL's transaction_isolation).
func (db *DB) Isolation(ctx context.Context) (string, error) {
	var level string
	err := db.q(ctx).QueryRowContext(ctx, `SHOW transaction_isolation`).Scan(&level)
	return level, err
}

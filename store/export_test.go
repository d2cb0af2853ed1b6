package store

import "testing"

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

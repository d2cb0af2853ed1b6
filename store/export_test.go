package store

import "testing"

// ForceLockedRateLimits makes RateLimitAttempt take its locked fallback
// every time, for the rest of t.
func ForceLockedRateLimits(t testing.TB) {
	saved := rateLimitCASTries
	rateLimitCASTries = 0
	t.Cleanup(func() { rateLimitCASTries = saved })
}

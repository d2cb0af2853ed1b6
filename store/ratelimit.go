package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RateLimitAttempt spends one attempt of key under schedule b at now. The
// attempt is counted as a failure before the caller checks the secret, so
// that many concurrent guesses cannot all slip in under the limit; the
// caller calls ResetRateLimit when the attempt succeeds. It returns
// ErrThrottled, changing nothing, while the key is blocked.
//
// It runs in one transaction that locks the key's row (PostgreSQL) or the
// database (SQLite's immediate transactions), so counters shared by several
// instances stay exact.
func (db *DB) RateLimitAttempt(ctx context.Context, key string, b Backoff, now time.Time) error {
	now = utc(now)
	return db.InTx(ctx, func(ctx context.Context) error {
		// The row must exist before it can be locked: FOR UPDATE on a
		// missing row locks nothing, and concurrent first attempts would
		// each count from zero and lose each other's failures.
		if _, err := db.exec(ctx, `INSERT INTO rate_limits (key, failures, last_failure_at, blocked_until) VALUES ($1, 0, $2, $2)
			ON CONFLICT (key) DO NOTHING`, key, utc(time.Unix(0, 0))); err != nil {
			return fmt.Errorf("rate limit %s: %w", key, err)
		}
		var failures int
		var last, blocked time.Time
		err := db.q(ctx).QueryRowContext(ctx, `SELECT failures, last_failure_at, blocked_until FROM rate_limits
			WHERE key = $1`+db.dialect.forUpdate, key).Scan(&failures, &last, &blocked)
		switch {
		case err != nil:
			return fmt.Errorf("rate limit %s: %w", key, err)
		case b.Lockout > 0 && failures >= b.Lockout:
			return ErrThrottled // locked out until reset
		case blocked.After(last) && now.Before(blocked):
			// Only a real delay blocks. Within the free attempts blocked_until
			// equals last_failure_at, and a concurrent caller whose now was
			// read a moment before the one that took the lock first must not
			// be refused by that zero-length "block".
			return ErrThrottled
		case b.Forget > 0 && now.Sub(last) > b.Forget:
			failures = 0
		}
		failures++
		until := now.Add(b.Delay(failures))
		_, err = db.exec(ctx, `INSERT INTO rate_limits (key, failures, last_failure_at, blocked_until) VALUES ($1, $2, $3, $4)
			ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,
				last_failure_at = excluded.last_failure_at, blocked_until = excluded.blocked_until`,
			key, failures, now, until)
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", key, err)
		}
		return nil
	})
}

// RateLimitFailures returns the consecutive failures counted for key.
func (db *DB) RateLimitFailures(ctx context.Context, key string) (int, error) {
	var n int
	err := db.q(ctx).QueryRowContext(ctx, `SELECT failures FROM rate_limits WHERE key = $1`, key).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// RefundRateLimit takes back one attempt counted by RateLimitAttempt, for
// keys that count failures only (a client address) when the attempt turned
// out to be a success.
func (db *DB) RefundRateLimit(ctx context.Context, key string) error {
	if _, err := db.exec(ctx, `UPDATE rate_limits SET failures = failures - 1 WHERE key = $1 AND failures > 0`, key); err != nil {
		return fmt.Errorf("refund rate limit %s: %w", key, err)
	}
	return nil
}

// ResetRateLimit forgets key's failures, after a successful attempt. It
// zeroes the row rather than deleting it: RateLimitAttempt makes sure the
// row exists and then locks it, and a delete between the two (a success
// racing other attempts, on PostgreSQL) would leave it nothing to lock.
func (db *DB) ResetRateLimit(ctx context.Context, key string) error {
	if _, err := db.exec(ctx, `UPDATE rate_limits SET failures = 0, blocked_until = last_failure_at WHERE key = $1`, key); err != nil {
		return fmt.Errorf("reset rate limit %s: %w", key, err)
	}
	return nil
}

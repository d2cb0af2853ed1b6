package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// RateLimitAttempt spends one attempt of key under schedule b at now. The
// attempt is counted as a failure before the caller checks the secret, so
// that many concurrent guesses cannot all slip in under the limit; the
// caller calls ResetRateLimit when the attempt succeeds. It returns
// ErrThrottled, changing nothing, while the key is blocked.
//
// Counters shared by several instances stay exact. The common case, an
// attempt that is still free (no delay before it, none after it), is one
// upsert (rateLimitFree). Otherwise it costs two statements and no
// transaction: read the key's row, then write the next state only if the
// row is still what was read (compare-and-swap; a missing row is inserted
// only if nobody else inserted it). A writer that loses the race reads
// again, so every attempt is counted once and none is decided on a stale
// count. After rateLimitCASTries lost races in a row (a burst on one
// key), it falls back to a transaction that locks the row.
func (db *DB) RateLimitAttempt(ctx context.Context, key string, b Backoff, now time.Time) error {
	now = utc(now)
	// A backoff without free attempts has no one-statement case (and
	// leaves no hints).
	if rateLimitFastPath && b.Free >= 1 && !db.notFree.has(key, now) {
		if done, err := db.rateLimitFree(ctx, key, b, now); err != nil || done {
			return err
		}
		// The key is blocked, locked out or past its free attempts: its
		// next attempts go straight to the read, so that a flood of
		// refused guesses costs reads, not writes (on SQLite every write
		// takes the one write lock).
		db.notFree.add(key, now)
	}
	for range rateLimitCASTries {
		cur, found, err := db.rateLimitRow(ctx, key, "")
		if err != nil {
			return err
		}
		next, err := cur.attempt(b, now)
		if err != nil {
			return err
		}
		var res sql.Result
		if found {
			res, err = db.exec(ctx, `UPDATE rate_limits SET failures = $2, last_failure_at = $3, blocked_until = $4
				WHERE key = $1 AND failures = $5 AND last_failure_at = $6 AND blocked_until = $7`,
				key, next.failures, next.last, next.blocked, cur.failures, cur.last, cur.blocked)
		} else {
			res, err = db.exec(ctx, `INSERT INTO rate_limits (key, failures, last_failure_at, blocked_until)
				VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING`, key, next.failures, next.last, next.blocked)
		}
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("rate limit %s: %w", key, err)
		} else if n == 1 {
			return nil
		}
	}
	return db.rateLimitLocked(ctx, key, b, now)
}

// rateLimitCASTries is how many lost races RateLimitAttempt takes before it
// locks the row instead. A variable so tests can force the locked path.
var rateLimitCASTries = 4

// notFreeFor is how long this instance skips the one-statement path for a
// key it found not free. Skipping is only ever slower, never wrong: the
// read-then-write decides every attempt exactly. So the hint may go stale
// (another instance resets the key) and costs a statement per attempt
// until it expires; this instance's resets drop it at once.
const notFreeFor = time.Minute

// maxNotFree bounds the hints: keys come from attackers (addresses,
// emails), so past this many the hints stop growing and the attempts
// beyond them take the one-statement path as before. A variable so tests
// can reach the bound quickly.
var maxNotFree = 4096

// limitHints is a bounded set of keys with the time their hint expires.
type limitHints struct {
	mu    sync.Mutex
	until map[string]time.Time
	// soonest is the earliest expiry in until: a full set is swept only
	// once one can have expired, not on every attempt of a key spray.
	soonest time.Time
}

func (h *limitHints) has(key string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.until[key]
	return ok && now.Before(until)
}

// add hints key from now for notFreeFor.
func (h *limitHints) add(key string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.until == nil {
		h.until = map[string]time.Time{}
	}
	if len(h.until) >= maxNotFree {
		// Full: forget the expired hints; if none have expired, add no more.
		if now.Before(h.soonest) {
			return
		}
		h.soonest = time.Time{}
		for k, u := range h.until {
			if !now.Before(u) {
				delete(h.until, k)
			} else if h.soonest.IsZero() || u.Before(h.soonest) {
				h.soonest = u
			}
		}
		if len(h.until) >= maxNotFree {
			return
		}
	}
	until := now.Add(notFreeFor)
	if h.soonest.IsZero() || until.Before(h.soonest) {
		h.soonest = until
	}
	h.until[key] = until
}

func (h *limitHints) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.until)
}

func (h *limitHints) drop(keys ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		delete(h.until, k)
	}
}

// rateLimitFastPath says whether RateLimitAttempt tries rateLimitFree
// first. A variable so tests can run the other paths on free attempts.
var rateLimitFastPath = true

// rateLimitFree counts an attempt in one statement when it is free: the
// key is neither locked out nor blocked, and the attempt's number (after
// forgetting a quiet key) is within b.Free, so it sets no delay. That is
// limitState.attempt restricted to the case where it needs no arithmetic
// on durations, written as conditions the database checks atomically on
// the row's current version (PostgreSQL's ON CONFLICT DO UPDATE locks the
// row and re-checks WHERE on the newest version; SQLite writes one at a
// time). It reports false, changing nothing, when the attempt is not
// free; the caller then decides it on the row it reads. b.Free must be at
// least 1: the INSERT of a new key is unconditional.
func (db *DB) rateLimitFree(ctx context.Context, key string, b Backoff, now time.Time) (bool, error) {
	lockout := math.MaxInt32
	if b.Lockout > 0 {
		lockout = b.Lockout
	}
	// A zero Forget never forgets: no stored time is before the epoch.
	forgetBefore := utc(time.Unix(0, 0))
	if b.Forget > 0 {
		forgetBefore = now.Add(-b.Forget)
	}
	res, err := db.exec(ctx, `INSERT INTO rate_limits (key, failures, last_failure_at, blocked_until) VALUES ($1, 1, $2, $2)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN rate_limits.last_failure_at < $3 THEN 1 ELSE rate_limits.failures + 1 END,
			last_failure_at = $2, blocked_until = $2
		WHERE rate_limits.failures < $4
			AND NOT (rate_limits.blocked_until > rate_limits.last_failure_at AND $2 < rate_limits.blocked_until)
			AND (rate_limits.last_failure_at < $3 OR rate_limits.failures + 1 <= $5)`,
		key, now, forgetBefore, lockout, b.Free)
	if err != nil {
		return false, fmt.Errorf("rate limit %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return n == 1, nil
}

// rateLimitLocked is RateLimitAttempt in one transaction that locks the
// key's row (PostgreSQL) or the database (SQLite's immediate transactions).
func (db *DB) rateLimitLocked(ctx context.Context, key string, b Backoff, now time.Time) error {
	return db.InTx(ctx, func(ctx context.Context) error {
		// The row must exist before it can be locked: FOR UPDATE on a
		// missing row locks nothing, and concurrent first attempts would
		// each count from zero and lose each other's failures.
		if _, err := db.exec(ctx, `INSERT INTO rate_limits (key, failures, last_failure_at, blocked_until) VALUES ($1, 0, $2, $2)
			ON CONFLICT (key) DO NOTHING`, key, utc(time.Unix(0, 0))); err != nil {
			return fmt.Errorf("rate limit %s: %w", key, err)
		}
		cur, _, err := db.rateLimitRow(ctx, key, db.dialect.forUpdate)
		if err != nil {
			return err
		}
		next, err := cur.attempt(b, now)
		if err != nil {
			return err
		}
		_, err = db.exec(ctx, `UPDATE rate_limits SET failures = $2, last_failure_at = $3, blocked_until = $4 WHERE key = $1`,
			key, next.failures, next.last, next.blocked)
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", key, err)
		}
		return nil
	})
}

// limitState is a rate-limit row.
type limitState struct {
	failures      int
	last, blocked time.Time
}

// rateLimitRow reads key's row (lock is "" or the dialect's FOR UPDATE); a
// missing row is the zero state and found false.
func (db *DB) rateLimitRow(ctx context.Context, key, lock string) (st limitState, found bool, err error) {
	err = db.q(ctx).QueryRowContext(ctx, `SELECT failures, last_failure_at, blocked_until FROM rate_limits
		WHERE key = $1`+lock, key).Scan(&st.failures, &st.last, &st.blocked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return limitState{}, false, nil
	case err != nil:
		return st, false, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return st, true, nil
}

// attempt is the state after one more attempt at now, or ErrThrottled.
func (st limitState) attempt(b Backoff, now time.Time) (limitState, error) {
	switch {
	case b.Lockout > 0 && st.failures >= b.Lockout:
		return st, ErrThrottled // locked out until reset
	case st.blocked.After(st.last) && now.Before(st.blocked):
		// Only a real delay blocks. Within the free attempts blocked_until
		// equals last_failure_at, and a concurrent caller whose now was
		// read a moment before the one that wrote first must not be
		// refused by that zero-length "block".
		return st, ErrThrottled
	case b.Forget > 0 && now.Sub(st.last) > b.Forget:
		st.failures = 0
	}
	failures := st.failures + 1
	return limitState{failures: failures, last: now, blocked: now.Add(b.Delay(failures))}, nil
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
	db.notFree.drop(key)
	if _, err := db.exec(ctx, `UPDATE rate_limits SET failures = failures - 1 WHERE key = $1 AND failures > 0`, key); err != nil {
		return fmt.Errorf("refund rate limit %s: %w", key, err)
	}
	return nil
}

// SettleRateLimits closes a successful attempt counted up front on two
// keys, in one statement: reset's failures are forgotten as ResetRateLimit
// does, and one attempt of refund is taken back as RefundRateLimit does.
// (The password step: the account's count starts over, the address's
// count keeps its other failures.)
func (db *DB) SettleRateLimits(ctx context.Context, reset, refund string) error {
	db.notFree.drop(reset, refund)
	if _, err := db.exec(ctx, `UPDATE rate_limits SET
			failures = CASE WHEN key = $1 THEN 0 ELSE failures - 1 END,
			blocked_until = CASE WHEN key = $1 THEN last_failure_at ELSE blocked_until END
		WHERE key = $1 OR (key = $2 AND failures > 0)`, reset, refund); err != nil {
		return fmt.Errorf("settle rate limits %s, %s: %w", reset, refund, err)
	}
	return nil
}

// ResetRateLimit forgets key's failures, after a successful attempt. It
// zeroes the row rather than deleting it: RateLimitAttempt makes sure the
// row exists and then locks it, and a delete between the two (a success
// racing other attempts, on PostgreSQL) would leave it nothing to lock.
func (db *DB) ResetRateLimit(ctx context.Context, key string) error {
	db.notFree.drop(key)
	if _, err := db.exec(ctx, `UPDATE rate_limits SET failures = 0, blocked_until = last_failure_at WHERE key = $1`, key); err != nil {
		return fmt.Errorf("reset rate limit %s: %w", key, err)
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// TOTPCredential is a user's confirmed authenticator app.
type TOTPCredential struct {
	UserID string
	// SealedSecret is the base32 secret sealed with AES-GCM, bound to the user.
	SealedSecret []byte
	// LastStep is the last RFC 6238 time step accepted (unix time / 30).
	LastStep  int64
	CreatedAt time.Time
}

// TOTPEnrollment is an authenticator app being set up: its secret waits
// here, server-side, until the user proves it with a code.
type TOTPEnrollment struct {
	UserID       string
	SealedSecret []byte
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// PutTOTPEnrollment starts (or restarts) an enrollment for e.UserID.
func (db *DB) PutTOTPEnrollment(ctx context.Context, e TOTPEnrollment) error {
	_, err := db.exec(ctx, `INSERT INTO totp_enrollments (user_id, sealed_secret, created_at, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
			created_at = excluded.created_at, expires_at = excluded.expires_at`,
		e.UserID, e.SealedSecret, utc(e.CreatedAt), utc(e.ExpiresAt))
	if err != nil {
		return fmt.Errorf("put totp enrollment of %s: %w", e.UserID, err)
	}
	return nil
}

// GetTOTPEnrollment returns the user's enrollment if it has not expired.
func (db *DB) GetTOTPEnrollment(ctx context.Context, userID string, now time.Time) (TOTPEnrollment, error) {
	e := TOTPEnrollment{UserID: userID}
	err := db.q(ctx).QueryRowContext(ctx, `SELECT sealed_secret, created_at, expires_at FROM totp_enrollments
		WHERE user_id = $1 AND expires_at > $2`, userID, utc(now)).Scan(&e.SealedSecret, &e.CreatedAt, &e.ExpiresAt)
	if err != nil {
		return TOTPEnrollment{}, fmt.Errorf("get totp enrollment of %s: %w", userID, notFound(err))
	}
	return e, nil
}

// ConfirmTOTP turns the user's enrollment (which must still hold
// sealedSecret) into their credential and replaces their backup codes, in
// one transaction. Of two concurrent confirmations only one succeeds; the
// other gets ErrNotFound.
func (db *DB) ConfirmTOTP(ctx context.Context, cred TOTPCredential, backupHashes [][]byte) error {
	return db.InTx(ctx, func(ctx context.Context) error {
		// Consuming the enrollment is the conditional write that makes
		// confirmation single-use.
		if err := db.execOne(ctx, `DELETE FROM totp_enrollments WHERE user_id = $1 AND sealed_secret = $2`,
			cred.UserID, cred.SealedSecret); err != nil {
			return fmt.Errorf("confirm totp of %s: %w", cred.UserID, err)
		}
		if _, err := db.exec(ctx, `INSERT INTO totp_credentials (user_id, sealed_secret, last_step, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
				last_step = excluded.last_step, created_at = excluded.created_at`,
			cred.UserID, cred.SealedSecret, cred.LastStep, utc(cred.CreatedAt)); err != nil {
			return fmt.Errorf("confirm totp of %s: %w", cred.UserID, err)
		}
		return db.ReplaceBackupCodes(ctx, cred.UserID, backupHashes, cred.CreatedAt)
	})
}

// GetTOTPCredential returns the user's authenticator app.
func (db *DB) GetTOTPCredential(ctx context.Context, userID string) (TOTPCredential, error) {
	c := TOTPCredential{UserID: userID}
	err := db.q(ctx).QueryRowContext(ctx, `SELECT sealed_secret, last_step, created_at FROM totp_credentials WHERE user_id = $1`,
		userID).Scan(&c.SealedSecret, &c.LastStep, &c.CreatedAt)
	if err != nil {
		return TOTPCredential{}, fmt.Errorf("get totp credential of %s: %w", userID, notFound(err))
	}
	return c, nil
}

// AcceptTOTPStep burns time step for the user: it succeeds only if step is
// later than every step accepted before, in one conditional write, so a
// code works once even when submitted many times at once, and an older
// code never works after a newer one. ErrNotFound means replayed (or no
// credential).
func (db *DB) AcceptTOTPStep(ctx context.Context, userID string, step int64) error {
	if err := db.execOne(ctx, `UPDATE totp_credentials SET last_step = $2 WHERE user_id = $1 AND last_step < $2`,
		userID, step); err != nil {
		return fmt.Errorf("accept totp step for %s: %w", userID, err)
	}
	return nil
}

// ReplaceBackupCodes deletes every backup code of the user and stores
// hashes as the new set, in one transaction.
func (db *DB) ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	return db.InTx(ctx, func(ctx context.Context) error {
		if _, err := db.exec(ctx, `DELETE FROM backup_codes WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("replace backup codes of %s: %w", userID, err)
		}
		for _, h := range hashes {
			if _, err := db.exec(ctx, `INSERT INTO backup_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)`,
				userID, h, utc(now)); err != nil {
				return fmt.Errorf("replace backup codes of %s: %w", userID, err)
			}
		}
		return nil
	})
}

// UseBackupCode spends the user's unused code with hash, in one conditional
// write: of many concurrent uses exactly one succeeds. ErrNotFound means
// no such unused code.
func (db *DB) UseBackupCode(ctx context.Context, userID string, hash []byte, now time.Time) error {
	if err := db.execOne(ctx, `UPDATE backup_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`,
		userID, hash, utc(now)); err != nil {
		return fmt.Errorf("use backup code of %s: %w", userID, err)
	}
	return nil
}

// CountBackupCodes returns how many unused backup codes the user has.
func (db *DB) CountBackupCodes(ctx context.Context, userID string) (int, error) {
	var n int
	err := db.q(ctx).QueryRowContext(ctx, `SELECT COUNT(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count backup codes of %s: %w", userID, err)
	}
	return n, nil
}

// DeleteSecondFactors removes every second factor of the user: TOTP
// credential and enrollment, backup codes, security keys and their
// ceremonies. It returns how many rows went.
func (db *DB) DeleteSecondFactors(ctx context.Context, userID string) (int64, error) {
	var total int64
	err := db.InTx(ctx, func(ctx context.Context) error {
		for _, q := range []string{
			`DELETE FROM totp_credentials WHERE user_id = $1`,
			`DELETE FROM totp_enrollments WHERE user_id = $1`,
			`DELETE FROM backup_codes WHERE user_id = $1`,
			`DELETE FROM webauthn_credentials WHERE user_id = $1`,
			`DELETE FROM webauthn_ceremonies WHERE user_id = $1`,
		} {
			res, err := db.exec(ctx, q, userID)
			if err != nil {
				return fmt.Errorf("delete second factors of %s: %w", userID, err)
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	return total, err
}

// HasSecondFactor reports, in one query, whether the user has an
// authenticator app or a security key.
func (db *DB) HasSecondFactor(ctx context.Context, userID string) (bool, error) {
	var has bool
	err := db.q(ctx).QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = $1)
		OR EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = $1)`, userID).Scan(&has)
	if err != nil {
		return false, fmt.Errorf("second factors of %s: %w", userID, err)
	}
	return has, nil
}

// FactorSummary is a user's second factors at a glance.
type FactorSummary struct {
	TOTP        bool
	TOTPSince   time.Time // when the authenticator app was confirmed
	Keys        int       // security keys
	BackupCodes int       // unused backup codes
	Required    bool      // an organization of the user requires 2FA
}

// Enrolled reports whether the user has a second factor: an authenticator
// app or a security key (backup codes come with one and never stand alone).
func (fs FactorSummary) Enrolled() bool { return fs.TOTP || fs.Keys > 0 }

// GetFactorSummary reads FactorSummary in one query, for the sign-in
// steps and the pages that show a user's factors (the second-factor step,
// Security Settings).
func (db *DB) GetFactorSummary(ctx context.Context, userID string) (FactorSummary, error) {
	var fs factorScan
	// The TOTP column comes from a join, not a subquery, so that SQLite
	// knows it is a timestamp and reads it back as one.
	err := db.q(ctx).QueryRowContext(ctx, `SELECT `+factorColumns+`
		FROM (SELECT CAST($1 AS TEXT) AS id) u LEFT JOIN totp_credentials t ON t.user_id = u.id`, userID).Scan(fs.dest()...)
	if err != nil {
		return FactorSummary{}, fmt.Errorf("second factors of %s: %w", userID, err)
	}
	return fs.summary(), nil
}

// factorColumns are FactorSummary's columns for the user u, whose TOTP
// credential t is LEFT JOINed.
const factorColumns = `t.created_at,
	(SELECT COUNT(*) FROM webauthn_credentials w WHERE w.user_id = u.id),
	(SELECT COUNT(*) FROM backup_codes b WHERE b.user_id = u.id AND b.used_at IS NULL),
	EXISTS (SELECT 1 FROM memberships m JOIN organizations o ON o.id = m.org_id
		WHERE m.user_id = u.id AND o.require_2fa)`

// factorScan holds a row of factorColumns while it is scanned.
type factorScan struct {
	fs    FactorSummary
	since sql.NullTime // the TOTP credential's creation, NULL without one
}

func (s *factorScan) dest() []any {
	return []any{&s.since, &s.fs.Keys, &s.fs.BackupCodes, &s.fs.Required}
}

func (s *factorScan) summary() FactorSummary {
	fs := s.fs
	fs.TOTP, fs.TOTPSince = s.since.Valid, s.since.Time
	return fs
}

// userFactorsQuery reads a user and their FactorSummary in one statement.
var userFactorsQuery = `SELECT ` + qualified("u", userColumns) + `, ` + factorColumns + `
	FROM users u LEFT JOIN totp_credentials t ON t.user_id = u.id WHERE u.id = $1`

// GetUserWithFactors returns the user with id and their second factors at
// a glance (GetFactorSummary) in one query: each sign-in step needs both.
func (db *DB) GetUserWithFactors(ctx context.Context, id string) (User, FactorSummary, error) {
	var fs factorScan
	u, err := scanUser(db.q(ctx).QueryRowContext(ctx, userFactorsQuery, id), fs.dest()...)
	if err != nil {
		return User{}, FactorSummary{}, fmt.Errorf("get user %s: %w", id, notFound(err))
	}
	return u, fs.summary(), nil
}

// UserRequires2FA reports whether any organization the user belongs to
// requires a second factor.
func (db *DB) UserRequires2FA(ctx context.Context, userID string) (bool, error) {
	var n int
	err := db.q(ctx).QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships m JOIN organizations o ON o.id = m.org_id
		WHERE m.user_id = $1 AND o.require_2fa`, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("2fa policy of %s: %w", userID, err)
	}
	return n > 0, nil
}

// SetMFAState moves the user to state.
func (db *DB) SetMFAState(ctx context.Context, userID string, state MFAState) error {
	if err := db.execOne(ctx, `UPDATE users SET mfa_state = $2 WHERE id = $1`, userID, string(state)); err != nil {
		return fmt.Errorf("set mfa state of %s: %w", userID, err)
	}
	return nil
}

// CountFlowMFAFailure spends one of the flow's limit second-factor
// attempts, before the code is checked, in one conditional write, so
// concurrent guesses cannot exceed the limit. It returns ErrThrottled once
// the flow has used them all (or is gone).
func (db *DB) CountFlowMFAFailure(ctx context.Context, flowID string, limit int, now time.Time) error {
	err := db.execOne(ctx, `UPDATE login_flows SET mfa_failures = mfa_failures + 1
		WHERE id = $1 AND mfa_failures < $2 AND expires_at > $3`, flowID, limit, utc(now))
	if errors.Is(err, ErrNotFound) {
		return ErrThrottled
	}
	return err
}

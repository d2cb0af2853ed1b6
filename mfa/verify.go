package mfa

import (
	"context"
	"errors"
	"time"

	"github.com/twofold-id/twofold/store"
)

// Methods a second factor was proved with.
const (
	MethodTOTP       = "totp"
	MethodBackupCode = "backup_code"
)

// Result is a successful second factor.
type Result struct {
	Method string
	// BackupCodesLeft is the unused backup codes after a backup code.
	BackupCodesLeft int
}

// AMR is the RFC 8176 methods of a sign-in with the password and this
// second factor: otp for codes (an app's or a backup code), hwk for a
// hardware security key, swk for a platform or synced passkey.
func (r Result) AMR() []string {
	switch r.Method {
	case MethodSecurityKey:
		return []string{"pwd", "hwk", "mfa"}
	case MethodPasskey:
		return []string{"pwd", "swk", "mfa"}
	}
	return []string{"pwd", "otp", "mfa"}
}

// userLimitKey is the rate-limit key of a user's second-factor attempts;
// passwords are counted under other keys, so guessing passwords cannot
// lock a member out of their second factor.
func userLimitKey(userID string) string { return "mfa-user:" + userID }

// Verify checks a TOTP code or a backup code entered in the one
// second-factor field.
//
// The attempt is counted against the user before the code is looked at
// (store.RateLimitAttempt), so concurrent guesses cannot exceed the limit.
// A TOTP code is accepted only for a time step later than any accepted
// before; a backup code is spent by one conditional write. Success resets
// the count. Wrong, replayed and malformed codes are all ErrInvalidCode.
func (s *Service) Verify(ctx context.Context, user store.User, input string, ev Event) (Result, error) {
	now := s.Now()
	switch err := s.Store.RateLimitAttempt(ctx, userLimitKey(user.ID), s.UserLimit, now); {
	case errors.Is(err, store.ErrThrottled):
		s.audit(ctx, "mfa.throttled", user.ID, ev, nil)
		return Result{}, ErrThrottled
	case err != nil:
		return Result{}, err
	}
	code, isBackup, ok := normalizeCode(input)
	var res Result
	var err error
	switch {
	case !ok:
		err = ErrInvalidCode
	case isBackup:
		res, err = s.useBackupCode(ctx, user, code, ev, now)
	default:
		res, err = s.useTOTP(ctx, user, code, now)
	}
	if errors.Is(err, ErrInvalidCode) || errors.Is(err, ErrNoFactor) {
		s.audit(ctx, "mfa.failed", user.ID, ev, nil)
		return Result{}, ErrInvalidCode
	}
	if err != nil {
		return Result{}, err
	}
	if err := s.Store.ResetRateLimit(ctx, userLimitKey(user.ID)); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (s *Service) useTOTP(ctx context.Context, user store.User, code string, now time.Time) (Result, error) {
	cred, err := s.Store.GetTOTPCredential(ctx, user.ID)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, ErrNoFactor
	}
	if err != nil {
		return Result{}, err
	}
	secret, err := s.Sealer.Open("totp", cred.SealedSecret, sealAD(user.ID))
	if err != nil {
		return Result{}, err
	}
	matched, ok := matchStep(string(secret), code, now)
	if !ok {
		return Result{}, ErrInvalidCode
	}
	// Burn the step before anything else counts the code as good: of
	// concurrent submissions of one code, only the one that burns it wins,
	// and a step at or before the last accepted one is refused.
	if err := s.Store.AcceptTOTPStep(ctx, user.ID, matched); errors.Is(err, store.ErrNotFound) {
		return Result{}, ErrInvalidCode
	} else if err != nil {
		return Result{}, err
	}
	return Result{Method: MethodTOTP}, nil
}

func (s *Service) useBackupCode(ctx context.Context, user store.User, code string, ev Event, now time.Time) (Result, error) {
	res := Result{Method: MethodBackupCode}
	err := s.Store.InTx(ctx, func(ctx context.Context) error {
		if err := s.Store.UseBackupCode(ctx, user.ID, s.backupHash(user.ID, code), now); errors.Is(err, store.ErrNotFound) {
			return ErrInvalidCode
		} else if err != nil {
			return err
		}
		left, err := s.Store.CountBackupCodes(ctx, user.ID)
		if err != nil {
			return err
		}
		res.BackupCodesLeft = left
		if err := s.Store.AppendAudit(ctx, s.event("backup_code.used", user.ID, ev, map[string]string{"remaining": itoa(left)})); err != nil {
			return err
		}
		return s.mail(ctx, user, "backup_code_used", ev, map[string]any{"Remaining": left})
	})
	if err == nil {
		s.delivered()
	}
	return res, err
}

// backupHash is the stored form of a backup code: HMAC-SHA256 under a key
// derived from the secret key, salted with the user id. Codes carry 75
// bits, so a keyed fast hash is enough; without the secret key a stolen
// hash cannot even be checked against a guess.
func (s *Service) backupHash(userID, code string) []byte {
	return s.Sealer.MAC("backup-code", []byte(userID+"\x00"+code))
}

package mfa

import (
	"context"
	"errors"
	"strconv"

	"github.com/twofold-id/twofold/store"
)

// ConfirmTOTP finishes enrolling the authenticator app with a code from it.
// In one transaction it stores the credential (burning the code's time
// step), replaces the backup codes, clears a must-enroll state left by an
// owner's reset, audits and queues the "2FA is on" email. It returns the
// new backup codes, formatted, to be shown once.
func (s *Service) ConfirmTOTP(ctx context.Context, user store.User, input string, ev Event) ([]string, error) {
	secret, sealed, err := s.pending(ctx, user)
	if err != nil {
		return nil, err
	}
	code, isBackup, ok := normalizeCode(input)
	if !ok || isBackup {
		return nil, ErrInvalidCode
	}
	now := s.Now()
	matched, ok := matchStep(secret, code, now)
	if !ok {
		return nil, ErrInvalidCode
	}
	codes, hashes, err := s.newCodes(user.ID)
	if err != nil {
		return nil, err
	}
	again := user.MFAState == store.MFAMustEnroll
	err = s.Store.InTx(ctx, func(ctx context.Context) error {
		cred := store.TOTPCredential{UserID: user.ID, SealedSecret: sealed, LastStep: matched, CreatedAt: now}
		if err := s.Store.ConfirmTOTP(ctx, cred, hashes); errors.Is(err, store.ErrNotFound) {
			return ErrNoPending // confirmed concurrently, or restarted
		} else if err != nil {
			return err
		}
		if again {
			if err := s.Store.SetMFAState(ctx, user.ID, store.MFANone); err != nil {
				return err
			}
		}
		if err := s.Store.AppendAudit(ctx, s.event("factor.enrolled", user.ID, ev, map[string]string{"factor": MethodTOTP})); err != nil {
			return err
		}
		return s.mail(ctx, user, "2fa_enabled", ev, map[string]any{"Again": again})
	})
	if err != nil {
		return nil, err
	}
	s.delivered()
	return codes, nil
}

// RegenerateBackupCodes replaces every backup code of the user (the old
// ones stop working at once) and returns the new ones, formatted.
func (s *Service) RegenerateBackupCodes(ctx context.Context, user store.User, ev Event) ([]string, error) {
	if ok, err := s.Enrolled(ctx, user.ID); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrNoFactor
	}
	codes, hashes, err := s.newCodes(user.ID)
	if err != nil {
		return nil, err
	}
	err = s.Store.InTx(ctx, func(ctx context.Context) error {
		if err := s.Store.ReplaceBackupCodes(ctx, user.ID, hashes, s.Now()); err != nil {
			return err
		}
		if err := s.Store.AppendAudit(ctx, s.event("backup_codes.regenerated", user.ID, ev, nil)); err != nil {
			return err
		}
		return s.mail(ctx, user, "backup_codes_regenerated", ev, nil)
	})
	if err != nil {
		return nil, err
	}
	s.delivered()
	return codes, nil
}

// Disable turns the user's second factor off: the authenticator app and
// the backup codes go. It is refused while an organization of the user
// requires a second factor.
func (s *Service) Disable(ctx context.Context, user store.User, ev Event) error {
	if req, err := s.Store.UserRequires2FA(ctx, user.ID); err != nil {
		return err
	} else if req {
		return ErrRequired
	}
	err := s.Store.InTx(ctx, func(ctx context.Context) error {
		n, err := s.Store.DeleteSecondFactors(ctx, user.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNoFactor
		}
		if err := s.Store.AppendAudit(ctx, s.event("factor.removed", user.ID, ev, map[string]string{"factor": MethodTOTP})); err != nil {
			return err
		}
		return s.mail(ctx, user, "2fa_disabled", ev, nil)
	})
	if err != nil {
		return err
	}
	s.delivered()
	return nil
}

// newCodes makes a fresh set of backup codes: formatted for the user, and
// hashed for the store.
func (s *Service) newCodes(userID string) ([]string, [][]byte, error) {
	raw, err := newBackupCodes(s.Rand, BackupCodeCount)
	if err != nil {
		return nil, nil, err
	}
	shown := make([]string, len(raw))
	hashes := make([][]byte, len(raw))
	for i, c := range raw {
		shown[i], hashes[i] = formatBackupCode(c), s.backupHash(userID, c)
	}
	return shown, hashes, nil
}

func (s *Service) event(kind, targetID string, ev Event, details map[string]string) store.AuditEvent {
	actor := ev.ActorID
	if actor == "" {
		actor = targetID
	}
	return store.AuditEvent{At: s.Now(), Kind: kind, ActorID: actor, TargetID: targetID, ClientAddr: ev.ClientAddr, Details: details}
}

// audit writes an event outside any transaction; a failure to audit a
// failure is not worth failing the request for, so it is dropped here and
// the caller's own logging carries on.
func (s *Service) audit(ctx context.Context, kind, targetID string, ev Event, details map[string]string) {
	_ = s.Store.AppendAudit(ctx, s.event(kind, targetID, ev, details))
}

// mailData is what every security email template gets.
type mailData struct {
	Name, Email, ClientAddr, SettingsURL, When string
	Extra                                      map[string]any
}

func (s *Service) mail(ctx context.Context, user store.User, template string, ev Event, extra map[string]any) error {
	_, err := s.mailID(ctx, user, template, ev, extra)
	return err
}

// mailID queues a security email to user and returns its outbox id.
func (s *Service) mailID(ctx context.Context, user store.User, template string, ev Event, extra map[string]any) (int64, error) {
	name := user.Name
	if name == "" {
		name = user.Email
	}
	return s.Mailer.Send(ctx, user.Email, template, mailData{Name: name, Email: user.Email, ClientAddr: ev.ClientAddr,
		SettingsURL: s.SettingsURL, When: s.Now().UTC().Format("2 Jan 2006 15:04 UTC"), Extra: extra})
}

func (s *Service) delivered() {
	if s.Delivered != nil {
		s.Delivered()
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

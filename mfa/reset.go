package mfa

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/twofold-id/twofold/store"
)

// Errors of the owner-initiated reset.
var (
	ErrSelfReset  = errors.New("mfa: nobody may reset their own second factor")
	ErrNotPending = errors.New("mfa: no reset is pending for this user")
	// ErrLinkUnknown, ErrLinkUsed, ErrLinkSuperseded and ErrLinkExpired
	// say why a re-enrollment link does not work; the page says so.
	ErrLinkUnknown    = errors.New("mfa: unknown reset link")
	ErrLinkUsed       = errors.New("mfa: reset link already used")
	ErrLinkSuperseded = errors.New("mfa: reset link replaced by a newer one")
	ErrLinkExpired    = errors.New("mfa: reset link expired")
)

// DefaultResetLinkLifespan is how long a re-enrollment link works.
const DefaultResetLinkLifespan = 24 * time.Hour

// Operator is the actor id of resets done with `twofold users reset-2fa`.
const Operator = "operator"

// resetStore is what the reset needs of the store; part of Store.
type resetStore interface {
	LockUser(ctx context.Context, id string) error
	DeleteUserBrowserSessions(ctx context.Context, userID string) (int64, error)
	DeleteUserLoginFlows(ctx context.Context, userID string) (int64, error)
	RevokeUserTokens(ctx context.Context, userID string) (int64, error)
	CreateResetToken(ctx context.Context, t store.ResetToken) error
	GetResetToken(ctx context.Context, hash []byte) (store.ResetToken, error)
	ConsumeResetToken(ctx context.Context, hash []byte, now time.Time) (store.ResetToken, error)
	ListUserMemberships(ctx context.Context, userID string) ([]store.Membership, error)
	GetUser(ctx context.Context, id string) (store.User, error)
}

// ResetResult says what a reset sent.
type ResetResult struct {
	// Link is the re-enrollment link; it is in the email. Only the
	// operator's command shows it, for when mail cannot reach the member.
	Link      string
	MailID    int64
	ExpiresAt time.Time
}

// Reset is the owner-initiated 2FA reset. In one transaction, holding a
// lock on the member's row (so two owners resetting at once run one after
// the other and leave one live link), it deletes every second factor of
// target, ends their browser sessions and sign-ins in progress, revokes
// their access and refresh tokens, lifts their second-factor lockout,
// marks them reset pending, issues a single-use re-enrollment link (256 random bits, stored as a
// keyed hash, replacing any earlier link), audits the reset in every
// organization the member belongs to, and queues the email with the link.
// Either all of it happens or none of it. Nobody may reset themselves.
func (s *Service) Reset(ctx context.Context, target store.User, actor Event) (ResetResult, error) {
	return s.linkTx(ctx, target, actor, "reset.initiated", func(ctx context.Context, _ store.User) error {
		if _, err := s.Store.DeleteSecondFactors(ctx, target.ID); err != nil {
			return err
		}
		if _, err := s.Store.DeleteUserBrowserSessions(ctx, target.ID); err != nil {
			return err
		}
		if _, err := s.Store.DeleteUserLoginFlows(ctx, target.ID); err != nil {
			return err
		}
		if _, err := s.Store.RevokeUserTokens(ctx, target.ID); err != nil {
			return err
		}
		if err := s.Store.ResetRateLimit(ctx, userLimitKey(target.ID)); err != nil {
			return err
		}
		return s.Store.SetMFAState(ctx, target.ID, store.MFAResetPending)
	})
}

// Resend issues a new link for a pending reset (the old one stops
// working) and emails it.
func (s *Service) Resend(ctx context.Context, target store.User, actor Event) (ResetResult, error) {
	return s.linkTx(ctx, target, actor, "reset.resent", func(_ context.Context, current store.User) error {
		if current.MFAState != store.MFAResetPending {
			return ErrNotPending
		}
		return nil
	})
}

// linkTx is what Reset and Resend share: in one transaction holding the
// member's row lock, it runs change, issues a new link (superseding any
// earlier one, with its email) and audits kind in every organization of
// the member. Nobody may do it to themselves.
func (s *Service) linkTx(ctx context.Context, target store.User, actor Event, kind string,
	change func(ctx context.Context, current store.User) error) (ResetResult, error) {
	if actor.ActorID == target.ID {
		return ResetResult{}, ErrSelfReset
	}
	var res ResetResult
	err := s.Store.InTx(ctx, func(ctx context.Context) error {
		if err := s.Store.LockUser(ctx, target.ID); err != nil {
			return err
		}
		current, err := s.Store.GetUser(ctx, target.ID)
		if err != nil {
			return err
		}
		if err := change(ctx, current); err != nil {
			return err
		}
		if res, err = s.issueLink(ctx, current, actor); err != nil {
			return err
		}
		return s.auditInOrgs(ctx, kind, target.ID, actor)
	})
	if err != nil {
		return ResetResult{}, err
	}
	s.delivered()
	return res, nil
}

// issueLink creates a link, superseding any earlier one, and queues its email.
func (s *Service) issueLink(ctx context.Context, target store.User, actor Event) (ResetResult, error) {
	token := rand.Text() + rand.Text() // 2 × 128 bits, base32
	now := s.Now()
	res := ResetResult{Link: s.ResetURLBase + token, ExpiresAt: now.Add(s.resetLifespan())}
	var err error
	res.MailID, err = s.mailID(ctx, target, "reset_2fa", actor, map[string]any{"Link": res.Link,
		"Expires": res.ExpiresAt.UTC().Format("2 Jan 2006 15:04 UTC"), "ByOperator": actor.ActorID == Operator})
	if err != nil {
		return ResetResult{}, err
	}
	return res, s.Store.CreateResetToken(ctx, store.ResetToken{Hash: s.resetHash(token), UserID: target.ID,
		ActorID: actor.ActorID, CreatedAt: now, ExpiresAt: res.ExpiresAt, MailID: res.MailID})
}

// CheckResetLink says whether token is a live link, and whose, without
// changing anything: opening the link (as mail scanners do) must not
// complete the reset.
func (s *Service) CheckResetLink(ctx context.Context, token string) (store.User, error) {
	t, err := s.Store.GetResetToken(ctx, s.resetHash(token))
	if err != nil {
		return store.User{}, linkError(t, err, s.Now())
	}
	if err := linkError(t, nil, s.Now()); err != nil {
		return store.User{}, err
	}
	return s.Store.GetUser(ctx, t.UserID)
}

// CompleteReset consumes the link (one conditional write: it works once,
// however many confirmations race) and moves the member from reset pending
// to must enroll: their next sign-in enrolls a factor before anything else.
func (s *Service) CompleteReset(ctx context.Context, token string, clientAddr string) (store.User, error) {
	var user store.User
	err := s.Store.InTx(ctx, func(ctx context.Context) error {
		rs := s.Store
		t, err := rs.ConsumeResetToken(ctx, s.resetHash(token), s.Now())
		if errors.Is(err, store.ErrNotFound) {
			t, err := rs.GetResetToken(ctx, s.resetHash(token))
			return linkError(t, err, s.Now())
		} else if err != nil {
			return err
		}
		if user, err = rs.GetUser(ctx, t.UserID); err != nil {
			return err
		}
		if user.MFAState == store.MFAResetPending {
			if err := s.Store.SetMFAState(ctx, user.ID, store.MFAMustEnroll); err != nil {
				return err
			}
			user.MFAState = store.MFAMustEnroll
		}
		return s.auditInOrgs(ctx, "reset.link_used", user.ID, Event{ActorID: user.ID, ClientAddr: clientAddr})
	})
	return user, err
}

// linkError classifies a link that cannot be used; nil if t is live.
func linkError(t store.ResetToken, err error, now time.Time) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrLinkUnknown
	case err != nil:
		return err
	case !t.UsedAt.IsZero():
		return ErrLinkUsed
	case !t.SupersededAt.IsZero():
		return ErrLinkSuperseded
	case !now.Before(t.ExpiresAt):
		return ErrLinkExpired
	}
	return nil
}

// auditInOrgs records a reset event in every organization of the member,
// so each of their owners sees it in their audit log.
func (s *Service) auditInOrgs(ctx context.Context, kind, targetID string, actor Event) error {
	ms, err := s.Store.ListUserMemberships(ctx, targetID)
	if err != nil {
		return err
	}
	orgs := []string{""}
	if len(ms) > 0 {
		orgs = orgs[:0]
		for _, m := range ms {
			orgs = append(orgs, m.OrgID)
		}
	}
	for _, org := range orgs {
		e := s.event(kind, targetID, actor, nil)
		e.OrgID = org
		if err := s.Store.AppendAudit(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// resetHash is the stored form of a reset token: HMAC under a key derived
// from the secret key. A token carries 256 bits, so a fast keyed hash is
// enough, and a database dump yields no working link.
func (s *Service) resetHash(token string) []byte {
	return s.Sealer.MAC("reset-token", []byte(token))
}

func (s *Service) resetLifespan() time.Duration {
	if s.ResetLinkLifespan > 0 {
		return s.ResetLinkLifespan
	}
	return DefaultResetLinkLifespan
}

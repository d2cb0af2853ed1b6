package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-id/twofold/mail"
	"github.com/twofold-id/twofold/mfa"
	"github.com/twofold-id/twofold/store"
)

// cmdUsersReset2FA is the break-glass reset, for when no owner can act:
// the same reset as the owner console (factors, sessions and tokens gone,
// a re-enrollment link emailed), recorded as done by the operator. The
// link is printed too, for when mail cannot reach the member; it is as
// secret as a password.
func cmdUsersReset2FA(ctx context.Context, e env, args []string) error {
	f := newFlags("users reset-2fa", e)
	email := f.String("email", "", "email of the user whose second factors to reset (required)")
	check := func() error {
		if !validEmail(*email) {
			return fmt.Errorf("%w: --email is required", errUsage)
		}
		return nil
	}
	return withApp(ctx, e, f, args, check, func(a *app) error {
		tmpl, err := loadTemplates(a.cfg)
		if err != nil {
			return err
		}
		user, err := a.db.GetUserByEmail(ctx, *email)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user with email %s", store.NormalizeEmail(*email))
		} else if err != nil {
			return err
		}
		factors, err := factorService(a, &mail.Mailer{Store: a.db, Templates: tmpl, Now: a.now})
		if err != nil {
			return err
		}
		res, err := factors.Reset(ctx, user, mfa.Event{ActorID: mfa.Operator, ClientAddr: "command line"})
		if err != nil {
			return err
		}
		return printJSON(e, map[string]any{"user_id": user.ID, "email": user.Email, "mfa": string(store.MFAResetPending),
			"mail": "queued; a running twofold server delivers it", "link": res.Link,
			"link_expires_at": res.ExpiresAt.UTC().Format(time.RFC3339)})
	})
}

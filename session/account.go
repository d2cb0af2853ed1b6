package session

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/twofold-id/twofold/store"
)

// Account is a signed-in user and their session.
type Account struct {
	User    store.User
	Session store.BrowserSession
}

type accountKey struct{}

// AccountOf returns the account RequireAccount put in ctx.
func AccountOf(ctx context.Context) (Account, bool) {
	a, ok := ctx.Value(accountKey{}).(Account)
	return a, ok
}

// Users reads users for RequireAccount.
type Users interface {
	GetUser(ctx context.Context, id string) (store.User, error)
}

// RequireAccount lets signed-in browsers through with their Account in
// the context and sends the others to sign in, coming back to back
// afterwards. A user with an owner's reset pending (or not yet completed)
// is treated as signed out: nothing but the reset flow is reachable. onErr
// answers failures that are not the user's doing.
func (m *Manager) RequireAccount(users Users, back string, onErr func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess, err := m.Current(r)
			var user store.User
			if err == nil {
				user, err = users.GetUser(r.Context(), sess.UserID)
			}
			if err == nil && user.MFAState != store.MFANone {
				err = store.ErrNotFound
			}
			if errors.Is(err, store.ErrNotFound) {
				http.Redirect(w, r, LoginURL(back, false), http.StatusSeeOther)
				return
			}
			if err != nil {
				onErr(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), accountKey{}, Account{user, sess})))
		})
	}
}

// LoginURL is the sign-in page that returns to back afterwards; reauth
// says the user is asked again because a change needs a recent sign-in.
func LoginURL(back string, reauth bool) string {
	q := url.Values{"return": {back}}
	if reauth {
		q.Set("reauth", "1")
	}
	return "/login?" + q.Encode()
}

// Recent reports whether the account signed in within window, and with a
// second factor when needMFA.
func (a Account) Recent(now time.Time, window time.Duration, needMFA bool) bool {
	if now.Sub(a.Session.AuthTime) > window {
		return false
	}
	return !needMFA || slices.Contains(a.Session.AMR, "mfa")
}
